"""Parametric fits benchmark: Weibull and log-logistic AFT fits per group and pooled on
``log n_params`` (and the proportional-hazards check) on 1,000,000 observations in 10 groups,
measured in the same run as the Kaplan–Meier survival report of the same observations and
reported beside it.  Target: the parametric fits in at most 5 s."""

from __future__ import annotations

import time

from lmread.bench.result import BenchResult


def run(quick: bool = False) -> list[BenchResult]:
    """Time the KM report and the parametric fits side by side on one synthetic table."""
    from lmread.analysis.parametric import parametric_report
    from lmread.analysis.proportional_hazards import ph_report
    from lmread.analysis.report import build_survival
    from lmread.analysis.survival import GroupTables
    from lmread.bench.survival import synthetic_observations

    n = 200_000 if quick else 1_000_000
    obs = synthetic_observations(n)
    build_survival(synthetic_observations(5_000), n_boot=0)  # warm imports
    t0 = time.perf_counter()
    build_survival(obs, "tokens", study={"name": "bench"})
    report_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tables = GroupTables.build(obs.tokens.astype(float), obs.event, obs.group, len(obs.groups))
    block = parametric_report(obs, tables)
    ph = ph_report(obs, tables)
    fits_s = time.perf_counter() - t0
    scaling = block["scaling"]
    details = {"observations": n, "groups": len(obs.groups), "km_report_s (everything, incl. the fits)": report_s,
               "weibull_exponent": (scaling["weibull"] or {}).get("exponent"),
               "loglogistic_exponent": (scaling["loglogistic"] or {}).get("exponent"),
               "ph_p_value": ph["p_value"]}
    return [
        BenchResult("parametric AFT fits + PH check", fits_s, "s", target=None if quick else 5.0, comparison="<=",
                    details=details),
        BenchResult("KM survival report of the same observations", report_s, "s", details={"observations": n}),
    ]
