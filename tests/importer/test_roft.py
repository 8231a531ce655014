"""RoFT import (issue 18): a synthetic file in the released layout goes in; RoFT's scoring,
Kaplan-Meier per generator (against lifelines), agreement in sentences and the bad-input rules
come out.  Expected values are computed from the rows here, independently of the importer."""

from __future__ import annotations

import csv
import json
import shlex
from collections import Counter, defaultdict
from pathlib import Path

import jsonschema
import numpy as np
import orjson
import pytest

from lmread.analysis.agreement import agreement_of_study
from lmread.analysis.calibration import calibration_of_study
from lmread.analysis.report import compute
from lmread.cli import main
from lmread.importer.roft import ROFT_SIZES, import_roft, parse_size, reason_category
from lmread.importer.synthetic import COLUMNS, synth_rows, write_roft
from lmread.study import Study

SCHEMAS = Path(__file__).resolve().parents[2] / "annotations" / "schema"
N_ROWS = 1200


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(name))


def pkey(row: dict) -> tuple:
    """What identifies a RoFT passage: prompt and generation indexes count within a dataset."""
    return (row["dataset"], row["prompt"], row["generation"], row["model"])


def error_lines(err: str) -> list[str]:
    """The error lines of stderr (progress lines start with two spaces)."""
    return [line for line in err.splitlines() if not line.startswith("  ")]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return synth_rows(N_ROWS, 30, seed=3)


@pytest.fixture(scope="module")
def roft_study(tmp_path_factory: pytest.TempPathFactory, rows: list[dict]) -> tuple[Path, Path, dict]:
    folder = tmp_path_factory.mktemp("roft")
    file = write_roft(folder / "roft.csv", rows)
    summary = import_roft(folder / "study", file)
    return folder / "study", file, summary


def test_synthetic_file_covers_what_the_issue_asks(rows: list[dict]) -> None:
    machine = [r for r in rows if r["model"] != "baseline" and r["true_boundary_index"] != 9]
    assert len({r["model"] for r in machine}) >= 3
    assert len({r["dec_strat_value"] for r in machine}) >= 2
    assert any(r["true_boundary_index"] == 9 for r in rows) and any(r["model"] == "baseline" for r in rows)
    # as in the released file (its notebook's model counts): all-human passages are labelled "human"
    assert {r["model"] for r in rows if r["true_boundary_index"] == 9} == {"human"}
    assert len({r["annotator"] for r in rows}) == 30
    assert any(r["predicted_boundary_index"] < r["true_boundary_index"] for r in machine)  # early guesses
    assert any(r["predicted_boundary_index"] == 9 for r in machine)  # "all human" on a machine passage


def test_import_counts_samples_marks_and_readers(roft_study: tuple[Path, Path, dict], rows: list[dict]) -> None:
    path, _, summary = roft_study
    passages = {pkey(r) for r in rows}
    study = Study.open(path)
    assert len(study.samples) == len(passages) == summary["samples_written"]
    assert summary["points_disagree"]["n"] == 0 and summary["unsized_models"] == []
    early = sum(r["predicted_boundary_index"] < r["true_boundary_index"] and r["true_boundary_index"] != 9
                and r["model"] != "baseline" for r in rows)
    no_fall = sum(r["predicted_boundary_index"] == 9 for r in rows)
    assert summary["mark_kinds"] == {"fall": N_ROWS - early - no_fall, "no_fall": no_fall, "prompt_fall": early}
    assert study.annotators() == sorted(f"roft-{a}" for a in {r["annotator"] for r in rows})
    sample_schema, mark_schema = validator("sample"), validator("mark")
    kinds = Counter(s.control["kind"] if s.control else "machine" for s in study.samples.values())
    assert kinds["human"] == len({p for p in passages if rows and any(
        pkey(r) == p and r["true_boundary_index"] == 9 for r in rows)})
    assert kinds["splice"] == len({p for p in passages if p[3] == "baseline"})
    for s in study.samples.values():
        if s.control is None:
            assert s.model["n_params"] == ROFT_SIZES[s.model["id"]]
            assert s.prompt["human"] is True and s.settings["top_p"] in (0.0, 0.4, 1.0)
            assert s.prompt["set"] in ("Short Stories", "Recipes", "New York Times")
        # prompt + text is the passage; the recorded sentence starts are those of its sentences
        assert [s.text[i] for i in s.sentences] == [s.text[i] for i in s.sentences if not s.text[i].isspace()]
        sample_schema.validate(s.to_json())
    for m in study.marks():
        mark_schema.validate(m.to_json())
    readers = [orjson.loads(line) for line in (path / "readers.jsonl").read_bytes().splitlines()]
    assert len(readers) == 30
    for rec in readers:
        jsonschema.validate(rec, schema("reader"))
    row = next(r for r in rows if f"roft-{r['annotator']}" == readers[0]["annotator"])
    assert readers[0]["group"] == row["group"]
    assert readers[0]["familiarity"]["news"] == (None if row["news_familiarity"] == -1 else row["news_familiarity"])


