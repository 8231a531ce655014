"""Do they fall just as hard?  Severity and category mix of falls per group, a test of whether
severity depends on model size, and how hard the model itself fell at the fall token.

**Severity** is the reader's rating of a fall, 1 (mild) to 3 (severe); falls without one are
counted as unrated and left out of the tests.  Per group: the counts and proportions of 1/2/3,
the mean, and the mix of failure categories among all falls.

**Trend across sizes** (groups with a known ``n_params``, scored by the rank of their size):
the Jonckheere–Terpstra test, computed as Kendall's ``S`` between size and severity
(``S = 2J - sum_{a<b} n_a n_b``; pairs of the same size or the same severity count 0).  Its
p-value is a seeded Monte Carlo permutation test: tables with the observed margins are drawn from
their exact permutation distribution (``scipy.stats.random_table``, the multivariate
hypergeometric law of shuffling severities across falls), and ``p = (1 + #{|S*| >= |S|}) /
(1 + n_perm)``.  The normal approximation with Kendall's tie-corrected variance (the same as
``scipy.stats.kendalltau``'s asymptotic p-value) and tau-b are reported beside it.  ``S > 0``: the
bigger the model, the more severe its falls.

**Chi-square** tests of independence (size x severity, and group x category) are given only
where the counts allow it (Cochran's rule: every expected count >= 1 and at least 80% >= 5);
otherwise a note says so and the permutation trend test stands alone.

**How hard the model fell**: at a fall at token ``i`` with recorded distributions, the fall
token's logprob and rank against the median of the previous ``before`` (20) tokens'; per group
the medians over falls of the fall token's logprob, of the preceding median, and of their
difference (``logprob_drop``: negative when the fall token was less likely than the text before
it), and the same for ranks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lmread.analysis.distributions import chi2_sf, norm_sf
from lmread.analysis.observations import BEFORE, Observations

SEVERITIES = (1, 2, 3)
N_PERM = 9999


def kendall_s(table: np.ndarray) -> np.ndarray:
    """Kendall's S of ordered contingency tables ``(..., rows, cols)``: concordant minus
    discordant pairs (rows and columns both in increasing order)."""
    t = np.asarray(table, dtype=float)
    # below_right[i, j] = sum of t[i' > i, j' > j]; below_left[i, j] = sum of t[i' > i, j' < j]
    rev = t[..., ::-1, :].cumsum(axis=-2)[..., ::-1, :]
    strictly_below = np.concatenate((rev[..., 1:, :], np.zeros_like(rev[..., :1, :])), axis=-2)
    right = strictly_below[..., :, ::-1].cumsum(axis=-1)[..., :, ::-1]
    below_right = np.concatenate((right[..., :, 1:], np.zeros_like(right[..., :, :1])), axis=-1)
    left = strictly_below.cumsum(axis=-1)
    below_left = np.concatenate((np.zeros_like(left[..., :, :1]), left[..., :, :-1]), axis=-1)
    out: np.ndarray = (t * (below_right - below_left)).sum(axis=(-2, -1))
    return out


def kendall_variance(table: np.ndarray) -> tuple[float, float]:
    """The permutation variance of S with ties in both margins, and the tau-b denominator."""
    rows = table.sum(axis=1).astype(float)
    cols = table.sum(axis=0).astype(float)
    n = rows.sum()
    m = n * (n - 1.0)
    x1, y1 = (rows * (rows - 1) * (2 * rows + 5)).sum(), (cols * (cols - 1) * (2 * cols + 5)).sum()
    x0, y0 = (rows * (rows - 1) * (rows - 2)).sum(), (cols * (cols - 1) * (cols - 2)).sum()
    xtie, ytie = (rows * (rows - 1) / 2).sum(), (cols * (cols - 1) / 2).sum()
    var = (m * (2 * n + 5) - x1 - y1) / 18 + 2 * xtie * ytie / m + (x0 * y0 / (9 * m * (n - 2)) if n > 2 else 0.0)
    tot = m / 2
    return float(var), float(math.sqrt(max(tot - xtie, 0.0) * max(tot - ytie, 0.0)))


def trend_test(table: np.ndarray, n_perm: int = N_PERM, seed: int = 0) -> dict[str, Any]:
    """Jonckheere–Terpstra / Kendall trend test on a sizes x severities table (rows ordered by
    size, columns by severity); see the module notes."""
    table = np.asarray(table, dtype=np.int64)
    rows = table.sum(axis=1)
    cols = table.sum(axis=0)
    n = int(rows.sum())
    s = float(kendall_s(table))
    pairs = float((rows.sum() ** 2 - (rows.astype(float) ** 2).sum()) / 2)  # sum_{a<b} n_a n_b
    var, denom = kendall_variance(table)
    z = s / math.sqrt(var) if var > 0 else 0.0
    out: dict[str, Any] = {"n": n, "statistic": (s + pairs) / 2, "expected": pairs / 2, "kendall_s": s,
                           "tau_b": s / denom if denom > 0 else None, "z": z,
                           "p_value_asymptotic": float(2 * norm_sf(abs(z))) if var > 0 else 1.0,
                           "n_perm": int(n_perm), "seed": int(seed)}
    keep_r, keep_c = rows > 0, cols > 0
    if keep_r.sum() < 2 or keep_c.sum() < 2 or n_perm < 1:
        out["p_value"] = 1.0
    else:
        rng = np.random.default_rng(seed)
        from scipy import stats  # only where severities are given (a third of a second to import)

        draws = stats.random_table(rows[keep_r], cols[keep_c], seed=rng).rvs(n_perm)
        full = np.zeros((n_perm, *table.shape))
        full[:, np.flatnonzero(keep_r)[:, None], np.flatnonzero(keep_c)[None, :]] = draws
        null = kendall_s(full)
        out["p_value"] = float((1 + np.count_nonzero(np.abs(null) >= abs(s) - 1e-9)) / (n_perm + 1))
    out["direction"] = "none" if s == 0 else ("more severe with size" if s > 0 else "less severe with size")
    return out


def chi_square(table: np.ndarray) -> tuple[dict[str, Any] | None, str | None]:
    """Chi-square test of independence where Cochran's rule allows it, else ``(None, note)``."""
    t = np.asarray(table, dtype=float)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    if t.shape[0] < 2 or t.shape[1] < 2:
        return None, "needs at least two rows and two columns with counts"
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / t.sum()  # independence: row share x column share
    if expected.min() < 1 or np.mean(expected >= 5) < 0.8:
        return None, (f"expected counts too small for chi-square (smallest {expected.min():.2g}; "
                      "Cochran's rule needs all >= 1 and 80% >= 5)")
    statistic = float(((t - expected) ** 2 / expected).sum())  # Pearson's, no continuity correction
    df = (t.shape[0] - 1) * (t.shape[1] - 1)
    return {"statistic": statistic, "df": df, "p_value": float(chi2_sf(statistic, df)),
            "min_expected": float(expected.min())}, None


