"""Power of the two-sided log-rank test: Schoenfeld's events, the discrete curves a simulation
draws from (a pilot's Kaplan–Meier curves with its censoring, or assumed curves), the log-rank
vectorised over replicates, the simulated power curve and the N reaching a target, and the
O'Brien–Fleming spending boundary of an interim look (see :mod:`lmread.analysis.plan`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmread.analysis.distributions import chi2_isf, norm_cdf, norm_pdf, norm_ppf
from lmread.errors import OptionError

#: the largest N per group a power simulation draws (beyond it the plan keeps Schoenfeld's N)
MAX_SIMULATED_N = 20_000
_CELLS = 8_000_000  # replicate x group x time cells per chunk of the log-rank


# --------------------------------------------------------------------------------------------
# Checks and Schoenfeld


def check_level(alpha: float, power: float) -> None:
    """Raise a one-line :class:`OptionError` unless ``alpha`` and ``power`` lie in (0, 1)."""
    for name, value in (("alpha", alpha), ("power", power)):
        if not (isinstance(value, (int, float)) and 0.0 < float(value) < 1.0):
            raise OptionError(f"--{name} {value} must lie strictly between 0 and 1")


def check_hazard_ratio(hr: float, what: str = "the hazard ratio") -> None:
    """Raise a one-line :class:`OptionError` for a hazard ratio that no N can detect."""
    if not (isinstance(hr, (int, float)) and math.isfinite(hr) and hr > 0):
        raise OptionError(f"{what} {hr} must be a positive number")
    if abs(math.log(hr)) < 1e-3:
        raise OptionError(f"{what} is {hr:.3g}: the groups do not differ, so no number of samples detects a "
                          "difference; give --hazard-ratio for the smallest difference worth detecting")


def schoenfeld_events(hr: float, alpha: float = 0.05, power: float = 0.8, share: float = 0.5) -> int:
    """Events a two-sided log-rank test at ``alpha`` needs for ``power`` against hazard ratio
    ``hr`` with a share ``share`` of the samples in one group (Schoenfeld 1983), rounded up."""
    check_level(alpha, power)
    check_hazard_ratio(hr)
    z = norm_ppf(1 - alpha / 2) + norm_ppf(power)
    d = z * z / (share * (1 - share) * math.log(hr) ** 2)
    return int(math.ceil(d - 1e-9))


def samples_for_events(events: int, p_event: float, what: str) -> int:
    """Samples in all that give ``events`` events when each falls with probability ``p_event``."""
    if not p_event > 0:
        raise OptionError(f"{what}: no sample falls within the length read, so no number of samples gives "
                          "the events a log-rank test needs")
    return int(math.ceil(events / p_event - 1e-9))


# --------------------------------------------------------------------------------------------
# Discrete distributions on a shared grid (the pilot's times, or 0..L)


@dataclass
class Arm:
    """One group's model for simulation on a time ``grid``: the probability mass of the event time
    at each grid point (what is left, ``1 - sum``, is "no fall within the grid"), and the
    censoring time's mass (what is left: read to the end of the grid)."""

    label: str
    event_mass: np.ndarray
    censor_mass: np.ndarray

    @property
    def p_event_by_end(self) -> float:
        """Probability of a fall within the grid (``1 - S(end)``)."""
        return float(min(1.0, self.event_mass.sum()))


