"""The plan of one comparison of two groups (Schoenfeld and simulation), of median CI widths per
group, and the parsing of assumed medians (see :mod:`lmread.analysis.plan`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmread.analysis.plan.power import (
    MAX_SIMULATED_N,
    Arm,
    PowerCurve,
    check_hazard_ratio,
    exponential_arm,
    pilot_arms,
    power_curve,
    samples_for_events,
    schoenfeld_events,
)
from lmread.analysis.plan.sizes import events_for_median_width, n_for_width
from lmread.errors import OptionError

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
