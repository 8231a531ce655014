"""The annotator's commands: import -> mark -> undo -> study info, merge, and their bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import orjson
import pytest

from lmread.cli import main
from lmread.study import Study

SCHEMAS = Path(__file__).resolve().parents[2] / "annotations" / "schema"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


@pytest.fixture
def import_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "gen.jsonl", [
        {"text": "The cat sat on the mat. Then it slept all day long.", "model": "small", "n_params": 1000, "id": "a1"},
        {"text": "Il était une fois un château près de la forêt. 🏰 東京", "model": "big", "n_params": 9000,
         "prompt": "Once"},
        {"text": "A human wrote this control text carefully.", "model": "human"},
    ])


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def test_import_mark_undo_info_roundtrip(capsys: pytest.CaptureFixture[str], study_dir: Path, import_file: Path) -> None:
    code, out, err = run(capsys, "import", "--study", str(study_dir), str(import_file), "--json")
    assert code == 0, err
    ids = json.loads(out)["ids"]
    assert len(ids) == 3 and ids[0] == "a1"
    study = Study.open(study_dir)
    sample = study.samples["a1"]
    assert sample.text == "The cat sat on the mat. Then it slept all day long."
    assert "".join(sample.piece(i) for i in range(sample.n_tokens)) == sample.text
    assert sample.n_tokens == 12

    code, out, err = run(capsys, "mark", "--study", str(study_dir), "--sample", "a1", "--at", "7",
                         "--category", "repetition", "--severity", "2", "--note", "loops", "--annotator", "alice", "--json")
    assert code == 0, err
    fall = json.loads(out)
    assert fall["at"] == 7 and fall["category"] == "repetition" and fall["annotator"] == "alice"
    code, out, err = run(capsys, "mark", "--study", str(study_dir), "--sample", ids[1], "--no-fall", "--read-to", "5",
                         "--annotator", "alice")
    assert code == 0 and out.startswith("saved m_"), err
    code, out, err = run(capsys, "mark", "--study", str(study_dir), "--sample", ids[2], "--skip", "--annotator", "bob")
    assert code == 0, err

    code, out, err = run(capsys, "study", "info", str(study_dir), "--json")
    info = json.loads(out)
    alice = next(a for a in info["annotators"] if a["annotator"] == "alice")
    assert (alice["marked"], alice["fallen"], alice["censored"]) == (2, 1, 1)
    assert info["samples"] == 3 and info["marked_samples"] == 2

    code, out, err = run(capsys, "mark", "--study", str(study_dir), "--undo", "--annotator", "alice", "--json")
    assert code == 0, err
    assert json.loads(out)["kind"] == "undo"
    code, out, err = run(capsys, "study", "info", str(study_dir), "--json")
    alice = next(a for a in json.loads(out)["annotators"] if a["annotator"] == "alice")
    assert (alice["marked"], alice["fallen"], alice["censored"], alice["events"]) == (1, 1, 0, 3)

    # the table form prints too
    code, out, err = run(capsys, "study", "info", str(study_dir))
    assert code == 0 and "small" in out and "alice" in out

    # every written file validates against its schema
    for line in (study_dir / "samples.jsonl").read_bytes().splitlines():
        jsonschema.validate(orjson.loads(line), schema("sample"))
    for file in (study_dir / "marks").glob("*.jsonl"):
        for line in file.read_bytes().splitlines():
            jsonschema.validate(orjson.loads(line), schema("mark"))
    import tomllib

    jsonschema.validate(tomllib.loads((study_dir / "study.toml").read_text()), schema("study"))


def test_import_chars_tokenizer(capsys: pytest.CaptureFixture[str], study_dir: Path, import_file: Path) -> None:
    code, out, err = run(capsys, "import", "--study", str(study_dir), str(import_file), "--tokenizer", "chars")
    assert code == 0, err
    sample = Study.open(study_dir).samples["a1"]
    assert sample.n_tokens == len(sample.text)


BAD_IMPORTS = [
    ("not json", b"{nope\n", "line 1 is not valid JSON"),
    ("no text", b'{"model": "m"}\n', "'text' is required"),
    ("no model", b'{"text": "t"}\n', "'model' is required"),
    ("unknown field", b'{"text": "t", "model": "m", "txt": 1}\n', "unknown field 'txt'"),
    ("bad n_params", b'{"text": "t", "model": "m", "n_params": -3}\n', "'n_params' must be"),
    ("empty", b"\n\n", "no lines to import"),
    ("repeat", b'{"text": "t", "model": "m", "id": "x"}\n{"text": "u", "model": "m", "id": "x"}\n', "repeats line 1"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_IMPORTS, ids=[b[0] for b in BAD_IMPORTS])
def test_bad_import_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path, study_dir: Path,
                                   name: str, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    code, out, err = run(capsys, "import", "--study", str(study_dir), str(bad))
    assert code != 0
    assert message in err and err.count("\n") == 1 and err.startswith("lmread: error:")
    assert not (study_dir / "samples.jsonl").exists()


def test_duplicate_import_is_refused(capsys: pytest.CaptureFixture[str], study_dir: Path, import_file: Path) -> None:
    assert run(capsys, "import", "--study", str(study_dir), str(import_file))[0] == 0
    before = (study_dir / "samples.jsonl").read_bytes()
    code, out, err = run(capsys, "import", "--study", str(study_dir), str(import_file))
    assert code != 0 and "duplicate import" in err
    assert (study_dir / "samples.jsonl").read_bytes() == before


def test_import_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, study_dir: Path) -> None:
    code, out, err = run(capsys, "import", "--study", str(study_dir), str(tmp_path / "none.jsonl"))
    assert code != 0 and "does not exist" in err
    assert not study_dir.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--sample", "nope", "--at", "1"], "no sample 'nope'"),
    (["--sample", "a1", "--at", "99"], "outside sample"),
    (["--sample", "a1", "--at", "-1"], "token index"),
    (["--sample", "a1", "--at", "1", "--category", "weird"], "unknown category"),
    (["--sample", "a1", "--at", "1", "--annotator", "../x"], "annotator name"),
    (["--sample", "a1", "--at", "1", "--annotator", ""], "annotator name"),
    (["--sample", "a1", "--at", "1", "--annotator", "a\tb"], "annotator name"),
    (["--sample", "a1", "--no-fall"], "--read-to"),
    (["--sample", "a1", "--at", "1", "--no-fall", "--read-to", "2"], "exactly one"),
    (["--sample", "a1", "--at", "1", "--severity", "5"], "severity"),
    (["--sample", "a1", "--at", "1", "--bogus"], "No such option"),
    (["--undo", "--annotator", "nobody"], "no mark to undo"),
])
def test_bad_marks_write_nothing(capsys: pytest.CaptureFixture[str], study_dir: Path, import_file: Path,
                                 args: list[str], message: str) -> None:
    assert run(capsys, "import", "--study", str(study_dir), str(import_file))[0] == 0
    code, out, err = run(capsys, "mark", "--study", str(study_dir), *args)
    assert code != 0
    assert message in err, err
    assert err.startswith("lmread: error:") and err.count("\n") == 1
    marks = study_dir / "marks"
    assert not any(marks.glob("*.jsonl"))
    assert not (study_dir.parent / "x.jsonl").exists()


def test_missing_and_corrupt_study(capsys: pytest.CaptureFixture[str], tmp_path: Path, study_dir: Path,
                                   import_file: Path) -> None:
    code, out, err = run(capsys, "study", "info", str(tmp_path / "nowhere"))
    assert code != 0 and "does not exist" in err
    assert run(capsys, "import", "--study", str(study_dir), str(import_file))[0] == 0
    samples = study_dir / "samples.jsonl"
    samples.write_bytes(b"not json\n" + samples.read_bytes())
    code, out, err = run(capsys, "study", "info", str(study_dir))
    assert code != 0 and "samples.jsonl: line 1 is not valid JSON" in err
    samples.write_bytes(samples.read_bytes().replace(b"not json\n", b'{"schema": "lmread.sample/99"}\n'))
    code, out, err = run(capsys, "study", "info", str(study_dir))
    assert code != 0 and "upgrade lmread" in err


def test_merge_command(capsys: pytest.CaptureFixture[str], tmp_path: Path, import_file: Path) -> None:
    a, b, dest = tmp_path / "a", tmp_path / "b", tmp_path / "dest"
    for st in (a, b):
        assert run(capsys, "import", "--study", str(st), str(import_file))[0] == 0
    assert run(capsys, "mark", "--study", str(a), "--sample", "a1", "--at", "2", "--annotator", "alice")[0] == 0
    assert run(capsys, "mark", "--study", str(b), "--sample", "a1", "--at", "4", "--annotator", "bob")[0] == 0
    code, out, err = run(capsys, "merge", str(a), str(b), "--into", str(dest), "--json")
    assert code == 0, err
    assert json.loads(out) == {"samples_added": 3, "marks_added": 2, "conflicts": []}
    assert Study.open(dest).annotators() == ["alice", "bob"]
    conflicting = write_jsonl(tmp_path / "c.jsonl", [{"text": "other text", "model": "small", "id": "a1"}])
    assert run(capsys, "import", "--study", str(tmp_path / "c"), str(conflicting))[0] == 0
    code, out, err = run(capsys, "merge", str(tmp_path / "c"), "--into", str(dest))
    assert code != 0 and "conflict: sample a1" in err and "nothing was merged" in err


def test_errors_have_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    for args in (["study", "info", str(tmp_path / "missing")], ["mark", "--bogus"], ["nosuchcommand"]):
        proc = subprocess.run([sys.executable, "-m", "lmread.cli", *args], capture_output=True, text=True, check=False)
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr
        assert proc.stderr.startswith("lmread: error:") and proc.stderr.count("\n") == 1, proc.stderr


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--help")
    assert code == 0
    for name in ("read", "models", "generate", "import", "mark", "study", "merge", "survival", "bench"):
        assert f"  {name}" in out