def _median(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else None


def model_fall(measures: np.ndarray) -> dict[str, Any]:
    """Medians over falls of the fall token's logprob and rank against the tokens before it."""
    lp, lp_before, rank, rank_before = (measures[:, k] for k in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        jump = np.log10(rank) - np.log10(rank_before)
    return {"n": int(np.count_nonzero(np.isfinite(lp))), "before": BEFORE,
            "logprob_fall_median": _median(lp), "logprob_before_median": _median(lp_before),
            "logprob_drop_median": _median(lp - lp_before),
            "rank_fall_median": _median(rank), "rank_before_median": _median(rank_before),
            "log10_rank_jump_median": _median(jump)}


def severity_report(obs: Observations, n_perm: int = N_PERM, seed: int = 0) -> dict[str, Any]:
    """The ``severity`` block of the survival document (see the module notes)."""
    n_g = len(obs.groups)
    sev = obs.severity if obs.severity is not None else np.zeros(len(obs), dtype=np.int64)
    measures = obs.fall_measures
    ev = obs.event.astype(bool)
    k_sev, k_cat = len(SEVERITIES), len(obs.categories)
    rated = ev & (sev >= 1) & (sev <= k_sev)
    table = np.bincount(obs.group[rated] * k_sev + sev[rated] - 1, minlength=n_g * k_sev).reshape(n_g, k_sev)
    cat_table = np.bincount(obs.group[ev] * k_cat + obs.category_code[ev],
                            minlength=n_g * k_cat).reshape(n_g, k_cat)
    falls = np.bincount(obs.group[ev], minlength=n_g)
    order = np.argsort(obs.group, kind="stable")
    bounds = np.searchsorted(obs.group[order], np.arange(n_g + 1))
    groups = []
    for g, group in enumerate(obs.groups):
        counts = table[g]
        k = int(counts.sum())
        entry: dict[str, Any] = {
            "label": group.label, "n_params": group.n_params, "falls": int(falls[g]), "rated": k,
            "counts": {str(s): int(c) for s, c in zip(SEVERITIES, counts, strict=True)},
            "proportions": ({str(s): float(c) / k for s, c in zip(SEVERITIES, counts, strict=True)} if k else None),
            "mean": float((counts * np.array(SEVERITIES)).sum() / k) if k else None,
            "categories": {name: int(cat_table[g, c]) for c, name in enumerate(obs.categories) if cat_table[g, c]},
        }
        if measures is not None:
            rows = order[bounds[g]:bounds[g + 1]]
            entry["model"] = model_fall(measures[rows[ev[rows]]])
        groups.append(entry)
    out: dict[str, Any] = {"scale": "1 (mild) to 3 (severe), rated by the reader; unrated falls left out",
                           "groups": groups, "trend": None, "trend_note": None, "chi_square": None,
                           "chi_square_note": None, "categories_chi_square": None, "categories_chi_square_note": None}
    sizes = sorted({grp.n_params for grp in obs.groups if grp.n_params})
    if len(sizes) < 2:
        out["trend_note"] = out["chi_square_note"] = "needs groups of at least two known model sizes (n_params)"
    else:
        by_size = np.zeros((len(sizes), len(SEVERITIES)), dtype=np.int64)
        for g, grp in enumerate(obs.groups):
            if grp.n_params:
                by_size[sizes.index(grp.n_params)] += table[g]
        used = by_size.sum(axis=1) > 0
        if used.sum() < 2 or (by_size.sum(axis=0) > 0).sum() < 2:
            out["trend_note"] = ("needs rated falls from at least two model sizes, with at least two "
                                 "different severities")
        else:
            trend = trend_test(by_size, n_perm=n_perm, seed=seed)
            trend.update({"test": "Jonckheere-Terpstra (Kendall S, permutation)", "scores": "rank of n_params",
                          "sizes": sizes, "table": by_size.tolist()})
            out["trend"] = trend
        out["chi_square"], out["chi_square_note"] = chi_square(by_size)
    out["categories_chi_square"], out["categories_chi_square_note"] = chi_square(cat_table)
    return out
