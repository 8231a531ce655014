"""Cumulative incidence of each failure category: the Aalen–Johansen estimator, its variance
and its confidence band.

At each distinct time ``t_j`` with ``n_j`` at risk, ``d_kj`` falls of category ``k`` and ``d_j``
of any category, ``CIF_k(t_j) = sum_{i<=j} S(t_{i-1}) d_ki / n_i`` where S is the all-cause
Kaplan–Meier curve (the package's one product-limit kernel).  Ties (between categories, and with
censorings, which stay at risk at their own time) are handled exactly, with no jittering.

The variance is the delta-method (Greenwood-type) estimator of Collett, *Modelling Survival
Data in Medical Research* (3rd ed., p. 411), the one lifelines' ``AalenJohansenFitter`` uses: at
time ``t``, over the distinct times ``t_i <= t``,

``Var F_k(t) = sum (F_k(t) - F_k(t_i))^2 d_i / (n_i (n_i - d_i))
             + sum S(t_{i-1})^2 d_ki (n_i - d_ki) / n_i^3
             - 2 sum (F_k(t) - F_k(t_i)) S(t_{i-1}) d_ki / n_i^2``

(a term with ``n_i = d_i`` is 0: nobody is left after it).  Expanding the squares turns every sum
into cumulative sums, so all times cost O(T) instead of lifelines' O(T^2).  The interval is the
log(-log) transform ``exp(-exp(log(-log F) -/+ z SE(F) / (F |log F|)))``, which stays in (0, 1);
where ``F = 0`` it is ``[0, 0]``.  (lifelines jitters tied categories, so the cross-check in the
tests uses untied data.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lmread.analysis.survival.tables import (
    at_risk_counts,
    distinct_times,
    greenwood_terms,
    json_numbers,
    product_limit,
    z_value,
)


@dataclass
class CumulativeIncidence:
    """Cumulative incidence of each cause at every distinct observed time, with its variance
    and ``1 - alpha`` band.

    ``cif[k, j]`` is P(falling of cause ``causes[k]`` by ``time[j]``); the rows plus the overall
    Kaplan–Meier ``survival`` sum to 1 at every time.  ``events[k, j]`` counts the falls of cause
    ``k`` at ``time[j]``, ``at_risk[j]`` everyone still at risk then.
    """

    time: np.ndarray
    causes: list[Any]
    cif: np.ndarray
    events: np.ndarray
    survival: np.ndarray
    at_risk: np.ndarray
    variance: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray

    def to_json(self, horizon: float, names: list[str] | None = None) -> dict[str, Any]:
        """Per cause with at least one fall (named by ``names[k]``, default ``str(cause)``): its
        falls, the CIF and its band at ``horizon`` and at the end, and the curve at its own fall
        times (the survival document's ``by_category`` of a group)."""
        out: dict[str, Any] = {}
        at_h = int(np.searchsorted(self.time, horizon, side="right") - 1)
        for k, cause in enumerate(self.causes):
            n_k = int(self.events[k].sum())
            if n_k == 0:
                continue
            steps = self.events[k] > 0
            out[names[k] if names is not None else str(cause)] = {
                "events": n_k,
                "cif_at_horizon": float(self.cif[k, at_h]) if at_h >= 0 else 0.0,
                "cif_at_horizon_ci": [float(self.ci_low[k, at_h]), float(self.ci_high[k, at_h])] if at_h >= 0
                else [0.0, 0.0],
                "cif_final": float(self.cif[k, -1]),
                "curve": [{"t": t, "cif": v, "ci_low": lo, "ci_high": hi} for t, v, lo, hi in zip(
                    json_numbers(self.time[steps]), self.cif[k, steps].tolist(), self.ci_low[k, steps].tolist(),
                    self.ci_high[k, steps].tolist(), strict=True)],
            }
        return out


def aalen_johansen(durations: Any, causes: Any, censored_code: Any = 0, alpha: float = 0.05) -> CumulativeIncidence:
    """Aalen–Johansen estimator of the cumulative incidence of competing causes.

    ``causes`` holds, per observation, the cause of its event or ``censored_code`` when it was
    censored; the causes come out sorted by their text.
    """
    d = np.asarray(durations, dtype=float).ravel()
    raw = np.asarray(causes, dtype=object).ravel()
    if d.shape != raw.shape:
        raise ValueError("durations and causes must have the same length")
    is_event = np.array([x != censored_code for x in raw], dtype=bool) if raw.size else np.zeros(0, bool)
    cause_list = sorted({x for x in raw[is_event]}, key=str)
    codes = np.full(d.size, -1, dtype=np.int64)
    lookup = {c: i for i, c in enumerate(cause_list)}
    for i in np.flatnonzero(is_event):
        codes[i] = lookup[raw[i]]
    return cumulative_incidence(d, codes, cause_list, alpha)


def cumulative_incidence(durations: Any, codes: Any, causes: list[Any], alpha: float = 0.05) -> CumulativeIncidence:
    """:func:`aalen_johansen` on integer cause codes ``0..K-1`` (``-1`` = censored), with the
    variance and the log(-log) band."""
    d = np.asarray(durations, dtype=float).ravel()
    codes = np.asarray(codes, dtype=np.int64).ravel()
    k = len(causes)
    if d.size == 0:
        empty = np.zeros((k, 0))
        return CumulativeIncidence(np.zeros(0), list(causes), empty, np.zeros((k, 0), np.int64), np.zeros(0),
                                   np.zeros(0, np.int64), empty, empty, empty)
    time, inverse = distinct_times(d)
    t_n = len(time)
    total = np.bincount(inverse, minlength=t_n)
    ev = codes >= 0
    per_cause = np.bincount(codes[ev] * t_n + inverse[ev], minlength=k * t_n).reshape(k, t_n)
    d_all = per_cause.sum(axis=0)
    at_risk = at_risk_counts(total)
    survival = product_limit(at_risk, d_all)
    before = np.concatenate(([1.0], survival[:-1]))
    # probabilities stay in [0, 1] exactly: a sum of increments can round to 1 + 2e-16
    cif = np.clip(np.cumsum(before * per_cause / at_risk, axis=1), 0.0, 1.0)
    survival = np.clip(survival, 0.0, 1.0)
    variance = cif_variance(cif, per_cause, before, at_risk)
    low, high = cif_bands(cif, variance, alpha)
    return CumulativeIncidence(time, list(causes), cif, per_cause, survival, at_risk, variance, low, high)


def cif_variance(cif: np.ndarray, events: np.ndarray, lag_survival: np.ndarray, at_risk: np.ndarray) -> np.ndarray:
    """Delta-method variance of every cause's CIF (``cif``, shape ``(K, T)``) at every time, from
    the falls per cause ``events``, the all-cause curve just before each time and the numbers at
    risk."""
    n = at_risk.astype(float)
    a = greenwood_terms(at_risk, events.sum(axis=0))
    out = np.empty_like(cif)
    for k in range(cif.shape[0]):
        f = cif[k]
        dk = events[k].astype(float)
        b = lag_survival ** 2 * dk * (n - dk) / n ** 3
        c = lag_survival * dk / n ** 2
        A, AF, AFF = np.cumsum(a), np.cumsum(a * f), np.cumsum(a * f * f)
        C, CF = np.cumsum(c), np.cumsum(c * f)
        out[k] = f * f * A - 2 * f * AF + AFF + np.cumsum(b) - 2 * (f * C - CF)
    clipped: np.ndarray = np.maximum(out, 0.0)
    return clipped


def cif_bands(cif: np.ndarray, variance: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """The log(-log) ``1 - alpha`` band ``(low, high)`` of CIF values with their variances."""
    z = z_value(alpha)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inner = np.log(-np.log(cif))
        se = np.sqrt(variance) / (cif * np.abs(np.log(cif)))
        low = np.exp(-np.exp(inner + z * se))
        high = np.exp(-np.exp(inner - z * se))
    zero = cif <= 0
    low = np.where(zero, 0.0, np.nan_to_num(low, nan=0.0))
    high = np.where(zero, 0.0, np.nan_to_num(high, nan=1.0))
    return low, high
