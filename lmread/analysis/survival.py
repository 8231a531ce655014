"""Survival statistics of coherent length: pure numpy/scipy on arrays.

Everything here works on plain arrays of durations (in tokens, words or characters) and event
flags (1 = the text fell there, 0 = right-censored: read that far without a fall).

Why numpy and not ``scipy.stats.ecdf`` / ``scipy.stats.logrank`` directly: lmread needs the
at-risk, event *and censored* counts at every observed time (scipy reports only event times),
the curve evaluated at censoring times too (as lifelines and R's ``survfit`` do), the log-rank
statistic for every pair of groups and for a trend across all of them from one shared table,
and thousands of bootstrap replicates, all for a million observations in well under a second.
So the Kaplan–Meier estimator, Greenwood's variance and the log-rank sums are computed here
with vectorised numpy (distinct times by counting or ``np.unique``, cumulative sums and products), and scipy
supplies the distributions (``norm.ppf``, ``chi2.sf``, ``chi2.ppf``).  The tests check every
number against lifelines and against ``scipy.stats.ecdf`` / ``scipy.stats.logrank``.

Conventions (the same as lifelines' ``KaplanMeierFitter``):

* ``S(t) = prod_{t_j <= t} (1 - d_j / n_j)`` (summed in logs, as lifelines does) where ``n_j`` counts everyone whose duration is
  ``>= t_j`` (a sample censored at ``t_j`` is still at risk at ``t_j``).
* The 95% band is the log-log ("exponential Greenwood") interval
  ``exp(-exp(log(-log S) ± z sqrt(V) / log S))`` with ``V = sum d_j / (n_j (n_j - d_j))``;
  where ``S = 1`` the band is ``[1, 1]``; a term with ``n_j = d_j`` (the curve drops to 0) adds 0.
* The curve starts with a point at ``t = 0`` (``S = 1`` unless something fell at 0).
* The median is the first time with ``S(t) <= 0.5``; its CI is the first time each band
  reaches 0.5 (lifelines' ``median_survival_times(confidence_interval_)``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

# --------------------------------------------------------------------------------------------
# Kaplan–Meier


@dataclass
class KM:
    """A Kaplan–Meier curve with its log-log confidence band and counts at every step.

    Arrays are aligned on ``time`` (the distinct observed times, with 0 prepended when no
    duration is 0).  ``at_risk[j]`` counts durations ``>= time[j]``; ``events[j]`` and
    ``censored[j]`` count the falls and censorings exactly at ``time[j]``.
    """

    time: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    censored: np.ndarray
    survival: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    greenwood: np.ndarray
    alpha: float = 0.05

    @property
    def n(self) -> int:
        """Number of observations."""
        return int(self.at_risk[0]) if len(self.at_risk) else 0

    @property
    def n_events(self) -> int:
        return int(self.events.sum())

    @property
    def n_censored(self) -> int:
        return int(self.censored.sum())

    def at(self, t: float | np.ndarray) -> np.ndarray:
        """S evaluated at ``t`` (right-continuous step; 1 before the first point)."""
        idx = np.searchsorted(self.time, np.asarray(t, dtype=float), side="right") - 1
        return np.where(idx >= 0, self.survival[np.maximum(idx, 0)], 1.0)


@functools.lru_cache(maxsize=16)
def z_value(alpha: float) -> float:
    """The two-sided normal quantile ``z_{1 - alpha/2}`` (1.95996... for alpha 0.05)."""
    return float(stats.norm.ppf(1 - alpha / 2))


def _check(durations: Any, events: Any) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(durations, dtype=float).ravel()
    e = np.asarray(events).ravel().astype(bool)
    if d.shape != e.shape:
        raise ValueError("durations and events must have the same length")
    if d.size and (not np.all(np.isfinite(d)) or d.min() < 0):
        raise ValueError("durations must be finite and >= 0")
    return d, e


def distinct_times(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(d, return_inverse=True)``, in O(n) by counting when the durations are whole
    numbers of moderate size (token, word and character counts always are)."""
    if d.size and d.max() < 50_000_000:
        di = d.astype(np.int64)
        if np.array_equal(di, d):
            present = np.bincount(di) > 0
            lookup = np.cumsum(present) - 1
            return np.flatnonzero(present).astype(float), lookup[di]
    time, inverse = np.unique(d, return_inverse=True)
    return time, inverse.ravel()


