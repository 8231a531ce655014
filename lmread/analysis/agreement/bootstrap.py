"""The seeded percentile bootstrap over units that every agreement statistic shares."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

CI_LEVEL = 0.95
_CHUNK_CELLS = 4_000_000  # bootstrap weight cells per chunk (memory bound)


def rng_for(seed: int, label: str) -> np.random.Generator:
    """The generator of one block's bootstrap: seeded with ``seed`` and a hash of ``label`` (the pair's
    names), so one block's intervals do not depend on which other blocks exist."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(label.encode("utf-8"))])


def bootstrap(stats: dict[str, Any], n_units: int, n_boot: int, rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """Point estimates and percentile CIs of several statistics ``stat(W)`` (W: replicate weights
    of shape (B, U)), all evaluated on the same bootstrap replicates."""
    out: dict[str, dict[str, Any]] = {}
    for name, stat in stats.items():
        point = stat(np.ones((1, n_units)))[0] if n_units else np.nan
        out[name] = {"value": None if np.isnan(point) else float(point), "ci_low": None, "ci_high": None,
                     "n_boot_used": 0}
    live = [name for name in stats if out[name]["value"] is not None]
    if n_boot <= 0 or n_units == 0 or not live:
        return out
    values: dict[str, list[np.ndarray]] = {name: [] for name in live}
    step = max(1, _CHUNK_CELLS // n_units)
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        # b resamples of n_units units with replacement, as counts per unit (row-offset bincount)
        draws = rng.integers(0, n_units, size=(b, n_units)) + (np.arange(b) * n_units)[:, None]
        weights = np.bincount(draws.ravel(), minlength=b * n_units).reshape(b, n_units).astype(float)
        for name in live:
            values[name].append(stats[name](weights))
    tail = (1.0 - CI_LEVEL) / 2.0 * 100.0
    for name in live:
        reps = np.concatenate(values[name])
        reps = reps[~np.isnan(reps)]
        if reps.size:
            low, high = np.percentile(reps, [tail, 100.0 - tail])
            out[name].update(ci_low=float(low), ci_high=float(high))
        out[name]["n_boot_used"] = int(reps.size)
    return out
