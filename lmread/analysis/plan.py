"""Planning a study: how many samples, readings and reader-hours a comparison needs.

Pure numpy/scipy.  A plan starts from a *pilot* (the marks read so far: one Kaplan–Meier curve
per group) or from stated *assumptions* (exponential curves from medians, or a hazard ratio with
a maximum length and a censoring share), and answers, per comparison of two groups:

Schoenfeld's events and samples
    A two-sided log-rank test at level ``alpha`` with power ``power`` and equal groups needs
    ``D = (z_{1-alpha/2} + z_power)^2 / (p (1 - p) log(HR)^2)`` events (``p = 1/2``; HR 1.5,
    alpha 0.05, power 0.8: 191 events), and ``D / P(event)`` samples in all, where ``P(event)``
    is the probability that a sample falls within its generated length, ``1 - S(L)`` from each
    group's curve at its end, averaged over the two groups.  The hazard ratio is the pilot's
    (log-rank ``(O_b / E_b) / (O_a / E_a)``) unless ``hazard_ratio`` is given.

Simulated power
    Samples are drawn from the pilot's Kaplan–Meier curves (an event time from each group's
    curve, the mass the curve keeps at its end meaning "no fall within the length read"), and a
    censoring time from the pilot's censoring distribution (the reverse Kaplan–Meier curve of the
    readings, pooled over the two groups: readers stop as they did in the pilot).  A reading
    falls when its event time lies before its censoring time, else it is censored there.  Each
    replicate is analysed with the log-rank test (:func:`logrank_replicates`, the statistic of
    :func:`lmread.analysis.survival.logrank` computed for all replicates at once) and power is
    the share of replicates with ``p < alpha``, on a grid of samples per group.  The N that
    reaches the target comes from a fit of the log-rank's normal approximation
    ``power(n) = Phi(c sqrt(n) - z_{1-alpha/2})`` to the simulated curve (:func:`probit_fit`),
    with its Monte Carlo error from the fit's, and is checked by a fresh simulation at that N
    (power there with its error ``sqrt(power (1 - power) / R)``).  With a given hazard ratio and
    a pilot, group b's curve is group a's raised to that power (proportional hazards).

Median CI width
    A group's median CI narrows like ``1 / sqrt(n)``: the pilot's width ``w`` at ``n`` samples
    gives ``n (w / W)^2`` for a target width ``W``.  From assumptions (exponential curve with
    median ``m``), ``log`` of the median has variance ``1 / D``, so ``W = m (e^{z/sqrt D} -
    e^{-z/sqrt D})`` gives ``D = (z / asinh(W / 2m))^2`` events and ``D / P(event)`` samples.

AFT scaling exponent
    From a pilot of two or more sizes: the Weibull AFT exponent's CI of width ``w`` with ``n``
    observations narrows to a target ``W`` at ``n (w / W)^2`` observations (spread over the sizes
    as in the pilot).

Reader time
    Words per reading (the pilot's mean words read per reading, else the study's mean words per
    sample, else ``words_per_sample``), reading speed (the readers' measured speed in the pilot,
    else 4.5 words/s), the controls rate ``c`` (controls are mixed into the queue: ``S / (1 - c)``
    samples in all) and the overlap share ``q`` of each reader's queue that every reader reads:
    with ``K`` readers each reads ``Q = S_all / (q + K (1 - q))`` samples, ``K Q`` readings in all.

Everything that cannot be planned (one group, a group without events, alpha or power outside
(0, 1), a hazard ratio of 1) is a one-line :class:`~lmread.errors.OptionError` naming why, never
a division by zero or an infinite N.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, stats

from lmread.errors import OptionError

#: people read prose at about 4-5 words/s
DEFAULT_READING_WPS = 4.5
DEFAULT_REPLICATES = 1000
#: the largest N per group a power simulation draws (beyond it the plan keeps Schoenfeld's N)
MAX_SIMULATED_N = 20_000
PLAN_SCHEMA = "lmread.plan/1"
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
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
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
    crit = float(stats.chi2.isf(alpha, 1))
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
        z = float(stats.norm.ppf(1 - alpha / 2))
        n_star = ((float(stats.norm.ppf(target)) + z) / c) ** 2
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
    z = float(stats.norm.ppf(1 - alpha / 2))
    sxx = sxy = 0.0
    used = 0
    for n, p in zip(grid, power, strict=True):
        if not 0.1 <= p <= 0.98:
            continue
        q = float(stats.norm.ppf(p))
        weight = replicates * float(stats.norm.pdf(q)) ** 2 / (p * (1 - p))
        x = math.sqrt(n)
        sxx += weight * x * x
        sxy += weight * x * (q + z)
        used += 1
    if used < 2 or sxy <= 0:
        return None
    return sxy / sxx, 1.0 / math.sqrt(sxx)


# --------------------------------------------------------------------------------------------
# Median CI width and reader time


def n_for_width(n_now: float, width_now: float | None, target: float) -> int | None:
    """Samples for a CI of width ``target`` when it is ``width_now`` at ``n_now`` (1/sqrt(n))."""
    if width_now is None or not width_now > 0 or not target > 0:
        return None
    return int(math.ceil(n_now * (width_now / target) ** 2 - 1e-9))


def events_for_median_width(median: float, target: float, alpha: float = 0.05) -> int:
    """Events for a median CI of width ``target`` under an exponential curve with ``median``."""
    z = float(stats.norm.ppf(1 - alpha / 2))
    return int(math.ceil((z / math.asinh(target / (2 * median))) ** 2 - 1e-9))


@dataclass
class ReaderTime:
    """Readings and reader-hours for ``samples`` model samples."""

    samples: int
    samples_with_controls: int
    readings: int
    words_per_reading: float
    words_per_reading_source: str
    reading_wps: float
    reading_wps_source: str
    controls_rate: float
    overlap: float
    readers: int
    hours: float
    hours_per_reader: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def reader_time(samples: int, words_per_reading: float, words_source: str, wps: float, wps_source: str,
                controls_rate: float, overlap: float, readers: int) -> ReaderTime:
    """Readings and reader-hours (see the module notes)."""
    if not 0 <= controls_rate < 1:
        raise OptionError(f"--controls-rate {controls_rate} must be at least 0 and below 1")
    if not 0 <= overlap <= 1:
        raise OptionError(f"--overlap {overlap} must lie between 0 and 1")
    if readers < 1:
        raise OptionError(f"--readers {readers} must be at least 1")
    if not wps > 0:
        raise OptionError(f"--reading-speed {wps} must be a number of words per second above 0")
    total = int(math.ceil(samples / (1 - controls_rate) - 1e-9))
    per_reader = total / (overlap + readers * (1 - overlap))
    readings = int(math.ceil(readers * per_reader - 1e-9))
    hours = readings * words_per_reading / wps / 3600.0
    return ReaderTime(samples, total, readings, words_per_reading, words_source, wps, wps_source, controls_rate,
                      overlap, readers, hours, hours / readers)


# --------------------------------------------------------------------------------------------
# Comparisons


@dataclass
class GroupInput:
    """What a plan knows of one group: its label, size, and either pilot data (durations in the
    plan's unit, event flags, median and its CI) or an assumed exponential rate."""

    label: str
    n_params: int | None = None
    durations: np.ndarray | None = None
    events: np.ndarray | None = None
    median: float | None = None
    median_ci: tuple[float | None, float | None] = (None, None)
    rate: float | None = None

    @property
    def n(self) -> int:
        return 0 if self.durations is None else int(self.durations.size)


@dataclass
class Comparison:
    """The plan of one comparison of two groups."""

    a: str
    b: str
    hazard_ratio: float
    hazard_ratio_source: str
    events: int
    p_event: float
    samples_schoenfeld: int
    simulation: PowerCurve | None
    samples_per_group: int
    notes: list[str] = field(default_factory=list)
    arms: list[Arm] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "hazard_ratio": self.hazard_ratio,
                "hazard_ratio_source": self.hazard_ratio_source,
                "schoenfeld": {"events": self.events, "p_event": self.p_event, "samples": self.samples_schoenfeld,
                               "samples_per_group": int(math.ceil(self.samples_schoenfeld / 2))},
                "simulation": None if self.simulation is None else self.simulation.to_json(),
                "samples_per_group": self.samples_per_group, "notes": self.notes}


