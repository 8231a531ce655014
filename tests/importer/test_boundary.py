"""``lmread import --format boundary``: passages with a human-to-machine boundary as a character,
word or sentence index, reader guesses, both layouts, and bad lines."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from lmread.analysis.calibration import calibration_of_study
from lmread.cli import main
from lmread.study import Study

REVIEW = "I loved this blender. It crushes ice well. Then the moon sang loudly to the toaster and it was good."


def write(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def boundary_file(tmp_path: Path) -> Path:
    return write(tmp_path / "b.jsonl", [
        # word 8 ("Then") is the first machine word; guesses: exact, all human, early (word 2, a human word)
        {"text": REVIEW, "boundary": 8, "boundary_kind": "word", "model": "gpt-x", "n_params": 1_300_000_000,
         "guesses": [{"reader": "r1", "guess": 8}, {"reader": "r2", "guess": None}, {"reader": "r3", "guess": 2}],
         "prompt_set": "reviews", "top_p": 0.9},
        {"sentences": ["One human line.", "Another human line.", "A machine line.", "More machine.", "Last one."],
         "boundary": 2, "boundary_kind": "sentence", "model": "gpt-x",
         "guesses": [{"reader": "r1", "guess": 4}, {"reader": "r2", "guess": 1}]},
        {"text": "All written by a person. Truly.", "boundary": None, "boundary_kind": "char", "model": "human",
         "guesses": [{"reader": "r1", "guess": None}, {"reader": "r2", "guess": 25}]},
        {"text": REVIEW, "boundary": REVIEW.index("Then"), "boundary_kind": "char", "model": "gpt-y", "id": "c1"},
    ])


def test_samples_layout(tmp_path: Path, boundary_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "import", "--study", str(tmp_path / "s"), "--format", "boundary", str(boundary_file),
                         "--n-params", "gpt-y=7B", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["passages"] == {"machine": 3, "human": 1, "splice": 0}
    assert summary["mark_kinds"] == {"fall": 3, "no_fall": 2, "prompt_fall": 2} and summary["unsized_models"] == []
    study = Study.open(tmp_path / "s")
    review = next(s for s in study.samples.values() if s.model["id"] == "gpt-x" and s.prompt["set"] == "reviews")
    assert review.prompt["text"] == "I loved this blender. It crushes ice well. " and review.prompt["human"] is True
    assert review.text.startswith("Then the moon") and review.settings["top_p"] == 0.9
    assert review.model["n_params"] == 1_300_000_000
    lines = next(s for s in study.samples.values() if s.text.startswith("A machine line."))
    assert lines.model["n_params"] == 1_300_000_000  # the size given on another line of gpt-x
    assert lines.sentences == [0, 16, 30] and lines.prompt["sentences"] == [0, 16]
    assert study.samples["c1"].model["n_params"] == 7_000_000_000 and study.samples["c1"].text == review.text
    marks = {(m.annotator, m.sample): m for m in study.marks()}
    assert marks[("r1", review.id)].kind == "fall" and marks[("r1", review.id)].at == 0
    early = marks[("r3", review.id)]
    assert early.kind == "prompt_fall" and review.prompt["text"][early.prompt_at:].startswith("this blender")
    assert marks[("r1", lines.id)].at is not None
    assert lines.text[lines.tokens.offsets[marks[("r1", lines.id)].at]:].lstrip().startswith("Last one.")
    # RoFT's score in sentences: r1 exact on both machine passages and right on the human one
    doc = calibration_of_study(study, unit="sentences")
    r1 = next(a for a in doc["annotators"] if a["annotator"] == "r1")
    assert r1["score"]["n"] == 3 and r1["score"]["exact"] == 2 and r1["score"]["points"] == 5 + 3 + 5


def test_controls_layout(tmp_path: Path, boundary_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "import", "--study", str(tmp_path / "s"), "--format", "boundary", "--as", "controls",
                         str(boundary_file), "--json")
    assert code == 0, err
    study = Study.open(tmp_path / "s")
    kinds = sorted(s.control["kind"] for s in study.samples.values())
    assert kinds == ["human", "splice", "splice", "splice"]
    c1 = study.samples["c1"]
    assert c1.text == REVIEW and c1.text[c1.tokens.offsets[c1.control["onset"]]:].lstrip().startswith("Then")
    # early guesses become falls before the onset: calibration counts them early
    doc = calibration_of_study(study)
    r3 = next(a for a in doc["annotators"] if a["annotator"] == "r3")
    assert r3["onset_controls"]["early"] == 1


@pytest.mark.parametrize(("row", "message"), [
    ({"text": "abc", "boundary": 9, "boundary_kind": "char", "model": "m"}, "1 boundary outside the text"),
    ({"text": "a b", "boundary": 1, "boundary_kind": "lines", "model": "m"}, "missing or malformed field"),
    ({"text": "a b", "boundary_kind": "word", "model": "m"}, "'boundary' is required"),
    ({"text": "a b c", "boundary": 1, "boundary_kind": "word", "model": "m",
      "guesses": [{"reader": "bad name", "guess": 1}]}, "reader name not safe"),
    ({"text": "a b c", "boundary": 1, "boundary_kind": "word", "model": "m",
      "guesses": [{"reader": "r", "guess": 7}]}, "guess outside the text"),
    ({"text": "a b c", "boundary": 0, "boundary_kind": "word", "model": "m"}, "leaves no human text"),
])
def test_bad_lines_write_nothing(tmp_path: Path, row: dict, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    good = {"text": "x y z", "boundary": 1, "boundary_kind": "word", "model": "m"}
    file = write(tmp_path / "b.jsonl", [good, row])
    code, _, err = run(capsys, "import", "--study", str(tmp_path / "s"), "--format", "boundary", str(file))
    assert code != 0 and message in err and "line 2" in err and "nothing was imported" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


def test_format_options_are_checked(tmp_path: Path, boundary_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "import", "--study", str(tmp_path / "s"), "--format", "boundary", "--tokenizer", "chars",
                       str(boundary_file))
    assert code != 0 and "--tokenizer belong to --format jsonl" in err
    code, _, err = run(capsys, "import", "--study", str(tmp_path / "s"), "--n-params", "a=1B", str(boundary_file))
    assert code != 0 and "belong to --format roft or boundary" in err
    code, _, err = run(capsys, "import", "--study", str(tmp_path / "s"), "--format", "roft", "--n-params", "a=lots",
                       str(boundary_file))
    assert code != 0 and "is not a number" in err
    assert not (tmp_path / "s").exists()
