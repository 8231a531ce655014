"""The blocks of the pairs of readers (fell-or-not kappa, positions, what fell, machine vs human),
all pairs' bootstraps evaluated together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lmread.analysis.agreement.answers import positions_compare
from lmread.analysis.agreement.fall_labels import (
    WHAT_FELL_CELLS,
    WHAT_FELL_PREFIX,
    WHAT_FELL_STATISTICS,
    FallCodes,
    what_fell_documents,
    what_fell_evaluator,
)
from lmread.analysis.agreement.kernels import alpha_from_sums, kappa_from_counts, ratio_from_sums
from lmread.analysis.agreement.resample import bootstrap_blocks, rng_for
from lmread.analysis.agreement.table import PairRows, ReadingTable, falls_within
from lmread.analysis.readings import is_machine

#: the statistics of a pair besides what fell (those carry :data:`WHAT_FELL_PREFIX` in the bootstrap)
_PAIR_STATISTICS = ("kappa", "alpha", "tokens", "words")
_SUMS = ("both", "a_only", "b_only", "neither", "fell2", "d_tok", "d_word", "s1", "s2", "within")


@dataclass
class _Blocks:
    """The pairs of readers and their samples: block ``p`` is the pair ``(a[p], b[p])`` (annotator
    indexes), its samples are rows ``start[p]:start[p + 1]`` of ``rows``; ``units[p]`` counts its
    answered samples, whose columns of :data:`_SUMS` are ``columns[p, :units[p]]``."""

    a: np.ndarray
    b: np.ndarray
    start: np.ndarray
    rows: PairRows
    block: np.ndarray
    answered: np.ndarray
    unit: np.ndarray
    units: np.ndarray
    columns: np.ndarray


def _blocks(table: ReadingTable, rows: PairRows) -> _Blocks:
    """The blocks of ``rows`` (pairs of first readings, ordered by pair of readers, then sample)."""
    ann_a, ann_b = table.annotator[rows.a], table.annotator[rows.b]
    n = len(rows)
    new = np.ones(n, dtype=bool)
    new[1:] = (ann_a[1:] != ann_a[:-1]) | (ann_b[1:] != ann_b[:-1])
    start = np.r_[np.flatnonzero(new), n]
    block = np.cumsum(new) - 1
    p_all = len(start) - 1
    ans_a, ans_b = table.answer[rows.a], table.answer[rows.b]
    answered = (ans_a >= 0) & (ans_b >= 0)
    units = np.bincount(block[answered], minlength=p_all)
    # each answered sample's place among its block's answered samples
    before = np.cumsum(answered) - answered
    unit = before - before[start[:-1]][block]
    width = int(units.max()) if p_all else 0
    columns = np.zeros((p_all, width, len(_SUMS)))
    if answered.any():
        sel = np.flatnonzero(answered)
        a_y, b_y = ans_a[sel] == 1, ans_b[sel] == 1
        at_a, at_b = table.at[rows.a[sel]], table.at[rows.b[sel]]
        fell2 = (at_a >= 0) & (at_b >= 0)  # a fall answers at any horizon: both falls are answered
        pos = np.column_stack([at_a, at_b, table.words[rows.a[sel]], table.words[rows.b[sel]]]).astype(float)
        pos[~fell2] = 0.0
        a_at, b_at, a_w, b_w = pos.T
        fell2_f = fell2.astype(float)
        s1, s2 = a_at + b_at, a_at**2 + b_at**2
        columns[block[sel], unit[sel]] = np.column_stack([
            a_y & b_y, a_y & ~b_y, ~a_y & b_y, ~a_y & ~b_y, fell2_f,
            np.abs(a_at - b_at) * fell2_f, np.abs(a_w - b_w) * fell2_f,
            s1 * fell2_f, s2 * fell2_f, np.where(fell2, 2.0 * (2.0 * s2 - s1 * s1) / (2.0 - 1.0), 0.0)])
    first = start[:-1]
    return _Blocks(ann_a[first], ann_b[first], start, rows, block, answered, unit, units, columns)


def _evaluate(columns: np.ndarray) -> Any:
    """The pairs' statistics on weights of shape (P, B, U): every sum is one batched product with
    the pairs' columns (sums of whole numbers, so exactly those of one pair at a time)."""

    def evaluate(w: np.ndarray, lo: int, hi: int) -> dict[str, np.ndarray]:
        sums = dict(zip(_SUMS, np.moveaxis(w @ columns[lo:hi, : w.shape[2]], 2, 0), strict=True))
        n = 2.0 * sums["fell2"]
        return {"kappa": kappa_from_counts(sums["both"], sums["a_only"], sums["b_only"], sums["neither"]),
                "alpha": alpha_from_sums(n, sums["s1"], sums["s2"], sums["within"]),
                "tokens": ratio_from_sums(sums["d_tok"], sums["fell2"]),
                "words": ratio_from_sums(sums["d_word"], sums["fell2"])}

    return evaluate