def pilot_hazard_ratio(a: GroupInput, b: GroupInput) -> float:
    """Hazard ratio of b against a from the log-rank observed/expected counts of the pilot."""
    from lmread.analysis.survival import GroupTables, logrank

    assert a.durations is not None and b.durations is not None and a.events is not None and b.events is not None
    tables = GroupTables.build(np.concatenate([a.durations, b.durations]).astype(float),
                               np.concatenate([a.events, b.events]),
                               np.concatenate([np.zeros(a.n, np.int64), np.ones(b.n, np.int64)]), 2)
    result = logrank(tables)
    (o_a, o_b), (e_a, e_b) = result.observed, result.expected
    if not (o_a > 0 and o_b > 0 and e_a > 0 and e_b > 0):
        raise OptionError(f"cannot estimate the hazard ratio of {b.label} against {a.label} from the pilot (a group "
                          "without falls); give --hazard-ratio")
    return float((o_b / e_b) / (o_a / e_a))


def plan_comparison(a: GroupInput, b: GroupInput, *, alpha: float, power: float, hazard_ratio: float | None,
                    replicates: int, seed: int, length: int | None = None, censoring: float = 0.0,
                    progress: Callable[[str], None] | None = None) -> Comparison:
    """Plan one comparison of groups ``a`` and ``b`` (pilot data or assumed rates)."""
    notes: list[str] = []
    pilot = a.durations is not None and b.durations is not None
    for g in (a, b):
        if pilot and g.events is not None and not g.events.any():
            raise OptionError(f"group {g.label} has no fall in the pilot ({g.n} readings), so its curve says "
                              "nothing about when it falls; read more of it, or plan from --median / --hazard-ratio")
    if hazard_ratio is not None:
        hr, source = float(hazard_ratio), "--hazard-ratio"
    elif pilot:
        hr, source = pilot_hazard_ratio(a, b), "pilot (log-rank O/E)"
    else:
        assert a.rate is not None and b.rate is not None
        hr, source = b.rate / a.rate, "assumed medians"
    check_hazard_ratio(hr, f"the hazard ratio of {b.label} against {a.label}")
    events = schoenfeld_events(hr, alpha, power)
    if pilot:
        assert a.durations is not None and b.durations is not None and a.events is not None and b.events is not None
        grid = np.unique(np.concatenate([a.durations, b.durations]).astype(float))
        arms = pilot_arms(grid, [(a.label, a.durations.astype(float), a.events),
                                 (b.label, b.durations.astype(float), b.events)],
                          hr if hazard_ratio is not None else None)
        if source == "pilot (log-rank O/E)":
            notes.append("the hazard ratio is the pilot's estimate, itself uncertain; plan for the smallest "
                         "difference worth detecting with --hazard-ratio")
    else:
        assert a.rate is not None and b.rate is not None and length is not None
        arms = [exponential_arm(a.label, a.rate, length, censoring),
                exponential_arm(b.label, a.rate * hr if hazard_ratio is not None else b.rate, length, censoring)]
    p_event = 0.5 * (arms[0].p_event_by_end + arms[1].p_event_by_end)
    samples = samples_for_events(events, p_event, f"{a.label} vs {b.label}")
    per_group = int(math.ceil(samples / 2))
    sim = None
    if replicates > 0 and per_group > MAX_SIMULATED_N:
        notes.append(f"Schoenfeld's {per_group:,} samples per group are beyond what is simulated "
                     f"({MAX_SIMULATED_N:,}); the plan uses Schoenfeld's N")
    elif replicates > 0:
        if progress is not None:
            progress(f"simulating {b.label} vs {a.label}: {replicates} studies per N ...")
        sim = power_curve(arms, power, alpha, replicates, seed, per_group, max_n=MAX_SIMULATED_N)
        if sim.note:
            notes.append(sim.note)
    planned = sim.n_target if sim is not None and sim.n_target is not None else per_group
    return Comparison(a.label, b.label, hr, source, events, p_event, samples, sim, planned, notes, arms)


