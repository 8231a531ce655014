"""The seeded percentile bootstrap over units that every agreement statistic shares."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

CI_LEVEL = 0.95
_CHUNK_CELLS = 4_000_000  # bootstrap weight cells per chunk (memory bound)
_GROUP_CELLS = 250_000  # cells per group of blocks evaluated together (small enough to stay in cache)


def rng_for(seed: int, label: str) -> np.random.Generator:
    """The generator of one block's bootstrap: seeded with ``seed`` and a hash of ``label`` (the pair's
    names), so one block's intervals do not depend on which other blocks exist."""
    # what np.random.default_rng(entropy) builds, without its argument checks (a third of the cost)
    entropy = [int(seed) & 0xFFFFFFFF, zlib.crc32(label.encode("utf-8"))]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


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


def replicate_weights(rng: np.random.Generator, n_units: int, rows: int) -> np.ndarray:
    """``rows`` bootstrap replicates of ``n_units`` units drawn with replacement from ``rng``, as
    counts per unit (shape (rows, n_units)): the draw :func:`bootstrap` makes per chunk."""
    draws = rng.integers(0, n_units, size=(rows, n_units)) + (np.arange(rows) * n_units)[:, None]
    return np.bincount(draws.ravel(), minlength=rows * n_units).reshape(rows, n_units).astype(float)


def percentile_cis(reps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The percentile CI bounds of each row of ``reps`` (shape (P, B), no nan)."""
    tail = (1.0 - CI_LEVEL) / 2.0 * 100.0
    low, high = np.percentile(reps, [tail, 100.0 - tail], axis=1)
    return low, high


def bootstrap_blocks(evaluate: Any, names: list[str], n_units: np.ndarray, n_boot: int,
                     rngs: list[np.random.Generator], cells: int = 0) -> list[dict[str, dict[str, Any]]]:
    """:func:`bootstrap` of many blocks at once (the pairs of readers), each with its own units
    and generator, with the same draws and values as one :func:`bootstrap` call per block.

    ``evaluate(W, lo, hi)`` takes the weights of blocks ``lo:hi`` (shape (hi - lo, B, U), units
    past a block's own count weigh 0) and returns, per name, the statistic's values (shape
    (hi - lo, B), nan where undefined).  Blocks are evaluated in groups of about
    ``_GROUP_CELLS`` cells (weights and ``cells`` more per block and replicate, the tables the
    statistics build); a block of more than ``_CHUNK_CELLS`` weights alone, in chunks of replicates
    (as :func:`bootstrap` draws them)."""
    n_units = np.asarray(n_units, dtype=int)
    p_all = len(n_units)
    umax = int(n_units.max()) if p_all else 0
    mask = (np.arange(umax)[None, :] < n_units[:, None]).astype(float)[:, None, :]
    points = evaluate(mask, 0, p_all)
    out: list[dict[str, dict[str, Any]]] = []
    live = np.zeros((p_all, len(names)), dtype=bool)
    for p in range(p_all):
        block: dict[str, dict[str, Any]] = {}
        for j, name in enumerate(names):
            point = points[name][p, 0] if n_units[p] else np.nan
            live[p, j] = not np.isnan(point)
            block[name] = {"value": float(point) if live[p, j] else None, "ci_low": None, "ci_high": None,
                           "n_boot_used": 0}
        out.append(block)
    if n_boot <= 0 or not p_all:
        return out
    values = {name: np.full((p_all, n_boot), np.nan) for name in names}
    drawn = live.any(axis=1) & (n_units > 0)
    lo = 0
    while lo < p_all:
        hi, width = lo + 1, int(n_units[lo])
        while hi < p_all and (hi + 1 - lo) * n_boot * (max(width, int(n_units[hi])) + cells) <= _GROUP_CELLS:
            width = max(width, int(n_units[hi]))
            hi += 1
        step = max(1, _CHUNK_CELLS // width) if hi - lo == 1 and width else n_boot
        for start in range(0, n_boot, step):  # one chunk unless a single block is too large
            b = min(step, n_boot - start)
            weights = np.zeros((hi - lo, b, width))
            for p in range(lo, hi):
                if drawn[p]:
                    weights[p - lo, :, : n_units[p]] = replicate_weights(rngs[p], int(n_units[p]), b)
            for name, v in evaluate(weights, lo, hi).items():
                values[name][lo:hi, start:start + b] = v
        lo = hi
    for j, name in enumerate(names):
        reps = values[name]
        rows = np.flatnonzero(live[:, j])
        whole = rows[~np.isnan(reps[rows]).any(axis=1)]
        if whole.size:  # every replicate defined: one call for all such blocks
            low, high = percentile_cis(reps[whole])
            for k, p in enumerate(whole):
                out[p][name].update(ci_low=float(low[k]), ci_high=float(high[k]), n_boot_used=n_boot)
        for p in np.setdiff1d(rows, whole):
            kept = reps[p][~np.isnan(reps[p])]
            if kept.size:
                low1, high1 = percentile_cis(kept[None, :])
                out[p][name].update(ci_low=float(low1[0]), ci_high=float(high1[0]))
            out[p][name]["n_boot_used"] = int(kept.size)
    return out
