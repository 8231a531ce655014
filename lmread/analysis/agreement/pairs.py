"""The block of one pair of readers: fell-or-not kappa, positions, what fell and machine vs human."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lmread.analysis.agreement.bootstrap import bootstrap, rng_for
from lmread.analysis.agreement.kernels import alpha_from_units, kappa_from_counts, ratio_from_units
from lmread.analysis.agreement.what_fell import FallPair, what_fell
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


def pair_block(a: str, b: str, common: list[PairUnit], n_boot: int, seed: int, tolerance: int) -> dict[str, Any]:
    """The block of the pair of readers ``a`` and ``b`` over the samples both read (``common``)."""
    units = [x for x in common if x.a_yes is not None and x.b_yes is not None]
    u = len(units)
    a_y = np.array([bool(x.a_yes) for x in units], dtype=bool)
    b_y = np.array([bool(x.b_yes) for x in units], dtype=bool)
    both = (a_y & b_y).astype(float)
    a_only = (a_y & ~b_y).astype(float)
    b_only = (~a_y & b_y).astype(float)
    neither = (~a_y & ~b_y).astype(float)
    # positions: every sample where both fell (always answered: a fall answers at any horizon)
    fell2 = np.array([x.a_at is not None and x.b_at is not None for x in units], dtype=bool)
    a_at = np.array([x.a_at if f else 0 for x, f in zip(units, fell2, strict=True)], dtype=float)
    b_at = np.array([x.b_at if f else 0 for x, f in zip(units, fell2, strict=True)], dtype=float)
    a_w = np.array([x.a_words if f else 0 for x, f in zip(units, fell2, strict=True)], dtype=float)
    b_w = np.array([x.b_words if f else 0 for x, f in zip(units, fell2, strict=True)], dtype=float)
    fell2_f = fell2.astype(float)
    d_tok = np.abs(a_at - b_at) * fell2_f
    d_word = np.abs(a_w - b_w) * fell2_f
    rng = rng_for(seed, f"{a}\0{b}")
    n_both = int(fell2.sum())
    pos_s1 = (a_at + b_at)[fell2]
    pos_s2 = (a_at**2 + b_at**2)[fell2]

    def kappa(w: np.ndarray) -> np.ndarray:
        return kappa_from_counts(w @ both, w @ a_only, w @ b_only, w @ neither)

    def alpha(w: np.ndarray) -> np.ndarray:
        if not n_both:
            return np.full(w.shape[0], np.nan)
        return alpha_from_units(w[:, fell2], np.full(n_both, 2.0), pos_s1, pos_s2)

    est = bootstrap({"kappa": kappa, "alpha": alpha,
                     "tokens": lambda w: ratio_from_units(w, d_tok, fell2_f),
                     "words": lambda w: ratio_from_units(w, d_word, fell2_f)}, u, n_boot, rng)
    falls = [FallPair(i, x.falls.a_category, x.falls.b_category, x.falls.a_severity, x.falls.b_severity)
             for i, x in enumerate(units) if x.falls is not None]
    out: dict[str, Any] = {
        "a": a, "b": b,
        "machine": [is_machine(a), is_machine(b)],
        "common": len(common),
        "answered": u,
        "left_out": {"samples": len(common) - u, "a_unknown": sum(x.a_yes is None for x in common),
                     "b_unknown": sum(x.b_yes is None for x in common)},
        "table": {"both_fell": int(both.sum()), "a_only": int(a_only.sum()), "b_only": int(b_only.sum()),
                  "neither": int(neither.sum())},
        "percent_agreement": float((both.sum() + neither.sum()) / u) if u else None,
        "cohen_kappa": {"n": u, **est["kappa"]},
        "mean_abs_distance": {"n": n_both, "tokens": est["tokens"], "words": est["words"]},
        "alpha": {"n": n_both, **est["alpha"]},
        "what_fell": what_fell(falls, u, n_boot, rng_for(seed, f"{a}\0{b}\0what")),
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