def test_each_mark_sits_where_the_guess_points(roft_study: tuple[Path, Path, dict], rows: list[dict]) -> None:
    path, _, _ = roft_study
    study = Study.open(path)
    by_reader_sample = {(m.annotator, m.sample): m for m in study.marks()}
    checked = Counter()
    for r in rows:
        if r["model"] == "baseline" or r["true_boundary_index"] == 9:
            continue
        b, g = r["true_boundary_index"], r["predicted_boundary_index"]
        sample = next(s for s in study.samples.values() if s.control is None
                      and r["prompt_body"].split("_SEP_")[0] in s.prompt["text"] and s.model["id"] == r["model"]
                      and r["gen_body"].split("_SEP_")[0] in s.text)
        mark = by_reader_sample[(f"roft-{r['annotator']}", sample.id)]
        machine = r["gen_body"].split("_SEP_")[: 9 - b]
        if g == 9:
            assert mark.kind == "no_fall" and mark.read_to == sample.n_tokens
            checked["no_fall"] += 1
        elif g < b:
            human = r["prompt_body"].split("_SEP_")
            assert mark.kind == "prompt_fall" and sample.prompt["text"][mark.prompt_at:].startswith(human[g + 1])
            checked["prompt_fall"] += 1
        else:
            assert mark.kind == "fall"
            assert sample.text[sample.tokens.offsets[mark.at]:].lstrip().startswith(machine[g - b])
            checked["fall"] += 1
        if sum(checked.values()) > 150:
            break
    assert all(checked[k] for k in ("fall", "no_fall", "prompt_fall"))


def test_every_readers_score_is_the_mean_of_their_points(roft_study: tuple[Path, Path, dict], rows: list[dict]) -> None:
    path, _, _ = roft_study
    doc = calibration_of_study(Study.open(path), unit="sentences", by="model+decoding")
    jsonschema.validate(doc, schema("calibration"))
    points: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        points[f"roft-{r['annotator']}"].append(r["points"])
    assert len(doc["annotators"]) == 30
    for a in doc["annotators"]:
        mine = points[a["annotator"]]
        assert a["score"]["n"] == len(mine)
        assert a["score"]["mean"] == pytest.approx(np.mean(mine), abs=1e-12)
        assert a["score"]["exact"] == sum(p == 5 for p in mine)
    # calibration on the spliced baseline in sentences: the detected delays are g - b
    delays: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        b, g = r["true_boundary_index"], r["predicted_boundary_index"]
        if r["model"] == "baseline" and b != 9 and b <= g < 9:
            delays[f"roft-{r['annotator']}"].append(g - b)
    for a in doc["annotators"]:
        got_delay = a["onset_controls"]["delay_sentences"]
        assert got_delay["n"] == len(delays[a["annotator"]])
        if got_delay["n"]:
            assert got_delay["mean"] == pytest.approx(np.mean(delays[a["annotator"]]), abs=1e-12)
    # per generator and top-p, as RoFT published
    per_group: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        if r["true_boundary_index"] == 9:
            label = "control:human"
        elif r["model"] == "baseline":
            label = "control:splice"
        else:
            label = f"{r['model']} top_p={float(r['dec_strat_value']):g}"
        per_group[label].append(r["points"])
    got = {g["group"]: g for g in doc["groups"]}
    assert set(got) == set(per_group)
    for label, pts in per_group.items():
        assert got[label]["mean"] == pytest.approx(np.mean(pts), abs=1e-12)
        assert got[label]["exact_share"] == pytest.approx(np.mean([p == 5 for p in pts]), abs=1e-12)


