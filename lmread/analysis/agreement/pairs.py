"""The blocks of the pairs of readers (fell-or-not kappa, positions, what fell, machine vs human),
all pairs' bootstraps evaluated together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lmread.analysis.agreement.fall_labels import FallPair, what_fell_blocks
from lmread.analysis.agreement.kernels import alpha_from_sums, kappa_from_counts, ratio_from_sums
from lmread.analysis.agreement.resample import bootstrap_blocks, rng_for
from lmread.analysis.readings import is_machine


@dataclass
class PairUnit:
    """One sample both readers of a pair read: their answers at the horizon (None: unknown),
    fall positions (tokens, words; None for no fall) and whether the positions are comparable."""

    sample: str
    a_yes: bool | None
    b_yes: bool | None
    a_at: int | None
    b_at: int | None
    a_words: int | None
    b_words: int | None
    positions_comparable: bool
    falls: FallPair | None


_SUMS = ("both", "a_only", "b_only", "neither", "fell2", "d_tok", "d_word", "s1", "s2", "within")


@dataclass
class _PairData:
    """The answered units of one pair as the columns of :data:`_SUMS` (shape (U, len(_SUMS)))."""

    a: str
    b: str
    common: list[PairUnit]
    units: list[PairUnit]
    columns: np.ndarray


def _pair_data(a: str, b: str, common: list[PairUnit]) -> _PairData:
    units = [x for x in common if x.a_yes is not None and x.b_yes is not None]
    cols = np.zeros((len(units), len(_SUMS)))
    if units:
        a_y = np.array([bool(x.a_yes) for x in units], dtype=bool)
        b_y = np.array([bool(x.b_yes) for x in units], dtype=bool)
        # positions: every sample where both fell (always answered: a fall answers at any horizon)
        fell2 = np.array([x.a_at is not None and x.b_at is not None for x in units], dtype=bool)
        pos = np.array([(x.a_at, x.b_at, x.a_words, x.b_words) if f else (0, 0, 0, 0)
                        for x, f in zip(units, fell2, strict=True)], dtype=float)
        a_at, b_at, a_w, b_w = pos.T
        fell2_f = fell2.astype(float)
        s1, s2 = a_at + b_at, a_at**2 + b_at**2
        cols[:] = np.column_stack([
            a_y & b_y, a_y & ~b_y, ~a_y & b_y, ~a_y & ~b_y, fell2_f,
            np.abs(a_at - b_at) * fell2_f, np.abs(a_w - b_w) * fell2_f,
            s1 * fell2_f, s2 * fell2_f, np.where(fell2, 2.0 * (2.0 * s2 - s1 * s1) / (2.0 - 1.0), 0.0)])
    return _PairData(a, b, common, units, cols)


def _evaluate(data: list[_PairData]) -> Any:
    """The pairs' statistics on weights of shape (P, B, U): every sum is one batched product with
    the pairs' columns (sums of whole numbers, so exactly those of one pair at a time)."""
    width = max((len(d.units) for d in data), default=0)
    columns = np.zeros((len(data), width, len(_SUMS)))
    for p, d in enumerate(data):
        columns[p, : len(d.units)] = d.columns

    def evaluate(w: np.ndarray, lo: int, hi: int) -> dict[str, np.ndarray]:
        sums = dict(zip(_SUMS, np.moveaxis(w @ columns[lo:hi, : w.shape[2]], 2, 0), strict=True))
        n = 2.0 * sums["fell2"]
        return {"kappa": kappa_from_counts(sums["both"], sums["a_only"], sums["b_only"], sums["neither"]),
                "alpha": alpha_from_sums(n, sums["s1"], sums["s2"], sums["within"]),
                "tokens": ratio_from_sums(sums["d_tok"], sums["fell2"]),
                "words": ratio_from_sums(sums["d_word"], sums["fell2"])}

    return evaluate


def pair_blocks(pairs: list[tuple[str, str, list[PairUnit]]], n_boot: int, seed: int,
                tolerance: int) -> list[dict[str, Any]]:
    """The blocks of the pairs of readers ``(a, b, common)`` (``common``: the samples both read),
    their bootstraps evaluated together; each pair's draws come from its own generator, so each
    block is what it would be alone."""
    data = [_pair_data(a, b, common) for a, b, common in pairs]
    n_units = np.array([len(d.units) for d in data], dtype=int)
    est = bootstrap_blocks(_evaluate(data), ["kappa", "alpha", "tokens", "words"], n_units, n_boot,
                           [rng_for(seed, f"{d.a}\0{d.b}") for d in data])
    falls = [[FallPair(i, x.falls.a_category, x.falls.b_category, x.falls.a_severity, x.falls.b_severity)
              for i, x in enumerate(d.units) if x.falls is not None] for d in data]
    fell = what_fell_blocks(falls, n_units, n_boot, [rng_for(seed, f"{d.a}\0{d.b}\0what") for d in data])
    return [_pair_document(d, e, f, tolerance) for d, e, f in zip(data, est, fell, strict=True)]


def _pair_document(d: _PairData, est: dict[str, dict[str, Any]], fell: dict[str, Any],
                   tolerance: int) -> dict[str, Any]:
    a, b, common, u = d.a, d.b, d.common, len(d.units)
    both, a_only, b_only, neither, fell2 = (int(d.columns[:, k].sum()) for k in range(5))
    out: dict[str, Any] = {
        "a": a, "b": b,
        "machine": [is_machine(a), is_machine(b)],
        "common": len(common),
        "answered": u,
        "left_out": {"samples": len(common) - u, "a_unknown": sum(x.a_yes is None for x in common),
                     "b_unknown": sum(x.b_yes is None for x in common)},
        "table": {"both_fell": both, "a_only": a_only, "b_only": b_only, "neither": neither},
        "percent_agreement": float((both + neither) / u) if u else None,
        "cohen_kappa": {"n": u, **est["kappa"]},
        "mean_abs_distance": {"n": fell2, "tokens": est["tokens"], "words": est["words"]},
        "alpha": {"n": fell2, **est["alpha"]},
        "what_fell": fell,
    }
    if is_machine(a) != is_machine(b):
        out["machine_vs_human"] = machine_vs_human(a, b, [x for x in common if x.positions_comparable], tolerance)
    return out


def machine_vs_human(a: str, b: str, units: list[PairUnit], tolerance: int) -> dict[str, Any]:
    """The ``machine_vs_human`` block of a pair of an ``auto-*`` reader and a human over the samples
    where their positions compare (``units``)."""
    machine_is_a = is_machine(a)
    offsets: list[int] = []
    tp = machine_falls = human_falls = 0
    for x in units:
        m_at, h_at = (x.a_at, x.b_at) if machine_is_a else (x.b_at, x.a_at)
        machine_falls += m_at is not None
        human_falls += h_at is not None
        if m_at is not None and h_at is not None:
            offsets.append(m_at - h_at)
            tp += abs(offsets[-1]) <= tolerance
    arr = np.asarray(offsets, dtype=float)
    return {
        "machine": a if machine_is_a else b,
        "human": b if machine_is_a else a,
        "both_fell": len(offsets),
        "offset_tokens": {"median": float(np.median(arr)) if arr.size else None,
                          "mean": float(arr.mean()) if arr.size else None},
        "tolerance_tokens": tolerance,
        "true_positives": tp,
        "machine_falls": machine_falls,
        "human_falls": human_falls,
        "precision": tp / machine_falls if machine_falls else None,
        "recall": tp / human_falls if human_falls else None,
    }
