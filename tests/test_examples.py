"""The bundled example files load and validate against their schemas."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import orjson

from lmread.study import Study

ROOT = Path(__file__).resolve().parent.parent / "annotations"


def _schema(name: str) -> dict:
    return json.loads((ROOT / "schema" / f"{name}.schema.json").read_text())


def test_example_study_loads_and_validates() -> None:
    folder = ROOT / "examples" / "example-study"
    study = Study.open(folder)
    assert len(study.samples) == 6 and study.annotators() == ["alice", "bob"]
    assert study.warnings == []
    jsonschema.validate(tomllib.loads((folder / "study.toml").read_text()), _schema("study"))
    for line in (folder / "samples.jsonl").read_bytes().splitlines():
        jsonschema.validate(orjson.loads(line), _schema("sample"))
    for file in (folder / "marks").glob("*.jsonl"):
        for line in file.read_bytes().splitlines():
            jsonschema.validate(orjson.loads(line), _schema("mark"))


def test_example_survival_json_validates() -> None:
    data = json.loads((ROOT / "examples" / "example-study-survival.json").read_text())
    jsonschema.validate(data, _schema("survival"))
    assert data["unit"] == "words"
    jsonschema.validate(data["calibration"], _schema("calibration"))
    jsonschema.validate(data["agreement"], _schema("agreement"))
    assert data["agreement"]["pairs"][0]["table"]["both_fell"] == 1