def median_width_plan(groups: list[GroupInput], target: float | None, alpha: float,
                      p_event: dict[str, float]) -> list[dict[str, Any]]:
    """Samples per group for a median CI of width ``target`` (pilot: 1/sqrt(n) scaling; assumed
    rates: exponential)."""
    if target is None:
        return []
    if not target > 0:
        raise OptionError(f"--ci-width {target} must be above 0")
    out = []
    for g in groups:
        low, high = g.median_ci
        if g.durations is not None:
            width = None if low is None or high is None else high - low
            n = n_for_width(g.n, width, target)
            note = None if n is not None else ("the pilot's CI for the median is open (the curve or its band does "
                                               "not reach 1/2), so its width cannot be scaled; read more first")
            out.append({"group": g.label, "median": g.median, "width_now": width, "n_now": g.n, "samples": n,
                        "note": note})
        else:
            assert g.rate is not None
            m = math.log(2) / g.rate
            events = events_for_median_width(m, target, alpha)
            out.append({"group": g.label, "median": m, "width_now": None, "n_now": 0,
                        "samples": samples_for_events(events, p_event.get(g.label, 1.0), g.label), "note": None})
    return out


def parse_medians(text: str) -> dict[str, float]:
    """``A=10,B=15`` -> ``{"A": 10.0, "B": 15.0}`` (one-line errors)."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, eq, value = part.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not eq or not name.strip() or not math.isfinite(number) or number <= 0:
            raise OptionError(f"--median {text!r}: give NAME=LENGTH pairs with lengths above 0, e.g. A=10,B=15")
        out[name.strip()] = number
    if len(out) < 2:
        raise OptionError(f"--median {text!r}: a comparison needs two or more groups, e.g. A=10,B=15")
    return out


def obf_boundary(information: float, alpha: float = 0.05) -> float | None:
    """The O'Brien–Fleming-type (Lan–DeMets) alpha spent by information fraction ``information``
    (0 < t <= 1): ``2 (1 - Phi(z_{1-alpha/2} / sqrt t))``, the two-sided p-value a single interim
    look at ``t`` must beat.  None outside (0, 1]."""
    if not 0 < information <= 1:
        return None
    z = float(stats.norm.ppf(1 - alpha / 2))
    return float(2 * (1 - stats.norm.cdf(z / math.sqrt(information))))


def solve_rate_for_censoring(hr: float, length: int, censoring: float) -> float:
    """The baseline exponential rate whose two groups (rates ``r`` and ``hr r``), read to
    ``length``, leave a share ``censoring`` of readings without a fall."""
    if not 0 < censoring < 1:
        raise OptionError(f"--censoring {censoring} must lie strictly between 0 and 1 when it sets the rate of falls")

    def gap(log_rate: float) -> float:
        r = math.exp(log_rate)
        return 0.5 * (math.exp(-r * length) + math.exp(-hr * r * length)) - censoring

    return math.exp(optimize.brentq(gap, -30.0, 10.0))



# --------------------------------------------------------------------------------------------
# A plan of a study (pilot or assumptions), stored in study.toml, and progress against it


@dataclass
class PlanOptions:
    """What ``lmread plan`` was asked (see the module notes; None: not given)."""

    unit: str = "tokens"
    by: str = "model"
    annotator: str = "all"
    alpha: float = 0.05
    power: float = 0.8
    hazard_ratio: float | None = None
    medians: dict[str, float] | None = None
    max_length: int | None = None
    censoring: float | None = None
    ci_width: float | None = None
    exponent_ci_width: float | None = None
    readers: int = 1
    reading_wps: float | None = None
    controls_rate: float | None = None
    overlap: float | None = None
    words_per_sample: float | None = None
    replicates: int = DEFAULT_REPLICATES
    seed: int = 0


def _pilot_groups(study: Any, opts: PlanOptions) -> tuple[list[GroupInput], Any]:
    from lmread.analysis.observations import observations_from_study
    from lmread.analysis.survival import km, median

    obs = observations_from_study(study, by=opts.by, annotator=opts.annotator)
    dur = obs.duration(opts.unit)
    groups = []
    for k, g in enumerate(obs.groups):
        rows = obs.group_rows(k)
        d = dur[rows].astype(float)
        e = obs.event[rows].astype(np.int64)
        med = median(km(d, e))
        groups.append(GroupInput(g.label, g.n_params, d, e, med.value, (med.ci_low, med.ci_high)))
    return groups, obs


def _reading_speed(study: Any) -> float | None:
    from lmread.analysis.reading_speed import reading_speed

    words = 0.0
    seconds = 0.0
    samples = study.samples
    for (annotator, sid), mark in study.current_marks().items():
        if annotator.startswith("auto-") or sid not in samples:
            continue
        speed = reading_speed(mark, samples[sid])
        if speed is not None:
            words += speed.words
            seconds += speed.elapsed_s
    return words / seconds if seconds > 0 and words > 0 else None


def _words_per_sample(study: Any) -> float | None:
    from lmread.analysis.reading_speed import words_in_tokens

    texts = [s for s in study.samples.values() if s.control is None]
    return float(np.mean([words_in_tokens(s, s.n_tokens) for s in texts])) if texts else None


def study_length(study: Any, unit: str) -> int | None:
    """The study's generated length in ``unit``: its reading horizon in tokens (the largest
    ``max_tokens``, else the longest sample), or the longest sample in words or characters."""
    from lmread.analysis.agreement import reading_horizon
    from lmread.analysis.reading_speed import words_in_tokens

    samples = [s for s in study.samples.values() if s.control is None] or list(study.samples.values())
    if not samples:
        return None
    if unit == "tokens":
        return reading_horizon(samples)[0] or None
    if unit == "words":
        return max(words_in_tokens(s, s.n_tokens) for s in samples) or None
    return max(len(s.text) for s in samples) or None


def build_plan(study: Any | None, opts: PlanOptions, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The plan document (schema ``lmread.plan/1``) of ``study`` (a pilot, or None) under
    ``opts``; one-line :class:`OptionError` for what cannot be planned.  ``progress(text)`` is
    called before each comparison's simulation."""
    from lmread import __version__
    from lmread.records import utc_now

    check_level(opts.alpha, opts.power)
    if opts.replicates < 0:
        raise OptionError(f"--replicates {opts.replicates} must be 0 (no simulation) or more")
    if opts.hazard_ratio is not None:
        check_hazard_ratio(opts.hazard_ratio, "--hazard-ratio")
    warnings: list[str] = []
    obs = None
    groups: list[GroupInput]
    length = opts.max_length
    if length is None and study is not None and study.samples:
        length = study_length(study, opts.unit)
    if opts.medians is not None or (opts.hazard_ratio is not None and study is None):
        source = "assumptions"
        if length is None or length < 1:
            raise OptionError("planning from assumptions needs --max-length (the generated length in the plan's unit)")
        censoring = 0.0 if opts.censoring is None else float(opts.censoring)
        if not 0 <= censoring < 1:
            raise OptionError(f"--censoring {censoring} must be at least 0 and below 1")
        if opts.medians is not None:
            groups = [GroupInput(name, rate=math.log(2) / m) for name, m in opts.medians.items()]
        else:
            assert opts.hazard_ratio is not None
            if opts.censoring is None:
                raise OptionError("--hazard-ratio without a pilot or --median needs --censoring (the share of "
                                  "readings without a fall) to know how often texts fall")
            rate = solve_rate_for_censoring(opts.hazard_ratio, length, censoring)
            groups = [GroupInput("A", rate=rate), GroupInput("B", rate=rate * opts.hazard_ratio)]
            censoring = 0.0  # the share is the falls' own; readers read to the end
    else:
        if study is None:
            raise OptionError("give --study DIR (a pilot) or assumptions (--median A=10,B=15 or --hazard-ratio "
                              "with --max-length and --censoring)")
        source = "pilot"
        censoring = 0.0
        groups, obs = _pilot_groups(study, opts)
    if len(groups) < 2:
        only = groups[0].label if groups else "none"
        raise OptionError(f"the {source} has one group only ({only}); a comparison needs two or more "
                          "(generate or import samples of another model, or give --median A=..,B=..)")
    comparisons = []
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            comparisons.append(plan_comparison(a, b, alpha=opts.alpha, power=opts.power,
                                               hazard_ratio=opts.hazard_ratio,
                                               replicates=opts.replicates, seed=opts.seed, length=length,
                                               censoring=censoring, progress=progress))
    per_group: dict[str, int] = {g.label: 0 for g in groups}
    p_event: dict[str, float] = {}
    for c in comparisons:
        per_group[c.a] = max(per_group[c.a], c.samples_per_group)
        per_group[c.b] = max(per_group[c.b], c.samples_per_group)
        p_event.setdefault(c.a, c.p_event)
        p_event.setdefault(c.b, c.p_event)
    widths = median_width_plan(groups, opts.ci_width, opts.alpha, p_event)
    for w in widths:
        if w["samples"] is not None:
            per_group[w["group"]] = max(per_group[w["group"]], int(w["samples"]))
    exponent = _exponent_plan(obs, opts) if opts.exponent_ci_width is not None else None
    if exponent is not None and exponent.get("observations") is not None:
        share = exponent["observations"] / max(1, sum(g.n for g in groups))
        for g in groups:
            per_group[g.label] = max(per_group[g.label], int(math.ceil(g.n * share)))
    total = sum(per_group.values())
    # reader time
    if obs is not None and len(obs):
        wpr, wsource = float(np.mean(obs.words)), "pilot: mean words read per reading"
    elif opts.words_per_sample is not None:
        wpr, wsource = float(opts.words_per_sample), "--words-per-sample"
    elif study is not None and _words_per_sample(study) is not None:
        wpr, wsource = float(_words_per_sample(study) or 0.0), "study: mean words per sample"
    elif opts.unit == "words" and comparisons[0].arms:
        wpr, wsource = expected_read_length(comparisons[0].arms), "assumed curves: expected words read per reading"
    else:
        raise OptionError("reader time needs the words a reading takes: give --words-per-sample "
                          "(or plan in --unit words, or from a study with samples)")
    measured = _reading_speed(study) if study is not None else None
    if opts.reading_wps is not None:
        wps, wps_source = float(opts.reading_wps), "--reading-speed"
    elif measured is not None:
        wps, wps_source = measured, "pilot: the readers' measured speed"
    else:
        wps, wps_source = DEFAULT_READING_WPS, "default (people read prose at about 4.5 words/s)"
    controls_rate = opts.controls_rate
    if controls_rate is None:
        n_controls = sum(1 for s in study.samples.values() if s.control is not None) if study is not None else 0
        controls_rate = n_controls / len(study.samples) if study is not None and study.samples else 0.0
    overlap = opts.overlap
    if overlap is None:
        overlap = float(study.meta.get("overlap") or 0.0) if study is not None else 0.0
    rt = reader_time(total, wpr, wsource, wps, wps_source, controls_rate, overlap, opts.readers)
    doc: dict[str, Any] = {
        "schema": PLAN_SCHEMA,
        "lmread_version": __version__,
        "created": utc_now(),
        "study": {} if study is None else {"path": str(study.path), "name": study.name,
                                           "samples": len(study.samples)},
        "source": source,
        "settings": {"unit": opts.unit, "by": opts.by, "annotator": opts.annotator, "alpha": opts.alpha,
                     "power": opts.power, "hazard_ratio": opts.hazard_ratio, "max_length": length,
                     "censoring": opts.censoring, "ci_width": opts.ci_width,
                     "exponent_ci_width": opts.exponent_ci_width, "replicates": opts.replicates, "seed": opts.seed,
                     "test": "two-sided log-rank, equal groups"},
        "groups": [{"label": g.label, "n_params": g.n_params, "n": g.n,
                    "events": None if g.events is None else int(g.events.sum()),
                    "median": g.median if g.durations is not None else (math.log(2) / g.rate if g.rate else None),
                    "median_ci": list(g.median_ci), "samples": per_group[g.label]} for g in groups],
        "comparisons": [c.to_json() for c in comparisons],
        "median_ci_width": widths,
        "exponent_ci": exponent,
        "samples_per_group": per_group,
        "samples": total,
        "events": max(c.events for c in comparisons),
        "reader_time": rt.to_json(),
        "warnings": warnings,
    }
    return doc


