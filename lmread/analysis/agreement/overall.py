"""The overall block: all readers at once (Fleiss' kappa, alpha, distances, what fell)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from lmread.analysis.agreement.answers import answer
from lmread.analysis.agreement.fall_labels import FallPair, fall_pair, what_fell
from lmread.analysis.agreement.kernels import alpha_from_units, fleiss_from_counts, ratio_from_units
from lmread.analysis.agreement.resample import bootstrap, rng_for
from lmread.analysis.readings import Reading, WordCounter


def overall_block(per_sample: dict[str, list[Reading]], words: WordCounter, horizon: int, tolerance: int, n_boot: int,
             seed: int) -> dict[str, Any]:
    """The ``overall`` block of the readings of every sample two or more annotators read
    (``per_sample``: sample id to its readings, sorted by annotator)."""
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
            pair = fall_pair(k, rows[i], rows[j], tolerance)
            if pair is not None:
                falls.append(pair)
        pos = [int(r.at) for r in rows if r.at is not None]
        if len(pos) >= 2:  # whole numbers: these sums are exact, in any order
            m[k], s1[k], s2[k] = len(pos), sum(pos), sum(x * x for x in pos)
            wpos = [words.before(r.sample, int(r.at)) for r in rows if r.at is not None]
            for i, j in itertools.combinations(range(len(pos)), 2):
                dist_sum[k] += abs(pos[i] - pos[j])
                dist_words[k] += abs(wpos[i] - wpos[j])
                dist_n[k] += 1
    rng = rng_for(seed, "\0overall")
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
        "what_fell": what_fell(falls, u, n_boot, rng_for(seed, "\0overall\0what")),
    }