def km_masses(grid: np.ndarray, durations: np.ndarray, events: np.ndarray) -> np.ndarray:
    """The Kaplan–Meier curve of ``durations``/``events`` as probability masses on ``grid``
    (``S(t-) - S(t)`` at each grid time; the curve's last value is the mass left over)."""
    d = np.bincount(np.searchsorted(grid, durations), weights=events.astype(float), minlength=grid.size)
    total = np.bincount(np.searchsorted(grid, durations), minlength=grid.size).astype(float)
    at_risk = durations.size - np.concatenate(([0.0], np.cumsum(total)[:-1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(at_risk > 0, 1.0 - d / at_risk, 1.0)
    s = np.cumprod(factor)
    before = np.concatenate(([1.0], s[:-1]))
    return np.clip(before - s, 0.0, 1.0)


def pilot_arms(grid: np.ndarray, samples: list[tuple[str, np.ndarray, np.ndarray]],
               hazard_ratio: float | None = None) -> list[Arm]:
    """Two arms from two pilot groups ``(label, durations, events)`` on ``grid``: event times from
    each group's KM curve (with ``hazard_ratio``, group b's survival is group a's to that power),
    censoring from the pooled reverse KM curve (a fall at a time is not a censoring there)."""
    all_d = np.concatenate([d for _, d, _ in samples])
    all_e = np.concatenate([e for _, _, e in samples])
    # the censoring distribution: censorings are its events; a fall hides it (censored for it)
    censor = km_masses(grid, all_d, 1 - all_e)
    arms = []
    for label, d, e in samples:
        arms.append(Arm(label, km_masses(grid, d, e), censor))
    if hazard_ratio is not None:
        s_a = 1.0 - np.cumsum(arms[0].event_mass)
        s_b = np.clip(s_a, 0.0, 1.0) ** hazard_ratio
        arms[1] = Arm(arms[1].label, np.clip(np.concatenate(([1.0], s_b[:-1])) - s_b, 0.0, 1.0), censor)
    return arms


def exponential_arm(label: str, rate: float, length: int, censoring: float) -> Arm:
    """An arm on the grid ``0..length``: the text falls at unit ``floor(Exp(rate))``; a share
    ``censoring`` of readers stop at a uniform point in ``0..length-1``, the rest read to
    ``length``."""
    t = np.arange(length + 1, dtype=float)
    s = np.exp(-rate * t)
    event = np.concatenate((s[:-1] - s[1:], [0.0]))
    censor = np.concatenate((np.full(length, censoring / length), [0.0]))
    return Arm(label, event, censor)


# --------------------------------------------------------------------------------------------
# Vectorised log-rank over replicates


def logrank_replicates(time_index: np.ndarray, event: np.ndarray, n_a: int, n_times: int) -> np.ndarray:
    """Two-sample log-rank chi-square statistics (1 df) of ``R`` replicates at once.

    ``time_index`` (R, N) holds each observation's time as an index into a sorted grid of
    ``n_times`` times, ``event`` (R, N) its event flag; the first ``n_a`` columns are group a,
    the rest group b.  Per replicate this is :func:`lmread.analysis.survival.logrank` on two
    groups: ``(O_a - E_a)^2 / V`` with the hypergeometric variance."""
    r, n = time_index.shape
    group = (np.arange(n) >= n_a).astype(np.int64)
    flat = (np.arange(r)[:, None] * 2 + group[None, :]) * n_times + time_index
    size = r * 2 * n_times
    total = np.bincount(flat.ravel(), minlength=size).reshape(r, 2, n_times).astype(float)
    d = np.bincount(flat.ravel(), weights=event.ravel().astype(float), minlength=size).reshape(r, 2, n_times)
    removed = np.cumsum(total, axis=2) - total
    at_risk = np.array([n_a, n - n_a], dtype=float)[None, :, None] - removed
    n_t = at_risk.sum(axis=1)
    d_t = d.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected_a = np.where(n_t > 0, at_risk[:, 0] * d_t / n_t, 0.0)
        var = np.where(n_t > 1, at_risk[:, 0] * at_risk[:, 1] * d_t * (n_t - d_t) / (n_t * n_t * (n_t - 1)), 0.0)
    u = (d[:, 0] - expected_a).sum(axis=1)
    v = var.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(v > 0, u * u / v, 0.0)


def expected_read_length(arms: list[Arm]) -> float:
    """Mean length read per reading under ``arms`` (grid ``0..L``: the fall, or where the reader
    stopped, or ``L``), averaged over the arms."""
    means = []
    for arm in arms:
        g = arm.event_mass.size
        s_event = 1.0 - np.concatenate(([0.0], np.cumsum(arm.event_mass)[:-1]))   # P(T >= t)
        s_censor = 1.0 - np.concatenate(([0.0], np.cumsum(arm.censor_mass)[:-1]))  # P(C >= t)
        # observed = min(T, C, L) on 0..L: E = sum_{t=1..L} P(T >= t) P(C > t - 1)
        t = np.arange(1, g)
        means.append(float(np.sum(np.clip(s_event[t], 0, 1) * np.clip(s_censor[t], 0, 1))))
    return float(np.mean(means))


def _draw(mass: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Grid indexes drawn from ``mass``; the mass left over draws ``len(mass)`` (beyond the grid)."""
    cum = np.cumsum(mass)
    return np.searchsorted(cum, rng.random(shape), side="right")


def simulate_rejections(arms: list[Arm], n: int, replicates: int, alpha: float, rng: np.random.Generator) -> int:
    """How many of ``replicates`` simulated studies with ``n`` samples per arm reject equal
    survival (log-rank, two-sided, level ``alpha``)."""
    g = arms[0].event_mass.size
    crit = float(chi2_isf(alpha, 1))
    rejected = 0
    step = max(1, _CELLS // max(1, 2 * g + 2 * n))
    for start in range(0, replicates, step):
        b = min(step, replicates - start)
        times = []
        events = []
        for arm in arms:
            t = _draw(arm.event_mass, (b, n), rng)
            c = _draw(arm.censor_mass, (b, n), rng)
            # read to the end of the grid when the censoring draw is "beyond" it
            c = np.minimum(c, g - 1)
            fell = t < c
            times.append(np.where(fell, t, c))
            events.append(fell)
        chi2 = logrank_replicates(np.concatenate(times, axis=1), np.concatenate(events, axis=1), n, g)
        rejected += int((chi2 > crit).sum())
    return rejected


@dataclass
class PowerCurve:
    """Simulated power against samples per group, and the N that reaches the target."""

    grid: list[int]
    power: list[float]
    mc_error: list[float]
    replicates: int
    n_target: int | None
    n_target_mc_error: float | None
    power_at_n_target: float | None
    power_at_n_target_mc_error: float | None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"replicates": self.replicates,
                "curve": [{"n_per_group": n, "power": p, "mc_error": e}
                          for n, p, e in zip(self.grid, self.power, self.mc_error, strict=True)],
                "n_per_group": self.n_target, "n_per_group_mc_error": self.n_target_mc_error,
                "power_at_n": self.power_at_n_target, "power_at_n_mc_error": self.power_at_n_target_mc_error,
                "note": self.note}


def power_curve(arms: list[Arm], target: float, alpha: float, replicates: int, seed: int, around: int,
                max_n: int = MAX_SIMULATED_N) -> PowerCurve:
    """Simulated power on a grid of samples per group around ``around`` (Schoenfeld's N), the N
    reaching ``target`` from a probit fit of the curve (:func:`probit_fit`; linear interpolation
    when too few grid points lie between power 0.1 and 0.98), and a fresh simulation at that N."""
    rng = np.random.default_rng(seed)
    lo = max(5, around // 4)
    hi = max(lo + 5, min(max_n, around * 3))
    grid = sorted({int(round(x)) for x in np.geomspace(lo, hi, 9)})
    power = []
    for n in grid:
        power.append(simulate_rejections(arms, n, replicates, alpha, rng) / replicates)
    # extend the grid upwards while the target is not reached (bounded)
    while power[-1] < target and grid[-1] < max_n:
        grid.append(min(max_n, grid[-1] * 2))
        power.append(simulate_rejections(arms, grid[-1], replicates, alpha, rng) / replicates)
    errors = [math.sqrt(p * (1 - p) / replicates) for p in power]
    if not any(p >= target for p in power):
        return PowerCurve(grid, power, errors, replicates, None, None, None, None,
                          f"even {grid[-1]} samples per group do not reach power {target:g} in simulation")
    fit = probit_fit(grid, power, replicates, alpha)
    note = None
    if fit is not None:
        c, c_se = fit
        z = float(norm_ppf(1 - alpha / 2))
        n_star = ((float(norm_ppf(target)) + z) / c) ** 2
        n_err: float | None = 2.0 * n_star * c_se / c
    else:  # too few grid points between power 0.1 and 0.98: interpolate linearly
        i = next(k for k, p in enumerate(power) if p >= target)
        if i == 0:
            n_star, n_err = float(grid[0]), None
            note = f"the smallest N simulated ({grid[0]} per group) already reaches power {target:g}"
        else:
            n0, n1, p0, p1 = grid[i - 1], grid[i], power[i - 1], power[i]
            n_star = n0 + (target - p0) * (n1 - n0) / (p1 - p0) if p1 > p0 else float(n1)
            n_err = None
    n_target = max(2, int(math.ceil(n_star - 1e-9)))
    check = simulate_rejections(arms, n_target, replicates, alpha, rng) / replicates
    check_err = math.sqrt(check * (1 - check) / replicates)
    return PowerCurve(grid, power, errors, replicates, n_target, n_err, check, check_err, note)


def probit_fit(grid: list[int], power: list[float], replicates: int, alpha: float) -> tuple[float, float] | None:
    """Fit the log-rank's normal approximation ``power(n) = Phi(c sqrt(n) - z_{1-alpha/2})`` to the
    simulated power curve: weighted least squares of ``Phi^-1(power) + z`` on ``sqrt(n)`` through
    the origin, over the grid points with power in [0.1, 0.98] (weights: the inverse binomial
    variance carried through the probit).  Returns ``(c, se(c))`` or None with fewer than two
    such points."""
    z = float(norm_ppf(1 - alpha / 2))
    sxx = sxy = 0.0
    used = 0
    for n, p in zip(grid, power, strict=True):
        if not 0.1 <= p <= 0.98:
            continue
        q = float(norm_ppf(p))
        weight = replicates * float(norm_pdf(q)) ** 2 / (p * (1 - p))
        x = math.sqrt(n)
        sxx += weight * x * x
        sxy += weight * x * (q + z)
        used += 1
    if used < 2 or sxy <= 0:
        return None
    return sxy / sxx, 1.0 / math.sqrt(sxx)


def obf_boundary(information: float, alpha: float = 0.05) -> float | None:
    """The O'Brien–Fleming-type (Lan–DeMets) alpha spent by information fraction ``information``
    (0 < t <= 1): ``2 (1 - Phi(z_{1-alpha/2} / sqrt t))``, the two-sided p-value a single interim
    look at ``t`` must beat.  None outside (0, 1]."""
    if not 0 < information <= 1:
        return None
    z = float(norm_ppf(1 - alpha / 2))
    return float(2 * (1 - norm_cdf(z / math.sqrt(information))))


def solve_rate_for_censoring(hr: float, length: int, censoring: float) -> float:
    """The baseline exponential rate whose two groups (rates ``r`` and ``hr r``), read to
    ``length``, leave a share ``censoring`` of readings without a fall."""
    if not 0 < censoring < 1:
        raise OptionError(f"--censoring {censoring} must lie strictly between 0 and 1 when it sets the rate of falls")

    def gap(log_rate: float) -> float:
        r = math.exp(log_rate)
        return 0.5 * (math.exp(-r * length) + math.exp(-hr * r * length)) - censoring

    from scipy import optimize  # only here: a quarter of a second to import

    return math.exp(optimize.brentq(gap, -30.0, 10.0))
