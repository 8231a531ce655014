"""The reading horizon and what each reading answers: fell within the horizon or not (or
unknown), and whether two readings' positions compare."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

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


def answers(at: np.ndarray, read_to: np.ndarray, n_tokens: np.ndarray, horizon: int) -> np.ndarray:
    """Did the text fall within the first ``horizon`` tokens, by each reading (``at``: its fall
    token, -1 for none; ``read_to``: tokens read; ``n_tokens``: its sample's length)?  1 (a fall
    before the horizon), 0 (read up to ``min(horizon, n_tokens)`` without a fall, or a fall beyond
    it) or -1 (stopped before that without a fall: unknown)."""
    fell = at >= 0
    read_enough = read_to >= np.minimum(horizon, n_tokens)
    return np.where(fell, at < horizon, np.where(read_enough, 0, -1)).astype(np.int8)


def positions_compare(at_a: np.ndarray, at_b: np.ndarray, read_to_a: np.ndarray, read_to_b: np.ndarray) -> np.ndarray:
    """Whether two readings of one sample can be compared as positions (machine vs human), per
    pair (``at``: fall tokens, -1 for none): not when one reader's fall lies at or beyond the
    other's no-fall extent."""
    compared: np.ndarray = np.where((at_a >= 0) & (at_b < 0), at_a < read_to_b,
                                    np.where((at_b >= 0) & (at_a < 0), at_b < read_to_a, True))
    return compared


def _columns(*readings: Reading) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([-1 if r.at is None else r.at for r in readings], dtype=np.int64),
            np.array([r.read_to for r in readings], dtype=np.int64))


def answer(reading: Reading, horizon: int) -> bool | None:
    """:func:`answers` of one reading: True, False or None (unknown)."""
    at, read_to = _columns(reading)
    value = int(answers(at, read_to, np.array([reading.sample.n_tokens]), horizon)[0])
    return None if value < 0 else bool(value)


def comparable(a: Reading, b: Reading) -> bool:
    """:func:`positions_compare` of two readings of one sample."""
    at, read_to = _columns(a, b)
    return bool(positions_compare(at[:1], at[1:], read_to[:1], read_to[1:])[0])
