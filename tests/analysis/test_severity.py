"""Severity analysis: the Jonckheere–Terpstra / Kendall trend test against a hand count and
scipy (kendalltau, permutation_test), chi-square against scipy, the fall-token measures, and
the severity block on an observation table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lmread.analysis.observations import Group, Observations, fall_token_measures
from lmread.analysis.severity import (
    chi_square,
    kendall_s,
    severity_report,
    trend_test,
)
from lmread.records import Sample, Tokens


def expand(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One (size rank, severity) pair per fall of a sizes x severities table."""
    xs, ys = [], []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            xs += [i] * int(count)
            ys += [j + 1] * int(count)
    return np.array(xs), np.array(ys)


def test_jonckheere_by_hand() -> None:
    # sizes small < big; small: severities 1, 1, 2; big: 2, 3
    table = np.array([[2, 1, 0], [0, 1, 1]])
    # J counts pairs (small x, big y) with y > x, ties 1/2: x=1 (twice): y=2,3 -> 2 each = 4;
    # x=2: y=2 tie (1/2), y=3 (1) -> 1.5; J = 5.5, E[J] = 3, S = 2J - 6 = 5
    res = trend_test(table, n_perm=999, seed=1)
    assert res["statistic"] == 5.5 and res["expected"] == 3.0 and res["kendall_s"] == 5.0
    assert res["direction"] == "more severe with size"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trend_matches_scipy_kendalltau(seed: int) -> None:
    rng = np.random.default_rng(seed)
    table = rng.integers(0, 12, size=(int(rng.integers(2, 5)), 3))
    x, y = expand(table)
    ref = stats.kendalltau(x, y, method="asymptotic")
    res = trend_test(table, n_perm=0)
    # S from the definition, pair by pair
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    assert res["kendall_s"] == pytest.approx((dx * dy).sum() / 2)
    assert res["tau_b"] == pytest.approx(ref.statistic, abs=1e-12)
    assert res["p_value_asymptotic"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_permutation_p_value_matches_scipy_permutation_test() -> None:
    rng = np.random.default_rng(5)
    table = np.array([[14, 6, 3], [9, 9, 6], [5, 8, 10]])
    x, y = expand(table)
    res = trend_test(table, n_perm=20000, seed=3)

    def s_stat(yy: np.ndarray) -> float:
        return float(kendall_s(np.histogram2d(x, yy, bins=[np.arange(4) - 0.5, np.arange(1, 5) - 0.5])[0]))

    ref = stats.permutation_test((y,), s_stat, permutation_type="pairings", n_resamples=3000,
                                 alternative="two-sided", random_state=rng)
    assert res["kendall_s"] == pytest.approx(s_stat(y))
    # both are Monte Carlo estimates of the same permutation p-value (about 0.002 here)
    assert abs(res["p_value"] - ref.pvalue) < 4 * math.sqrt(max(ref.pvalue, 1e-3) / 3000) + 1e-3
    assert res["p_value"] < 0.01 and res["direction"] == "more severe with size"
    # seeded: the same seed gives the same p-value
    assert trend_test(table, n_perm=20000, seed=3)["p_value"] == res["p_value"]


def test_no_trend_has_large_p() -> None:
    table = np.array([[10, 10, 10], [10, 10, 10]])
    res = trend_test(table, n_perm=2000, seed=0)
    assert res["kendall_s"] == 0 and res["p_value"] == 1.0 and res["direction"] == "none"


def test_chi_square_where_counts_allow() -> None:
    table = np.array([[20, 15, 10], [12, 18, 25]])
    res, note = chi_square(table)
    ref = stats.chi2_contingency(table, correction=False)
    assert note is None and res["statistic"] == pytest.approx(ref.statistic) and res["df"] == 2
    assert res["p_value"] == pytest.approx(ref.pvalue)
    small, note = chi_square(np.array([[1, 0, 2], [0, 1, 1]]))
    assert small is None and "too small" in note
    rng = np.random.default_rng(4)
    for _ in range(30):
        table = rng.integers(5, 60, size=(int(rng.integers(2, 6)), int(rng.integers(2, 5))))
        res, note = chi_square(table)
        ref = stats.chi2_contingency(table, correction=False)
        assert note is None and res["df"] == ref.dof
        assert res["statistic"] == pytest.approx(ref.statistic, rel=1e-12)
        assert res["p_value"] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
        assert res["min_expected"] == pytest.approx(ref.expected_freq.min(), rel=1e-12)


def sample_with(logprob: list[float | None], rank: list[int | None]) -> Sample:
    n = len(logprob)
    toks = Tokens(ids=list(range(n)), offsets=list(range(n + 1)), nbytes=[1] * n, logprob=logprob, rank=rank,
                  entropy=[1.0] * n)
    return Sample(id="s", model={"id": "m"}, backend="x", prompt={}, settings={}, seed=0, text="a" * n,
                  tokens=toks, finish_reason="length")


def test_fall_token_measures() -> None:
    lp = [-1.0] * 30
    rank = [2] * 30
    lp[25], rank[25] = -9.0, 700
    lp[24], rank[24] = None, None  # a token without a distribution is left out of the median
    s = sample_with(lp, rank)
    assert fall_token_measures(s, 25) == (-9.0, -1.0, 700.0, 2.0)
    first = fall_token_measures(s, 0)
    assert first[0] == -1.0 and math.isnan(first[1])
    plain = Sample(id="p", model={}, backend="x", prompt={}, settings={}, seed=0, text="ab",
                   tokens=Tokens(ids=[0, 1], offsets=[0, 1, 2], nbytes=[1, 1]), finish_reason="eos")
    assert all(math.isnan(v) for v in fall_token_measures(plain, 1))


def test_severity_report_block() -> None:
    # two sizes; the big one falls harder; one prompt-set-like group without size
    groups = [Group("small", {"id": "small"}, 10**6), Group("big", {"id": "big"}, 10**9), Group("odd", None, None)]
    g = np.array([0] * 6 + [1] * 6 + [2] * 2)
    event = np.array([1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0], bool)
    sev = np.array([1, 1, 2, 0, 1, 0, 3, 3, 2, 3, 2, 0, 1, 0])
    cat = np.where(event, np.array([0, 1, 0, 0, 1, -1, 0, 0, 0, 1, 0, 0, 1, -1]), -1)
    measures = np.full((14, 4), np.nan)
    measures[event] = [-5.0, -1.0, 100.0, 3.0]
    n = g.size
    obs = Observations(groups=groups, group=g, tokens=np.arange(n), words=np.arange(n), chars=np.arange(n),
                       event=event, category_code=cat, categories=["repetition", "drift"],
                       sample=[f"s{i}" for i in range(n)], sample_code=np.arange(n), annotator=["a"] * n,
                       end=["fall"] * n, n_annotators=np.ones(n, np.int64), severity=sev, fall_measures=measures)
    block = severity_report(obs, n_perm=999, seed=0)
    small, big, odd = block["groups"]
    assert small["falls"] == 5 and small["rated"] == 4 and small["counts"] == {"1": 3, "2": 1, "3": 0}
    assert big["mean"] == pytest.approx(13 / 5) and odd["rated"] == 1 and odd["n_params"] is None
    assert small["categories"] == {"repetition": 3, "drift": 2}
    assert small["model"]["logprob_drop_median"] == -4.0 and small["model"]["rank_fall_median"] == 100.0
    trend = block["trend"]
    assert trend["sizes"] == [10**6, 10**9] and trend["table"] == [[3, 1, 0], [0, 2, 3]]
    x, y = expand(np.array(trend["table"]))
    assert trend["tau_b"] == pytest.approx(stats.kendalltau(x, y).statistic)
    assert trend["direction"] == "more severe with size"
    assert block["chi_square"] is None and "too small" in block["chi_square_note"]


def test_severity_report_needs_two_sizes() -> None:
    groups = [Group("only", {"id": "only"}, 10**6)]
    n = 3
    obs = Observations(groups=groups, group=np.zeros(n, np.int64), tokens=np.arange(n), words=np.arange(n),
                       chars=np.arange(n), event=np.ones(n, bool), category_code=np.zeros(n, np.int64),
                       categories=["other"], sample=["a", "b", "c"], sample_code=np.arange(n), annotator=["x"] * n,
                       end=["fall"] * n, n_annotators=np.ones(n, np.int64))
    block = severity_report(obs)
    assert block["trend"] is None and "two known model sizes" in block["trend_note"]
    assert block["groups"][0]["rated"] == 0 and block["groups"][0]["proportions"] is None
