"""Comparing groups' survival: the log-rank test (K-sample and every pair) and the log-rank test
for trend across ordered groups, all from one :class:`~lmread.analysis.survival.tables.GroupTables`
(the tests check them against lifelines and ``scipy.stats.logrank``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from lmread.analysis.distributions import chi2_sf
from lmread.analysis.survival.tables import GroupTables


@dataclass
class LogRank:
    """A log-rank chi-square test (``df`` degrees of freedom) with each group's observed and
    expected falls."""

    statistic: float
    df: int
    p_value: float
    observed: list[float] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"statistic", "df", "p_value", "observed", "expected"}``."""
        return {"statistic": self.statistic, "df": self.df, "p_value": self.p_value,
                "observed": self.observed, "expected": self.expected}


class PairwiseLogRank(NamedTuple):
    """The two-sample log-rank test between groups ``a`` and ``b`` (``a < b``)."""

    a: int
    b: int
    test: LogRank


def _oe_and_var(tables: GroupTables, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed, expected and the hypergeometric covariance of (O - E) over ``rows``."""
    n_kt = tables.at_risk[rows].astype(float)
    d_kt = tables.d[rows].astype(float)
    n_t = n_kt.sum(axis=0)
    d_t = d_kt.sum(axis=0)
    use = (d_t > 0) & (n_t > 0)
    n_kt, d_kt, n_t, d_t = n_kt[:, use], d_kt[:, use], n_t[use], d_t[use]
    p = n_kt / n_t
    observed = d_kt.sum(axis=1)
    expected = (p * d_t).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n_t > 1, d_t * (n_t - d_t) / (n_t - 1), 0.0)
    cov = np.diag((p * w).sum(axis=1)) - (p * w) @ p.T
    return observed, expected, cov


def logrank(tables: GroupTables, rows: Any | None = None) -> LogRank:
    """Log-rank test of equal survival across ``rows`` (default: all groups), ``K - 1`` df."""
    rows = np.arange(tables.d.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    observed, expected, cov = _oe_and_var(tables, rows)
    diff = (observed - expected)[:-1]
    sub = cov[:-1, :-1]
    df = len(rows) - 1
    if df < 1 or not np.any(sub):
        return LogRank(0.0, max(df, 0), 1.0, observed.tolist(), expected.tolist())
    stat = float(diff @ np.linalg.pinv(sub) @ diff)
    return LogRank(stat, df, float(chi2_sf(stat, df)), observed.tolist(), expected.tolist())


def logrank_pairwise(tables: GroupTables) -> list[PairwiseLogRank]:
    """Two-sample log-rank tests between every pair of groups, ``a < b``."""
    n_g = tables.d.shape[0]
    return [PairwiseLogRank(a, b, logrank(tables, [a, b])) for a in range(n_g) for b in range(a + 1, n_g)]


@dataclass
class Trend:
    """Log-rank test for trend: ``U = sum_k s_k (O_k - E_k)``, chi-square ``U^2 / Var U`` (1 df).

    ``U > 0`` means groups with higher scores fall more often than expected (shorter coherent
    length as the score grows); ``U < 0`` means they hold up longer.
    """

    statistic: float
    p_value: float
    u: float
    variance: float
    scores: list[float]

    @property
    def direction(self) -> str:
        """In words, for scores that grow with model size."""
        if self.u == 0:
            return "none"
        return "longer coherent length with size" if self.u < 0 else "shorter coherent length with size"

    def to_json(self) -> dict[str, Any]:
        """``{"statistic", "df", "p_value", "u", "variance", "direction"}``."""
        return {"statistic": self.statistic, "df": 1, "p_value": self.p_value, "u": self.u,
                "variance": self.variance, "direction": self.direction}


def trend_test(tables: GroupTables, scores: Any) -> Trend:
    """Log-rank test for trend across groups with ordered ``scores`` (one per group)."""
    s = np.asarray(scores, dtype=float)
    rows = np.arange(tables.d.shape[0])
    observed, expected, cov = _oe_and_var(tables, rows)
    u = float(s @ (observed - expected))
    var = float(s @ cov @ s)
    if var <= 0:
        return Trend(0.0, 1.0, u, var, s.tolist())
    stat = u * u / var
    return Trend(stat, float(chi2_sf(stat, 1)), u, var, s.tolist())
