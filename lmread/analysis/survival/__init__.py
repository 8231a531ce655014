"""Survival statistics of coherent length: pure numpy/scipy on arrays.

Everything here works on plain arrays of durations (in tokens, words, sentences or characters)
and event flags (1 = the text fell there, 0 = right-censored: read that far without a fall).

* :mod:`~lmread.analysis.survival.tables`: event tables (one group, or many on one grid) and the
  one product-limit kernel (at risk, ``prod (1 - d / n)`` summed in logs, Greenwood's terms);
* :mod:`~lmread.analysis.survival.kaplan_meier`: Kaplan–Meier with its log-log band, median,
  restricted mean, curation ratio, hazard in windows;
* :mod:`~lmread.analysis.survival.incidence`: Aalen–Johansen cumulative incidence per category
  with its variance and band;
* :mod:`~lmread.analysis.survival.comparisons`: log-rank (K-sample, pairwise) and trend tests;
* :mod:`~lmread.analysis.survival.scaling`: the fit of log median (or restricted mean) on log
  parameter count with a bootstrap CI.

Each estimator returns one result type that serializes itself (``to_json()``).

Why numpy and not ``scipy.stats.ecdf`` / ``scipy.stats.logrank`` directly: lmread needs the
at-risk, event *and censored* counts at every observed time (scipy reports only event times),
the curve evaluated at censoring times too (as lifelines and R's ``survfit`` do), the log-rank
statistic for every pair of groups and for a trend across all of them from one shared table,
and thousands of bootstrap replicates, all for a million observations in well under a second.
So the estimators are computed here with vectorised numpy (distinct times by counting or
``np.unique``, cumulative sums), and scipy supplies the distributions (``norm.ppf``, ``chi2.sf``,
``chi2.ppf``).  The tests check every number against lifelines and against ``scipy.stats.ecdf`` /
``scipy.stats.logrank``.
"""

from __future__ import annotations

from lmread.analysis.survival.comparisons import LogRank, PairwiseLogRank, Trend, logrank, logrank_pairwise, trend_test
from lmread.analysis.survival.incidence import (
    CumulativeIncidence,
    aalen_johansen,
    cif_bands,
    cif_variance,
    cumulative_incidence,
)
from lmread.analysis.survival.kaplan_meier import (
    KM,
    RMST,
    CurationRatio,
    HazardWindow,
    Median,
    curation,
    hazard_windows,
    hazard_windows_from_table,
    km,
    km_from_table,
    median,
    nice_edges,
    rmst,
)
from lmread.analysis.survival.scaling import ScalingFit, ScalingGroup, bootstrap_statistic, scaling_fit
from lmread.analysis.survival.tables import (
    EventTable,
    GroupTables,
    at_risk_counts,
    check_arrays,
    distinct_times,
    event_table,
    greenwood_terms,
    json_number,
    json_numbers,
    product_limit,
    z_value,
)

__all__ = [
    "KM",
    "RMST",
    "CumulativeIncidence",
    "CurationRatio",
    "EventTable",
    "GroupTables",
    "HazardWindow",
    "LogRank",
    "Median",
    "PairwiseLogRank",
    "ScalingFit",
    "ScalingGroup",
    "Trend",
    "aalen_johansen",
    "at_risk_counts",
    "bootstrap_statistic",
    "check_arrays",
    "cif_bands",
    "cif_variance",
    "cumulative_incidence",
    "curation",
    "distinct_times",
    "event_table",
    "greenwood_terms",
    "hazard_windows",
    "hazard_windows_from_table",
    "json_number",
    "json_numbers",
    "km",
    "km_from_table",
    "logrank",
    "logrank_pairwise",
    "median",
    "nice_edges",
    "product_limit",
    "rmst",
    "scaling_fit",
    "trend_test",
    "z_value",
]
