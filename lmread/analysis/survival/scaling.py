"""Scaling: log median (or restricted mean) coherent length against log parameter count, with a
bootstrap CI of the slope.  The bootstrap resamples each group's event table as a multinomial
draw and runs the package's product-limit kernel on all replicates at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from lmread.analysis.survival.kaplan_meier import km_from_table, median, rmst
from lmread.analysis.survival.tables import EventTable, at_risk_counts, json_number, product_limit

STATISTICS = ("median", "rmst")


def _replicate_stat(
    time: np.ndarray, dd: np.ndarray, cc: np.ndarray, n: int, statistic: str, horizon: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Median (nan where not reached) or restricted mean of replicate event tables (rows);
    also whether each median was reached."""
    surv = product_limit(at_risk_counts(dd + cc, n), dd)
    reps = dd.shape[0]
    if statistic == "median":
        below = surv <= 0.5
        reached = np.asarray(below.any(axis=1))
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
    if statistic not in STATISTICS:
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


class ScalingGroup(NamedTuple):
    """One model size in a scaling fit: its label, parameter count and event table."""

    label: str
    n_params: float
    table: EventTable


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

    def to_json(self) -> dict[str, Any]:
        """The fit's numbers and points (``horizon`` only for the restricted mean)."""
        return {"statistic": self.statistic, "slope": self.slope, "intercept": self.intercept, "r2": self.r2,
                "slope_ci_low": self.slope_ci_low, "slope_ci_high": self.slope_ci_high, "n_boot": self.n_boot,
                "n_boot_used": self.n_boot_used, "points": self.points, "horizon": json_number(self.horizon)}


def _slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean()
    yc = y - y.mean(axis=-1, keepdims=True)
    slope: np.ndarray = (yc @ xc) / (xc @ xc)
    return slope


def scaling_fit(
    groups: list[ScalingGroup],
    statistic: str,
    horizon: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> ScalingFit:
    """Fit ``log(stat) = a + b log(n_params)`` over groups (each with its event table, see
    :func:`~lmread.analysis.survival.tables.event_table`).

    ``statistic`` is ``"median"`` or ``"rmst"`` (restricted mean up to ``horizon``).  The slope CI
    is the percentile interval of the slope over bootstrap replicates that resample every group's
    observations; replicates where some statistic is undefined or 0 are left out (``n_boot_used``).
    """
    if statistic not in STATISTICS:
        raise ValueError("statistic must be 'median' or 'rmst'")
    if statistic == "rmst" and horizon is None:
        raise ValueError("the restricted mean needs a horizon")
    x = np.log(np.array([g.n_params for g in groups], dtype=float))
    values: list[float | None] = []
    for group in groups:
        curve = km_from_table(*group.table, alpha=alpha)
        values.append(median(curve).value if statistic == "median" else rmst(curve, horizon or 0.0).value)
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
        bootstrap_statistic(*group.table, statistic, horizon, n_boot, rng) for group in groups
    ])
    with np.errstate(invalid="ignore"):
        ok = np.all(np.isfinite(reps) & (reps > 0), axis=1)
    low = high = None
    if ok.sum() >= 2:
        slopes = _slope(x, np.log(reps[ok]))
        low, high = (float(v) for v in np.quantile(slopes, [alpha / 2, 1 - alpha / 2]))
    points = [{"label": g.label, "n_params": g.n_params, "value": float(v)} for g, v in zip(groups, y_vals, strict=True)]
    return ScalingFit(statistic, slope, intercept, r2, low, high, n_boot, int(ok.sum()), points,
                      horizon if statistic == "rmst" else None)
