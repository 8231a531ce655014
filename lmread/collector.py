"""Bulk work with Python's cycle collector paused.

Loading a study and analysing it build hundreds of thousands of long-lived containers (samples,
marks, their token lists) and no reference cycles.  While they are being built, the cycle
collector keeps starting passes over everything alive that find nothing: on a 27,614-mark study
they were about a sixth of ``lmread survival``'s time, and one more pass over the whole study
followed when the collector came back on.

So :func:`call_paused` calls a function with the collector off.  Reference counting still frees
every object as soon as its last reference goes; only a reference cycle made meanwhile waits for
the collector's next pass.  The bulk data are the function's own (it opens and analyses the
study), so they are freed when it returns, and the collector, back on, has only the results to
look at, not the whole study.  Nothing is frozen, so a long-lived process (the reader's survival
view) collects its own cycles as before.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def call_paused(work: Callable[[], T]) -> T:
    """``work()`` with the cycle collector off, then the collector as it was (nesting is fine)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return work()
    finally:
        if was_enabled:
            gc.enable()
