"""Agreement between readers on samples that two or more annotators read.

Each annotator's reading of a sample is their latest standing mark on it, fall or no fall (undo
respected, a standing skip contributes nothing; see :mod:`lmread.analysis.readings`).  Machine
readers (annotators ``auto-<detector>``) take part like any reader.  All samples read by two or
more annotators count, controls included.

Fell-or-not at a horizon
    Kappa and percent agreement answer one question per reading: *did the text fall within the
    first L tokens?*  The horizon ``L`` is fixed before any pair is looked at: ``--horizon``, by
    default the study's reading horizon, the longest generation asked for (the largest
    ``max_tokens`` among the study's samples; for samples that do not record one, such as
    imported texts, the longest sample).  On a sample of ``n`` tokens the question is asked up
    to ``h = min(L, n)`` (a text that ended sooner cannot fall later):

    * a fall at token ``a < L``: **yes**;
    * a fall at ``a >= L``, or a no-fall reading that read ``r >= h`` tokens: **no**;
    * a no-fall reading that stopped before ``h``: **unknown**; that reading is left out.

    Whether a reading is left out depends on that reading alone, never on the other reader's
    answer, so independent readers score a kappa of about 0 however early they stop (the rule
    used before excluded a pair when one reader's fall lay beyond the other's extent, which
    pushed independent readers to a kappa of 0.2-0.3).  The documents count the readings left
    out.  Per pair the fell-or-not table is over the samples both answered.  Over all readers
    (Fleiss' kappa) a sample enters with the readings that answered, when two or more did:
    ``P_i = sum_j n_ij (n_ij - 1) / (n_i (n_i - 1))`` averaged over samples, against
    ``pe = sum_j p_j^2`` with ``p_j`` pooled over the readings that entered (a varying number of
    readings per sample is allowed).

Positions
    * **Mean absolute distance** between fall marks (RoFT's measure), in tokens and in words,
      over the samples where both readers of a pair fell; overall, over every such (pair,
      sample).
    * **Krippendorff's alpha** (interval metric) on fall positions in tokens.  Only falls enter:
      a no-fall reading is a missing value, never a position, and a sample with fewer than two
      falls has no pairable values and contributes nothing (Krippendorff's rule).  Per pair:
      over the samples where both fell; overall: every sample with two or more falls, each
      reader's fall one value.  ``alpha = 1 - (n - 1) * sum_u (1 / (m_u - 1)) sum_{i != j in u}
      (v_i - v_j)^2 / sum_{i != j} (v_i - v_j)^2`` (the last sum over all ``n`` pairable values).

What the fall is
    Over the samples where both readers of a pair fell within ``tolerance`` tokens of each other
    (the same fall, seen by both): Cohen's kappa on the category (over the falls both
    categorised), linear weighted kappa on the severity 1-3 (disagreement weights ``|i - j|``,
    over the falls both rated) and Krippendorff's alpha (ordinal metric) on the severity.
    Overall: the same statistics over every (pair, sample) of such falls pooled, each unit the
    two readers' answers (with two readers this is the pair's value).

Machine vs human
    Per pair of an ``auto-*`` reader and a human: the signed offset of the machine's fall from the
    human's (machine minus human, tokens; median and mean where both fell), and precision and
    recall of "fell" taking the human as the reference: a machine fall matches when the human fell
    within ``tolerance`` tokens of it (default 10).  These are position measures: a sample
    counts unless one reader's fall lies at or beyond the other's no-fall extent (the other
    never read that far, so it can neither confirm nor miss it).

Confidence intervals
    95% percentile bootstrap over samples (the pair's answered samples for a pair, every sample
    read by two or more annotators overall), seeded: each pair's generator is seeded with the
    seed and a hash of the pair's names, so adding an annotator leaves other pairs' intervals
    unchanged.  Replicates where a statistic is undefined are dropped (``n_boot_used``).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmread import __version__
from lmread.analysis.readings import Reading, WordCounter, is_machine, readings_of
from lmread.records import CATEGORY_KEYS, Sample
from lmread.study import Study

AGREEMENT_SCHEMA = "lmread.agreement/2"
DEFAULT_TOLERANCE = 10
DEFAULT_BOOTSTRAP = 1000
CI_LEVEL = 0.95
_CHUNK_CELLS = 4_000_000  # bootstrap weight cells per chunk (memory bound)


# --------------------------------------------------------------------------------------------
# Statistics on weighted units (the point estimate is all weights 1; a bootstrap replicate is
# a row of multinomial counts).  Each takes W of shape (B, U) and returns B values (nan where
# undefined).


def kappa_from_counts(both: np.ndarray, a_only: np.ndarray, b_only: np.ndarray, neither: np.ndarray) -> np.ndarray:
    """Cohen's kappa of 2x2 tables given as arrays of cell counts (nan where undefined)."""
    both, a_only, b_only, neither = (np.asarray(x, dtype=float) for x in (both, a_only, b_only, neither))
    n = both + a_only + b_only + neither
    with np.errstate(invalid="ignore", divide="ignore"):
        po = (both + neither) / n
        pa = (both + a_only) / n
        pb = (both + b_only) / n
        pe = pa * pb + (1 - pa) * (1 - pb)
        kappa = (po - pe) / (1 - pe)
    return np.where((n > 0) & (1 - pe > 1e-12), kappa, np.nan)


