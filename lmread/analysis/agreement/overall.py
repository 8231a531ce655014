"""The overall block: all readers at once (Fleiss' kappa, alpha, distances, what fell)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lmread.analysis.agreement.fall_labels import (
    WHAT_FELL_PREFIX,
    FallCodes,
    what_fell_documents,
    what_fell_statistics,
)
from lmread.analysis.agreement.kernels import alpha_from_units, fleiss_from_counts, ratio_from_units
from lmread.analysis.agreement.resample import bootstrap, rng_for
from lmread.analysis.agreement.table import PairRows, ReadingTable, falls_within


def overall_block(table: ReadingTable, pairs: PairRows, tolerance: int, n_boot: int, seed: int) -> dict[str, Any]:
    """The ``overall`` block of the readings of every sample two or more readings cover
    (``table``), over ``pairs``, every pair of readings of one sample."""
    u = len(table.samples)
    known = table.answer >= 0
    n_known = np.bincount(table.sample, weights=known, minlength=u)
    n_yes = np.bincount(table.sample, weights=table.answer == 1, minlength=u)
    has_f = n_known >= 2
    n_i, yes_i = np.where(has_f, n_known, 0.0), np.where(has_f, n_yes, 0.0)
    unknown, unpaired = int((~known).sum()), int(n_known[~has_f].sum())
    fell = table.at >= 0
    at = np.where(fell, table.at, 0).astype(float)
    m_all = np.bincount(table.sample, weights=fell, minlength=u)
    has_a = m_all >= 2
    # whole numbers: these sums are exact, in any order
    m = np.where(has_a, m_all, 0.0)
    s1 = np.where(has_a, np.bincount(table.sample, weights=at, minlength=u), 0.0)
    s2 = np.where(has_a, np.bincount(table.sample, weights=at * at, minlength=u), 0.0)
    both = fell[pairs.a] & fell[pairs.b]
    where = pairs.sample[both]
    a, b = pairs.a[both], pairs.b[both]
    dist_sum = np.bincount(where, weights=np.abs(table.at[a] - table.at[b]).astype(float), minlength=u)
    dist_words = np.bincount(where, weights=np.abs(table.words[a] - table.words[b]).astype(float), minlength=u)
    dist_n = np.bincount(where, minlength=u).astype(float)
    rng = rng_for(seed, "\0overall")

    def fleiss(w: np.ndarray) -> np.ndarray:
        if not has_f.any():
            return np.full(w.shape[0], np.nan)
        return fleiss_from_counts(w[:, has_f], n_i[has_f], yes_i[has_f])

    def alpha(w: np.ndarray) -> np.ndarray:
        if not has_a.any():
            return np.full(w.shape[0], np.nan)
        return alpha_from_units(w[:, has_a], m[has_a], s1[has_a], s2[has_a])

    within = falls_within(table, pairs, tolerance)
    fa, fb = pairs.a[within], pairs.b[within]
    falls = FallCodes(np.zeros(len(fa), dtype=np.int64), pairs.sample[within], table.category[fa],
                      table.category[fb], table.severity[fa], table.severity[fb])
    labels = {WHAT_FELL_PREFIX + k: f for k, f in what_fell_statistics(falls).items()}
    # every statistic on the same replicates of the samples
    est = bootstrap({"fleiss": fleiss, "alpha": alpha,
                     "tokens": lambda w: ratio_from_units(w, dist_sum, dist_n),
                     "words": lambda w: ratio_from_units(w, dist_words, dist_n), **labels}, u, n_boot, rng)
    what_fell = what_fell_documents(falls, [est], WHAT_FELL_PREFIX)[0]
    return {
        "samples": u,
        "annotators": len(table.annotators),
        "readings": len(table),
        "fleiss_kappa": {"n": int(has_f.sum()), "readings": int(n_i.sum()), "readings_left_out": unknown,
                         "readings_unpaired": unpaired, **est["fleiss"]},
        "alpha": {"n": int(has_a.sum()), "values": int(m[has_a].sum()), **est["alpha"]},
        "mean_abs_distance": {"n": int(dist_n.sum()), "tokens": est["tokens"], "words": est["words"]},
        "what_fell": what_fell,
    }
