"""Confidence intervals for the cumulative incidence of each failure category.

The point estimate is lmread's Aalen–Johansen curve (:func:`lmread.survival.aalen_johansen_codes`).
Its variance is the delta-method (Greenwood-type) estimator of Collett, *Modelling Survival
Data in Medical Research* (3rd ed., p. 411), the one lifelines' ``AalenJohansenFitter`` uses: at
time ``t``, over the distinct times ``t_i <= t`` with ``n_i`` at risk, ``d_i`` falls of any
category and ``d_ki`` of category ``k``,

``Var F_k(t) = sum (F_k(t) - F_k(t_i))^2 d_i / (n_i (n_i - d_i))
             + sum S(t_{i-1})^2 d_ki (n_i - d_ki) / n_i^3
             - 2 sum (F_k(t) - F_k(t_i)) S(t_{i-1}) d_ki / n_i^2``

(a term with ``n_i = d_i`` is 0: nobody is left after it).  Expanding the squares turns every sum
into cumulative sums, so all times cost O(T) instead of lifelines' O(T^2).  The interval is the
log(-log) transform ``exp(-exp(log(-log F) -/+ z SE(F) / (F |log F|)))``, which stays in (0, 1);
where ``F = 0`` it is ``[0, 0]``.  Ties between categories are handled exactly (lifelines
jitters them, so the cross-check in the tests uses untied data).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmread.analysis.survival import CumulativeIncidence, aalen_johansen_codes, distinct_times, z_value


def cif_variance(aj: CumulativeIncidence, at_risk: np.ndarray) -> np.ndarray:
    """Delta-method variance of every cause's CIF at every time of ``aj`` (shape ``(K, T)``)."""
    n = at_risk.astype(float)
    d_all = aj.events.sum(axis=0).astype(float)
    lag_s = np.concatenate(([1.0], aj.survival[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(n > d_all, d_all / (n * (n - d_all)), 0.0)
    out = np.empty_like(aj.cif)
    for k in range(aj.cif.shape[0]):
        f = aj.cif[k]
        dk = aj.events[k].astype(float)
        b = lag_s ** 2 * dk * (n - dk) / n ** 3
        c = lag_s * dk / n ** 2
        A, AF, AFF = np.cumsum(a), np.cumsum(a * f), np.cumsum(a * f * f)
        C, CF = np.cumsum(c), np.cumsum(c * f)
        out[k] = f * f * A - 2 * f * AF + AFF + np.cumsum(b) - 2 * (f * C - CF)
    clipped: np.ndarray = np.maximum(out, 0.0)
    return clipped


def cif_bands(cif: np.ndarray, variance: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """The log(-log) ``1 - alpha`` band ``(low, high)`` of CIF values with their variances."""
    z = z_value(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.log(-np.log(cif))
        se = np.sqrt(variance) / (cif * np.abs(np.log(cif)))
        low = np.exp(-np.exp(inner + z * se))
        high = np.exp(-np.exp(inner - z * se))
    zero = cif <= 0
    low = np.where(zero, 0.0, np.nan_to_num(low, nan=0.0))
    high = np.where(zero, 0.0, np.nan_to_num(high, nan=1.0))
    return low, high


def cumulative_incidence(durations: Any, codes: Any, causes: list[Any], alpha: float = 0.05
                         ) -> tuple[CumulativeIncidence, np.ndarray, np.ndarray, np.ndarray]:
    """Aalen–Johansen CIFs with their variance and band: ``(aj, variance, low, high)``."""
    d = np.asarray(durations, dtype=float)
    aj = aalen_johansen_codes(d, np.asarray(codes, dtype=np.int64), causes)
    if d.size == 0:
        empty = np.zeros_like(aj.cif)
        return aj, empty, empty, empty
    _, inverse = distinct_times(d)
    total = np.bincount(inverse, minlength=aj.time.size)
    at_risk = d.size - np.concatenate(([0], np.cumsum(total)[:-1]))
    var = cif_variance(aj, at_risk)
    low, high = cif_bands(aj.cif, var, alpha)
    return aj, var, low, high
