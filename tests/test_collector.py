"""``call_paused``: the cycle collector is off inside, back as it was after (also after an
error and when nested); an analysis frees its study by reference counting before it is back."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from lmread.collector import call_paused


def test_the_collector_is_off_inside_and_restored_after() -> None:
    assert gc.isenabled()

    def inner() -> None:
        assert not gc.isenabled()

    def outer() -> str:
        assert not gc.isenabled()
        call_paused(inner)
        assert not gc.isenabled()  # the inner pause found it off and leaves it off
        return "done"

    assert call_paused(outer) == "done"
    assert gc.isenabled()

    def boom() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        call_paused(boom)
    assert gc.isenabled()
    gc.disable()
    try:
        call_paused(lambda: None)
        assert not gc.isenabled()  # off before, off after
    finally:
        gc.enable()


def test_an_analysis_frees_its_study_before_the_collector_is_back(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The survival analysis opens its study inside the pause and the study is freed by reference
    counting alone when the analysis returns (no cycle keeps it, and nothing is frozen)."""
    import weakref

    from lmread.analysis import report
    from lmread.importer.roft import import_roft
    from lmread.importer.synthetic import synth_rows, write_roft
    from lmread.study import Study

    import_roft(tmp_path / "study", write_roft(tmp_path / "roft.csv", synth_rows(300, 10, seed=1)))
    opened: list[weakref.ref[Study]] = []
    real_open = Study.open

    def open_and_watch(*args: object, **kwargs: object) -> Study:
        study = real_open(*args, **kwargs)  # type: ignore[arg-type]
        opened.append(weakref.ref(study))
        return study

    import lmread.collector as collector

    dead_at_enable: list[bool] = []

    class WatchedGc:
        """``gc`` as the collector module sees it: records whether the study is gone when the
        collector is turned back on."""

        def __getattr__(self, name: str) -> object:
            return getattr(gc, name)

        def enable(self) -> None:
            dead_at_enable.append(bool(opened) and opened[0]() is None)
            gc.enable()

    monkeypatch.setattr(report.Study, "open", open_and_watch)
    monkeypatch.setattr(collector, "gc", WatchedGc())
    frozen = gc.get_freeze_count()
    doc, obs = report.compute(tmp_path / "study", unit="sentences", n_boot=20)
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    assert dead_at_enable == [True]  # freed by reference counting inside the pause: no cycle holds it
    assert doc["agreement"]["overall"]["samples"] > 0 and len(obs) > 0
