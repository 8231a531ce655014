"""Survival estimates stay probabilities (cumulative incidence and survival within [0, 1]), and
curation says "infinite" where no sample held (defects found in use; each test failed on the code before
its fix)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from lmread.analysis import survival as sv
from lmread.cli import main

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "annotations" / "schema" / "survival.schema.json").read_text())


def _import(study: Path, tmp: Path, rows: list[dict[str, Any]]) -> None:
    src = tmp / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert main(["import", "--study", str(study), str(src)]) == 0


def _walk_probs(doc: Any, path: str = "") -> list[tuple[str, float]]:
    """Every number under a key that names a probability (survival, cif, ci bounds of S)."""
    out: list[tuple[str, float]] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and (
                key in {"survival", "cif", "cif_final", "cif_at_horizon", "s", "ci_low_s", "ci_high_s"}
            ):
                out.append((f"{path}.{key}", float(value)))
            else:
                out += _walk_probs(value, f"{path}.{key}")
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _walk_probs(value, f"{path}[{i}]")
    return out


def test_cif_never_exceeds_one_when_every_fall_has_no_category(tmp_path: Path, capsys: Any) -> None:
    study = tmp_path / "s"
    text = " ".join(f"w{j}" for j in range(60))
    rng = np.random.default_rng(3)
    _import(study, tmp_path, [{"text": text, "model": "m", "n_params": 10, "id": f"m-{i}"} for i in range(49)])
    for i in range(49):  # every sample falls, no category: the single cause's CIF must end at 1 exactly
        assert main(["mark", "--study", str(study), "--sample", f"m-{i}", "--annotator", "a",
                     "--at", str(int(rng.integers(1, 59)))]) == 0
    capsys.readouterr()
    assert main(["survival", "--study", str(study), "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, SCHEMA)
    probs = _walk_probs(doc)
    assert probs, "no probabilities found in the survival document"
    bad = [(p, v) for p, v in probs if not 0.0 <= v <= 1.0]
    assert not bad, bad[:5]


def test_aalen_johansen_stays_in_unit_interval_on_random_data() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(1, 80))
        d = rng.integers(0, 30, n).astype(float)
        causes = rng.choice(["a", "b", 0], n, p=[0.5, 0.4, 0.1]) if rng.random() < 0.5 else np.array(["a"] * n)
        aj = sv.aalen_johansen(d, causes.astype(object))
        assert aj.cif.max(initial=0.0) <= 1.0 and aj.cif.min(initial=0.0) >= 0.0
        assert aj.survival.max(initial=0.0) <= 1.0


def test_curation_says_infinite_when_no_sample_held(tmp_path: Path, capsys: Any) -> None:
    study = tmp_path / "s"
    text = " ".join(f"w{j}" for j in range(300))
    rows = [{"text": text, "model": "m", "id": f"m-{i}"} for i in range(3)]
    _import(study, tmp_path, [*rows, {"text": text, "model": "long", "id": "long-0"}])
    for i in range(3):
        assert main(["mark", "--study", str(study), "--sample", f"m-{i}", "--at", str(5 + i), "--annotator", "a"]) == 0
    # another group read far without a fall, so the curation lengths reach past m's falls
    assert main(["mark", "--study", str(study), "--sample", "long-0", "--no-fall", "--read-to", "300",
                 "--annotator", "a"]) == 0
    capsys.readouterr()
    assert main(["survival", "--study", str(study), "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, SCHEMA)
    (group,) = [g for g in doc["groups"] if g["label"] == "m"]
    cur = group["curation"]
    held_none = [c for c in cur if c["length"] > 7]
    assert held_none and all(c["infinite"] and c["ratio"] is None for c in held_none)
    assert held_none[0]["note"] == f"none of the 3 samples held past {held_none[0]['length']:g}"
    assert main(["survival", "--study", str(study)]) == 0
    table = capsys.readouterr().out
    section = table.split("curation ratio")[1]
    rows = [line for line in section.splitlines() if line.strip().startswith("m ")]
    assert rows and "inf" in rows[0] and "none" not in rows[0]
    assert "none of the group's samples held past L" in section