def pair_blocks(table: ReadingTable, rows: PairRows, n_boot: int, seed: int,
                tolerance: int) -> list[dict[str, Any]]:
    """The blocks of the pairs of readers over ``rows``: pairs of the readers' first readings of
    a sample (see :class:`~lmread.analysis.agreement.table.ReadingTable`), ordered by the pair of
    readers, then by sample.  The bootstraps of all pairs are evaluated together; each pair's draws
    come from its own generator, so each block is what it would be alone."""
    blocks = _blocks(table, rows)
    names = [(table.annotators[a], table.annotators[b]) for a, b in zip(blocks.a, blocks.b, strict=True)]
    within = blocks.answered & falls_within(table, rows, tolerance)
    ra, rb = rows.a[within], rows.b[within]
    falls = FallCodes(blocks.block[within], blocks.unit[within], table.category[ra], table.category[rb],
                      table.severity[ra], table.severity[rb])
    positions, labels = _evaluate(blocks.columns), what_fell_evaluator(falls)

    def evaluate(w: np.ndarray, lo: int, hi: int) -> dict[str, np.ndarray]:
        return {**positions(w, lo, hi), **{WHAT_FELL_PREFIX + k: v for k, v in labels(w, lo, hi).items()}}

    # every statistic of a pair on the same replicates of its answered samples
    est = bootstrap_blocks(evaluate, [*_PAIR_STATISTICS, *(WHAT_FELL_PREFIX + k for k in WHAT_FELL_STATISTICS)],
                           blocks.units,
                           n_boot, [rng_for(seed, f"{a}\0{b}") for a, b in names], cells=WHAT_FELL_CELLS)
    fell = what_fell_documents(falls, est, WHAT_FELL_PREFIX)
    sums = blocks.columns[:, :, :5].sum(axis=1).astype(np.int64)  # whole numbers: exact
    unknown_a = np.bincount(blocks.block, weights=table.answer[rows.a] < 0, minlength=len(names))
    unknown_b = np.bincount(blocks.block, weights=table.answer[rows.b] < 0, minlength=len(names))
    out = []
    for p, (a, b) in enumerate(names):
        common, u = int(blocks.start[p + 1] - blocks.start[p]), int(blocks.units[p])
        both, a_only, b_only, neither, fell2 = (int(x) for x in sums[p])
        block: dict[str, Any] = {
            "a": a, "b": b,
            "machine": [is_machine(a), is_machine(b)],
            "common": common,
            "answered": u,
            "left_out": {"samples": common - u, "a_unknown": int(unknown_a[p]), "b_unknown": int(unknown_b[p])},
            "table": {"both_fell": both, "a_only": a_only, "b_only": b_only, "neither": neither},
            "percent_agreement": float((both + neither) / u) if u else None,
            "cohen_kappa": {"n": u, **est[p]["kappa"]},
            "mean_abs_distance": {"n": fell2, "tokens": est[p]["tokens"], "words": est[p]["words"]},
            "alpha": {"n": fell2, **est[p]["alpha"]},
            "what_fell": fell[p],
        }
        if is_machine(a) != is_machine(b):
            span = slice(int(blocks.start[p]), int(blocks.start[p + 1]))
            at_a, at_b = table.at[rows.a[span]], table.at[rows.b[span]]
            to_a, to_b = table.read_to[rows.a[span]], table.read_to[rows.b[span]]
            keep = positions_compare(at_a, at_b, to_a, to_b)
            block["machine_vs_human"] = machine_vs_human(a, b, at_a[keep], at_b[keep], tolerance)
        out.append(block)
    return out


def machine_vs_human(a: str, b: str, a_at: np.ndarray, b_at: np.ndarray, tolerance: int) -> dict[str, Any]:
    """The ``machine_vs_human`` block of a pair of an ``auto-*`` reader and a human over the samples
    where their positions compare: ``a_at`` and ``b_at`` their fall tokens there (-1: no fall)."""
    machine_is_a = is_machine(a)
    m_at, h_at = (a_at, b_at) if machine_is_a else (b_at, a_at)
    both = (m_at >= 0) & (h_at >= 0)
    arr = (m_at[both] - h_at[both]).astype(float)
    tp = int((np.abs(arr) <= tolerance).sum())
    machine_falls, human_falls = int((m_at >= 0).sum()), int((h_at >= 0).sum())
    return {
        "machine": a if machine_is_a else b,
        "human": b if machine_is_a else a,
        "both_fell": int(both.sum()),
        "offset_tokens": {"median": float(np.median(arr)) if arr.size else None,
                          "mean": float(arr.mean()) if arr.size else None},
        "tolerance_tokens": tolerance,
        "true_positives": tp,
        "machine_falls": machine_falls,
        "human_falls": human_falls,
        "precision": tp / machine_falls if machine_falls else None,
        "recall": tp / human_falls if human_falls else None,
    }
