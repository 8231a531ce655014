"""``lmread doctor`` and the llama.cpp build probe (issue 8): a build that dies with SIGILL is
named in one line with the fix, in doctor, in ``lmread generate`` and when a backend loads."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from lmread.backends import buildcheck as probe_mod
from lmread.cli import main
from lmread.errors import ModelError
from tests.fixtures.llamacpp import bundled_model_path

#: a probe child that dies the way a bad llama.cpp build does
SIGILL_CHILD = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"]


@pytest.fixture
def probe_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh probe cache, and no memory of an earlier check in this process."""
    folder = tmp_path / "probe-cache"
    monkeypatch.setenv(probe_mod.CACHE_ENV, str(folder))
    monkeypatch.setattr(probe_mod, "_CHECKED", set())
    return folder


def test_child_killed_by_sigill_is_named_with_the_fix() -> None:
    result = probe_mod.run_child(SIGILL_CHILD, "llamacpp", "m", timeout=60)
    assert not result.ok and result.signal == "SIGILL" and result.returncode == -signal.SIGILL
    assert result.message == ("llama.cpp was built with CPU instructions this machine cannot run (SIGILL); "
                              "rebuild it with `make rebuild-llama`")
    assert "\n" not in result.message


def test_child_other_failures_are_one_line() -> None:
    segv = probe_mod.run_child([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"],
                               "llamacpp", "m", timeout=60)
    assert segv.signal == "SIGSEGV" and "crashed with SIGSEGV" in segv.message and "rebuild-llama" in segv.message
    silent = probe_mod.run_child([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"],
                                 "hf", "m", timeout=60)
    assert not silent.ok and silent.signal is None and "exited 3" in silent.message and "boom" in silent.message
    slow = probe_mod.run_child([sys.executable, "-c", "import time; time.sleep(30)"], "hf", "m", timeout=1)
    assert not slow.ok and "did not finish within 1 s" in slow.message


def test_guard_probes_once_caches_the_verdict_and_refuses_the_load(
    probe_cache: Path, llama_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmread.backends.llamacpp import LlamaCppBackend

    calls: list[list[str]] = []

    def fake_argv(*args: Any, **kwargs: Any) -> list[str]:
        calls.append(list(args))
        return SIGILL_CHILD

    monkeypatch.setattr(probe_mod, "child_argv", fake_argv)
    path = bundled_model_path("smollm2-135m", llama_home)
    with pytest.raises(ModelError) as info:
        LlamaCppBackend(path, n_threads=1)
    assert "SIGILL" in str(info.value) and "make rebuild-llama" in str(info.value)
    assert len(calls) == 1
    cached = json.loads(next(probe_cache.glob("llama-probe-*.json")).read_text())
    assert cached["signal"] == "SIGILL" and cached["ok"] is False
    with pytest.raises(ModelError):  # the second load reads the cache: no new child
        LlamaCppBackend(path, n_threads=1)
    assert len(calls) == 1


def test_guard_passes_a_good_build_and_remembers_it(probe_cache: Path, llama_home: Path) -> None:
    path = bundled_model_path("smollm2-135m", llama_home)
    probe_mod.ensure_llama_build(path)  # a real child on the real build
    cached = json.loads(next(probe_cache.glob("llama-probe-*.json")).read_text())
    assert cached["ok"] is True and cached["signal"] is None
    assert probe_mod.llama_build_key() in probe_mod._CHECKED


def test_generate_with_a_crashing_build_is_one_line_and_writes_nothing(
    probe_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], llama_home: Path
) -> None:
    bundled_model_path("smollm2-135m", llama_home)
    probe_cache.mkdir(parents=True)
    (probe_cache / f"llama-probe-{probe_mod.llama_build_key()}.json").write_text(
        json.dumps({"ok": False, "signal": "SIGILL", "message": probe_mod.crash_message("llamacpp", signal.SIGILL)}))
    study = tmp_path / "study"
    code = main(["generate", "--study", str(study), "--model", "smollm2-135m", "--prompt",
                 "The lighthouse at the end of the harbour was built in", "--samples", "1", "--max-tokens", "4"])
    err = capsys.readouterr().err
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lmread: error: llama.cpp was built with CPU instructions")
    assert "Traceback" not in err
    samples = study / "samples.jsonl"
    assert not samples.exists() or samples.read_bytes() == b""


def test_doctor_reports_every_llamacpp_model_ok(probe_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--backend", "llamacpp", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    checks = [c for c in report["checks"] if c["backend"] == "llamacpp"]
    assert {c["model"] for c in checks} == {"smollm2-135m", "gemma3-270m"}
    for c in checks:
        assert c["ok"] is True and c["status"] == "ok" and c["default"] is True
        assert c["steps"]["tokens"] >= 1 and c["steps"]["scored_tokens"] >= 3
    assert report["ok"] is True
    assert json.loads(next(probe_cache.glob("llama-probe-*.json")).read_text())["ok"] is True


def test_doctor_names_a_crashing_build_and_exits_nonzero(
    probe_cache: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(probe_mod, "child_argv", lambda *a, **k: SIGILL_CHILD)
    code = main(["doctor", "--backend", "llamacpp", "--model", "smollm2-135m"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "FAILED: llama.cpp was built with CPU instructions this machine cannot run (SIGILL)" in out
    assert err.strip().splitlines()[-1].startswith("lmread: error: llamacpp on smollm2-135m: llama.cpp was built")


def test_doctor_bad_options_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--model", "no-such-model"]) == 2
    assert "no bundled model no-such-model" in capsys.readouterr().err
    assert main(["doctor", "--backend", "nope"]) == 2
    assert "unknown backend nope" in capsys.readouterr().err
