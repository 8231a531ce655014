"""``lmread merge --dry-run`` counts what the merge would add, and adds nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmread.cli import main


def _import(study: Path, tmp: Path, rows: list[dict[str, Any]]) -> None:
    src = tmp / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert main(["import", "--study", str(study), str(src)]) == 0


def test_merge_dry_run_counts_what_the_merge_adds(tmp_path: Path, capsys: Any) -> None:
    src = tmp_path / "src"
    _import(src, tmp_path, [{"text": "one two three", "model": "m", "id": "a"},
                            {"text": "four five six", "model": "m", "id": "b"}])
    assert main(["mark", "--study", str(src), "--sample", "a", "--at", "1", "--annotator", "ann"]) == 0
    dest = tmp_path / "dest"
    capsys.readouterr()
    assert main(["merge", str(src), "--into", str(dest), "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert (dry["samples_added"], dry["marks_added"]) == (2, 1)
    assert not (dest / "samples.jsonl").exists()
    assert main(["merge", str(src), "--into", str(dest), "--json"]) == 0
    real = json.loads(capsys.readouterr().out)
    assert (real["samples_added"], real["marks_added"]) == (2, 1)
    assert main(["merge", str(src), "--into", str(dest), "--dry-run"]) == 0
    assert "0 samples, 0 mark events (dry run)" in capsys.readouterr().out
