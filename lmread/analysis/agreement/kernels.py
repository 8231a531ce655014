"""The statistics of agreement on weighted units: kappa from 2x2 counts and from square tables
(unweighted and weighted), Fleiss' kappa, Krippendorff's alpha (interval and ordinal) and ratios.

The point estimate is all weights 1; a bootstrap replicate is a row of multinomial counts.  Each
statistic takes W of shape (B, U) (or tables built from it) and returns B values, nan where undefined.
"""

from __future__ import annotations

import numpy as np


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
    return alpha_from_sums(weights @ m, weights @ s1, weights @ s2, weights @ within)


def alpha_from_sums(n: np.ndarray, big_s1: np.ndarray, big_s2: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Krippendorff's alpha (interval) from the weighted sums over units: the number of pairable
    values ``n``, their sum ``big_s1`` and sum of squares ``big_s2``, and the units' within-unit
    disagreement ``observed`` (``sum 2 (m s2 - s1^2) / (m - 1)``)."""
    expected = 2.0 * (n * big_s2 - big_s1 * big_s1)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - (n - 1.0) * observed / expected
    scale = np.maximum(1.0, np.abs(n * big_s2))
    return np.where((n >= 2) & (expected > 1e-9 * scale), alpha, np.nan)


def ratio_from_units(weights: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``sum w num / sum w den`` per replicate (nan where the denominator is 0)."""
    return ratio_from_sums(weights @ num.astype(float), weights @ den.astype(float))


def ratio_from_sums(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` (nan where ``den`` is 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


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
    observed_d = np.einsum("bij,ij->b", tables, disagreement)
    return weighted_kappa_from_margins(tables.sum(axis=2), tables.sum(axis=1), observed_d, disagreement)


def weighted_kappa_from_margins(rows: np.ndarray, cols: np.ndarray, observed_d: np.ndarray,
                                disagreement: np.ndarray) -> np.ndarray:
    """:func:`weighted_kappa_from_tables` from what it needs of each table (shape (B, K) and (B,)):
    the first reader's counts per category ``rows``, the second's ``cols`` and the observed
    disagreement ``observed_d = sum d o``.  All three are linear in the units' weights, so a
    bootstrap never builds the (B, K, K) tables."""
    n = rows.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        # sum_ij rows_i cols_j d_ij / n: the disagreement of the table the margins expect
        expected_d = np.einsum("bi,bi->b", rows @ disagreement, cols) / n
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