def test_km_per_generator_equals_lifelines(roft_study: tuple[Path, Path, dict], rows: list[dict]) -> None:
    lifelines = pytest.importorskip("lifelines")
    path, _, _ = roft_study
    doc, obs = compute(path, unit="sentences", n_boot=0)
    assert doc["filters"]["left_out"]["prompt_falls"] == sum(
        r["predicted_boundary_index"] < r["true_boundary_index"] != 9 and r["model"] != "baseline" for r in rows)
    jsonschema.validate(doc, schema("survival"))
    pairs: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    for r in rows:
        b, g = r["true_boundary_index"], r["predicted_boundary_index"]
        if r["model"] == "baseline" or b == 9 or g < b:
            continue
        pairs[r["model"]].append((g - b, g != 9) if g != 9 else (9 - b, False))
    groups = {g["label"]: g for g in doc["groups"]}
    assert set(groups) == set(pairs)
    for model, data in pairs.items():
        t = np.array([d for d, _ in data], dtype=float)
        e = np.array([ev for _, ev in data], dtype=bool)
        kmf = lifelines.KaplanMeierFitter().fit(t, e)
        curve = groups[model]["curve"]
        assert groups[model]["n"] == len(data) and groups[model]["events"] == int(e.sum())
        for point in curve:
            assert point["survival"] == pytest.approx(float(kmf.survival_function_at_times(point["t"]).iloc[0]),
                                                      abs=1e-12)
        ci = kmf.confidence_interval_survival_function_
        for point in curve:
            if point["t"] in ci.index and point["survival"] > 0 and point["ci_low"] is not None:
                assert point["ci_low"] == pytest.approx(float(ci.loc[point["t"]].iloc[0]), abs=1e-9)


def test_agreement_reports_distances_in_sentences(roft_study: tuple[Path, Path, dict], rows: list[dict]) -> None:
    path, _, _ = roft_study
    doc = agreement_of_study(Study.open(path), n_boot=0, unit="sentences")
    jsonschema.validate(doc, schema("agreement"))
    assert doc["settings"]["distance_unit"] == "sentences" and "words" not in doc["overall"]["mean_abs_distance"]
    # expected: over machine passages, pairs of readers who both guessed a machine sentence (g >= b, g < 9),
    # plus human / splice controls where both fell (their text starts at sentence 1)
    per_passage: dict[tuple, list[int]] = defaultdict(list)
    for r in rows:
        b, g = r["true_boundary_index"], r["predicted_boundary_index"]
        machine = r["model"] != "baseline" and b != 9
        if g == 9 or (machine and g < b):
            continue
        per_passage[pkey(r)].append(g)
    total = n = 0
    for gs in per_passage.values():
        for i in range(len(gs)):
            for j in range(i + 1, len(gs)):
                total += abs(gs[i] - gs[j])
                n += 1
    dist = doc["overall"]["mean_abs_distance"]
    assert dist["n"] == n and dist["sentences"]["value"] == pytest.approx(total / n, abs=1e-12)


