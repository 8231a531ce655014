"""Agreement between readers on samples that two or more annotators read.

Each annotator's reading of a sample is their latest standing mark on it, fall or no fall (undo
respected, a standing skip contributes nothing; see :mod:`lmread.analysis.readings`).  Machine
readers (annotators ``auto-<detector>``) take part like any reader.  All samples read by two or
more annotators count, controls included.

The censoring rule
    A no-fall reading read to ``r`` tokens is censored at ``r``: it says "no fall in tokens
    ``0..r-1``", not a position.  For a pair of readers A, B on one sample:

    * both fell (at ``a``, ``b``): comparable; they agree that it fell, and ``|a - b|`` is their
      distance;
    * neither fell: comparable; they agree that it did not fall (within what each read);
    * A fell at ``a``, B read to ``r`` without a fall: if ``a < r`` (B read token ``a`` and went
      on), they disagree on fell-or-not; if ``a >= r`` (B stopped before the token A marked), the
      pair is **not comparable** on that sample and the sample is left out of that pair's
      fell-or-not table and distance.

    Over all readers at once (Fleiss' kappa) the same rule holds pair by pair: a sample's
    observed agreement is the share of its comparable pairs of readings that agree, and a reading
    comparable with no other reading of that sample is left out.  The rule excludes a pair by
    what the readers answered (a fall beyond the other's extent), and such a pair would have
    counted as a disagreement on fell-or-not: when readers stop early, the kappas lean towards
    agreement (independent readers who stop at random get a kappa above 0), so read them with
    the ``not_comparable`` counts.

Measures
    * **Fell-or-not**: Cohen's kappa per pair on the comparable samples' 2x2 table
      ``(po - pe) / (1 - pe)``; Fleiss' kappa over all readers, with a varying number of readings
      per sample: ``P_i`` the share of sample i's comparable pairs that agree (with every pair
      comparable this is Fleiss' ``sum_j n_ij (n_ij - 1) / (n_i (n_i - 1))``), averaged over
      samples, against ``pe = sum_j p_j^2`` with ``p_j`` pooled over the readings that entered.
      Undefined (None) when the expected agreement is 1.
    * **Mean absolute distance** between fall marks (RoFT's measure), in tokens and in words,
      over the samples where both readers of a pair fell; overall, over every such (pair,
      sample).
    * **Krippendorff's alpha** (interval metric) on fall positions in tokens.  Only falls enter:
      a no-fall reading is a missing value, never a position, and a sample with fewer than two
      falls has no pairable values and contributes nothing (Krippendorff's rule).  Per pair:
      over the samples where both fell; overall: every sample with two or more falls, each
      reader's fall one value.  ``alpha = 1 - (n - 1) * sum_u (1 / (m_u - 1)) sum_{i != j in u}
      (v_i - v_j)^2 / sum_{i != j} (v_i - v_j)^2`` (the last sum over all ``n`` pairable values).
    * **Machine vs human** (per pair of an ``auto-*`` reader and a human, on their comparable
      samples): the signed offset of the machine's fall from the human's (machine minus human,
      tokens; median and mean where both fell), and precision and recall of "fell" taking the
      human as the reference: a machine fall matches when the human fell within ``tolerance``
      tokens of it (default 10).

Confidence intervals
    95% percentile bootstrap over samples (the pair's comparable samples for a pair, every
    sample read by two or more annotators overall), seeded: each pair's generator is seeded
    with the seed and a hash of the pair's names, so adding an annotator leaves other pairs'
    intervals unchanged.  Replicates where a statistic is undefined are dropped
    (``n_boot_used``).
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmread import __version__
from lmread.analysis.readings import Reading, WordCounter, is_machine, readings_of
from lmread.study import Study

AGREEMENT_SCHEMA = "lmread.agreement/1"
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
# Pairs and samples under the censoring rule


@dataclass
class PairUnit:
    """One comparable sample of a pair: ``a_fell``, ``b_fell``, positions (tokens, words)."""

    sample: str
    a_fell: bool
    b_fell: bool
    a_at: int | None
    b_at: int | None
    a_words: int | None
    b_words: int | None


def comparable(a: Reading, b: Reading) -> bool:
    """Whether two readings of one sample can be compared (the censoring rule)."""
    if a.at is not None and b.at is not None:
        return True
    if a.at is not None:
        return a.at < b.read_to
    if b.at is not None:
        return b.at < a.read_to
    return True


def _pair(a: str, b: str, units: list[PairUnit], n_common: int, n_boot: int, seed: int,
          tolerance: int) -> dict[str, Any]:
    u = len(units)
    a_f = np.array([x.a_fell for x in units], dtype=bool)
    b_f = np.array([x.b_fell for x in units], dtype=bool)
    both = (a_f & b_f).astype(float)
    a_only = (a_f & ~b_f).astype(float)
    b_only = (~a_f & b_f).astype(float)
    neither = (~a_f & ~b_f).astype(float)
    a_at = np.array([x.a_at if x.a_fell and x.b_fell else 0 for x in units], dtype=float)
    b_at = np.array([x.b_at if x.a_fell and x.b_fell else 0 for x in units], dtype=float)
    a_w = np.array([x.a_words if x.a_fell and x.b_fell else 0 for x in units], dtype=float)
    b_w = np.array([x.b_words if x.a_fell and x.b_fell else 0 for x in units], dtype=float)
    d_tok = np.abs(a_at - b_at) * both
    d_word = np.abs(a_w - b_w) * both
    rng = _seed_for(seed, f"{a}\0{b}")
    mask = both > 0
    n_both = int(mask.sum())
    pos_s1 = (a_at + b_at)[mask]
    pos_s2 = (a_at**2 + b_at**2)[mask]

    def kappa(w: np.ndarray) -> np.ndarray:
        return kappa_from_counts(w @ both, w @ a_only, w @ b_only, w @ neither)

    def alpha(w: np.ndarray) -> np.ndarray:
        if not n_both:
            return np.full(w.shape[0], np.nan)
        return alpha_from_units(w[:, mask], np.full(n_both, 2.0), pos_s1, pos_s2)

    est = bootstrap({"kappa": kappa, "alpha": alpha,
                     "tokens": lambda w: ratio_from_units(w, d_tok, both),
                     "words": lambda w: ratio_from_units(w, d_word, both)}, u, n_boot, rng)
    out: dict[str, Any] = {
        "a": a, "b": b,
        "machine": [is_machine(a), is_machine(b)],
        "common": n_common,
        "comparable": u,
        "not_comparable": n_common - u,
        "table": {"both_fell": n_both, "a_only": int(a_only.sum()), "b_only": int(b_only.sum()),
                  "neither": int(neither.sum())},
        "percent_agreement": float((both.sum() + neither.sum()) / u) if u else None,
        "cohen_kappa": {"n": u, **est["kappa"]},
        "mean_abs_distance": {"n": n_both, "tokens": est["tokens"], "words": est["words"]},
        "alpha": {"n": n_both, **est["alpha"]},
    }
    if is_machine(a) != is_machine(b):
        out["machine_vs_human"] = _machine_vs_human(a, b, units, tolerance)
    return out


def _machine_vs_human(a: str, b: str, units: list[PairUnit], tolerance: int) -> dict[str, Any]:
    machine_is_a = is_machine(a)
    offsets: list[int] = []
    tp = machine_falls = human_falls = 0
    for x in units:
        m_fell, h_fell = (x.a_fell, x.b_fell) if machine_is_a else (x.b_fell, x.a_fell)
        m_at, h_at = (x.a_at, x.b_at) if machine_is_a else (x.b_at, x.a_at)
        machine_falls += m_fell
        human_falls += h_fell
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


def fleiss_from_pairs(weights: np.ndarray, agree: np.ndarray, pairs: np.ndarray, n_i: np.ndarray,
                      yes_i: np.ndarray) -> np.ndarray:
    """Fleiss' kappa over comparable pairs: per unit, the share ``agree / pairs`` of its comparable
    pairs of readings that agree (Fleiss' ``P_i`` when every pair is comparable), averaged over
    units; the category shares pool the ``n_i`` readings (``yes_i`` of them falls) that are
    comparable with at least one other."""
    p_i = agree / pairs
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_bar = (weights @ p_i) / total
        p_yes = (weights @ yes_i) / (weights @ n_i)
        pe = p_yes**2 + (1 - p_yes) ** 2
        kappa = (p_bar - pe) / (1 - pe)
    return np.where((total > 0) & (1 - pe > 1e-12), kappa, np.nan)


def _overall(per_sample: dict[str, list[Reading]], words: WordCounter, n_boot: int, seed: int) -> dict[str, Any]:
    sids = sorted(per_sample)
    u = len(sids)
    agree = np.zeros(u)
    pairs = np.zeros(u)
    n_i = np.zeros(u)
    yes_i = np.zeros(u)
    left_out = 0
    pairs_out = 0
    m = np.zeros(u)
    s1 = np.zeros(u)
    s2 = np.zeros(u)
    dist_sum = np.zeros(u)
    dist_words = np.zeros(u)
    dist_n = np.zeros(u)
    for k, sid in enumerate(sids):
        rows = per_sample[sid]
        partnered = [False] * len(rows)
        for i, j in itertools.combinations(range(len(rows)), 2):
            if not comparable(rows[i], rows[j]):
                pairs_out += 1
                continue
            pairs[k] += 1
            agree[k] += rows[i].fell == rows[j].fell
            partnered[i] = partnered[j] = True
        kept = [r for r, ok in zip(rows, partnered, strict=True) if ok]
        left_out += len(rows) - len(kept)
        n_i[k] = len(kept)
        yes_i[k] = sum(r.fell for r in kept)
        falls = [(r.sample, r.at) for r in rows if r.at is not None]
        if len(falls) >= 2:
            pos = np.array([at for _, at in falls], dtype=float)
            m[k], s1[k], s2[k] = len(pos), pos.sum(), (pos**2).sum()
            wpos = np.array([words.before(sample, at) for sample, at in falls], dtype=float)
            for i, j in itertools.combinations(range(len(pos)), 2):
                dist_sum[k] += abs(pos[i] - pos[j])
                dist_words[k] += abs(wpos[i] - wpos[j])
                dist_n[k] += 1
    rng = _seed_for(seed, "\0overall")
    has_f = pairs >= 1
    has_a = m >= 2

    def fleiss(w: np.ndarray) -> np.ndarray:
        if not has_f.any():
            return np.full(w.shape[0], np.nan)
        return fleiss_from_pairs(w[:, has_f], agree[has_f], pairs[has_f], n_i[has_f], yes_i[has_f])

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
        "fleiss_kappa": {"n": int(has_f.sum()), "pairs_not_comparable": pairs_out, "readings_left_out": left_out,
                         **est["fleiss"]},
        "alpha": {"n": int(has_a.sum()), "values": int(m[has_a].sum()), **est["alpha"]},
        "mean_abs_distance": {"n": int(dist_n.sum()), "tokens": est["tokens"], "words": est["words"]},
    }


def agreement_from_readings(
    readings: list[Reading],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    study: dict[str, Any] | None = None,
    unit: str = "words",
) -> dict[str, Any]:
    """The agreement document (schema ``lmread.agreement/1``) of a list of readings.

    Distances are in tokens and in ``unit`` (``words``, or ``sentences`` as RoFT counted them:
    the key ``mean_abs_distance.sentences`` then replaces ``words`` and ``settings.distance_unit``
    says so)."""
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
        common = 0
        for sid in sorted(own[a].keys() & own[b].keys()):
            ra, rb = own[a][sid], own[b][sid]
            common += 1
            if not comparable(ra, rb):
                continue
            units.append(PairUnit(
                sid, ra.fell, rb.fell, ra.at, rb.at,
                None if ra.at is None else words.before(ra.sample, ra.at),
                None if rb.at is None else words.before(rb.sample, rb.at),
            ))
        if common:
            pairs.append(_pair(a, b, units, common, n_boot, seed, tolerance))
    warnings = []
    if not multi:
        warnings.append("no sample is read by two or more annotators yet; share samples between readers "
                        "(merge their study folders with 'lmread merge') to measure agreement")
    overall = _overall(multi, words, n_boot, seed)
    settings: dict[str, Any] = {"tolerance_tokens": tolerance, "n_boot": n_boot, "seed": seed, "ci_level": CI_LEVEL,
                                "ci_method": "percentile bootstrap over samples",
                                "censoring": "a fall beyond the other reader's read extent is not comparable"}
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
    :func:`agreement_from_readings`)."""
    info = {"path": str(study.path), "name": study.name, "samples": len(study.samples)}
    return agreement_from_readings(readings_of(study) if readings is None else readings, study=info, **options)


def agreement_summary(study: Study) -> dict[str, Any]:
    """A short summary for ``lmread study info``: samples read by 2+ annotators and the overall
    measures (no bootstrap)."""
    overall = agreement_of_study(study, n_boot=0)["overall"]
    return {
        "samples": overall["samples"],
        "annotators": overall["annotators"],
        "fleiss_kappa": overall["fleiss_kappa"]["value"],
        "alpha": overall["alpha"]["value"],
        "mean_abs_distance_tokens": overall["mean_abs_distance"]["tokens"]["value"],
    }
