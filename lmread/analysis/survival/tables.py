"""Event tables and the one product-limit kernel every estimator of the package shares.

An event table holds the distinct observed times of some durations (in tokens, words, sentences
or characters) and, at each, the number of falls ``d`` and of censorings ``c``.  From it,
:func:`at_risk_counts` gives everyone still at risk at each time (a sample censored at ``t`` is
still at risk at ``t``) and :func:`product_limit` the survival curve
``S(t_j) = prod_{i <= j} (1 - d_i / n_i)``, summed in logs as lifelines does, so a curve that
lands on 0.5 exactly gives the same median in both.  :func:`greenwood_terms` are the
``d / (n (n - d))`` terms of Greenwood's variance.  Kaplan–Meier, the Aalen–Johansen incidence
(and its variance) and the bootstrap replicates of the scaling fit all call these three, on one
table or on many rows of tables at once (the last axis is time), as lifelines'
``_additive_estimate`` serves both Kaplan–Meier and Nelson–Aalen.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from lmread.analysis.distributions import norm_ppf


@functools.lru_cache(maxsize=16)
def z_value(alpha: float) -> float:
    """The two-sided normal quantile ``z_{1 - alpha/2}`` (1.95996... for alpha 0.05)."""
    return float(norm_ppf(1 - alpha / 2))


def check_arrays(durations: Any, events: Any) -> tuple[np.ndarray, np.ndarray]:
    """Durations as floats and event flags as booleans, both flat; ``ValueError`` when their
    lengths differ or a duration is negative or not finite."""
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


class EventTable(NamedTuple):
    """Distinct times with the number of falls ``d`` and censorings ``c`` at each."""

    time: np.ndarray
    d: np.ndarray
    c: np.ndarray


def event_table(durations: Any, events: Any) -> EventTable:
    """The event table ``(time, d, c)`` of durations and event flags (1 = fell, 0 = censored)."""
    d, e = check_arrays(durations, events)
    if d.size == 0:
        return EventTable(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    time, inverse = distinct_times(d)
    total = np.bincount(inverse, minlength=len(time))
    ev = np.bincount(inverse, weights=e, minlength=len(time)).astype(np.int64)
    return EventTable(time, ev, total - ev)


# --------------------------------------------------------------------------------------------
# The kernel


def at_risk_counts(removed: np.ndarray, n: Any = None) -> np.ndarray:
    """How many are at risk at each time (the last axis): ``n`` less everyone removed (fallen or
    censored) at earlier times.  ``n`` defaults to the sum of ``removed`` along that axis."""
    removed = np.asarray(removed)
    if n is None:
        n = removed.sum(axis=-1, keepdims=True)
    if removed.shape[-1] == 0:
        return removed.copy()
    lead = np.zeros((*removed.shape[:-1], 1), dtype=removed.dtype)
    before = np.concatenate((lead, np.cumsum(removed, axis=-1)[..., :-1]), axis=-1)
    out: np.ndarray = n - before
    return out


def product_limit(at_risk: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The product-limit curve ``prod (1 - d / n)`` along the last axis, as
    ``exp(cumsum(log(n - d) - log(n)))``; a time with nobody at risk contributes a factor 1."""
    at_risk = np.asarray(at_risk)
    live = at_risk > 0
    safe = np.where(live, at_risk, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.where(live, np.log(safe - d) - np.log(safe), 0.0)
        curve: np.ndarray = np.exp(np.cumsum(steps, axis=-1))
    return curve


def greenwood_terms(at_risk: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Greenwood's ``d / (n (n - d))`` at each time; 0 where nothing fell or nobody is left after
    the time (``n = d``: the curve drops to 0)."""
    denom = np.asarray(at_risk).astype(float) * (at_risk - d)
    live = denom > 0
    terms: np.ndarray = np.where((d > 0) & live, d / np.where(live, denom, 1.0), 0.0)
    return terms


# --------------------------------------------------------------------------------------------
# Several groups on one grid


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
        dur, e = check_arrays(durations, events)
        g = np.asarray(groups, dtype=np.int64).ravel()
        n_g = int(n_groups if n_groups is not None else (g.max() + 1 if g.size else 0))
        time, inverse = distinct_times(dur)
        t_n = len(time)
        flat = g * t_n + inverse
        total = np.bincount(flat, minlength=n_g * t_n).reshape(n_g, t_n)
        d = np.bincount(flat, weights=e, minlength=n_g * t_n).reshape(n_g, t_n).astype(np.int64)
        return cls(time, d, total - d, at_risk_counts(total))

    def rows(self, groups: Any) -> GroupTables:
        """The tables of some groups only (on the same grid)."""
        keep = np.asarray(groups, dtype=np.int64)
        return GroupTables(self.time, self.d[keep], self.c[keep], self.at_risk[keep])

    def table(self, g: int) -> EventTable:
        """Group ``g``'s own event table ``(time, d, c)`` (times where it has observations)."""
        keep = (self.d[g] + self.c[g]) > 0
        return EventTable(self.time[keep], self.d[g][keep], self.c[g][keep])


# --------------------------------------------------------------------------------------------
# JSON numbers


def json_numbers(values: np.ndarray) -> list[Any]:
    """A JSON-ready list: integers where every value is integral, floats otherwise (``None`` for
    values that are not finite)."""
    arr = np.asarray(values, dtype=float)
    if arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        ints: list[Any] = arr.astype(np.int64).tolist()
        return ints
    return [None if not math.isfinite(v) else v for v in arr.tolist()]


def json_number(value: float | None) -> Any:
    """One JSON number: an integer where it is integral, ``None`` where missing or not finite."""
    if value is None or not math.isfinite(value):
        return None
    return int(value) if float(value).is_integer() else float(value)