def _exponent_plan(obs: Any, opts: PlanOptions) -> dict[str, Any]:
    target = float(opts.exponent_ci_width or 0.0)
    if not target > 0:
        raise OptionError(f"--exponent-ci-width {opts.exponent_ci_width} must be above 0")
    if obs is None:
        return {"target": target, "exponent": None, "width_now": None, "n_now": 0, "observations": None,
                "note": "the AFT scaling exponent is planned from a pilot of two or more model sizes"}
    from lmread.analysis.report import build_survival

    doc = build_survival(obs, opts.unit, n_boot=0)
    fit = ((doc.get("parametric") or {}).get("scaling") or {}).get("weibull")
    if not fit or fit.get("exponent_ci_low") is None:
        note = ((doc.get("parametric") or {}).get("scaling") or {}).get("note") or "no Weibull AFT fit"
        return {"target": target, "exponent": None, "width_now": None, "n_now": len(obs), "observations": None,
                "note": f"no scaling exponent from the pilot: {note}"}
    width = float(fit["exponent_ci_high"] - fit["exponent_ci_low"])
    return {"target": target, "exponent": float(fit["exponent"]), "width_now": width, "n_now": len(obs),
            "observations": n_for_width(len(obs), width, target), "note": None}


def stored_plan(doc: dict[str, Any]) -> dict[str, Any]:
    """The flat ``[plan]`` table of study.toml (scalars and lists only) of a plan document."""
    labels = list(doc["samples_per_group"])
    out: dict[str, Any] = {
        "schema": PLAN_SCHEMA,
        "created": doc["created"],
        "source": doc["source"],
        "unit": doc["settings"]["unit"],
        "by": doc["settings"]["by"],
        "annotator": doc["settings"]["annotator"],
        "alpha": doc["settings"]["alpha"],
        "power": doc["settings"]["power"],
        "groups": labels,
        "samples_per_group": [int(doc["samples_per_group"][k]) for k in labels],
        "events": int(doc["events"]),
        "hazard_ratios": [float(c["hazard_ratio"]) for c in doc["comparisons"]],
        "readings": int(doc["reader_time"]["readings"]),
        "readers": int(doc["reader_time"]["readers"]),
        "reader_hours": round(float(doc["reader_time"]["hours"]), 3),
    }
    if doc["settings"]["ci_width"] is not None:
        out["ci_width"] = float(doc["settings"]["ci_width"])
    return out


