"""Survival statistics: cross-checks against lifelines and scipy, and hand-worked cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from lmread.analysis import survival as sv

lifelines = pytest.importorskip("lifelines")
from lifelines import AalenJohansenFitter, KaplanMeierFitter  # noqa: E402
from lifelines.statistics import logrank_test, multivariate_logrank_test  # noqa: E402
from lifelines.utils import median_survival_times, restricted_mean_survival_time  # noqa: E402


def _inf_to_none(value: float) -> float | None:
    return None if math.isinf(value) else float(value)


def _dataset(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Random durations with ties and censoring; some datasets all-censored or all-events."""
    n = int(rng.integers(1, 250))
    if k % 3 == 0:
        d = rng.integers(0, 25, n).astype(float)  # heavy ties, including 0
    elif k % 3 == 1:
        d = np.round(rng.exponential(30, n))
    else:
        d = np.round(rng.weibull(1.5, n) * 40, 1)
    p_event = [0.0, 1.0, rng.random()][k % 7 % 3] if k % 7 < 2 else rng.random()
    e = rng.random(n) < p_event
    return d, e


DATASETS = [_dataset(np.random.default_rng(1000 + k), k) for k in range(80)]


@pytest.mark.parametrize("k", range(len(DATASETS)))
def test_km_matches_lifelines(k: int) -> None:
    d, e = DATASETS[k]
    ours = sv.km(d, e)
    theirs = KaplanMeierFitter().fit(d, e)
    sf = theirs.survival_function_.iloc[:, 0]
    ci = theirs.confidence_interval_
    np.testing.assert_allclose(ours.time, sf.index.values)
    np.testing.assert_allclose(ours.survival, sf.values, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.ci_low, ci.iloc[:, 0].values, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.ci_high, ci.iloc[:, 1].values, atol=1e-6, rtol=0)
    table = theirs.event_table
    np.testing.assert_array_equal(ours.at_risk, table["at_risk"].values)
    np.testing.assert_array_equal(ours.events, table["observed"].values)
    np.testing.assert_array_equal(ours.censored, table["censored"].values)
    med = sv.median(ours)
    med_ci = median_survival_times(ci)
    assert med.value == _inf_to_none(theirs.median_survival_time_)
    assert med.ci_low == _inf_to_none(med_ci.iloc[0, 0])
    assert med.ci_high == _inf_to_none(med_ci.iloc[0, 1])
    horizon = float(np.median(d)) or 1.0
    assert sv.rmst(ours, horizon).value == pytest.approx(restricted_mean_survival_time(theirs, horizon), abs=1e-6)


def test_enough_random_datasets_have_ties_and_censoring() -> None:
    mixed = [k for k, (d, e) in enumerate(DATASETS) if len(np.unique(d)) < len(d) and e.any() and (~e).any()]
    assert len(mixed) >= 50


ECDF_CASES = [k for k in range(60) if DATASETS[k][1].any() and DATASETS[k][0].size >= 2][:30]


