"""The reading horizon and what each reading answers: fell within the horizon or not (or
unknown), and whether two readings' positions compare."""

from __future__ import annotations

from collections.abc import Iterable

from lmread.analysis.readings import Reading
from lmread.records import Sample


def reading_horizon(samples: Iterable[Sample]) -> tuple[int, str]:
    """The study's reading horizon in tokens and where it came from: the largest ``max_tokens``
    among ``samples`` (``"max_tokens"``), else the longest sample (``"longest sample"``; 0 for no
    samples)."""
    asked = [s.settings.get("max_tokens") for s in samples]
    limits = [int(v) for v in asked if isinstance(v, int) and not isinstance(v, bool) and v > 0]
    if limits:
        return max(limits), "max_tokens"
    lengths = [s.n_tokens for s in samples]
    return (max(lengths) if lengths else 0), "longest sample"


def answer(reading: Reading, horizon: int) -> bool | None:
    """Did the text fall within the first ``horizon`` tokens, by this reading?  True (a fall
    before the horizon), False (read up to ``min(horizon, n_tokens)`` without a fall, or a fall
    beyond it) or None (stopped before that without a fall: unknown)."""
    if reading.at is not None:
        return reading.at < horizon
    return False if reading.read_to >= min(horizon, reading.sample.n_tokens) else None


def comparable(a: Reading, b: Reading) -> bool:
    """Whether two readings of one sample can be compared as positions (machine vs human): not
    when one reader's fall lies at or beyond the other's no-fall extent."""
    if a.at is not None and b.at is None:
        return a.at < b.read_to
    if b.at is not None and a.at is None:
        return b.at < a.read_to
    return True