def test_csv_and_jsonl_give_the_same_study(tmp_path: Path, rows: list[dict]) -> None:
    few = rows[:80]
    a = import_roft(tmp_path / "a", write_roft(tmp_path / "r.csv", few))
    b = import_roft(tmp_path / "b", write_roft(tmp_path / "r.jsonl", few, jsonl=True))
    assert a["mark_kinds"] == b["mark_kinds"]
    sa, sb = Study.open(tmp_path / "a"), Study.open(tmp_path / "b")
    assert list(sa.samples) == list(sb.samples)
    assert sorted(m.id for m in sa.marks()) == sorted(m.id for m in sb.marks())


def test_reimport_is_refused_and_writes_nothing(tmp_path: Path, rows: list[dict], capsys: pytest.CaptureFixture[str]) -> None:
    file = write_roft(tmp_path / "r.csv", rows[:50])
    assert main(["import", "--study", str(tmp_path / "s"), "--format", "roft", str(file)]) == 0
    before = {p: p.read_bytes() for p in (tmp_path / "s").rglob("*") if p.is_file()}
    capsys.readouterr()
    code = main(["import", "--study", str(tmp_path / "s"), "--format", "roft", str(file)])
    err = capsys.readouterr().err
    assert code != 0 and "already in study" in err and len(error_lines(err)) == 1
    assert {p: p.read_bytes() for p in (tmp_path / "s").rglob("*") if p.is_file()} == before


