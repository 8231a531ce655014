"""Survival benchmark: 1,000,000 observations in 10 groups -> survival JSON.

Targets, measured side by side in one run on the same synthetic data:

* building the whole survival JSON (curves, CIs, medians, restricted means, hazards, curation,
  cumulative incidence, pairwise log-rank, trend, scaling fit with bootstrap) and serialising it
  takes at most 2 s;
* the same Kaplan–Meier work as lifelines (per group, from the same arrays: the curve with its
  log-log band, the median and the median CI) is at least 5x faster than lifelines'
  ``KaplanMeierFitter.fit`` + ``median_survival_time_`` + ``median_survival_times(confidence_interval_)``.
  The full JSON build's time relative to lifelines' KM-only time is reported as a detail.

lifelines is a test/benchmark-only dependency: it is imported here, inside :func:`run`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import orjson

from lmread.analysis.observations import Group, Observations
from lmread.bench.result import BenchResult

CATEGORIES = ["repetition", "drift", "incoherent", "contradiction", "uncategorized"]


def synthetic_observations(n: int = 1_000_000, n_groups: int = 10, seed: int = 0) -> Observations:
    """``n`` observations in ``n_groups`` model sizes: geometric-ish falls in tokens, bigger
    models holding up longer, about a third censored where the reader stopped."""
    rng = np.random.default_rng(seed)
    group = np.sort(rng.integers(0, n_groups, n))
    sizes = [int(10 ** (7 + 0.4 * k)) for k in range(n_groups)]
    scale = np.array([40.0 * (1.0 + k) ** 0.8 for k in range(n_groups)])[group]
    fall = np.floor(rng.weibull(0.9, n) * scale).astype(np.int64)
    read = rng.integers(20, 1500, n)
    event = fall < read
    tokens = np.where(event, fall, read)
    words = (tokens * 0.8).astype(np.int64)
    chars = tokens * 4 + rng.integers(0, 4, n)
    cat = np.where(event, rng.integers(0, len(CATEGORIES), n), -1)
    groups = [Group(f"model-{k}", {"id": f"model-{k}", "n_params": s}, s) for k, s in enumerate(sizes)]
    ids = [f"s{i}" for i in range(n)]
    return Observations(groups=groups, group=group, tokens=tokens, words=words, chars=chars, event=event,
                        category_code=cat, categories=list(CATEGORIES), sample=ids, sample_code=np.arange(n),
                        annotator=["bench"] * n, end=["fall"] * n, n_annotators=np.ones(n, dtype=np.int64),
                        filters={"by": "model", "annotator": "all", "consensus": "each"}, warnings=[])


def _ours(obs: Observations) -> tuple[float, int]:
    from lmread.analysis.report import build_survival

    start = time.perf_counter()
    doc = build_survival(obs, "tokens", study={"name": "bench"})
    blob = orjson.dumps(doc)
    return time.perf_counter() - start, len(blob)


def _split(obs: Observations) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-group (durations, events) arrays, the same input for lmread and lifelines."""
    return [(obs.tokens[rows], obs.event[rows]) for rows in (obs.group_rows(g) for g in range(len(obs.groups)))]


def _ours_km(parts: list[tuple[np.ndarray, np.ndarray]]) -> float:
    from lmread.analysis.survival import km, median

    start = time.perf_counter()
    for dur, ev in parts:
        median(km(dur, ev))
    return time.perf_counter() - start


def _lifelines(parts: list[tuple[np.ndarray, np.ndarray]]) -> float:
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    start = time.perf_counter()
    for dur, ev in parts:
        kmf = KaplanMeierFitter().fit(dur, ev)
        _ = kmf.median_survival_time_
        _ = median_survival_times(kmf.confidence_interval_)
    return time.perf_counter() - start


def run(quick: bool = False) -> list[BenchResult]:
    """Measure the survival JSON build time and the speedup over lifelines, side by side."""
    n = 200_000 if quick else 1_000_000
    obs = synthetic_observations(n)
    _ours(synthetic_observations(5_000))  # warm imports and caches
    ours_times = []
    size = 0
    for _ in range(1 if quick else 3):
        t, size = _ours(obs)
        ours_times.append(t)
    ours = min(ours_times)
    details: dict[str, Any] = {"observations": n, "groups": len(obs.groups), "json_bytes": size,
                               "runs_s": ours_times}
    results = [BenchResult("survival JSON build", ours, "s", target=2.0 if not quick else None,
                           comparison="<=", details=details)]
    try:
        parts = _split(obs)
        theirs = min(_lifelines(parts) for _ in range(1 if quick else 2))
    except ImportError as exc:
        details["lifelines_error"] = f"lifelines not installed ({exc}); pip install lifelines to compare"
        return results
    ours_km = min(_ours_km(parts) for _ in range(3))
    results.append(BenchResult(
        "survival KM speedup vs lifelines", theirs / ours_km, "x", target=5.0, comparison=">=",
        details={"lmread_s": ours_km, "lifelines_s": theirs, "observations": n,
                 "work": "per group: KM curve + log-log band + median + median CI",
                 "full_json_vs_lifelines_km": theirs / ours},
    ))
    return results
