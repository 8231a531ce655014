"""Kaplan–Meier curves and what is read off them: median, restricted mean, curation ratio, and
the per-unit hazard in windows.

Conventions (the same as lifelines' ``KaplanMeierFitter``):

* ``S(t) = prod_{t_j <= t} (1 - d_j / n_j)`` (summed in logs, as lifelines does: see
  :mod:`~lmread.analysis.survival.tables`) where ``n_j`` counts everyone whose duration is
  ``>= t_j`` (a sample censored at ``t_j`` is still at risk at ``t_j``).
* The 95% band is the log-log ("exponential Greenwood") interval
  ``exp(-exp(log(-log S) ± z sqrt(V) / log S))`` with ``V = sum d_j / (n_j (n_j - d_j))``;
  where ``S = 1`` the band is ``[1, 1]``; a term with ``n_j = d_j`` (the curve drops to 0) adds 0.
* The curve starts with a point at ``t = 0`` (``S = 1`` unless something fell at 0).
* The median is the first time with ``S(t) <= 0.5``; its CI is the first time each band
  reaches 0.5 (lifelines' ``median_survival_times(confidence_interval_)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmread.analysis.distributions import chi2_ppf
from lmread.analysis.survival.tables import (
    at_risk_counts,
    event_table,
    greenwood_terms,
    json_number,
    json_numbers,
    product_limit,
    z_value,
)


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
        """Number of falls."""
        return int(self.events.sum())

    @property
    def n_censored(self) -> int:
        """Number of censored observations."""
        return int(self.censored.sum())

    def at(self, t: float | np.ndarray) -> np.ndarray:
        """S evaluated at ``t`` (right-continuous step; 1 before the first point)."""
        idx = np.searchsorted(self.time, np.asarray(t, dtype=float), side="right") - 1
        return np.where(idx >= 0, self.survival[np.maximum(idx, 0)], 1.0)

    def to_json(self) -> list[dict[str, Any]]:
        """Every step of the curve: time, S, its band and the counts (the survival document's
        ``curve`` of a group)."""
        return [
            {"t": t, "survival": s, "ci_low": lo, "ci_high": hi, "at_risk": n, "events": e, "censored": cz}
            for t, s, lo, hi, n, e, cz in zip(
                json_numbers(self.time), self.survival.tolist(), self.ci_low.tolist(), self.ci_high.tolist(),
                self.at_risk.tolist(), self.events.tolist(), self.censored.tolist(), strict=True,
            )
        ]


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
    at_risk = at_risk_counts(d + c)
    survival = product_limit(at_risk, d)
    greenwood = np.cumsum(greenwood_terms(at_risk, d))
    with np.errstate(divide="ignore", invalid="ignore"):
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
# Median, restricted mean, curation ratio


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
        """``{"value", "ci_low", "ci_high", "note"}``, whole numbers as integers."""
        return {"value": json_number(self.value), "ci_low": json_number(self.ci_low),
                "ci_high": json_number(self.ci_high), "note": self.note}


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
        """``{"horizon", "value", "se", "ci_low", "ci_high"}``."""
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


@dataclass(frozen=True)
class CurationRatio:
    """``1 / S(L)`` at one length ``L``: how many samples one reads to find one holding up past L.

    ``ratio`` is ``None`` when S(L) is 0 (``infinite``) or unknown (L beyond the longest
    observation while the curve is still above 0; ``survival`` is then ``None`` too); ``note``
    says which.
    """

    length: float
    survival: float | None
    ratio: float | None
    infinite: bool
    note: str | None

    def to_json(self) -> dict[str, Any]:
        """``{"length", "survival", "ratio", "infinite", "note"}``."""
        return {"length": self.length, "survival": self.survival, "ratio": self.ratio, "infinite": self.infinite,
                "note": self.note}


def curation(curve: KM, lengths: list[float]) -> list[CurationRatio]:
    """Curation ratio ``1 / S(L)`` at each length: how many samples one reads to find one that
    holds up past L.

    When S(L) is 0 the ratio is infinite (no number of samples read finds one that holds up): the
    note then says "none of the n samples held past L".
    """
    out: list[CurationRatio] = []
    t_max = float(curve.time[-1]) if len(curve.time) else 0.0
    for length in lengths:
        s = float(curve.at(length))
        if length > t_max and s > 0:
            out.append(CurationRatio(float(length), None, None, False, f"beyond the longest observation ({t_max:g})"))
        elif s <= 0:
            out.append(CurationRatio(float(length), s, None, True, f"none of the {curve.n} samples held past {length:g}"))
        else:
            out.append(CurationRatio(float(length), s, 1.0 / s, False, None))
    return out


# --------------------------------------------------------------------------------------------
# Hazard in windows


@dataclass(frozen=True)
class HazardWindow:
    """Falls per unit at risk in the window ``[start, end)`` with an exact Poisson CI (``None``
    where nothing was at risk in it)."""

    start: float
    end: float
    events: int
    exposure: float
    hazard: float | None
    ci_low: float | None
    ci_high: float | None

    def to_json(self) -> dict[str, Any]:
        """``{"start", "end", "events", "exposure", "hazard", "ci_low", "ci_high"}``."""
        return {"start": self.start, "end": self.end, "events": self.events, "exposure": self.exposure,
                "hazard": self.hazard, "ci_low": self.ci_low, "ci_high": self.ci_high}


def hazard_windows(durations: Any, events: Any, edges: Any, alpha: float = 0.05) -> list[HazardWindow]:
    """Per-unit hazard of falling in windows ``[edges[k], edges[k+1])``.

    Durations count units (tokens, words, characters).  A sample that falls at ``d`` was at risk
    on units ``0..d`` (``d + 1`` units, the last one falling); one censored at ``c`` was at risk
    on units ``0..c-1``.  The hazard of a window is its falls divided by its units at risk, with
    an exact Poisson (Garwood) CI.
    """
    return hazard_windows_from_table(*event_table(durations, events), edges, alpha=alpha)


def hazard_windows_from_table(
    time: np.ndarray, d: np.ndarray, c: np.ndarray, edges: Any, alpha: float = 0.05
) -> list[HazardWindow]:
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
        low = np.where(k > 0, chi2_ppf(alpha / 2, 2 * np.maximum(k, 1)) / 2 / exposure, 0.0)
        high = chi2_ppf(1 - alpha / 2, 2 * k + 2) / 2 / exposure
    out = []
    for start, end, n_k, exp, h, lo, hi in zip(a.tolist(), b.tolist(), k.tolist(), exposure.tolist(), rate.tolist(),
                                               low.tolist(), high.tolist(), strict=True):
        if exp > 0:
            out.append(HazardWindow(start, end, n_k, exp, h, lo, hi))
        else:
            out.append(HazardWindow(start, end, n_k, exp, None, None, None))
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
