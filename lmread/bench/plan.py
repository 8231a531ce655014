"""Planning benchmark: a 2,000-replicate power simulation for two groups of 500 samples, drawn
from a pilot's Kaplan–Meier curves (with its censoring) and analysed with the vectorised log-rank
of :mod:`lmread.analysis.plan`.  Target: under 10 s.  Measured in the same run beside it, for
scale: the same replicates one at a time through :func:`lmread.analysis.survival.logrank` (timed
on 50 of them and scaled up)."""

from __future__ import annotations

import time

import numpy as np

from lmread.bench.result import BenchResult


def run(quick: bool = False) -> list[BenchResult]:
    """Time the power simulation of ``lmread plan`` and the replicate-at-a-time log-rank."""
    from lmread.analysis.plan import pilot_arms, simulate_rejections
    from lmread.analysis.survival import GroupTables, logrank

    rng = np.random.default_rng(0)
    replicates, n, length = (400 if quick else 2000), 500, 400
    pilot = []
    for label, scale in (("a", 120.0), ("b", 108.0)):
        t = np.floor(scale * rng.weibull(1.4, 300))
        c = np.where(rng.random(300) < 0.3, rng.integers(0, length, 300), length)
        pilot.append((label, np.where(t < c, t, c).astype(float), (t < c).astype(np.int64)))
    grid = np.unique(np.concatenate([d for _, d, _ in pilot]))
    arms = pilot_arms(grid, pilot)
    simulate_rejections(arms, 50, 20, 0.05, np.random.default_rng(1))  # warm up
    t0 = time.perf_counter()
    rejected = simulate_rejections(arms, n, replicates, 0.05, np.random.default_rng(2))
    vectorised_s = time.perf_counter() - t0
    # one replicate at a time through the survival module's log-rank, on 50 replicates
    draws = 50
    sim_rng = np.random.default_rng(3)
    groups = np.r_[np.zeros(n, np.int64), np.ones(n, np.int64)]
    t0 = time.perf_counter()
    for _ in range(draws):
        durations = []
        events = []
        for arm in arms:
            ti = np.searchsorted(np.cumsum(arm.event_mass), sim_rng.random(n), side="right")
            ci = np.minimum(np.searchsorted(np.cumsum(arm.censor_mass), sim_rng.random(n), side="right"), grid.size - 1)
            fell = ti < ci
            durations.append(grid[np.where(fell, np.minimum(ti, grid.size - 1), ci)])
            events.append(fell.astype(np.int64))
        logrank(GroupTables.build(np.concatenate(durations), np.concatenate(events), groups, 2))
    one_at_a_time_s = (time.perf_counter() - t0) * replicates / draws
    details = {"replicates": replicates, "samples_per_group": n, "grid_times": int(grid.size),
               "power": rejected / replicates, "one_at_a_time_s (scaled from 50)": one_at_a_time_s,
               "speedup": one_at_a_time_s / vectorised_s if vectorised_s > 0 else None}
    return [BenchResult(f"plan: power simulation, {replicates} replicates of 2 x {n}", vectorised_s, "s",
                        target=None if quick else 10.0, comparison="<=", details=details)]
