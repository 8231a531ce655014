"""The readings agreement compares, as columns: one row per reading of a sample two or more
annotators read, and one row per pair of readings of the same sample.

Every agreement statistic is a sum over these rows (per sample, per pair of readers), so the
documents are built from whole-column arithmetic instead of one Python object per (pair,
sample).  Rows are sorted by sample id, then annotator name (readings of one annotator in the
order given); pairs are the combinations ``i < j`` of a sample's rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmread.analysis.agreement.answers import answers
from lmread.analysis.agreement.fall_labels import SEVERITY_LEVELS
from lmread.analysis.readings import Reading, WordCounter
from lmread.records import CATEGORY_KEYS

_CATEGORY_CODE = {key: k for k, key in enumerate(CATEGORY_KEYS)}


@dataclass
class ReadingTable:
    """The readings of the samples two or more readings cover (see the module notes).

    ``answer`` is the fell-or-not answer at the horizon (1 yes, 0 no, -1 unknown: see
    :func:`~lmread.analysis.agreement.answers.answers`); ``at`` the fall token (-1: no fall);
    ``words`` the words (or sentences) before the fall (0: no fall); ``category`` the index of the
    fall's category in :data:`~lmread.records.CATEGORY_KEYS` (-1: none or unknown); ``severity``
    1-3 (0: none); ``first`` whether the row is its annotator's first reading of the sample (the
    one a pair of readers compares)."""

    readings: list[Reading]
    samples: list[str]
    annotators: list[str]
    sample: np.ndarray
    annotator: np.ndarray
    answer: np.ndarray
    at: np.ndarray
    read_to: np.ndarray
    words: np.ndarray
    category: np.ndarray
    severity: np.ndarray
    first: np.ndarray

    def __len__(self) -> int:
        return len(self.readings)

    @classmethod
    def of(cls, readings: list[Reading], horizon: int, words: WordCounter) -> ReadingTable:
        """The table of ``readings`` (those of samples read once are left out) with answers at
        ``horizon`` tokens and fall positions counted by ``words``."""
        counts: dict[str, int] = {}
        for r in readings:
            counts[r.sample.id] = counts.get(r.sample.id, 0) + 1
        kept = [r for r in readings if counts[r.sample.id] >= 2]
        samples = sorted({r.sample.id for r in kept})
        annotators = sorted({r.annotator for r in kept})
        sample_index = {sid: k for k, sid in enumerate(samples)}
        annotator_index = {name: k for k, name in enumerate(annotators)}
        n = len(kept)
        sample = np.fromiter((sample_index[r.sample.id] for r in kept), dtype=np.int64, count=n)
        annotator = np.fromiter((annotator_index[r.annotator] for r in kept), dtype=np.int64, count=n)
        order = np.lexsort((np.arange(n), annotator, sample))
        rows = [kept[i] for i in order]
        sample, annotator = sample[order], annotator[order]
        at = np.fromiter((-1 if r.at is None else r.at for r in rows), dtype=np.int64, count=n)
        read_to = np.fromiter((r.read_to for r in rows), dtype=np.int64, count=n)
        length = np.fromiter((r.sample.n_tokens for r in rows), dtype=np.int64, count=n)
        answer = answers(at, read_to, length, horizon)
        position = np.fromiter((words.before(r.sample, r.at) if r.at is not None else 0 for r in rows),
                               dtype=np.int64, count=n)
        category = np.fromiter((_CATEGORY_CODE.get(r.mark.category, -1) if r.mark.category is not None else -1
                                for r in rows), dtype=np.int64, count=n)
        severity = np.fromiter((r.mark.severity if r.mark.severity in SEVERITY_LEVELS else 0 for r in rows),
                               dtype=np.int64, count=n)
        first = np.ones(n, dtype=bool)
        first[1:] = (sample[1:] != sample[:-1]) | (annotator[1:] != annotator[:-1])
        return cls(rows, samples, annotators, sample, annotator, answer, at, read_to, position, category,
                   severity, first)


@dataclass
class PairRows:
    """Pairs of readings of one sample: row indices ``a`` and ``b`` into a :class:`ReadingTable`
    (``a`` sorts first), and the sample's index."""

    a: np.ndarray
    b: np.ndarray
    sample: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    def select(self, keep: np.ndarray) -> PairRows:
        """The pairs where ``keep`` (a boolean or index array) holds, in that order."""
        return PairRows(self.a[keep], self.b[keep], self.sample[keep])


def pairs_within_samples(table: ReadingTable) -> PairRows:
    """Every pair ``i < j`` of rows of one sample, ordered by sample, then ``i``, then ``j`` (the
    order of ``itertools.combinations`` over each sample's rows)."""
    n = len(table)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return PairRows(empty, empty, empty)
    starts = np.flatnonzero(np.r_[True, table.sample[1:] != table.sample[:-1]])
    sizes = np.diff(np.r_[starts, n])
    a_parts, b_parts = [], []
    for size in np.unique(sizes):
        if size < 2:
            continue
        base = starts[sizes == size]
        i, j = np.triu_indices(int(size), 1)
        a_parts.append((base[:, None] + i[None, :]).ravel())
        b_parts.append((base[:, None] + j[None, :]).ravel())
    if not a_parts:
        empty = np.zeros(0, dtype=np.int64)
        return PairRows(empty, empty, empty)
    a, b = np.concatenate(a_parts), np.concatenate(b_parts)
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    return PairRows(a, b, table.sample[a])


def falls_within(table: ReadingTable, pairs: PairRows, tolerance: int) -> np.ndarray:
    """Whether both readings of each pair fell within ``tolerance`` tokens of each other (the
    same fall, seen by both)."""
    at_a, at_b = table.at[pairs.a], table.at[pairs.b]
    within: np.ndarray = (at_a >= 0) & (at_b >= 0) & (np.abs(at_a - at_b) <= tolerance)
    return within
