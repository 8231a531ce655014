"""Snapshots of the reader's screens (pytest-textual-snapshot): home, reading blind, after a
mark, help.  Deterministic: fixed study contents and seed, a frozen clock, a fixed size.

Regenerate after a deliberate change with ``pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the new SVGs before committing them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lmread.backends.base import GenOptions
from lmread.backends.scripted import ScriptedBackend
from lmread.generate import generate_sample
from lmread.study import Study

pytest.importorskip("textual")
pytest.importorskip("pytest_textual_snapshot")

from lmread.tui import app as app_module
from lmread.tui.screens import home

SIZE = (100, 30)
TEXT = ("The harbour was quiet that morning. Gulls circled above the boats, and a man in a red coat "
        "walked along the pier counting ropes. He stopped at the last mooring, looked at the water, "
        "and said the tide would turn before noon. Nobody answered him. ") * 2


def _sample(model_id: str, n_params: int, seed: int):
    backend = ScriptedBackend(text=TEXT, model_id=model_id, n_params=n_params)
    sample = generate_sample(backend, {"text": "Describe a harbour in the morning.", "set": "test", "name": "test-01"},
                             GenOptions(max_tokens=200, seed=seed))
    sample.created = "2025-01-01T00:00:00Z"
    return sample


@pytest.fixture
def snap_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(home, "display_path", lambda path: f"/studies/{path.name}")
    study = Study.create(tmp_path / "harbour", shuffle_seed=11)
    study.add_samples([_sample("tiny-model", 1_000_000, 1), _sample("small-model", 9_000_000, 2)])
    return app_module.LmreadApp(study.path, clock=lambda: 100.0, annotator="tester")


def test_snapshot_home(snap_app, snap_compare) -> None:
    assert snap_compare(snap_app, press=["escape"], terminal_size=SIZE)


def test_snapshot_reader_blind(snap_app, snap_compare) -> None:
    assert snap_compare(snap_app, press=["space", "space", "left", "left"], terminal_size=SIZE)


def test_snapshot_reader_after_mark(snap_app, snap_compare) -> None:
    assert snap_compare(snap_app, press=["space", "space", "left", "left", "f", "1", "2", "enter"],
                        terminal_size=SIZE)


def test_snapshot_help(snap_app, snap_compare) -> None:
    assert snap_compare(snap_app, press=["question_mark"], terminal_size=SIZE)
