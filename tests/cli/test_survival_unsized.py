"""``lmread survival`` says which groups have no model size (n_params), in JSON and in the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_survival import TEXT, run, write_import


def test_groups_without_a_size_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "s"
    rows = [{"text": TEXT, "model": "sized", "n_params": 1000, "id": f"a{i}"} for i in range(3)]
    rows += [{"text": TEXT, "model": "served-7b", "id": f"b{i}"} for i in range(3)]
    assert run("import", "--study", study, write_import(tmp_path / "in.jsonl", rows)) == 0
    for i, sid in enumerate(["a0", "a1", "a2", "b0", "b1", "b2"]):
        assert run("mark", "--study", study, "--sample", sid, "--annotator", "ann", "--at", str(5 + i)) == 0
    capsys.readouterr()
    assert run("survival", "--study", study, "--json", "-", "--bootstrap", "50") == 0
    doc = json.loads(capsys.readouterr().out)
    notes = [w for w in doc["warnings"] if w.startswith("no model size (n_params) for ")]
    assert len(notes) == 1 and "served-7b" in notes[0] and "sized" not in notes[0].split(":")[0]
    assert "--n-params" in notes[0]
    assert run("survival", "--study", study) == 0
    assert "warning: no model size (n_params) for served-7b" in capsys.readouterr().out
    # every group sized: no such warning
    sized = tmp_path / "t"
    assert run("import", "--study", sized, write_import(tmp_path / "in2.jsonl", rows[:3])) == 0
    assert run("mark", "--study", sized, "--sample", "a0", "--annotator", "ann", "--at", "3") == 0
    capsys.readouterr()
    assert run("survival", "--study", sized, "--json", "-", "--bootstrap", "50") == 0
    assert not any(w.startswith("no model size") for w in json.loads(capsys.readouterr().out)["warnings"])