def alpha_from_units(weights: np.ndarray, m: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """Krippendorff's alpha (interval) from per-unit counts ``m`` (>= 2), sums ``s1`` and sums of
    squares ``s2`` of the pairable values."""
    m = m.astype(float)
    within = 2.0 * (m * s2 - s1 * s1) / (m - 1.0)
    n = weights @ m
    big_s1 = weights @ s1
    big_s2 = weights @ s2
    observed = weights @ within
    expected = 2.0 * (n * big_s2 - big_s1 * big_s1)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - (n - 1.0) * observed / expected
    scale = np.maximum(1.0, np.abs(n * big_s2))
    return np.where((n >= 2) & (expected > 1e-9 * scale), alpha, np.nan)


def ratio_from_units(weights: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``sum w num / sum w den`` per replicate (nan where the denominator is 0)."""
    d = weights @ den.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d > 0, (weights @ num.astype(float)) / d, np.nan)


def krippendorff_alpha_interval(units: list[list[float]]) -> float | None:
    """Krippendorff's alpha (interval) of ``units``, each the list of values coders gave it
    (missing values left out).  None when undefined."""
    usable = [u for u in units if len(u) >= 2]
    if not usable:
        return None
    m = np.array([len(u) for u in usable], dtype=float)
    s1 = np.array([float(np.sum(u)) for u in usable])
    s2 = np.array([float(np.sum(np.square(u))) for u in usable])
    value = alpha_from_units(np.ones((1, len(usable))), m, s1, s2)[0]
    return None if np.isnan(value) else float(value)


def weighted_kappa_from_tables(tables: np.ndarray, disagreement: np.ndarray) -> np.ndarray:
    """Cohen's kappa of square agreement tables ``tables`` (shape (B, K, K), rows the first
    reader) with disagreement weights ``disagreement`` (K, K; 0 on the diagonal): ``1 - sum d o /
    sum d e``, ``e`` the table expected from the margins.  With ``d = 1`` off the diagonal this is
    the unweighted kappa, with ``d = |i - j|`` the linear weighted one (nan where undefined)."""
    tables = np.asarray(tables, dtype=float)
    n = tables.sum(axis=(1, 2))
    rows = tables.sum(axis=2)
    cols = tables.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = rows[:, :, None] * cols[:, None, :] / n[:, None, None]
        observed_d = (tables * disagreement).sum(axis=(1, 2))
        expected_d = (expected * disagreement).sum(axis=(1, 2))
        kappa = 1.0 - observed_d / expected_d
    scale = np.maximum(1.0, n)
    return np.where((n > 0) & (expected_d > 1e-12 * scale), kappa, np.nan)


def ordinal_alpha_from_coincidences(coincidences: np.ndarray) -> np.ndarray:
    """Krippendorff's alpha (ordinal metric) from coincidence matrices (shape (B, K, K), the K
    ordered values; each unit of ``m`` pairable values adds ``1 / (m - 1)`` per ordered pair of
    its values).  ``delta^2(c, k) = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2`` with ``n_g`` the
    coincidence margins (nan where undefined)."""
    o = np.asarray(coincidences, dtype=float)
    n_g = o.sum(axis=2)
    n = n_g.sum(axis=1)
    cum = np.concatenate([np.zeros((o.shape[0], 1)), np.cumsum(n_g, axis=1)], axis=1)
    k = o.shape[1]
    lo = np.minimum.outer(np.arange(k), np.arange(k))
    hi = np.maximum.outer(np.arange(k), np.arange(k))
    between = cum[:, hi + 1] - cum[:, lo]
    delta2 = (between - (n_g[:, :, None] + n_g[:, None, :]) / 2.0) ** 2
    observed = (o * delta2).sum(axis=(1, 2))
    expected = (n_g[:, :, None] * n_g[:, None, :] * delta2).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - (n - 1.0) * observed / expected
    scale = np.maximum(1.0, n * n)
    return np.where((n >= 2) & (expected > 1e-12 * scale), alpha, np.nan)


def _seed_for(seed: int, label: str) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(label.encode("utf-8"))])


def bootstrap(stats: dict[str, Any], n_units: int, n_boot: int, rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """Point estimates and percentile CIs of several statistics ``stat(W)`` (W: replicate weights
    of shape (B, U)), all evaluated on the same bootstrap replicates."""
    out: dict[str, dict[str, Any]] = {}
    for name, stat in stats.items():
        point = stat(np.ones((1, n_units)))[0] if n_units else np.nan
        out[name] = {"value": None if np.isnan(point) else float(point), "ci_low": None, "ci_high": None,
                     "n_boot_used": 0}
    live = [name for name in stats if out[name]["value"] is not None]
    if n_boot <= 0 or n_units == 0 or not live:
        return out
    values: dict[str, list[np.ndarray]] = {name: [] for name in live}
    step = max(1, _CHUNK_CELLS // n_units)
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        # b resamples of n_units units with replacement, as counts per unit (row-offset bincount)
        draws = rng.integers(0, n_units, size=(b, n_units)) + (np.arange(b) * n_units)[:, None]
        weights = np.bincount(draws.ravel(), minlength=b * n_units).reshape(b, n_units).astype(float)
        for name in live:
            values[name].append(stats[name](weights))
    tail = (1.0 - CI_LEVEL) / 2.0 * 100.0
    for name in live:
        reps = np.concatenate(values[name])
        reps = reps[~np.isnan(reps)]
        if reps.size:
            low, high = np.percentile(reps, [tail, 100.0 - tail])
            out[name].update(ci_low=float(low), ci_high=float(high))
        out[name]["n_boot_used"] = int(reps.size)
    return out


# --------------------------------------------------------------------------------------------
# The horizon and each reading's answer


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


# --------------------------------------------------------------------------------------------
# What the fall is: category and severity of falls two readers placed within the tolerance

SEVERITY_LEVELS = (1, 2, 3)
_N_CAT = len(CATEGORY_KEYS)
_NOMINAL = 1.0 - np.eye(_N_CAT)
_LINEAR = np.abs(np.subtract.outer(np.arange(3), np.arange(3))).astype(float)


@dataclass
class FallPair:
    """Two readers' falls on one sample within the tolerance: their categories and severities
    (None where not given) and the bootstrap unit (sample) it belongs to."""

    unit: int
    a_category: str | None
    b_category: str | None
    a_severity: int | None
    b_severity: int | None


def _fall_pair(unit: int, a: Reading, b: Reading, tolerance: int) -> FallPair | None:
    if a.at is None or b.at is None or abs(a.at - b.at) > tolerance:
        return None
    return FallPair(unit, a.mark.category, b.mark.category, a.mark.severity, b.mark.severity)


def what_fell(falls: list[FallPair], n_units: int, n_boot: int, rng: np.random.Generator) -> dict[str, Any]:
    """The ``what_fell`` block: category kappa, severity weighted kappa and ordinal alpha over
    ``falls`` (bootstrap over the ``n_units`` units the falls belong to)."""
    cats = [f for f in falls if f.a_category in CATEGORY_KEYS and f.b_category in CATEGORY_KEYS]
    sevs = [f for f in falls if f.a_severity in SEVERITY_LEVELS and f.b_severity in SEVERITY_LEVELS]
    cat_unit = np.array([f.unit for f in cats], dtype=int)
    cat_cells = np.zeros((len(cats), _N_CAT * _N_CAT))
    for i, f in enumerate(cats):
        cat_cells[i, CATEGORY_KEYS.index(str(f.a_category)) * _N_CAT + CATEGORY_KEYS.index(str(f.b_category))] = 1.0
    sev_unit = np.array([f.unit for f in sevs], dtype=int)
    sev_cells = np.zeros((len(sevs), 9))
    sev_coin = np.zeros((len(sevs), 9))
    for i, f in enumerate(sevs):
        ia, ib = int(f.a_severity or 1) - 1, int(f.b_severity or 1) - 1
        sev_cells[i, ia * 3 + ib] = 1.0
        sev_coin[i, ia * 3 + ib] += 1.0
        sev_coin[i, ib * 3 + ia] += 1.0

    def unit_weights(w: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return w[:, idx] if idx.size else np.zeros((w.shape[0], 0))

    def cat_kappa(w: np.ndarray) -> np.ndarray:
        tables = (unit_weights(w, cat_unit) @ cat_cells).reshape(-1, _N_CAT, _N_CAT)
        return weighted_kappa_from_tables(tables, _NOMINAL)

    def sev_kappa(w: np.ndarray) -> np.ndarray:
        return weighted_kappa_from_tables((unit_weights(w, sev_unit) @ sev_cells).reshape(-1, 3, 3), _LINEAR)

    def sev_alpha(w: np.ndarray) -> np.ndarray:
        return ordinal_alpha_from_coincidences((unit_weights(w, sev_unit) @ sev_coin).reshape(-1, 3, 3))

    est = bootstrap({"category": cat_kappa, "severity": sev_kappa, "alpha": sev_alpha}, n_units, n_boot, rng)
    same_cat = sum(f.a_category == f.b_category for f in cats)
    same_sev = sum(f.a_severity == f.b_severity for f in sevs)
    return {
        "n": len(falls),
        "category": {"n": len(cats), "same": same_cat, "percent_agreement": same_cat / len(cats) if cats else None,
                     "kappa": est["category"]},
        "severity": {"n": len(sevs), "same": same_sev, "percent_agreement": same_sev / len(sevs) if sevs else None,
                     "weighted_kappa": est["severity"], "alpha_ordinal": est["alpha"]},
    }


# --------------------------------------------------------------------------------------------
# Pairs


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


def _pair(a: str, b: str, common: list[PairUnit], n_boot: int, seed: int, tolerance: int) -> dict[str, Any]:
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
    rng = _seed_for(seed, f"{a}\0{b}")
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
        "what_fell": what_fell(falls, u, n_boot, _seed_for(seed, f"{a}\0{b}\0what")),
    }
    if is_machine(a) != is_machine(b):
        out["machine_vs_human"] = _machine_vs_human(a, b, [x for x in common if x.positions_comparable], tolerance)
    return out


def _machine_vs_human(a: str, b: str, units: list[PairUnit], tolerance: int) -> dict[str, Any]:
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


# --------------------------------------------------------------------------------------------
# All readers at once


def fleiss_from_counts(weights: np.ndarray, n_i: np.ndarray, yes_i: np.ndarray) -> np.ndarray:
    """Fleiss' kappa (two categories) with ``n_i >= 2`` readings per unit, ``yes_i`` of them yes:
    ``P_i = (y (y - 1) + (n - y)(n - y - 1)) / (n (n - 1))`` averaged over units, against
    ``pe = p^2 + (1 - p)^2`` with ``p`` the share of yes over all readings (nan where undefined)."""
    no_i = n_i - yes_i
    p_i = (yes_i * (yes_i - 1) + no_i * (no_i - 1)) / (n_i * (n_i - 1))
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_bar = (weights @ p_i) / total
        p_yes = (weights @ yes_i) / (weights @ n_i)
        pe = p_yes**2 + (1 - p_yes) ** 2
        kappa = (p_bar - pe) / (1 - pe)
    return np.where((total > 0) & (1 - pe > 1e-12), kappa, np.nan)


def _overall(per_sample: dict[str, list[Reading]], words: WordCounter, horizon: int, tolerance: int, n_boot: int,
             seed: int) -> dict[str, Any]:
    sids = sorted(per_sample)
    u = len(sids)
    n_i = np.zeros(u)
    yes_i = np.zeros(u)
    unknown = unpaired = 0
    m = np.zeros(u)
    s1 = np.zeros(u)
    s2 = np.zeros(u)
    dist_sum = np.zeros(u)
    dist_words = np.zeros(u)
    dist_n = np.zeros(u)
    falls: list[FallPair] = []
    for k, sid in enumerate(sids):
        rows = per_sample[sid]
        answers = [answer(r, horizon) for r in rows]
        known = [x for x in answers if x is not None]
        unknown += len(answers) - len(known)
        if len(known) >= 2:
            n_i[k], yes_i[k] = len(known), sum(known)
        else:
            unpaired += len(known)
        for i, j in itertools.combinations(range(len(rows)), 2):
            pair = _fall_pair(k, rows[i], rows[j], tolerance)
            if pair is not None:
                falls.append(pair)
        fallen = [r for r in rows if r.at is not None]
        if len(fallen) >= 2:
            pos = np.array([r.at for r in fallen], dtype=float)
            m[k], s1[k], s2[k] = len(pos), pos.sum(), (pos**2).sum()
            wpos = np.array([words.before(r.sample, int(r.at or 0)) for r in fallen], dtype=float)
            for i, j in itertools.combinations(range(len(pos)), 2):
                dist_sum[k] += abs(pos[i] - pos[j])
                dist_words[k] += abs(wpos[i] - wpos[j])
                dist_n[k] += 1
    rng = _seed_for(seed, "\0overall")
    has_f = n_i >= 2
    has_a = m >= 2

    def fleiss(w: np.ndarray) -> np.ndarray:
        if not has_f.any():
            return np.full(w.shape[0], np.nan)
        return fleiss_from_counts(w[:, has_f], n_i[has_f], yes_i[has_f])

    def alpha(w: np.ndarray) -> np.ndarray:
        if not has_a.any():
            return np.full(w.shape[0], np.nan)
        return alpha_from_units(w[:, has_a], m[has_a], s1[has_a], s2[has_a])

    annotators = sorted({r.annotator for rows in per_sample.values() for r in rows})
    est = bootstrap({"fleiss": fleiss, "alpha": alpha,
                     "tokens": lambda w: ratio_from_units(w, dist_sum, dist_n),
                     "words": lambda w: ratio_from_units(w, dist_words, dist_n)}, u, n_boot, rng)
    return {
        "samples": u,
        "annotators": len(annotators),
        "readings": int(sum(len(v) for v in per_sample.values())),
        "fleiss_kappa": {"n": int(has_f.sum()), "readings": int(n_i.sum()), "readings_left_out": unknown,
                         "readings_unpaired": unpaired, **est["fleiss"]},
        "alpha": {"n": int(has_a.sum()), "values": int(m[has_a].sum()), **est["alpha"]},
        "mean_abs_distance": {"n": int(dist_n.sum()), "tokens": est["tokens"], "words": est["words"]},
        "what_fell": what_fell(falls, u, n_boot, _seed_for(seed, "\0overall\0what")),
    }


def agreement_from_readings(
    readings: list[Reading],
    *,
    horizon: int | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    study: dict[str, Any] | None = None,
    study_horizon: tuple[int, str] | None = None,
    unit: str = "words",
) -> dict[str, Any]:
    """The agreement document (schema ``lmread.agreement/2``) of a list of readings.

    ``horizon`` (tokens, >= 1) is the fell-or-not horizon; by default ``study_horizon`` (the
    study's reading horizon and its source, see :func:`reading_horizon`), else the reading
    horizon of the readings' samples.  Distances are in tokens and in ``unit`` (``words``, or
    ``sentences`` as RoFT counted them: the key ``mean_abs_distance.sentences`` then replaces
    ``words`` and ``settings.distance_unit`` says so)."""
    if horizon is not None:
        if horizon < 1:
            raise ValueError(f"horizon {horizon} must be >= 1 token")
        h, source = int(horizon), "--horizon"
    else:
        h, source = study_horizon or reading_horizon({r.sample.id: r.sample for r in readings}.values())
        h = max(1, h)
    per_sample: dict[str, list[Reading]] = {}
    for r in readings:
        per_sample.setdefault(r.sample.id, []).append(r)
    multi = {sid: sorted(rows, key=lambda r: r.annotator) for sid, rows in per_sample.items() if len(rows) >= 2}
    annotators = sorted({r.annotator for rows in multi.values() for r in rows})
    words = WordCounter(unit)
    pairs = []
    own: dict[str, dict[str, Reading]] = {}  # each annotator's readings of shared samples, by sample
    for sid, rows in multi.items():
        for r in rows:
            own.setdefault(r.annotator, {}).setdefault(sid, r)
    for a, b in itertools.combinations(annotators, 2):
        units: list[PairUnit] = []
        for sid in sorted(own[a].keys() & own[b].keys()):
            ra, rb = own[a][sid], own[b][sid]
            units.append(PairUnit(
                sid, answer(ra, h), answer(rb, h), ra.at, rb.at,
                None if ra.at is None else words.before(ra.sample, ra.at),
                None if rb.at is None else words.before(rb.sample, rb.at),
                comparable(ra, rb), _fall_pair(0, ra, rb, tolerance),
            ))
        if units:
            pairs.append(_pair(a, b, units, n_boot, seed, tolerance))
    warnings = []
    if not multi:
        warnings.append("no sample is read by two or more annotators yet; share samples between readers "
                        "(merge their study folders with 'lmread merge') to measure agreement")
    overall = _overall(multi, words, h, tolerance, n_boot, seed)
    if overall["fleiss_kappa"]["readings_left_out"]:
        warnings.append(f"{overall['fleiss_kappa']['readings_left_out']} of {overall['readings']} readings stopped "
                        f"before the horizon of {h} tokens without a fall and are left out of fell-or-not "
                        "agreement (a shorter --horizon keeps more of them)")
    settings: dict[str, Any] = {
        "horizon_tokens": h, "horizon_source": source, "tolerance_tokens": tolerance, "n_boot": n_boot,
        "seed": seed, "ci_level": CI_LEVEL, "ci_method": "percentile bootstrap over samples",
        "fell_or_not": f"did the text fall within the first {h} tokens (or before the text ended)? "
                       "a no-fall reading that stopped sooner is unknown and left out"}
    if unit != "words":  # the second distance is counted in ``unit``: name it so
        settings["distance_unit"] = unit
        for block in [overall, *pairs]:
            block["mean_abs_distance"][unit] = block["mean_abs_distance"].pop("words")
    return {
        "schema": AGREEMENT_SCHEMA,
        "lmread_version": __version__,
        "study": study or {},
        "settings": settings,
        "annotators": annotators,
        "overall": overall,
        "pairs": pairs,
        "machine_vs_human": [p["machine_vs_human"] for p in pairs if "machine_vs_human" in p],
        "warnings": warnings,
    }


def agreement_of_study(study: Study, readings: list[Reading] | None = None, **options: Any) -> dict[str, Any]:
    """The agreement document of an open :class:`~lmread.study.Study` (``readings``: its
    :func:`~lmread.analysis.readings.readings_of`, if already built; options as
    :func:`agreement_from_readings`; the default horizon is the study's reading horizon)."""
    info = {"path": str(study.path), "name": study.name, "samples": len(study.samples)}
    return agreement_from_readings(readings_of(study) if readings is None else readings, study=info,
                                   study_horizon=reading_horizon(study.samples.values()), **options)


def agreement_summary(study: Study) -> dict[str, Any]:
    """A short summary for ``lmread study info``: samples read by 2+ annotators and the overall
    measures at the study's horizon (no bootstrap)."""
    doc = agreement_of_study(study, n_boot=0)
    overall = doc["overall"]
    return {
        "samples": overall["samples"],
        "annotators": overall["annotators"],
        "horizon_tokens": doc["settings"]["horizon_tokens"],
        "fleiss_kappa": overall["fleiss_kappa"]["value"],
        "readings_left_out": overall["fleiss_kappa"]["readings_left_out"],
        "alpha": overall["alpha"]["value"],
        "mean_abs_distance_tokens": overall["mean_abs_distance"]["tokens"]["value"],
        "severity_weighted_kappa": overall["what_fell"]["severity"]["weighted_kappa"]["value"],
    }