def save_plan(study: Any, doc: dict[str, Any]) -> None:
    """Store the plan in the study's study.toml (``[plan]``, rewritten atomically; a plan made
    earlier is replaced and its creation time kept as ``replaces``)."""
    table = stored_plan(doc)
    old = study.meta.get("plan")
    if isinstance(old, dict) and old.get("created"):
        table["replaces"] = str(old["created"])
    study.update_meta(plan=table)


@dataclass
class GroupProgress:
    """One planned group: samples planned and read so far, falls, and the median CI now."""

    label: str
    planned: int
    read: int
    events: int
    median: float | None
    median_ci_width: float | None


@dataclass
class PlanProgress:
    """Readings done against a study's stored plan (``plan`` None: no plan stored)."""

    plan: dict[str, Any] | None
    groups: list[GroupProgress]
    readings_done: int
    readings_planned: int
    events_done: int
    events_planned: int

    @property
    def information(self) -> float | None:
        """Information fraction: falls so far over the falls the plan needs (at most 1)."""
        if not self.events_planned:
            return None
        return min(1.0, self.events_done / self.events_planned)

    @property
    def complete(self) -> bool:
        return bool(self.groups) and all(g.read >= g.planned for g in self.groups)

    def to_json(self) -> dict[str, Any]:
        return {"planned": self.plan is not None, "created": (self.plan or {}).get("created"),
                "unit": (self.plan or {}).get("unit"),
                "groups": [g.__dict__ for g in self.groups], "readings_done": self.readings_done,
                "readings_planned": self.readings_planned, "events_done": self.events_done,
                "events_planned": self.events_planned, "information": self.information, "complete": self.complete}