def _write_csv(path: Path, rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(("change", "message"), [
    ({"true_boundary_index": 12}, "1 boundary outside 0-9 (first at line 3)"),
    ({"predicted_boundary_index": -1}, "1 boundary outside 0-9"),
    ({"points": "five"}, "1 unparseable number (first at line 3)"),
    ({"dec_strat_value": "p=0.4"}, "1 unparseable number"),
    ({"annotator": "../evil"}, "1 reader id not a safe name"),
    ({"prompt_body": "Only one sentence.", "true_boundary_index": 4, "model": "gpt2"}, "1 fewer sentences than the boundary"),
])
def test_bad_rows_are_reported_and_nothing_is_written(tmp_path: Path, rows: list[dict], change: dict, message: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    few = [dict(r) for r in rows[:6]]
    few[1].update(change)
    file = _write_csv(tmp_path / "bad.csv", few)
    code = main(["import", "--study", str(tmp_path / "s"), "--format", "roft", str(file)])
    err = capsys.readouterr().err
    assert code != 0 and message in err and "nothing was imported" in err
    assert error_lines(err)[0].startswith("lmread: error:") and len(error_lines(err)) == 1
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob(".s.import-*"))


def test_several_bad_kinds_are_counted_in_one_line(tmp_path: Path, rows: list[dict],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    few = [dict(r) for r in rows[:8]]
    few[0]["points"] = "x"
    few[2]["points"] = "y"
    few[5]["true_boundary_index"] = 10
    file = _write_csv(tmp_path / "bad.csv", few)
    assert main(["import", "--study", str(tmp_path / "s"), "--format", "roft", str(file)]) != 0
    err = capsys.readouterr().err
    assert "3 bad rows: 1 boundary outside 0-9 (first at line 7); 2 unparseable number (first at line 2)" in err


def test_missing_column_is_one_line(tmp_path: Path, rows: list[dict], capsys: pytest.CaptureFixture[str]) -> None:
    file = _write_csv(tmp_path / "bad.csv", rows[:3], tuple(c for c in COLUMNS if c != "gen_body"))
    assert main(["import", "--study", str(tmp_path / "s"), "--format", "roft", str(file)]) != 0
    err = capsys.readouterr().err
    assert "missing required column 'gen_body'" in err and len(error_lines(err)) == 1
    assert not (tmp_path / "s").exists()


def test_disagreeing_points_are_reported(tmp_path: Path, rows: list[dict], capsys: pytest.CaptureFixture[str]) -> None:
    few = [dict(r) for r in rows[:10]]
    few[3]["points"] = (few[3]["points"] + 1) % 6
    file = _write_csv(tmp_path / "r.csv", few)
    assert main(["import", "--study", str(tmp_path / "s"), "--format", "roft", str(file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["points_disagree"] == {"n": 1, "lines": [5]}


def test_unknown_generator_is_unsized_unless_n_params(tmp_path: Path, rows: list[dict],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    few = [dict(r) for r in rows[:40] if r["model"] == "gpt2" and r["true_boundary_index"] != 9][:3]
    for r in few:
        r["model"] = "gpt-neo"
    file = _write_csv(tmp_path / "r.csv", few)
    assert main(["import", "--study", str(tmp_path / "a"), "--format", "roft", str(file)]) == 0
    assert "no parameter count for gpt-neo" in capsys.readouterr().err
    assert main(["import", "--study", str(tmp_path / "b"), "--format", "roft", str(file), "--n-params", "gpt-neo=2.7B"]) == 0
    assert {s.model["n_params"] for s in Study.open(tmp_path / "b").samples.values()} == {2_700_000_000}


def test_reason_mapping_and_sizes() -> None:
    assert reason_category("['irrelevant', 'grammar']") == "drift"
    assert reason_category("contradicts_knowledge") == "factual"
    assert reason_category("['generic']") == "other" and reason_category("it felt off") == "other"
    assert reason_category("['coreference']") == "contradiction" and reason_category("") is None
    assert reason_category("__import__('os')") == "other"  # never evaluated
    assert parse_size("1.5B") == 1_500_000_000 and parse_size("124M") == 124_000_000 and parse_size("350") == 350


def test_readme_roft_commands_run(roft_study: tuple[Path, Path, dict], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The commands of the README's "Reproducing RoFT" section, on the synthetic file."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Reproducing RoFT", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip()[len("lmread "):] for line in section.splitlines() if line.strip().startswith("lmread ")]
    assert len(commands) >= 5
    _, file, _ = roft_study
    for command in commands:
        args = shlex.split(command)
        args = [str(file) if a == "roft.csv" else a for a in args]
        args = [str(tmp_path / a) if i and args[i - 1] == "--study" else a for i, a in enumerate(args)]
        code = main(args)
        out, err = capsys.readouterr()
        assert code == 0, (command, err)
        assert out


def test_repeated_readings_are_counted_and_the_later_stands(tmp_path: Path, rows: list[dict],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    machine = next(r for r in rows if r["model"] == "gpt2" and r["true_boundary_index"] < 5)
    again = dict(machine, predicted_boundary_index=9, points=max(5 - (9 - machine["true_boundary_index"]), 0))
    file = _write_csv(tmp_path / "r.csv", [machine, again])
    assert main(["import", "--study", str(tmp_path / "s"), "--format", "roft", str(file)]) == 0
    assert "1 rows repeat a reader's reading" in capsys.readouterr().err
    standing = list(Study.open(tmp_path / "s").current_marks().values())
    assert len(standing) == 1 and standing[0].kind == "no_fall"


def test_models_option_keeps_one_family_and_the_controls(tmp_path: Path, rows: list[dict],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    file = write_roft(tmp_path / "r.csv", rows[:300])
    assert main(["import", "--study", str(tmp_path / "s"), "--format", "roft", str(file), "--models",
                 "gpt2,gpt2-xl", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    kept = [r for r in rows[:300] if r["model"] in ("gpt2", "gpt2-xl", "baseline") or r["true_boundary_index"] == 9]
    assert out["rows"] == len(kept) and out["rows_skipped"] == 300 - len(kept)
    models = {s.model["id"] for s in Study.open(tmp_path / "s").samples.values()}
    assert models == {"gpt2", "gpt2-xl", "baseline", "human"}


def test_groups_option_keeps_those_readers_rows(tmp_path: Path, rows: list[dict],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    file = write_roft(tmp_path / "r.csv", rows[:300])
    assert main(["import", "--study", str(tmp_path / "s"), "--format", "roft", str(file), "--groups", "A,B",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    kept = [r for r in rows[:300] if r["group"] in ("A", "B")]
    assert 0 < len(kept) < 300 and out["rows"] == len(kept) and out["rows_skipped"] == 300 - len(kept)
    study = Study.open(tmp_path / "s")
    assert {m.annotator for m in study.marks()} == {f"roft-{r['annotator']}" for r in kept}
    for option, value, named in (("--groups", "A,Z", "--groups Z: not in"), ("--models", "gpt2,gpt-2", "--models gpt-2: not in")):
        code = main(["import", "--study", str(tmp_path / "u"), "--format", "roft", str(file), option, value])
        err = capsys.readouterr().err
        assert code != 0 and named in err and len(error_lines(err)) == 1 and not (tmp_path / "u").exists()
    code = main(["import", "--study", str(tmp_path / "t"), "--format", "boundary", str(file), "--groups", "A"])
    assert code != 0 and "--groups belong to --format roft" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_the_released_files_ctrl_names_are_sized(tmp_path: Path, rows: list[dict]) -> None:
    renamed = [{**r, "model": {"ctrl": "ctrl-Politics"}.get(r["model"], r["model"])} for r in rows[:200]]
    renamed += [{**r, "model": "ctrl-nocode", "generation": f"n{r['generation']}"} for r in rows[:200]
                if r["model"] == "ctrl"]
    summary = import_roft(tmp_path / "s", write_roft(tmp_path / "r.csv", renamed))
    assert summary["unsized_models"] == []
    sizes = {s.model["id"]: s.model["n_params"] for s in Study.open(tmp_path / "s").samples.values()}
    assert sizes["ctrl-Politics"] == sizes["ctrl-nocode"] == 1_630_000_000


def test_merge_keeps_reader_records(tmp_path: Path, rows: list[dict], capsys: pytest.CaptureFixture[str]) -> None:
    import_roft(tmp_path / "a", write_roft(tmp_path / "a.csv", rows[:40]))
    import_roft(tmp_path / "b", write_roft(tmp_path / "b.csv", rows[40:80]))
    assert main(["merge", str(tmp_path / "a"), str(tmp_path / "b"), "--into", str(tmp_path / "m")]) == 0
    assert main(["merge", str(tmp_path / "a"), "--into", str(tmp_path / "m")]) == 0  # again: nothing doubled
    merged = (tmp_path / "m" / "readers.jsonl").read_bytes().splitlines()
    expected = set((tmp_path / "a" / "readers.jsonl").read_bytes().splitlines())
    expected |= set((tmp_path / "b" / "readers.jsonl").read_bytes().splitlines())
    assert sorted(merged) == sorted(expected)
    assert len(Study.open(tmp_path / "m").marks()) == 80


def test_import_into_an_existing_study_appends(tmp_path: Path, rows: list[dict]) -> None:
    first = import_roft(tmp_path / "s", write_roft(tmp_path / "a.csv", rows[:30]))
    second = import_roft(tmp_path / "s", write_roft(tmp_path / "b.csv", rows[30:60]))
    study = Study.open(tmp_path / "s")
    passages = {pkey(r) for r in rows[:60]}
    assert len(study.samples) == len(passages)
    assert first["samples_written"] + second["samples_written"] == len(passages)
    assert len(study.marks()) == 60 and study.warnings == []


def test_a_failure_while_writing_leaves_no_study(tmp_path: Path, rows: list[dict],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from lmread.errors import DiskFullError

    def full(self: Study, marks: list) -> list:
        raise DiskFullError("disk full while writing marks")

    monkeypatch.setattr(Study, "append_marks", full)
    file = write_roft(tmp_path / "r.csv", rows[:20])
    with pytest.raises(DiskFullError):
        import_roft(tmp_path / "s", file)
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob(".s.import-*"))