def event_table(durations: Any, events: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct times and the number of events and censorings at each: ``(time, d, c)``."""
    d, e = _check(durations, events)
    if d.size == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    time, inverse = distinct_times(d)
    total = np.bincount(inverse, minlength=len(time))
    ev = np.bincount(inverse, weights=e, minlength=len(time)).astype(np.int64)
    return time, ev, total - ev


def km_from_table(
    time: np.ndarray, d: np.ndarray, c: np.ndarray, alpha: float = 0.05, start_at_zero: bool = True
) -> KM:
    """Kaplan–Meier curve from an event table (see :func:`event_table`)."""
    time = np.asarray(time, dtype=float)
    d = np.asarray(d, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    if start_at_zero and (len(time) == 0 or time[0] > 0):
        time = np.concatenate(([0.0], time))
        d = np.concatenate(([0], d))
        c = np.concatenate(([0], c))
    removed = d + c
    n = int(removed.sum())
    at_risk = n - np.concatenate(([0], np.cumsum(removed)[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        # S as exp(sum(log(n - d) - log(n))), the same floating-point path as lifelines, so a
        # curve that lands on 0.5 exactly gives the same median in both
        log_terms = np.where(at_risk > 0, np.log(at_risk - d) - np.log(np.maximum(at_risk, 1)), 0.0)
        survival = np.exp(np.cumsum(log_terms))
        denom = at_risk.astype(float) * (at_risk - d)
        term = np.where((d > 0) & (denom > 0), d / np.where(denom > 0, denom, 1.0), 0.0)
        greenwood = np.cumsum(term)
        z = z_value(alpha)
        log_s = np.log(survival)
        log_neg = np.log(-log_s)
        width = z * np.sqrt(greenwood) / log_s
        ci_low = np.exp(-np.exp(log_neg - width))
        ci_high = np.exp(-np.exp(log_neg + width))
    ci_low = np.where(np.isnan(ci_low), 1.0, ci_low)
    ci_high = np.where(np.isnan(ci_high), 1.0, ci_high)
    return KM(time, at_risk, d, c, survival, ci_low, ci_high, greenwood, alpha)


def km(durations: Any, events: Any, alpha: float = 0.05) -> KM:
    """Kaplan–Meier estimate of S(t) with a ``1 - alpha`` log-log band (see the module notes)."""
    return km_from_table(*event_table(durations, events), alpha=alpha)


# --------------------------------------------------------------------------------------------
# Median, restricted mean, curation ratio, hazard


def _first_at_or_below(time: np.ndarray, curve: np.ndarray, q: float) -> float | None:
    """The time where ``curve`` reaches ``q``: ``None`` if its last value is above ``q``, else
    the binary-search position of ``q`` in the non-increasing curve (the first time with
    ``curve <= q`` for a monotone curve; lifelines' ``qth_survival_time`` rule, kept identical for
    the rare non-monotone band)."""
    if curve.size == 0 or curve[-1] > q:
        return None
    return float(time[np.searchsorted(-curve, -q, side="left")])


@dataclass
class Median:
    """Median coherent length and its CI; ``None`` where a curve never reaches 0.5."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "note": self.note}


def median(curve: KM) -> Median:
    """Median (first time with S <= 0.5) and its CI (first times the band reaches 0.5).

    ``value`` is ``None`` when S stays above 0.5 (more than half never fell within what was
    read); ``ci_low`` / ``ci_high`` are ``None`` when that band stays above 0.5.  ``note``
    explains any ``None``.
    """
    value = _first_at_or_below(curve.time, curve.survival, 0.5)
    low = _first_at_or_below(curve.time, curve.ci_low, 0.5)
    high = _first_at_or_below(curve.time, curve.ci_high, 0.5)
    note = None
    if curve.n == 0:
        note = "no observations"
    elif value is None:
        last = float(curve.survival[-1])
        why = "no falls" if curve.n_events == 0 else f"S stays at {last:.3f} or above"
        note = f"not reached: the curve never falls to 0.5 ({why}); use the restricted mean instead"
    elif high is None:
        note = "upper confidence limit not reached: the upper band never falls to 0.5"
    return Median(value, low, high, note)


@dataclass
class RMST:
    """Restricted mean coherent length up to ``horizon`` with its standard error and CI."""

    horizon: float
    value: float
    se: float
    ci_low: float
    ci_high: float

    def to_json(self) -> dict[str, Any]:
        return {"horizon": self.horizon, "value": self.value, "se": self.se,
                "ci_low": self.ci_low, "ci_high": self.ci_high}


def rmst(curve: KM, horizon: float) -> RMST:
    """Restricted mean ``∫_0^L S(t) dt`` with the Greenwood-type variance
    ``sum_j A_j^2 d_j / (n_j (n_j - d_j))``, ``A_j = ∫_{t_j}^L S``, and a normal CI."""
    t = curve.time
    horizon = float(horizon)
    ends = np.minimum(np.append(t[1:], np.inf), horizon)
    widths = np.clip(ends - t, 0.0, None)
    areas = curve.survival * widths
    value = float(areas.sum())
    # A_j = area from t_j to the horizon = sum of areas at and after j
    tail = np.cumsum(areas[::-1])[::-1]
    denom = curve.at_risk.astype(float) * (curve.at_risk - curve.events)
    ok = (curve.events > 0) & (denom > 0) & (t <= horizon)
    var = float(np.sum(tail[ok] ** 2 * curve.events[ok] / denom[ok]))
    se = math.sqrt(var)
    z = z_value(curve.alpha)
    return RMST(horizon, value, se, value - z * se, value + z * se)


def curation(curve: KM, lengths: list[float]) -> list[dict[str, Any]]:
    """Curation ratio ``1 / S(L)``: how many samples one reads to find one that holds up past L.

    ``ratio`` is ``None`` when S(L) is 0 or L lies beyond the longest observation while the
    curve is still above 0 (S(L) unknown); ``note`` says which.  When S(L) is 0 the ratio is
    infinite (no number of samples read finds one that holds up): ``infinite`` is then true and
    the note says "none of the n samples held past L".
    """
    out: list[dict[str, Any]] = []
    t_max = float(curve.time[-1]) if len(curve.time) else 0.0
    for length in lengths:
        s = float(curve.at(length))
        entry: dict[str, Any] = {"length": float(length), "survival": s, "ratio": None, "infinite": False,
                                 "note": None}
        if length > t_max and s > 0:
            entry["survival"] = None
            entry["note"] = f"beyond the longest observation ({t_max:g})"
        elif s <= 0:
            entry["infinite"] = True
            entry["note"] = f"none of the {curve.n} samples held past {length:g}"
        else:
            entry["ratio"] = 1.0 / s
        out.append(entry)
    return out


def hazard_windows(durations: Any, events: Any, edges: Any, alpha: float = 0.05) -> list[dict[str, Any]]:
    """Per-unit hazard of falling in windows ``[edges[k], edges[k+1])``.

    Durations count units (tokens, words, characters).  A sample that falls at ``d`` was at risk
    on units ``0..d`` (``d + 1`` units, the last one falling); one censored at ``c`` was at risk
    on units ``0..c-1``.  The hazard of a window is its falls divided by its units at risk, with
    an exact Poisson (Garwood) CI.
    """
    return hazard_windows_from_table(*event_table(durations, events), edges, alpha=alpha)


def hazard_windows_from_table(
    time: np.ndarray, d: np.ndarray, c: np.ndarray, edges: Any, alpha: float = 0.05
) -> list[dict[str, Any]]:
    """:func:`hazard_windows` from an event table ``(time, d, c)``."""
    time = np.asarray(time, dtype=float)
    d = np.asarray(d, dtype=float)
    c = np.asarray(c, dtype=float)
    edges = np.asarray(edges, dtype=float)
    # exposure ends (one past the last unit at risk) with their multiplicities, sorted
    ends = np.concatenate((time + 1.0, time))
    weight = np.concatenate((d, c))
    order = np.argsort(ends, kind="stable")
    ends, weight = ends[order], weight[order]
    cum_w = np.concatenate(([0.0], np.cumsum(weight)))
    cum_wx = np.concatenate(([0.0], np.cumsum(weight * ends)))
    total = cum_w[-1]
    cum_d = np.concatenate(([0.0], np.cumsum(d)))
    a, b = edges[:-1], edges[1:]
    ia = np.searchsorted(ends, a, side="right")
    ib = np.searchsorted(ends, b, side="right")
    exposure = (cum_wx[ib] - cum_wx[ia]) - a * (cum_w[ib] - cum_w[ia]) + (total - cum_w[ib]) * (b - a)
    falls = cum_d[np.searchsorted(time, b, side="left")] - cum_d[np.searchsorted(time, a, side="left")]
    k = falls.round().astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = k / exposure
        low = np.where(k > 0, stats.chi2.ppf(alpha / 2, 2 * np.maximum(k, 1)) / 2 / exposure, 0.0)
        high = stats.chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2 / exposure
    out = []
    for row in zip(a.tolist(), b.tolist(), k.tolist(), exposure.tolist(), rate.tolist(), low.tolist(),
                   high.tolist(), strict=True):
        entry: dict[str, Any] = dict(zip(("start", "end", "events", "exposure", "hazard", "ci_low", "ci_high"),
                                         row, strict=True))
        if not row[3] > 0:
            entry["hazard"] = entry["ci_low"] = entry["ci_high"] = None
        out.append(entry)
    return out


def nice_edges(t_max: float, n_windows: int = 10) -> np.ndarray:
    """Window edges ``0, w, 2w, ...`` covering ``[0, t_max]`` with a round width ``w``."""
    if t_max <= 0:
        return np.array([0.0, 1.0])
    raw = t_max / n_windows
    mag = 10 ** math.floor(math.log10(raw))
    width = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    width = max(width, 1.0)
    count = int(math.ceil(t_max / width + 1e-9))
    if count * width <= t_max:
        count += 1
    edges: np.ndarray = np.arange(count + 1, dtype=float) * width
    return edges


# --------------------------------------------------------------------------------------------
# Cumulative incidence (Aalen–Johansen)


@dataclass
class CumulativeIncidence:
    """Cumulative incidence of each cause at every distinct observed time.

    ``cif[k, j]`` is P(falling of cause ``causes[k]`` by ``time[j]``); the rows plus the overall
    Kaplan–Meier ``survival`` sum to 1 at every time.
    """

    time: np.ndarray
    causes: list[Any]
    cif: np.ndarray
    events: np.ndarray
    survival: np.ndarray


def aalen_johansen(durations: Any, causes: Any, censored_code: Any = 0) -> CumulativeIncidence:
    """Aalen–Johansen estimator of the cumulative incidence of competing causes.

    ``causes`` holds, per observation, the cause of its event or ``censored_code`` when it was
    censored.  At each distinct time ``t_j`` with ``n_j`` at risk, ``d_kj`` events of cause ``k``
    and ``d_j`` of any cause, ``CIF_k(t_j) = sum_{i<=j} S(t_{i-1}) d_ki / n_i`` where S is the
    all-cause Kaplan–Meier curve.  Ties (between causes, and with censorings, which stay at
    risk at their own time) are handled exactly, with no jittering.
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
    return aalen_johansen_codes(d, codes, cause_list)


def aalen_johansen_codes(durations: np.ndarray, codes: np.ndarray, causes: list[Any]) -> CumulativeIncidence:
    """:func:`aalen_johansen` on integer cause codes ``0..K-1`` (``-1`` = censored)."""
    d = np.asarray(durations, dtype=float)
    codes = np.asarray(codes, dtype=np.int64)
    k = len(causes)
    if d.size == 0:
        return CumulativeIncidence(np.zeros(0), list(causes), np.zeros((k, 0)), np.zeros((k, 0), np.int64), np.zeros(0))
    time, inverse = distinct_times(d)
    t_n = len(time)
    total = np.bincount(inverse, minlength=t_n)
    ev = codes >= 0
    per_cause = np.bincount(codes[ev] * t_n + inverse[ev], minlength=k * t_n).reshape(k, t_n)
    d_all = per_cause.sum(axis=0)
    at_risk = d.size - np.concatenate(([0], np.cumsum(total)[:-1]))
    factor = 1.0 - d_all / at_risk
    survival = np.cumprod(factor)
    before = np.concatenate(([1.0], survival[:-1]))
    # probabilities stay in [0, 1] exactly: a sum of increments can round to 1 + 2e-16
    cif = np.clip(np.cumsum(before * per_cause / at_risk, axis=1), 0.0, 1.0)
    survival = np.clip(survival, 0.0, 1.0)
    return CumulativeIncidence(time, list(causes), cif, per_cause, survival)


# --------------------------------------------------------------------------------------------
# Comparing groups: log-rank (pairwise, K-sample), trend


@dataclass
class GroupTables:
    """Event tables of several groups on one shared grid of distinct times.

    ``d[g, j]`` / ``c[g, j]`` count events / censorings of group ``g`` at ``time[j]``;
    ``at_risk[g, j]`` counts its durations ``>= time[j]``.
    """

    time: np.ndarray
    d: np.ndarray
    c: np.ndarray
    at_risk: np.ndarray

    @classmethod
    def build(cls, durations: Any, events: Any, groups: Any, n_groups: int | None = None) -> GroupTables:
        """From flat arrays with an integer group code ``0..G-1`` per observation."""
        dur, e = _check(durations, events)
        g = np.asarray(groups, dtype=np.int64).ravel()
        n_g = int(n_groups if n_groups is not None else (g.max() + 1 if g.size else 0))
        time, inverse = distinct_times(dur)
        t_n = len(time)
        flat = g * t_n + inverse
        total = np.bincount(flat, minlength=n_g * t_n).reshape(n_g, t_n)
        d = np.bincount(flat, weights=e, minlength=n_g * t_n).reshape(n_g, t_n).astype(np.int64)
        c = total - d
        removed_before = np.concatenate((np.zeros((n_g, 1), np.int64), np.cumsum(total, axis=1)[:, :-1]), axis=1)
        at_risk = total.sum(axis=1, keepdims=True) - removed_before
        return cls(time, d, c, at_risk)

    def table(self, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Group ``g``'s own event table ``(time, d, c)`` (times where it has observations)."""
        keep = (self.d[g] + self.c[g]) > 0
        return self.time[keep], self.d[g][keep], self.c[g][keep]


@dataclass
class LogRank:
    """A log-rank chi-square test (``df`` degrees of freedom)."""

    statistic: float
    df: int
    p_value: float
    observed: list[float] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)


