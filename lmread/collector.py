"""Bulk work with Python's cycle collector paused.

Loading a study and analysing it build hundreds of thousands of long-lived containers (samples,
marks, their token lists) and no reference cycles.  While they are being built, the cycle
collector keeps starting passes over everything alive that find nothing: on a 27,614-mark study
they were about a sixth of ``lmread survival``'s time, and one more pass over the whole study
followed when the collector came back on.

So the body runs with the collector off, and what is alive at its end is moved to the
collector's permanent generation (:func:`gc.freeze`) before it is turned back on: later passes
skip those objects.  Nothing is kept longer for it: reference counting frees every object, frozen
or not, as soon as the last reference goes (a study opened by an analysis is freed when the
analysis returns).  Only a reference cycle among the frozen objects would never be collected;
lmread's records and analyses make none.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the body with the cycle collector off, freeze what is alive at its end, and restore
    the collector as it was (nesting is fine)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
