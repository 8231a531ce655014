"""The survival document (``lmread.survival/1``): built from an observation table, or from a study.

:func:`build_survival` turns an :class:`~lmread.analysis.observations.Observations` table into
the JSON document whose schema is ``annotations/schema/survival.schema.json`` (curves with
confidence bands, medians, restricted means, hazards, curation ratios, cumulative incidence per
category, log-rank comparisons, trend and scaling fit); :func:`compute` opens a study and does
the whole way.  The CLI (``lmread survival``) and the TUI's survival view both call this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lmread import __version__
from lmread.analysis.observations import Observations, check_unit, observations_from_study
from lmread.analysis.parametric import parametric_report
from lmread.analysis.proportional_hazards import ph_report
from lmread.analysis.severity import severity_report
from lmread.analysis.survival import (
    KM,
    GroupTables,
    ScalingGroup,
    cumulative_incidence,
    curation,
    hazard_windows_from_table,
    json_number,
    km_from_table,
    logrank,
    logrank_pairwise,
    median,
    nice_edges,
    rmst,
    scaling_fit,
    trend_test,
)
from lmread.collector import call_paused
from lmread.errors import OptionError
from lmread.records import SURVIVAL_SCHEMA, utc_now
from lmread.study import Study

#: default lengths of the curation ratio, per unit
CURATION_LENGTHS: dict[str, tuple[int, ...]] = {
    "tokens": (25, 50, 100, 200, 500, 1000, 2000, 5000),
    "words": (25, 50, 100, 200, 500, 1000, 2000, 5000),
    "chars": (100, 250, 500, 1000, 2500, 5000, 10000, 25000),
    "sentences": (1, 2, 3, 5, 10, 20, 50, 100),
}


def build_survival(
    obs: Observations,
    unit: str = "tokens",
    *,
    study: dict[str, Any] | None = None,
    horizon: float | None = None,
    lengths: list[float] | None = None,
    alpha: float = 0.05,
    n_boot: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """The survival JSON document (schema ``lmread.survival/1``) of an observation table.

    ``horizon`` (restricted mean) defaults to the shortest of the groups' longest observations,
    so every group's curve is known up to it.  ``lengths`` are the curation-ratio lengths
    (default: :data:`CURATION_LENGTHS` up to the longest observation).
    """
    check_unit(unit)
    if len(obs) == 0:
        raise OptionError("no observations to analyse")
    dur = obs.duration(unit).astype(float)
    n_g = len(obs.groups)
    tables = GroupTables.build(dur, obs.event, obs.group, n_g)
    order = np.argsort(obs.group, kind="stable")
    bounds = np.searchsorted(obs.group[order], np.arange(n_g + 1))
    t_max_all = float(dur.max())
    group_max = [float(tables.table(g)[0].max()) if tables.table(g)[0].size else 0.0 for g in range(n_g)]
    if horizon is None:
        horizon = min(m for m in group_max) if group_max else 0.0
    if lengths is None:
        lengths = [float(x) for x in CURATION_LENGTHS[unit] if x <= t_max_all] or [float(horizon)]
    edges = nice_edges(t_max_all)
    warnings = list(obs.warnings)

    groups_out = []
    curves = []
    for g, group in enumerate(obs.groups):
        rows = order[bounds[g]:bounds[g + 1]]
        time, d, c = tables.table(g)
        curve = km_from_table(time, d, c, alpha=alpha)
        curves.append(curve)
        med = median(curve)
        rm = rmst(curve, horizon)
        g_dur = dur[rows]
        g_ev = obs.event[rows]
        codes = obs.category_code[rows]
        incidence = cumulative_incidence(g_dur, codes, list(range(len(obs.categories))), alpha)
        groups_out.append({
            "label": group.label,
            "model": group.model,
            "n_params": group.n_params,
            "decoding": group.decoding,
            "prompt_set": group.prompt_set,
            "n": int(rows.size),
            "events": int(g_ev.sum()),
            "censored": int(rows.size - g_ev.sum()),
            "samples": int(np.count_nonzero(np.bincount(obs.sample_code[rows]))) if rows.size else 0,
            "max_t": json_number(group_max[g]),
            "median": med.to_json(),
            "rmst": rm.to_json(),
            "hazard": [w.to_json() for w in hazard_windows_from_table(time, d, c, edges, alpha=alpha)],
            "curation": [r.to_json() for r in curation(curve, lengths)],
            "by_category": incidence.to_json(horizon, obs.categories),
            "curve": curve.to_json(),
        })

    comparisons = _comparisons(obs, tables, alpha)
    comparisons["proportional_hazards"] = ph_report(obs, tables)
    scaling = _scaling(obs, tables, curves, horizon, n_boot, seed, alpha)
    if unit == "tokens":
        tokenizers = {
            (g.model or {}).get("tokenizer") or (g.model or {}).get("architecture") for g in obs.groups
        } - {None}
        if len(tokenizers) > 1:
            warnings.append("groups use different tokenizers; compare them with --unit words or chars")
    unsized = [g.label for g in obs.groups if not g.n_params]
    if unsized and obs.filters.get("by") != "prompt-set":
        warnings.append(f"no model size (n_params) for {', '.join(unsized)}: left out of the trend test and the "
                        "scaling fit; give --n-params to lmread generate, or n_params in the model card")
    return {
        "schema": SURVIVAL_SCHEMA,
        "lmread_version": __version__,
        "created": utc_now(),
        "study": study or {},
        "unit": unit,
        "filters": dict(obs.filters),
        "alpha": alpha,
        "ci_method": "log-log (exponential Greenwood)",
        "horizon": json_number(horizon),
        "n": len(obs),
        "groups": groups_out,
        "comparisons": comparisons,
        "scaling": scaling,
        "parametric": parametric_report(obs, tables, alpha),
        "severity": severity_report(obs, seed=seed),
        "warnings": warnings,
    }


def _comparisons(obs: Observations, tables: GroupTables, alpha: float) -> dict[str, Any]:
    labels = [g.label for g in obs.groups]
    out: dict[str, Any] = {"overall": None, "pairwise": [], "trend": None, "trend_note": None}
    if len(labels) >= 2:
        overall = logrank(tables)
        out["overall"] = {"test": "log-rank", "statistic": overall.statistic, "df": overall.df,
                          "p_value": overall.p_value}
        for pair in logrank_pairwise(tables):
            out["pairwise"].append({"a": labels[pair.a], "b": labels[pair.b], **pair.test.to_json()})
    sized = [g for g, grp in enumerate(obs.groups) if grp.n_params]
    sizes = sorted({obs.groups[g].n_params for g in sized})  # type: ignore[type-var]
    if len(sizes) < 2:
        out["trend_note"] = "a trend test needs groups of at least two known model sizes (n_params)"
        return out
    rank = {size: k + 1 for k, size in enumerate(sizes)}
    scores = [rank[obs.groups[g].n_params] for g in sized]
    out["trend"] = {"test": "log-rank trend", "scores": "rank of n_params",
                    "groups": [labels[g] for g in sized], "group_scores": scores,
                    **trend_test(tables.rows(sized), scores).to_json()}
    return out


def _scaling(obs: Observations, tables: GroupTables, curves: list[KM], horizon: float, n_boot: int,
             seed: int, alpha: float) -> dict[str, Any]:
    sized = [g for g, grp in enumerate(obs.groups) if grp.n_params]
    sizes = {obs.groups[g].n_params for g in sized}
    empty: dict[str, Any] = {"statistic": None, "slope": None, "intercept": None, "r2": None,
                             "slope_ci_low": None, "slope_ci_high": None, "n_boot": 0, "n_boot_used": 0,
                             "points": [], "horizon": None, "note": None}
    if len(sizes) < 3:
        empty["note"] = (f"a scaling fit needs at least three model sizes (n_params); found {len(sizes)}"
                         + ("" if obs.filters.get("by") != "prompt-set" else " (grouping by prompt set)"))
        return empty
    meds = [median(curves[g]).value for g in sized]
    statistic = "median" if all(m is not None and m > 0 for m in meds) else "rmst"
    if statistic == "rmst" and any(rmst(curves[g], horizon).value <= 0 for g in sized):
        empty["note"] = "the median and the restricted mean are 0 for some group: nothing to fit on a log scale"
        return empty
    groups = [ScalingGroup(obs.groups[g].label, float(obs.groups[g].n_params or 0), tables.table(g)) for g in sized]
    fit = scaling_fit(groups, statistic, horizon=horizon, n_boot=n_boot, seed=seed, alpha=alpha)
    note = None
    if statistic == "rmst":
        note = "some median is not reached, so the restricted mean up to the horizon is fitted instead"
    return {**fit.to_json(), "note": note,
            "model": "log(statistic) = intercept + slope * log(n_params)"}


def compute(study_dir: Path, unit: str = "tokens", by: str = "model", annotator: str = "all",
            consensus: str = "each", horizon: float | None = None, n_boot: int = 500,
            seed: int = 0, controls: bool = False, min_read_speed: float | None = None,
            max_read_speed: float | None = None) -> tuple[dict[str, Any], Observations]:
    """Open a study and build its survival document and observation table (controls as their
    own groups only with ``controls``; reading-speed limits in words/s, default the study's)."""
    check_unit(unit)
    from lmread.analysis.reader_checks import add_reader_checks

    def analyse() -> tuple[dict[str, Any], Observations]:
        study = Study.open(study_dir, top_k=False)  # the analysis never reads the top-k alternatives
        obs = observations_from_study(study, by=by, annotator=annotator, consensus=consensus, controls=controls,
                                      min_read_speed=min_read_speed, max_read_speed=max_read_speed)
        info = {"path": str(study.path), "name": study.name, "samples": len(study.samples)}
        doc = build_survival(obs, unit, study=info, horizon=horizon, n_boot=n_boot, seed=seed)
        add_reader_checks(doc, study, n_boot=n_boot, seed=seed, max_read_speed=max_read_speed)
        return doc, obs

    return call_paused(analyse)  # many records, no cycles, freed when analyse() returns: lmread.collector
