"""The study folder: append-only marks, torn lines, corrupt files, schema versions, merge."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from lmread.errors import MarkError, MergeConflict, SchemaVersionError, StudyError
from lmread.records import Mark, Sample, TokenAssembler
from lmread.study import Study, merge_studies


def make_sample(sid: str, text: str = "one two three four five", model: str = "m1", n_params: int = 100) -> Sample:
    asm = TokenAssembler(with_distribution=False)
    for word in text.split(" "):
        asm.add(-1, (word + " ").encode())
    tokens, out, raw = asm.finish()
    return Sample(id=sid, model={"id": model, "n_params": n_params}, backend="import", prompt={"text": "p"},
                  settings={}, seed=None, text=out, tokens=tokens, finish_reason="eos", raw=raw)


@pytest.fixture
def study(study_dir: Path) -> Study:
    st = Study.create(study_dir, shuffle_seed=7)
    st.add_samples([make_sample("s_a"), make_sample("s_b", "alpha beta gamma", model="m2", n_params=200)])
    return st


def test_create_open_roundtrip(study: Study) -> None:
    again = Study.open(study.path)
    assert again.shuffle_seed == 7
    assert list(again.samples) == ["s_a", "s_b"]
    assert again.samples["s_a"].text == "one two three four five "
    assert again.samples["s_a"].n_tokens == 5


def test_marks_append_and_undo(study: Study) -> None:
    m1 = study.append_mark(Mark(sample="s_a", annotator="ann", kind="fall", at=3, category="loop" if False else "repetition"))
    m2 = study.append_mark(Mark(sample="s_b", annotator="ann", kind="no_fall", read_to=3))
    fresh = Study.open(study.path)
    cur = fresh.current_marks("ann")
    assert cur[("ann", "s_a")].id == m1.id and cur[("ann", "s_a")].at == 3
    assert cur[("ann", "s_b")].id == m2.id
    undo = fresh.undo("ann")
    assert undo.undoes == m2.id and undo.kind == "undo"
    again = Study.open(study.path)
    assert ("ann", "s_b") not in again.current_marks("ann")
    assert len(again.marks("ann")) == 3  # undo is a new event, nothing edited
    lines = (study.path / "marks" / "ann.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x)["kind"] for x in lines] == ["fall", "no_fall", "undo"]


def test_mark_prefix_and_bad_marks(study: Study) -> None:
    with pytest.raises(MarkError, match="no sample"):
        study.append_mark(Mark(sample="s_zzz", annotator="ann", kind="fall", at=0))
    with pytest.raises(MarkError, match="outside sample"):
        study.append_mark(Mark(sample="s_a", annotator="ann", kind="fall", at=5))
    with pytest.raises(MarkError, match="outside sample"):
        study.append_mark(Mark(sample="s_a", annotator="ann", kind="no_fall", read_to=6))
    with pytest.raises(MarkError, match="unknown category"):
        study.append_mark(Mark(sample="s_a", annotator="ann", kind="fall", at=1, category="boring"))
    for bad in ("../x", "", "a\x01b", ".hidden", "a/b", "x" * 65):
        with pytest.raises(MarkError, match="annotator name"):
            study.append_mark(Mark(sample="s_a", annotator=bad, kind="fall", at=1))
    assert not (study.path / "marks").exists() or not any((study.path / "marks").iterdir())
    assert not (study.path.parent / "x.jsonl").exists()


def test_undo_without_marks(study: Study) -> None:
    with pytest.raises(MarkError, match="no mark to undo"):
        study.undo("ann")


def test_torn_last_line_is_ignored_and_next_append_starts_fresh(study: Study) -> None:
    study.append_mark(Mark(sample="s_a", annotator="ann", kind="fall", at=2))
    path = study.path / "marks" / "ann.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"schema": "lmread.mark/1", "id": "m_tor')
    again = Study.open(study.path)
    assert len(again.marks()) == 1
    assert any("torn" in w for w in again.warnings)
    again.append_mark(Mark(sample="s_b", annotator="ann", kind="fall", at=1))
    third = Study.open(study.path)
    assert [m.sample for m in third.marks()] == ["s_a", "s_b"]
    lines = path.read_bytes().split(b"\n")
    assert len(lines) == 3 and lines[2] == b""  # two whole lines, the fragment is gone from the file
    side = path.with_name("ann.jsonl.torn").read_bytes()
    assert side == b'{"schema": "lmread.mark/1", "id": "m_tor\n'  # ...but no byte is lost


def test_corrupt_middle_line_names_file_and_line(study: Study) -> None:
    study.append_mark(Mark(sample="s_a", annotator="ann", kind="fall", at=2))
    path = study.path / "marks" / "ann.jsonl"
    content = path.read_bytes()
    path.write_bytes(b"garbage\n" + content)
    with pytest.raises(StudyError, match=r"ann.jsonl: line 1 is not valid JSON"):
        Study.open(path.parent.parent).marks()


def test_newer_schema_is_a_clear_error(study: Study) -> None:
    path = study.path / "samples.jsonl"
    rec = orjson.loads(path.read_bytes().splitlines()[0])
    rec["schema"] = "lmread.sample/9"
    rec["id"] = "s_new"
    with open(path, "ab") as fh:
        fh.write(orjson.dumps(rec) + b"\n")
    with pytest.raises(SchemaVersionError, match="newer than this lmread"):
        Study.open(study.path).samples  # noqa: B018


def test_missing_and_corrupt_study_toml(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="does not exist"):
        Study.open(tmp_path / "nope")
    (tmp_path / "bad").mkdir()
    with pytest.raises(StudyError, match="not a study folder"):
        Study.open(tmp_path / "bad")
    (tmp_path / "bad" / "study.toml").write_text("schema = [unterminated")
    with pytest.raises(StudyError, match="corrupt"):
        Study.open(tmp_path / "bad")
    (tmp_path / "bad" / "study.toml").write_text('schema = "lmread.study/5"\nname = "x"\n')
    with pytest.raises(SchemaVersionError):
        Study.open(tmp_path / "bad")


def test_duplicate_sample_same_content_skipped_different_conflicts(study: Study) -> None:
    assert study.add_samples([make_sample("s_a")]) == []
    with pytest.raises(MergeConflict):
        study.add_samples([make_sample("s_a", "different words here")])
    assert len(Study.open(study.path).samples) == 2


def test_reading_order_is_seeded_and_interleaved(study: Study) -> None:
    order = Study.open(study.path).reading_order()
    assert sorted(order) == ["s_a", "s_b"]
    assert order == Study.open(study.path).reading_order()


def test_merge_unions_and_reports_conflicts(tmp_path: Path) -> None:
    a = Study.create(tmp_path / "a")
    b = Study.create(tmp_path / "b")
    a.add_samples([make_sample("s_1"), make_sample("s_2", "x y z")])
    b.add_samples([make_sample("s_1"), make_sample("s_3", "p q r s")])
    ma = a.append_mark(Mark(sample="s_1", annotator="alice", kind="fall", at=1))
    mb = b.append_mark(Mark(sample="s_3", annotator="bob", kind="no_fall", read_to=4))
    report = merge_studies([a.path, b.path], tmp_path / "dest")
    assert report.conflicts == []
    dest = Study.open(tmp_path / "dest")
    assert sorted(dest.samples) == ["s_1", "s_2", "s_3"]
    assert {m.id for m in dest.marks()} == {ma.id, mb.id}
    # merging again adds nothing
    again = merge_studies([a.path, b.path], tmp_path / "dest")
    assert (again.samples_added, again.marks_added) == (0, 0)
    # a conflicting sample: reported, nothing written
    c = Study.create(tmp_path / "c")
    c.add_samples([make_sample("s_1", "a completely different text"), make_sample("s_9", "new one")])
    before = (tmp_path / "dest" / "samples.jsonl").read_bytes()
    report = merge_studies([c.path], tmp_path / "dest")
    assert report.conflicts and "s_1" in report.conflicts[0]
    assert (tmp_path / "dest" / "samples.jsonl").read_bytes() == before


def test_study_settings_are_parsed_and_checked(study: Study) -> None:
    from lmread.study.settings import StudySettings

    plain = study.settings
    assert (plain.name, plain.shuffle_seed, plain.overlap, plain.max_read_speed_wps) == (study.name, 7, None, None)
    assert StudySettings().shuffle_seed == 0 and StudySettings().overlap is None
    study.update_meta(overlap=0.25, max_read_speed_wps=9, controls={"human": ["h1", "h2"]})
    settings = Study.open(study.path).settings
    assert (settings.overlap, settings.max_read_speed_wps, settings.min_read_speed_wps) == (0.25, 9.0, None)
    assert settings.human_controls == ("h1", "h2")
    study.update_meta(min_read_speed_wps=0)
    bad = study.settings  # re-read after the change
    with pytest.raises(StudyError, match=r"study.toml: min_read_speed_wps must be a number of words per second > 0"):
        _ = bad.min_read_speed_wps
    assert bad.overlap == 0.25 and bad.max_read_speed_wps == 9.0  # the other settings stay readable
    study.update_meta(min_read_speed_wps=1, shuffle_seed="x")
    with pytest.raises(StudyError, match="shuffle_seed must be a whole number"):
        _ = Study.open(study.path).settings.shuffle_seed
    assert Study.open(study.path).settings.min_read_speed_wps == 1.0


def test_summary_counts_per_model_and_annotator(study: Study) -> None:
    from lmread.study.report import summarize_study

    study.add_samples([make_sample("x1", model="m3", n_params=50)])
    study.append_mark(Mark(sample="s_a", annotator="ann", kind="fall", at=1))
    study.append_mark(Mark(sample="x1", annotator="bob", kind="skip"))
    info = summarize_study(study)
    assert info["name"] == study.name and info["samples"] == 3 and info["marked_samples"] == 1
    assert [m["model"] for m in info["models"]] == ["m3", "m1", "m2"]  # by size
    assert [m["marked"] for m in info["models"]] == [0, 1, 0]  # a skip marks nothing
    assert [m["tokens"] for m in info["models"]] == [5, 5, 3]
    by_name = {a["annotator"]: a for a in info["annotators"]}
    assert (by_name["ann"]["fallen"], by_name["bob"]["skipped"], by_name["bob"]["marked"]) == (1, 1, 1)
