"""``collector_paused``: the cycle collector is off inside, back as it was after (also after an
error and when nested), and what lived through the body is frozen, not lost."""

from __future__ import annotations

import gc

import pytest

from lmread.collector import collector_paused


def test_the_collector_is_off_inside_and_restored_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause found it off and leaves it off
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # off before, off after
    finally:
        gc.enable()


def test_survivors_are_frozen_and_still_freed_by_reference_counting() -> None:
    import weakref

    class Record:
        pass

    before = gc.get_freeze_count()
    with collector_paused():
        kept = [Record() for _ in range(1000)]
        probe = weakref.ref(kept[0])
    assert gc.get_freeze_count() >= before + 1000
    del kept
    assert probe() is None  # freed at once: a frozen object is never kept alive by the freeze