def _oe_and_var(tables: GroupTables, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed, expected and the hypergeometric covariance of (O - E) over ``rows``."""
    n_kt = tables.at_risk[rows].astype(float)
    d_kt = tables.d[rows].astype(float)
    n_t = n_kt.sum(axis=0)
    d_t = d_kt.sum(axis=0)
    use = (d_t > 0) & (n_t > 0)
    n_kt, d_kt, n_t, d_t = n_kt[:, use], d_kt[:, use], n_t[use], d_t[use]
    p = n_kt / n_t
    observed = d_kt.sum(axis=1)
    expected = (p * d_t).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n_t > 1, d_t * (n_t - d_t) / (n_t - 1), 0.0)
    cov = np.diag((p * w).sum(axis=1)) - (p * w) @ p.T
    return observed, expected, cov


def logrank(tables: GroupTables, rows: Any | None = None) -> LogRank:
    """Log-rank test of equal survival across ``rows`` (default: all groups), ``K - 1`` df."""
    rows = np.arange(tables.d.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    observed, expected, cov = _oe_and_var(tables, rows)
    diff = (observed - expected)[:-1]
    sub = cov[:-1, :-1]
    df = len(rows) - 1
    if df < 1 or not np.any(sub):
        return LogRank(0.0, max(df, 0), 1.0, observed.tolist(), expected.tolist())
    stat = float(diff @ np.linalg.pinv(sub) @ diff)
    return LogRank(stat, df, float(stats.chi2.sf(stat, df)), observed.tolist(), expected.tolist())


def logrank_pairwise(tables: GroupTables) -> list[tuple[int, int, LogRank]]:
    """Two-sample log-rank tests between every pair of groups ``(a, b, result)``, ``a < b``."""
    n_g = tables.d.shape[0]
    return [(a, b, logrank(tables, [a, b])) for a in range(n_g) for b in range(a + 1, n_g)]


@dataclass
class Trend:
    """Log-rank test for trend: ``U = sum_k s_k (O_k - E_k)``, chi-square ``U^2 / Var U`` (1 df).

    ``U > 0`` means groups with higher scores fall more often than expected (shorter coherent
    length as the score grows); ``U < 0`` means they hold up longer.
    """

    statistic: float
    p_value: float
    u: float
    variance: float
    scores: list[float]


def trend_test(tables: GroupTables, scores: Any) -> Trend:
    """Log-rank test for trend across groups with ordered ``scores`` (one per group)."""
    s = np.asarray(scores, dtype=float)
    rows = np.arange(tables.d.shape[0])
    observed, expected, cov = _oe_and_var(tables, rows)
    u = float(s @ (observed - expected))
    var = float(s @ cov @ s)
    if var <= 0:
        return Trend(0.0, 1.0, u, var, s.tolist())
    stat = u * u / var
    return Trend(stat, float(stats.chi2.sf(stat, 1)), u, var, s.tolist())


# --------------------------------------------------------------------------------------------
# Scaling: log median (or restricted mean) against log parameter count, with a bootstrap CI


def _replicate_stat(
    time: np.ndarray, dd: np.ndarray, cc: np.ndarray, n: int, statistic: str, horizon: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Median (nan where not reached) or restricted mean of replicate event tables (rows);
    also whether each median was reached."""
    removed = dd + cc
    reps = dd.shape[0]
    at_risk = n - np.concatenate((np.zeros((reps, 1)), np.cumsum(removed, axis=1)[:, :-1]), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        safe = np.where(at_risk > 0, at_risk, 1.0)
        surv = np.exp(np.cumsum(np.where(at_risk > 0, np.log(safe - dd) - np.log(safe), 0.0), axis=1))
    if statistic == "median":
        below = surv <= 0.5
        reached = below.any(axis=1)
        return np.where(reached, time[np.argmax(below, axis=1)], np.nan), reached
    # S is 1 on [0, time[0]) and surv[:, j] on [time[j], time[j+1])
    assert horizon is not None  # the restricted mean always has one (checked by the caller)
    clipped = np.minimum(time, horizon)
    widths = np.diff(np.append(clipped, horizon))
    return float(clipped[0]) + (surv * widths).sum(axis=1), np.ones(reps, dtype=bool)


def bootstrap_statistic(
    time: np.ndarray, d: np.ndarray, c: np.ndarray, statistic: str, horizon: float | None, n_boot: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n_boot`` bootstrap replicates of one group's median or restricted mean, from its event
    table ``(time, d, c)``; replicates whose median is not reached are ``nan``.

    Resampling n observations with replacement is a multinomial draw over the distinct
    (time, event) cells.  The statistic only depends on the cells up to a cut time T (the
    horizon for the restricted mean; for the median, where the estimate has fallen to 0.45 and its
    upper confidence band to 0.5) and on
    how many observations lie beyond T, so the cells beyond T are drawn as one tail cell, and
    split (a conditional multinomial, still exact) only for the rare replicates whose median
    lies beyond T.  Each replicate thus costs the number of distinct times before T, not n.
    """
    if statistic not in ("median", "rmst"):
        raise ValueError("statistic must be 'median' or 'rmst'")
    if statistic == "rmst" and horizon is None:
        raise ValueError("the restricted mean needs a horizon")
    time = np.asarray(time, dtype=float)
    d = np.asarray(d, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    keep = (d + c) > 0
    time, d, c = time[keep], d[keep], c[keep]
    n = int(d.sum() + c.sum())
    if n == 0:
        return np.full(n_boot, np.nan)
    if statistic == "rmst":
        assert horizon is not None
        head = int(np.searchsorted(time, horizon, side="left"))  # times < horizon matter
    else:
        curve = km_from_table(time, d, c, start_at_zero=False)
        below = np.flatnonzero((curve.survival <= 0.45) & (curve.ci_high <= 0.5))
        head = int(below[0]) + 1 if below.size else len(time)
    head = max(head, 1)
    tail_counts = np.concatenate((d[head:], c[head:])).astype(float)
    tail_total = float(tail_counts.sum())
    counts = np.concatenate((d[:head], c[:head], [tail_total]))
    used = np.flatnonzero(counts > 0)  # empty cells cost a draw each and never get one
    draws = np.zeros((n_boot, counts.size))
    draws[:, used] = rng.multinomial(n, counts[used] / counts[used].sum(), size=n_boot)
    dd = np.concatenate((draws[:, :head], np.zeros((n_boot, 1))), axis=1)
    cc = np.concatenate((draws[:, head:2 * head], draws[:, 2 * head:]), axis=1)
    # the tail cell sits just after the head's times, as censorings (it only removes at-risk)
    t_head = np.append(time[:head], np.inf)
    values, reached = _replicate_stat(t_head, dd, cc, n, statistic, horizon)
    if statistic == "median" and tail_total > 0:
        redo = np.flatnonzero(~reached & (draws[:, -1] > 0))
        if redo.size:
            t_n = len(time)
            split = np.stack([rng.multinomial(int(draws[r, -1]), tail_counts / tail_total) for r in redo])
            full_d = np.zeros((redo.size, t_n))
            full_c = np.zeros((redo.size, t_n))
            full_d[:, :head] = draws[redo, :head]
            full_c[:, :head] = draws[redo, head:2 * head]
            full_d[:, head:] = split[:, : t_n - head]
            full_c[:, head:] = split[:, t_n - head:]
            values[redo], _ = _replicate_stat(time, full_d, full_c, n, statistic, horizon)
    values[np.isinf(values)] = np.nan
    return values


@dataclass
class ScalingFit:
    """Least-squares fit of ``log(statistic)`` on ``log(n_params)`` with a bootstrap slope CI."""

    statistic: str
    slope: float
    intercept: float
    r2: float
    slope_ci_low: float | None
    slope_ci_high: float | None
    n_boot: int
    n_boot_used: int
    points: list[dict[str, Any]]
    horizon: float | None = None


def _slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean()
    yc = y - y.mean(axis=-1, keepdims=True)
    slope: np.ndarray = (yc @ xc) / (xc @ xc)
    return slope


def scaling_fit(
    groups: list[tuple[str, float, np.ndarray, np.ndarray, np.ndarray]],
    statistic: str,
    horizon: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> ScalingFit:
    """Fit ``log(stat) = a + b log(n_params)`` over groups ``(label, n_params, time, d, c)``
    (each group's event table, see :func:`event_table`).

    ``statistic`` is ``"median"`` or ``"rmst"`` (restricted mean up to ``horizon``).  The slope CI
    is the percentile interval of the slope over bootstrap replicates that resample every group's
    observations; replicates where some statistic is undefined or 0 are left out (``n_boot_used``).
    """
    if statistic not in ("median", "rmst"):
        raise ValueError("statistic must be 'median' or 'rmst'")
    x = np.log(np.array([g[1] for g in groups], dtype=float))
    values = []
    for _, _, time, d, c in groups:
        curve = km_from_table(time, d, c, alpha=alpha)
        values.append(median(curve).value if statistic == "median" else rmst(curve, horizon).value)  # type: ignore[arg-type]
    y_vals = np.array([np.nan if v is None else v for v in values], dtype=float)
    if np.any(~np.isfinite(y_vals)) or np.any(y_vals <= 0):
        raise ValueError(f"the {statistic} is undefined or 0 for some group")
    y = np.log(y_vals)
    slope = float(_slope(x, y))
    intercept = float(y.mean() - slope * x.mean())
    resid = y - (intercept + slope * x)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else 1.0
    rng = np.random.default_rng(seed)
    reps = np.column_stack([
        bootstrap_statistic(time, d, c, statistic, horizon, n_boot, rng) for _, _, time, d, c in groups
    ])
    with np.errstate(invalid="ignore"):
        ok = np.all(np.isfinite(reps) & (reps > 0), axis=1)
    low = high = None
    if ok.sum() >= 2:
        slopes = _slope(x, np.log(reps[ok]))
        low, high = (float(v) for v in np.quantile(slopes, [alpha / 2, 1 - alpha / 2]))
    points = [{"label": g[0], "n_params": g[1], "value": float(v)} for g, v in zip(groups, y_vals, strict=True)]
    return ScalingFit(statistic, slope, intercept, r2, low, high, n_boot, int(ok.sum()), points,
                      horizon if statistic == "rmst" else None)