def progress(study: Any) -> PlanProgress:
    """Progress of ``study`` against its stored plan: per planned group the samples read (by
    the plan's annotators) and the median CI width now; readings and falls against the plan."""
    from lmread.analysis.observations import observations_from_study
    from lmread.analysis.survival import km, median
    from lmread.errors import StudyError

    plan = study.meta.get("plan")
    if not isinstance(plan, dict):
        return PlanProgress(None, [], 0, 0, 0, 0)
    unit = str(plan.get("unit", "tokens"))
    try:
        obs = observations_from_study(study, by=str(plan.get("by", "model")),
                                      annotator=str(plan.get("annotator", "all")))
    except (StudyError, OptionError):
        obs = None
    found: dict[str, tuple[int, int, float | None, float | None]] = {}
    if obs is not None:
        dur = obs.duration(unit)
        for k, g in enumerate(obs.groups):
            rows = obs.group_rows(k)
            med = median(km(dur[rows].astype(float), obs.event[rows]))
            width = None if med.ci_low is None or med.ci_high is None else float(med.ci_high - med.ci_low)
            found[g.label] = (len({obs.sample[i] for i in rows}), int(obs.event[rows].sum()), med.value, width)
    groups = []
    for label, planned in zip(plan.get("groups", []), plan.get("samples_per_group", []), strict=False):
        read, events, med_value, width = found.get(str(label), (0, 0, None, None))
        groups.append(GroupProgress(str(label), int(planned), read, events, med_value, width))
    return PlanProgress(plan, groups, len(obs) if obs is not None else 0, int(plan.get("readings", 0)),
                        sum(g.events for g in groups), int(plan.get("events", 0)))


