"""Machine readers on real text: both bundled models (llama.cpp session fixtures) generate a few
short samples into a study, every detector reads them, and ``lmread survival`` gives a machine
curve per model, with the fall-token logprobs of real distributions in the severity block."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lmread.cli import main

pytest.importorskip("llama_cpp")


class KeepOpen:
    """The session's backend for one run: everything delegated, except that the run's close()
    must not free a model the other tests share."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def close(self) -> None:
        pass


def test_bundled_models_annotate_then_survival(llama_home: Path, llama_smollm2: Any, llama_gemma: Any,
                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from lmread.backends.base import GenOptions
    from lmread.catalog import load_catalog
    from lmread.config import load_settings
    from lmread.generate import GenerationPlan, ModelJob, run_generation

    monkeypatch.setenv("LMREAD_HOME", str(llama_home))
    catalog = load_catalog(load_settings())
    backends = {"smollm2-135m": llama_smollm2, "gemma3-270m": llama_gemma}
    plan = GenerationPlan(models=[ModelJob(catalog.get(m)) for m in backends],
                          prompts=[{"text": "Here is my grandmother's bread recipe:", "set": "howto"}],
                          samples=2, options=GenOptions(max_tokens=40), base_seed=3)
    study = tmp_path / "study"
    result = run_generation(study, plan, opener=lambda card, backend, **o: KeepOpen(backends[card.id]))
    assert not result.errors
    assert main(["annotate", "--study", str(study), "--detector", "repetition,special-token,improbable-run",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 4
    for det in report["detectors"]:
        assert det["added"] == 4 and det["skips"] == 0  # real samples carry distributions
    for name in ("auto-repetition", "auto-special-token", "auto-improbable-run"):
        assert main(["survival", "--study", str(study), "--annotator", name, "--json", "-", "--bootstrap", "0"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert sorted(g["label"] for g in doc["groups"]) == ["gemma3-270m", "smollm2-135m"]
        assert all(g["n"] == 2 for g in doc["groups"])
        for sev in doc["severity"]["groups"]:
            if sev["falls"]:
                assert sev["model"]["n"] == sev["falls"] and sev["model"]["logprob_fall_median"] <= 0
    assert main(["annotate", "--study", str(study), "--detector", "repetition,special-token,improbable-run",
                 "--json"]) == 0
    assert all(d["added"] == 0 for d in json.loads(capsys.readouterr().out)["detectors"])
