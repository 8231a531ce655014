"""The pairs' bootstraps evaluated together give exactly what one bootstrap per pair gives: the
same draws from each pair's own generator, the same point estimates, intervals and replicate
counts, also when blocks are grouped, chunked or empty."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lmread.analysis.agreement import (
    FallPair,
    alpha_from_sums,
    alpha_from_units,
    bootstrap,
    bootstrap_blocks,
    kappa_from_counts,
    ratio_from_sums,
    ratio_from_units,
    rng_for,
    what_fell,
    what_fell_blocks,
)
from lmread.analysis.agreement import resample as bootstrap_module
from lmread.records import CATEGORY_KEYS


def random_blocks(seed: int) -> list[np.ndarray]:
    """Per block, units as rows of (yes_a, yes_b, fell both, position a, position b)."""
    rng = np.random.default_rng(seed)
    sizes = [0, 1, 2, 7, 40, 3, 150, 25]
    blocks = []
    for n in sizes:
        yes = rng.random((n, 2)) < rng.uniform(0.2, 0.8)
        fell = (rng.random(n) < 0.6).astype(float)
        pos = rng.integers(0, 60, size=(n, 2)) * fell[:, None]
        blocks.append(np.column_stack([yes, fell, pos]).astype(float))
    return blocks


def one_block(units: np.ndarray, n_boot: int, rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    a_y, b_y = units[:, 0].astype(bool), units[:, 1].astype(bool)
    fell, a_at, b_at = units[:, 2], units[:, 3], units[:, 4]
    cells = [(a_y & b_y), (a_y & ~b_y), (~a_y & b_y), (~a_y & ~b_y)]
    both, a_only, b_only, neither = (c.astype(float) for c in cells)
    mask = fell > 0

    def alpha(w: np.ndarray) -> np.ndarray:
        if not mask.any():
            return np.full(w.shape[0], np.nan)
        return alpha_from_units(w[:, mask], np.full(int(mask.sum()), 2.0), (a_at + b_at)[mask],
                                (a_at**2 + b_at**2)[mask])

    return bootstrap({"kappa": lambda w: kappa_from_counts(w @ both, w @ a_only, w @ b_only, w @ neither),
                      "alpha": alpha,
                      "distance": lambda w: ratio_from_units(w, np.abs(a_at - b_at) * fell, fell)},
                     len(units), n_boot, rng)


def batched(blocks: list[np.ndarray], n_boot: int, seed: int) -> list[dict[str, dict[str, Any]]]:
    width = max(len(b) for b in blocks)
    cols = np.zeros((len(blocks), width, 9))
    for p, units in enumerate(blocks):
        a_y, b_y = units[:, 0].astype(bool), units[:, 1].astype(bool)
        fell, a_at, b_at = units[:, 2], units[:, 3], units[:, 4]
        s1, s2 = a_at + b_at, a_at**2 + b_at**2
        cols[p, : len(units)] = np.column_stack([a_y & b_y, a_y & ~b_y, ~a_y & b_y, ~a_y & ~b_y, fell,
                                                 np.abs(a_at - b_at) * fell, s1, s2, 2.0 * (2.0 * s2 - s1 * s1) * fell])

    def evaluate(w: np.ndarray, lo: int, hi: int) -> dict[str, np.ndarray]:
        sums = np.moveaxis(w @ cols[lo:hi, : w.shape[2]], 2, 0)
        return {"kappa": kappa_from_counts(*sums[:4]),
                "alpha": alpha_from_sums(2.0 * sums[4], sums[6], sums[7], sums[8]),
                "distance": ratio_from_sums(sums[5], sums[4])}

    return bootstrap_blocks(evaluate, ["kappa", "alpha", "distance"], np.array([len(b) for b in blocks]), n_boot,
                            [rng_for(seed, f"block{p}") for p in range(len(blocks))])


@pytest.mark.parametrize("group_cells, chunk_cells", [(1_000_000, 4_000_000), (3_000, 4_000_000), (3_000, 5_000)])
def test_blocks_equal_one_bootstrap_per_block(monkeypatch: pytest.MonkeyPatch, group_cells: int,
                                              chunk_cells: int) -> None:
    monkeypatch.setattr(bootstrap_module, "_GROUP_CELLS", group_cells)
    monkeypatch.setattr(bootstrap_module, "_CHUNK_CELLS", chunk_cells)
    blocks = random_blocks(3)
    got = batched(blocks, 120, seed=7)
    want = [one_block(units, 120, rng_for(7, f"block{p}")) for p, units in enumerate(blocks)]
    assert got == want  # bit for bit: the same draws, sums and percentiles
    assert got[0]["kappa"]["value"] is None and got[4]["kappa"]["n_boot_used"] > 0
    assert any(0 < g["alpha"]["n_boot_used"] < 120 for g in got)  # some replicates dropped, as one block drops them


def random_falls(rng: np.random.Generator, n_units: int, n: int) -> list[FallPair]:
    keys: list[str | None] = [*CATEGORY_KEYS[:4], None]
    sev: list[int | None] = [1, 2, 3, None]
    return [FallPair(int(rng.integers(0, n_units)), keys[rng.integers(0, 5)], keys[rng.integers(0, 5)],
                     sev[rng.integers(0, 4)], sev[rng.integers(0, 4)]) for _ in range(n)]


def test_what_fell_blocks_equal_what_fell_per_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap_module, "_GROUP_CELLS", 20_000)
    rng = np.random.default_rng(11)
    sizes = [5, 0, 30, 12, 60, 4]
    falls = [random_falls(rng, max(n, 1), n if n else 0) for n in sizes]
    falls[5] = [FallPair(0, CATEGORY_KEYS[0], CATEGORY_KEYS[0], None, None)]  # one kind only, no severity
    got = what_fell_blocks(falls, np.array(sizes), 80, [rng_for(3, f"w{p}") for p in range(len(sizes))])
    want = [what_fell(f, n, 80, rng_for(3, f"w{p}")) for p, (f, n) in enumerate(zip(falls, sizes, strict=True))]
    assert got == want
    assert got[4]["category"]["kappa"]["ci_low"] is not None and got[4]["severity"]["alpha_ordinal"]["value"] is not None


def test_weighted_kappa_from_margins_equals_the_tables_and_statsmodels() -> None:
    from statsmodels.stats.inter_rater import cohens_kappa

    from lmread.analysis.agreement.kernels import weighted_kappa_from_margins, weighted_kappa_from_tables

    rng = np.random.default_rng(5)
    tables = rng.poisson(1.5, size=(40, 4, 4)).astype(float)
    tables[0] = 0.0  # an empty table: undefined
    tables[1] = np.diag([3.0, 0, 0, 0])  # one category only: undefined
    for d, wt in ((1.0 - np.eye(4), None), (np.abs(np.subtract.outer(np.arange(4), np.arange(4))).astype(float), "linear")):
        got = weighted_kappa_from_margins(tables.sum(axis=2), tables.sum(axis=1),
                                          np.einsum("bij,ij->b", tables, d), d)
        assert np.array_equal(got, weighted_kappa_from_tables(tables, d), equal_nan=True)
        assert np.isnan(got[:2]).all()
        for k in range(2, len(tables)):
            assert got[k] == pytest.approx(cohens_kappa(tables[k], wt=wt).kappa, abs=1e-12)