@pytest.mark.parametrize("k", ECDF_CASES)
def test_km_matches_scipy_ecdf(k: int) -> None:
    d, e = DATASETS[k]  # scipy.stats.ecdf needs an event: ECDF_CASES holds only such datasets
    ours = sv.km(d, e)
    res = stats.ecdf(stats.CensoredData(uncensored=d[e], right=d[~e]))
    times = res.sf.quantiles
    np.testing.assert_allclose(ours.at(times), res.sf.probabilities, atol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        band = res.sf.confidence_interval(method="log-log")
    idx = np.searchsorted(ours.time, times)
    low, high = band.low.evaluate(times), band.high.evaluate(times)
    ok = np.isfinite(low) & np.isfinite(high) & (ours.survival[idx] > 0) & (ours.survival[idx] < 1)
    np.testing.assert_allclose(ours.ci_low[idx][ok], low[ok], atol=1e-6)
    np.testing.assert_allclose(ours.ci_high[idx][ok], high[ok], atol=1e-6)


@pytest.mark.parametrize("seed", range(55))
def test_logrank_matches_lifelines_and_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = rng.integers(2, 120, 2)
    d = [rng.integers(0, 40, k).astype(float) for k in n]
    e = [rng.random(k) < 0.3 + 0.6 * rng.random() for k in n]
    if not (e[0].any() or e[1].any()):
        e[0][0] = True
    tables = sv.GroupTables.build(np.concatenate(d), np.concatenate(e), np.repeat([0, 1], n))
    ours = sv.logrank(tables)
    theirs = logrank_test(d[0], d[1], e[0], e[1])
    assert ours.statistic == pytest.approx(theirs.test_statistic, abs=1e-6)
    assert ours.p_value == pytest.approx(theirs.p_value, abs=1e-6)
    sp = stats.logrank(stats.CensoredData(uncensored=d[0][e[0]], right=d[0][~e[0]]),
                       stats.CensoredData(uncensored=d[1][e[1]], right=d[1][~e[1]]))
    assert ours.statistic == pytest.approx(sp.statistic**2, abs=1e-6)
    # the trend test with two groups is the two-sample log-rank test
    assert sv.trend_test(tables, [1, 2]).statistic == pytest.approx(ours.statistic, abs=1e-9)
    pair = sv.logrank_pairwise(tables)
    assert len(pair) == 1 and pair[0][2].statistic == pytest.approx(ours.statistic)


@pytest.mark.parametrize("seed", range(10))
def test_k_sample_logrank_matches_lifelines(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = rng.integers(3, 80, 4)
    d = np.concatenate([rng.integers(0, 30, k).astype(float) for k in n])
    e = rng.random(d.size) < 0.7
    g = np.repeat(np.arange(4), n)
    ours = sv.logrank(sv.GroupTables.build(d, e, g))
    theirs = multivariate_logrank_test(d, g, e)
    assert ours.df == 3
    assert ours.statistic == pytest.approx(theirs.test_statistic, abs=1e-6)
    assert ours.p_value == pytest.approx(theirs.p_value, abs=1e-6)


@pytest.mark.parametrize("seed", range(50))
def test_aalen_johansen_matches_lifelines_without_ties(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(5, 150))
    d = rng.exponential(10, n)  # continuous: no ties
    causes = rng.integers(0, 4, n)  # 0 = censored
    ours = sv.aalen_johansen(d, causes)
    total = ours.cif.sum(axis=0) + ours.survival
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    for k, cause in enumerate(ours.causes):
        fitted = AalenJohansenFitter(calculate_variance=False).fit(d, causes, event_of_interest=cause)
        cd = fitted.cumulative_density_.iloc[:, 0]
        idx = np.searchsorted(ours.time, cd.index.values, side="right") - 1
        mine = np.where(idx >= 0, ours.cif[k][np.maximum(idx, 0)], 0.0)
        np.testing.assert_allclose(mine, cd.values, atol=1e-6)


def test_aalen_johansen_tied_times_by_hand() -> None:
    # 4 samples: at t=2 one falls by "a" and one by "b" (tied), one censored at 2, one falls "a" at 5
    ours = sv.aalen_johansen([2, 2, 2, 5], ["a", "b", 0, "a"])
    assert ours.causes == ["a", "b"]
    np.testing.assert_allclose(ours.time, [2, 5])
    # at 2: n=4, CIF_a = CIF_b = 1/4, S = 1/2; at 5: n=1, CIF_a += S(2) * 1/1
    np.testing.assert_allclose(ours.cif[0], [0.25, 0.75])
    np.testing.assert_allclose(ours.cif[1], [0.25, 0.25])
    np.testing.assert_allclose(ours.survival, [0.5, 0.0])


# ---- hand-worked cases ------------------------------------------------------------------


def test_no_events_group() -> None:
    curve = sv.km([3, 5, 5, 9], [0, 0, 0, 0])
    assert curve.survival.tolist() == [1.0, 1.0, 1.0, 1.0]
    assert curve.ci_low.tolist() == [1.0] * 4 and curve.ci_high.tolist() == [1.0] * 4
    assert curve.censored.tolist() == [0, 1, 2, 1]
    med = sv.median(curve)
    assert med.value is None and med.ci_low is None and "no falls" in (med.note or "")
    assert sv.rmst(curve, 9).value == pytest.approx(9.0)
    ratio = sv.curation(curve, [5, 20])
    assert ratio[0].ratio == 1.0 and ratio[1].ratio is None and "beyond" in (ratio[1].note or "")


def test_single_sample() -> None:
    curve = sv.km([7], [1])
    assert curve.time.tolist() == [0.0, 7.0]
    assert curve.survival.tolist() == [1.0, 0.0]
    assert curve.at_risk.tolist() == [1, 1]
    med = sv.median(curve)
    assert (med.value, med.ci_low, med.ci_high) == (7.0, 7.0, 7.0)
    one_censored = sv.median(sv.km([7], [0]))
    assert one_censored.value is None


def test_falls_at_zero() -> None:
    curve = sv.km([0, 0, 4, 6], [1, 1, 1, 0])
    assert curve.time.tolist() == [0.0, 4.0, 6.0]  # no extra t=0 point: the data has one
    np.testing.assert_allclose(curve.survival, [0.5, 0.25, 0.25])
    assert sv.median(curve).value == 0.0
    assert sv.rmst(curve, 6).value == pytest.approx(0.5 * 4 + 0.25 * 2)


def test_hazard_windows_by_hand() -> None:
    # falls at 2 and 5, censored at 4: exposures (units at risk) 3, 6 and 4
    out = sv.hazard_windows([2, 5, 4], [1, 1, 0], [0, 3, 10])
    assert [w.events for w in out] == [1, 1]
    assert [w.exposure for w in out] == [9.0, 4.0]  # [0,3): 3+3+3; [3,10): 0+3+1
    assert out[0].hazard == pytest.approx(1 / 9)
    assert out[0].ci_low < out[0].hazard < out[0].ci_high


def test_rmst_by_hand() -> None:
    curve = sv.km([2, 4, 6], [1, 1, 1])
    # S = 1 on [0,2), 2/3 on [2,4), 1/3 on [4,6)
    result = sv.rmst(curve, 5)
    assert result.value == pytest.approx(2 + 2 * 2 / 3 + 1 / 3)
    assert result.se > 0 and result.ci_low < result.value < result.ci_high


def test_curation_ratio() -> None:
    curve = sv.km([1, 2, 3, 4], [1, 1, 0, 1])
    out = sv.curation(curve, [2, 4])
    assert out[0].survival == pytest.approx(0.5) and out[0].ratio == pytest.approx(2.0)
    assert out[1].ratio is None and out[1].infinite is True
    assert out[1].note == "none of the 4 samples held past 4"


def test_nice_edges() -> None:
    edges = sv.nice_edges(87)
    assert edges[0] == 0 and edges[-1] > 87 and len(edges) <= 12
    assert np.allclose(np.diff(edges), edges[1])


# ---- bootstrap and scaling ----------------------------------------------------------------


def _naive_bootstrap(d: np.ndarray, e: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    out = []
    for _ in range(n_boot):
        idx = rng.integers(0, d.size, d.size)
        out.append(sv.median(sv.km(d[idx], e[idx])).value or np.nan)
    return np.array(out, dtype=float)


def test_bootstrap_median_matches_naive_resampling_in_distribution() -> None:
    rng = np.random.default_rng(5)
    d = np.floor(rng.exponential(30, 300))
    e = rng.random(300) < 0.7
    fast = sv.bootstrap_statistic(*sv.event_table(d, e), "median", None, 2000, np.random.default_rng(1))
    slow = _naive_bootstrap(d, e, 600, np.random.default_rng(2))
    assert np.isfinite(fast).all()
    assert np.quantile(fast, 0.5) == pytest.approx(np.quantile(slow, 0.5), abs=2)
    assert np.quantile(fast, [0.05, 0.95]) == pytest.approx(np.quantile(slow, [0.05, 0.95]), abs=3)


def test_bootstrap_tail_split_is_exact() -> None:
    # half the data far beyond the median: replicates whose median lands in the tail must still
    # get the exact tail times
    d = np.array([1.0] * 10 + [50.0, 60.0, 70.0] * 4)
    e = np.ones(d.size, dtype=bool)
    reps = sv.bootstrap_statistic(*sv.event_table(d, e), "median", None, 500, np.random.default_rng(0))
    assert set(np.unique(reps[np.isfinite(reps)])) <= {1.0, 50.0, 60.0, 70.0}
    assert (reps > 1).any()


def test_bootstrap_rmst_equals_point_estimate_without_variation() -> None:
    d = np.array([5.0] * 20)
    e = np.ones(20, dtype=bool)
    reps = sv.bootstrap_statistic(*sv.event_table(d, e), "rmst", 8.0, 50, np.random.default_rng(0))
    np.testing.assert_allclose(reps, 5.0)


def test_scaling_fit_recovers_power_law() -> None:
    rng = np.random.default_rng(9)
    groups = []
    for n_params in (1e7, 1e8, 1e9, 1e10):
        scale = 20 * (n_params / 1e7) ** 0.25
        d = np.floor(rng.exponential(scale, 4000))
        e = np.ones(d.size, dtype=bool)
        groups.append(sv.ScalingGroup(f"m{n_params:g}", n_params, sv.event_table(d, e)))
    fit = sv.scaling_fit(groups, "median", n_boot=300, seed=1)
    assert fit.slope == pytest.approx(0.25, abs=0.03)
    assert fit.slope_ci_low < fit.slope < fit.slope_ci_high
    assert fit.n_boot_used == 300 and fit.r2 > 0.95
    fit_rmst = sv.scaling_fit(groups, "rmst", horizon=30.0, n_boot=100, seed=1)
    assert 0 < fit_rmst.slope < 0.25 and fit_rmst.horizon == 30.0


def test_distinct_times_matches_unique() -> None:
    rng = np.random.default_rng(3)
    for d in (rng.integers(0, 1000, 500).astype(float), rng.random(500) * 10):
        t1, i1 = sv.distinct_times(d)
        t2, i2 = np.unique(d, return_inverse=True)
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(i1, i2.ravel())


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        sv.km([1, -1], [1, 1])
    with pytest.raises(ValueError):
        sv.km([1, 2], [1])


# ---- the one kernel ----------------------------------------------------------------------


def test_kernel_rows_match_single_tables() -> None:
    rng = np.random.default_rng(4)
    removed = rng.integers(0, 4, (5, 30))
    d = np.minimum(rng.integers(0, 3, (5, 30)), removed)
    at_risk = sv.at_risk_counts(removed)
    for r in range(5):
        one = sv.at_risk_counts(removed[r])
        assert one.tolist() == at_risk[r].tolist()
        assert one[0] == removed[r].sum() and np.all(np.diff(one) == -removed[r][:-1])
        np.testing.assert_array_equal(sv.product_limit(one, d[r]), sv.product_limit(at_risk, d)[r])
    assert sv.at_risk_counts(np.zeros(0, np.int64)).size == 0


def test_every_estimator_shares_the_same_curve_bits() -> None:
    # Kaplan–Meier, the all-cause curve under Aalen–Johansen and the bootstrap replicates come
    # from one kernel, so they agree to the last bit (not just within a tolerance)
    rng = np.random.default_rng(8)
    d = rng.integers(1, 60, 3000).astype(float)
    codes = np.where(rng.random(3000) < 0.3, -1, rng.integers(0, 3, 3000))
    curve = sv.km(d, codes >= 0)
    cif = sv.cumulative_incidence(d, codes, [0, 1, 2])
    assert curve.time[0] == 0 and np.array_equal(curve.time[1:], cif.time)
    np.testing.assert_array_equal(curve.survival[1:], cif.survival)
    np.testing.assert_array_equal(curve.at_risk[1:], cif.at_risk)
    np.testing.assert_array_equal(curve.greenwood[1:], np.cumsum(sv.greenwood_terms(cif.at_risk, cif.events.sum(axis=0))))


def test_results_serialize_themselves() -> None:
    curve = sv.km([1, 2, 2, 5], [1, 0, 1, 1])
    assert curve.to_json()[0] == {"t": 0, "survival": 1.0, "ci_low": 1.0, "ci_high": 1.0, "at_risk": 4, "events": 0,
                                  "censored": 0}
    assert sv.median(curve).to_json() == {"value": 2, "ci_low": 1, "ci_high": 5, "note": None}  # whole numbers as ints
    assert list(sv.curation(curve, [1])[0].to_json()) == ["length", "survival", "ratio", "infinite", "note"]
    assert sv.hazard_windows([2], [1], [0, 5])[0].to_json()["exposure"] == 3.0
    tables = sv.GroupTables.build([1, 2, 3, 4], [1, 1, 1, 1], [0, 0, 1, 1])
    assert sv.logrank(tables).to_json()["df"] == 1
    trend = sv.trend_test(tables, [1, 2]).to_json()
    assert trend["direction"] == "longer coherent length with size" and trend["df"] == 1
    inc = sv.aalen_johansen([2, 2, 2, 5], ["a", "b", 0, "a"]).to_json(horizon=3)
    assert list(inc) == ["a", "b"] and inc["a"]["events"] == 2 and inc["a"]["cif_at_horizon"] == pytest.approx(0.25)
    assert [p["t"] for p in inc["a"]["curve"]] == [2, 5]


def test_the_package_keeps_the_public_names() -> None:
    # the names of the former analysis/survival.py and analysis/incidence.py modules (their
    # aalen_johansen_codes is cumulative_incidence now, which also gives the variance and band)
    old = ("KM z_value distinct_times event_table km_from_table km Median median RMST rmst curation hazard_windows "
           "hazard_windows_from_table nice_edges CumulativeIncidence aalen_johansen GroupTables LogRank logrank "
           "logrank_pairwise Trend trend_test bootstrap_statistic ScalingFit scaling_fit cif_variance cif_bands "
           "cumulative_incidence").split()
    assert [name for name in old if name not in sv.__all__ or not hasattr(sv, name)] == []
