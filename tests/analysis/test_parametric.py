"""Parametric survival: Weibull and log-logistic AFT fits against lifelines (coefficients to
1e-4), the Cox fit and Grambsch–Therneau test against lifelines' CoxPHFitter and
proportional_hazard_test, Aalen–Johansen confidence intervals against AalenJohansenFitter, and
the pooled scaling exponent recovering a known one."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from lmread.analysis.observations import Group, Observations
from lmread.analysis.parametric import fit_aft, parametric_report, table_cells
from lmread.analysis.proportional_hazards import cox_efron, ph_report, ph_test
from lmread.analysis.survival import CumulativeIncidence, GroupTables, cumulative_incidence

lifelines = pytest.importorskip("lifelines")

#: lifelines' AFT fitters stop SLSQP at ftol 1e-6, up to ~2e-4 short of the maximum on these data
#: (lmread's log-likelihood is then the higher one); at ftol 1e-14 both reach the same maximum
TIGHT = {"ftol": 1e-14, "maxiter": 1000}
#: likewise lifelines' CoxPHFitter stops its Newton steps at precision 1e-7 (coef off by ~3e-5)
COX_TIGHT = {"precision": 1e-12, "r_precision": 1e-14, "max_steps": 500}


def censored_data(seed: int, n: int = 400, groups: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Continuous Weibull-ish durations with a group-level covariate, about a third censored."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    x = np.log(np.array([1e6, 1e7, 1e8, 1e9, 1e10][:groups]))[g]
    scale = np.exp(1.0 + 0.3 * (x - x.mean()))
    t = scale * rng.weibull(1.3 + 0.2 * seed, n) * 20
    c = rng.uniform(5, 80, n)
    return np.minimum(t, c), (t <= c), x, g


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dist", ["weibull", "loglogistic"])
def test_aft_matches_lifelines(seed: int, dist: str) -> None:
    dur, ev, x, _ = censored_data(seed)
    df = pd.DataFrame({"T": dur, "E": ev.astype(int), "x": x})
    fitter = lifelines.WeibullAFTFitter() if dist == "weibull" else lifelines.LogLogisticAFTFitter()
    loose = fitter.__class__().fit(df, "T", "E")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter.fit(df, "T", "E", fit_options=TIGHT)
    ours = fit_aft(dur, ev, x[:, None], dist, names=["x"])
    assert ours.loglik >= loose.log_likelihood_ - 1e-9
    scale, shape = ("lambda_", "rho_") if dist == "weibull" else ("alpha_", "beta_")
    theirs = {f"{scale}x": fitter.params_[(scale, "x")], f"{scale}Intercept": fitter.params_[(scale, "Intercept")],
              f"{shape}Intercept": fitter.params_[(shape, "Intercept")]}
    got = ours.params()
    assert ours.converged
    for key, value in theirs.items():
        assert got[key] == pytest.approx(value, abs=1e-4), key
    se = fitter.standard_errors_
    assert ours.se[1] == pytest.approx(se[(scale, "x")], rel=1e-3)
    assert ours.se[-1] == pytest.approx(se[(shape, "Intercept")], rel=1e-3)
    assert ours.loglik == pytest.approx(fitter.log_likelihood_, abs=1e-6 * abs(fitter.log_likelihood_))


@pytest.mark.parametrize("dist", ["weibull", "loglogistic"])
def test_aft_intercept_only_and_median(dist: str) -> None:
    dur, ev, _, _ = censored_data(7, n=300)
    df = pd.DataFrame({"T": dur, "E": ev.astype(int)})
    fitter = lifelines.WeibullAFTFitter() if dist == "weibull" else lifelines.LogLogisticAFTFitter()
    fitter.fit(df, "T", "E", fit_options=TIGHT)
    ours = fit_aft(dur, ev, None, dist)
    for key, value in ours.params().items():
        param = key.split("_")[0] + "_"
        assert value == pytest.approx(fitter.params_[(param, "Intercept")], abs=1e-4)
    value, _ = ours.log_median()
    assert math.exp(value) == pytest.approx(float(fitter.median_survival_time_), rel=1e-4)


def test_weights_equal_repeated_rows() -> None:
    rng = np.random.default_rng(3)
    dur = rng.integers(1, 30, 60).astype(float)
    ev = rng.random(60) < 0.7
    w = rng.integers(1, 5, 60)
    a = fit_aft(dur, ev, None, "weibull", weights=w)
    b = fit_aft(np.repeat(dur, w), np.repeat(ev, w), None, "weibull")
    assert np.allclose(a.coef, b.coef, atol=1e-8) and a.log_shape == pytest.approx(b.log_shape, abs=1e-8)
    assert np.allclose(a.cov, b.cov, rtol=1e-6)


def test_table_cells_convention_and_errors() -> None:
    dur, ev, wt = table_cells(np.array([0.0, 3.0, 5.0]), np.array([2, 0, 1]), np.array([1, 4, 0]))
    assert dur.tolist() == [1.0, 6.0, 0.0, 3.0] and ev.tolist() == [True, True, False, False]
    assert wt.tolist() == [2, 1, 1, 4]
    with pytest.raises(ValueError, match="event times must be > 0"):
        fit_aft([0.0, 2.0], [True, True])
    with pytest.raises(ValueError, match="no events"):
        fit_aft([1.0, 2.0], [False, False])


@pytest.mark.parametrize("seed", [0, 4])
def test_cox_and_ph_test_match_lifelines(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    g = rng.integers(0, 3, n)
    x_of = np.log(np.array([1e7, 1e8, 1e9]))
    # a hazard ratio that changes with time (shape differs by group) so the test has something to find
    t = rng.weibull(np.array([0.8, 1.2, 1.8])[g]) * np.exp(0.4 * (x_of[g] - x_of.mean())) * 30
    c = rng.uniform(5, 60, n)
    dur, ev = np.minimum(t, c), t <= c
    tables = GroupTables.build(dur, ev, g, 3)
    ours = cox_efron(tables.time, tables.d, tables.at_risk, x_of)
    df = pd.DataFrame({"T": dur, "E": ev.astype(int), "x": x_of[g]})
    cph = lifelines.CoxPHFitter().fit(df, "T", "E", fit_options=COX_TIGHT)
    assert ours.coef == pytest.approx(cph.params_["x"], abs=1e-6)
    assert ours.se == pytest.approx(cph.standard_errors_["x"], rel=1e-5)
    from lifelines.statistics import proportional_hazard_test

    for transform in ("rank", "identity", "log"):
        ref = proportional_hazard_test(cph, df, time_transform=transform)
        mine = ph_test(ours, transform)
        assert mine["statistic"] == pytest.approx(float(np.ravel(ref.test_statistic)[0]), rel=1e-5), transform
        assert mine["p_value"] == pytest.approx(float(np.ravel(ref.p_value)[0]), rel=1e-4, abs=1e-12)


def test_cox_efron_ties_match_lifelines() -> None:
    rng = np.random.default_rng(9)
    n = 250
    g = rng.integers(0, 3, n)
    x_of = np.array([0.0, 1.0, 2.5])
    dur = np.minimum(rng.integers(1, 12, n), rng.integers(3, 15, n)).astype(float)
    ev = rng.random(n) < 0.75
    tables = GroupTables.build(dur, ev, g, 3)
    ours = cox_efron(tables.time, tables.d, tables.at_risk, x_of)
    cph = lifelines.CoxPHFitter().fit(pd.DataFrame({"T": dur, "E": ev.astype(int), "x": x_of[g]}), "T", "E",
                                      fit_options=COX_TIGHT)
    assert ours.coef == pytest.approx(cph.params_["x"], abs=1e-6)
    assert ours.se == pytest.approx(cph.standard_errors_["x"], rel=1e-5)
    assert ours.loglik == pytest.approx(cph.log_likelihood_, rel=1e-8)


def _cif(durations: np.ndarray, codes: np.ndarray, causes: list[int]
         ) -> tuple[CumulativeIncidence, np.ndarray, np.ndarray, np.ndarray]:
    res = cumulative_incidence(durations, codes, causes)
    return res, res.variance, res.ci_low, res.ci_high


def test_cif_confidence_intervals_match_lifelines() -> None:
    rng = np.random.default_rng(11)
    n = 200
    dur = rng.exponential(20, n)
    cause = np.where(rng.random(n) < 0.3, 0, rng.integers(1, 3, n))  # 0 censored, causes 1 and 2
    aj, var, low, high = _cif(dur, np.where(cause == 0, -1, cause - 1), [1, 2])
    for k, code in enumerate((1, 2)):
        fitter = lifelines.AalenJohansenFitter(calculate_variance=True).fit(dur, cause, event_of_interest=code)
        cif = fitter.cumulative_density_.iloc[:, 0]
        theirs_var = fitter.variance_
        ci = fitter.confidence_interval_
        at = {float(t): i for i, t in enumerate(aj.time)}
        rows = [t for t in cif.index if float(t) in at]
        assert len(rows) == n
        idx = np.array([at[float(t)] for t in rows])
        assert np.allclose(aj.cif[k, idx], cif.loc[rows].to_numpy(), atol=1e-12)
        assert np.allclose(var[k, idx], np.asarray(theirs_var.loc[rows], float), rtol=1e-8, atol=1e-14)
        lo_ref = ci.loc[rows].min(axis=1).to_numpy()
        hi_ref = ci.loc[rows].max(axis=1).to_numpy()
        ok = aj.cif[k, idx] > 0
        assert np.allclose(low[k, idx][ok], lo_ref[ok], atol=1e-10)
        assert np.allclose(high[k, idx][ok], hi_ref[ok], atol=1e-10)
    assert np.all(low <= aj.cif + 1e-15) and np.all(aj.cif <= high + 1e-15)
    assert np.all((low >= 0) & (high <= 1))


def test_cif_bands_with_ties_are_sane() -> None:
    rng = np.random.default_rng(2)
    dur = rng.integers(0, 40, 500).astype(float)
    codes = np.where(rng.random(500) < 0.4, -1, rng.integers(0, 3, 500))
    aj, var, low, high = _cif(dur, codes, [0, 1, 2])
    assert np.all(var >= 0) and np.all(low <= aj.cif + 1e-12) and np.all(aj.cif <= high + 1e-12)
    assert np.all(np.diff(aj.cif, axis=1) >= -1e-15)
    # wider with fewer observations
    _, _, low_s, high_s = _cif(dur[:100], codes[:100], [0, 1, 2])
    assert (high_s[:, -1] - low_s[:, -1]).mean() > (high[:, -1] - low[:, -1]).mean()


def obs_from(durations: np.ndarray, events: np.ndarray, group: np.ndarray, sizes: list[int]) -> Observations:
    n = durations.size
    groups = [Group(f"m{k}", {"id": f"m{k}", "n_params": s}, s) for k, s in enumerate(sizes)]
    return Observations(groups=groups, group=group, tokens=durations, words=durations, chars=durations,
                        event=events, category_code=np.where(events, 0, -1), categories=["other"],
                        sample=[f"s{i}" for i in range(n)], sample_code=np.arange(n), annotator=["a"] * n,
                        end=["fall"] * n, n_annotators=np.ones(n, np.int64))


def test_pooled_exponent_recovers_truth_and_matches_lifelines() -> None:
    rng = np.random.default_rng(1)
    sizes = [10**7, 10**8]  # two sizes already give an answer with an interval
    n = 4000
    g = rng.integers(0, 2, n)
    true_b = 0.35
    t = np.floor(np.exp(true_b * np.log(np.array(sizes, float))[g]) * rng.weibull(1.4, n) * 0.2)
    read = rng.integers(50, 400, n)
    dur = np.minimum(t, read).astype(np.int64)
    ev = t < read
    obs = obs_from(dur, ev, g, sizes)
    tables = GroupTables.build(dur.astype(float), ev, g, 2)
    block = parametric_report(obs, tables)
    wb = block["scaling"]["weibull"]
    assert wb["exponent_ci_low"] < true_b < wb["exponent_ci_high"]
    assert wb["exponent_ci_high"] - wb["exponent_ci_low"] < 0.1
    # the same fit by lifelines on the expanded rows (fall at t -> t + 1 units read)
    df = pd.DataFrame({"T": np.where(ev, dur + 1, dur).astype(float), "E": ev.astype(int),
                       "x": np.log(np.array(sizes, float))[g]})
    df = df[df["T"] > 0]
    ref = lifelines.WeibullAFTFitter().fit(df, "T", "E", fit_options=TIGHT)
    assert wb["exponent"] == pytest.approx(ref.params_[("lambda_", "x")], abs=1e-4)
    assert wb["exponent_se"] == pytest.approx(ref.standard_errors_[("lambda_", "x")], rel=1e-3)
    assert block["scaling"]["preferred"] in ("weibull", "loglogistic")
    for grp in block["groups"]:
        assert grp["weibull"]["median_ci_low"] < grp["weibull"]["median"] < grp["weibull"]["median_ci_high"]
    ph = ph_report(obs, tables)
    assert ph["statistic"] is not None and 0 <= ph["p_value"] <= 1


def test_report_notes_when_it_cannot_fit() -> None:
    dur = np.array([3, 5, 8, 2])
    ev = np.array([False, False, True, True])
    obs = obs_from(dur, ev, np.array([0, 0, 1, 1]), [10**6, 10**6])
    tables = GroupTables.build(dur.astype(float), ev, obs.group, 2)
    block = parametric_report(obs, tables)
    assert block["groups"][0]["weibull"] is None and "no falls" in block["groups"][0]["note"]
    assert block["scaling"]["weibull"] is None and "two model sizes" in block["scaling"]["note"]
    assert ph_report(obs, tables)["statistic"] is None


@pytest.mark.parametrize("dist", ["weibull", "loglogistic"])
def test_scipy_trust_region_fallback_gives_the_same_fit(dist: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import lmread.analysis.parametric as parametric

    dur, ev, x, _ = censored_data(5)
    newton = fit_aft(dur, ev, x[:, None], dist)
    assert newton.message.startswith("Newton converged")
    monkeypatch.setattr(parametric, "_newton", lambda *a, **k: (None, "forced"))
    scipy_fit = fit_aft(dur, ev, x[:, None], dist)
    assert scipy_fit.message.startswith("trust-exact") and scipy_fit.converged
    assert np.allclose(scipy_fit.coef, newton.coef, atol=1e-7)
    assert scipy_fit.log_shape == pytest.approx(newton.log_shape, abs=1e-7)


def test_falls_in_one_size_only_is_a_note_not_a_number() -> None:
    rng = np.random.default_rng(0)
    dur = rng.integers(5, 50, 40)
    ev = np.zeros(40, bool)
    ev[:20] = rng.random(20) < 0.7  # only the small model ever falls
    group = np.array([0] * 20 + [1] * 20)
    obs = obs_from(dur, ev, group, [10**6, 10**8])
    tables = GroupTables.build(dur.astype(float), ev, group, 2)
    block = parametric_report(obs, tables)
    assert block["groups"][0]["weibull"] is not None and block["groups"][1]["weibull"] is None
    assert block["scaling"]["weibull"] is None and "fewer than two model sizes" in block["scaling"]["note"]
    ph = ph_report(obs, tables)
    assert ph["statistic"] is None and "monotone likelihood" in ph["note"]
