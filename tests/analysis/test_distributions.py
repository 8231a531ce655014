"""lmread's distribution functions equal scipy.stats' bit for bit, at random points and at the
ends of the support (0, 1, negative, infinite, nan)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lmread.analysis.distributions import (
    average_ranks,
    chi2_isf,
    chi2_ppf,
    chi2_sf,
    norm_cdf,
    norm_pdf,
    norm_ppf,
    norm_sf,
    t_sf,
)

EDGES = [0.0, 1.0, -0.0, -1e-15, 1e-300, 1.0 - 1e-16, 0.5, -3.0, 2.0, np.inf, -np.inf, np.nan]


def same(a: object, b: object) -> bool:
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    return a_arr.shape == b_arr.shape and bool(np.array_equal(a_arr, b_arr, equal_nan=True))


@pytest.mark.parametrize("seed", [0, 1])
def test_equal_to_scipy_stats_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    q = np.r_[rng.random(400), EDGES]
    x = np.r_[rng.normal(0, 5, 400), rng.exponential(20, 200), EDGES]
    df_q = rng.integers(1, 400, size=q.size).astype(float)
    df_x = rng.integers(1, 400, size=x.size).astype(float)
    assert same(norm_ppf(q), stats.norm.ppf(q))
    assert same(norm_sf(x), stats.norm.sf(x))
    assert same(norm_cdf(x), stats.norm.cdf(x))
    assert same(norm_pdf(x), stats.norm.pdf(x))
    assert same(chi2_isf(q, df_q), stats.chi2.isf(q, df_q))
    assert same(chi2_sf(x, df_x), stats.chi2.sf(x, df_x))
    assert same(chi2_ppf(q, df_q), stats.chi2.ppf(q, df_q))
    assert same(t_sf(x, df_x), stats.t.sf(x, df_x))
    for v in (0.975, 0.0, 1.0, 3.7, -2.0, np.nan):  # scalars stay scalars
        assert same(norm_ppf(v), stats.norm.ppf(v)) and same(norm_sf(v), stats.norm.sf(v))
        assert same(chi2_sf(v, 3), stats.chi2.sf(v, 3)) and same(chi2_ppf(v, 3), stats.chi2.ppf(v, 3))
        assert same(t_sf(v, 7), stats.t.sf(v, 7)) and same(chi2_isf(v, 1), stats.chi2.isf(v, 1))
        assert same(norm_cdf(v), stats.norm.cdf(v)) and same(norm_pdf(v), stats.norm.pdf(v))
    assert same(chi2_sf(5.0, 0), stats.chi2.sf(5.0, 0)) and same(chi2_ppf(0.5, -1), stats.chi2.ppf(0.5, -1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_ranks_equal_rankdata(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for values in (rng.integers(0, 6, 50), rng.normal(size=30), np.zeros(5), np.arange(1), np.array([])):
        assert same(average_ranks(values), stats.rankdata(values))
    with_nan = np.array([1.0, np.nan, 3.0])
    assert same(average_ranks(with_nan), stats.rankdata(with_nan))