def samples_read(obs: Any) -> dict[str, int]:
    """Distinct samples with a reading per group label of an observation table."""
    return {g.label: len({obs.sample[i] for i in obs.group_rows(k)}) for k, g in enumerate(obs.groups)}


def interim_lines(plan: dict[str, Any] | None, doc: dict[str, Any], read: dict[str, int] | None = None) -> list[str]:
    """Warnings for a survival document looked at before the plan's N: which groups are short
    (``read``: distinct samples read per group, else the document's observations), that repeated
    looks inflate the false-positive rate, and the O'Brien–Fleming boundary of a single interim
    look at the current information fraction."""
    if not isinstance(plan, dict):
        return []
    planned = dict(zip(plan.get("groups", []), plan.get("samples_per_group", []), strict=False))
    short = []
    events = 0
    for g in doc.get("groups", []):
        if g["label"] in planned:
            events += int(g.get("events", 0))
            n = (read or {}).get(g["label"], g["n"])
            if n < planned[g["label"]]:
                short.append(f"{g['label']} {n} of {planned[g['label']]}")
    if not short:
        return []
    need = int(plan.get("events", 0))
    alpha = float(plan.get("alpha", 0.05))
    t = min(1.0, events / need) if need else None
    bound = obf_boundary(t, alpha) if t else None
    line = (f"this look comes before the planned N ({', '.join(short)} samples; plan of {plan.get('created', '?')}): "
            "every look at a comparison before its planned N inflates the false-positive rate, so its p-values "
            f"are not at level {alpha:g}")
    if bound is not None and t is not None:
        line += (f"; O'Brien-Fleming (Lan-DeMets) boundary for a single planned interim look at information "
                 f"{t:.2f} ({events} of {need} falls): p < {bound:.2g}; lmread does not record earlier looks, so "
                 "for several looks it does not compute the boundary")
    else:
        line += "; no falls yet, so no O'Brien-Fleming boundary can be offered"
    return [line]
