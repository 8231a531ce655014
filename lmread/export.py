"""Survival exports: the ``lmread.survival/1`` JSON document, the observation CSV, and plots.

The JSON document is built from an :class:`~lmread.observations.Observations` table by
:func:`build_survival`; its schema is ``annotations/schema/survival.schema.json``.  The CSV has
one row per observation (durations in every unit) and loads straight into lifelines
(``KaplanMeierFitter().fit(df.words, df.event)``) and R (``Surv(words, event)``).  Plots need
matplotlib (the optional extra ``lmread[plot]``), imported only when a plot is asked for.

Every writer renders the whole file in memory first and then writes it atomically (temporary
file, fsync, rename), so a failed write leaves nothing half-written.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from lmread import __version__
from lmread.errors import LmreadError, OptionError, StudyError
from lmread.observations import Observations, check_unit
from lmread.records import SURVIVAL_SCHEMA, utc_now
from lmread.study import write_atomic
from lmread.survival import (
    GroupTables,
    aalen_johansen_codes,
    curation,
    hazard_windows_from_table,
    km_from_table,
    logrank,
    logrank_pairwise,
    median,
    nice_edges,
    rmst,
    scaling_fit,
    trend_test,
)

#: default lengths of the curation ratio, per unit
CURATION_LENGTHS: dict[str, tuple[int, ...]] = {
    "tokens": (25, 50, 100, 200, 500, 1000, 2000, 5000),
    "words": (25, 50, 100, 200, 500, 1000, 2000, 5000),
    "chars": (100, 250, 500, 1000, 2500, 5000, 10000, 25000),
}
PLOT_FORMATS = ("png", "svg", "pdf")


def _nums(values: np.ndarray) -> list[Any]:
    """A JSON-ready list: integers where every value is integral, floats otherwise."""
    arr = np.asarray(values, dtype=float)
    if arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64).tolist()
    return [None if not math.isfinite(v) else v for v in arr.tolist()]


def _num(value: float | None) -> Any:
    if value is None or not math.isfinite(value):
        return None
    return int(value) if float(value).is_integer() else float(value)


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
        aj = aalen_johansen_codes(g_dur, codes, list(range(len(obs.categories))))
        by_category: dict[str, Any] = {}
        for k, name in enumerate(obs.categories):
            n_k = int(aj.events[k].sum())
            if n_k == 0:
                continue
            steps = aj.events[k] > 0
            at_h = np.searchsorted(aj.time, horizon, side="right") - 1
            by_category[name] = {
                "events": n_k,
                "cif_at_horizon": float(aj.cif[k, at_h]) if at_h >= 0 else 0.0,
                "cif_final": float(aj.cif[k, -1]),
                "curve": [{"t": t, "cif": v} for t, v in zip(_nums(aj.time[steps]), aj.cif[k, steps].tolist(), strict=True)],
            }
        points = [
            {"t": t, "survival": s, "ci_low": lo, "ci_high": hi, "at_risk": n, "events": e, "censored": cz}
            for t, s, lo, hi, n, e, cz in zip(
                _nums(curve.time), curve.survival.tolist(), curve.ci_low.tolist(), curve.ci_high.tolist(),
                curve.at_risk.tolist(), curve.events.tolist(), curve.censored.tolist(), strict=True,
            )
        ]
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
            "max_t": _num(group_max[g]),
            "median": {k: _num(v) if k != "note" else v for k, v in med.to_json().items()},
            "rmst": rm.to_json(),
            "hazard": hazard_windows_from_table(time, d, c, edges, alpha=alpha),
            "curation": curation(curve, lengths),
            "by_category": by_category,
            "curve": points,
        })

    comparisons = _comparisons(obs, tables, alpha)
    scaling = _scaling(obs, tables, curves, horizon, n_boot, seed, alpha)
    if unit == "tokens":
        tokenizers = {
            (g.model or {}).get("tokenizer") or (g.model or {}).get("architecture") for g in obs.groups
        } - {None}
        if len(tokenizers) > 1:
            warnings.append("groups use different tokenizers; compare them with --unit words or chars")
    return {
        "schema": SURVIVAL_SCHEMA,
        "lmread_version": __version__,
        "created": utc_now(),
        "study": study or {},
        "unit": unit,
        "filters": dict(obs.filters),
        "alpha": alpha,
        "ci_method": "log-log (exponential Greenwood)",
        "horizon": _num(horizon),
        "n": len(obs),
        "groups": groups_out,
        "comparisons": comparisons,
        "scaling": scaling,
        "warnings": warnings,
    }


def _comparisons(obs: Observations, tables: GroupTables, alpha: float) -> dict[str, Any]:
    labels = [g.label for g in obs.groups]
    out: dict[str, Any] = {"overall": None, "pairwise": [], "trend": None, "trend_note": None}
    if len(labels) >= 2:
        overall = logrank(tables)
        out["overall"] = {"test": "log-rank", "statistic": overall.statistic, "df": overall.df,
                          "p_value": overall.p_value}
        for a, b, res in logrank_pairwise(tables):
            out["pairwise"].append({"a": labels[a], "b": labels[b], "statistic": res.statistic, "df": res.df,
                                    "p_value": res.p_value,
                                    "observed": res.observed, "expected": res.expected})
    sized = [g for g, grp in enumerate(obs.groups) if grp.n_params]
    sizes = sorted({obs.groups[g].n_params for g in sized})  # type: ignore[type-var]
    if len(sizes) < 2:
        out["trend_note"] = "a trend test needs groups of at least two known model sizes (n_params)"
        return out
    sub = GroupTables(tables.time, tables.d[sized], tables.c[sized], tables.at_risk[sized])
    rank = {size: k + 1 for k, size in enumerate(sizes)}
    scores = [rank[obs.groups[g].n_params] for g in sized]
    tr = trend_test(sub, scores)
    direction = "none" if tr.u == 0 else ("longer coherent length with size" if tr.u < 0
                                           else "shorter coherent length with size")
    out["trend"] = {"test": "log-rank trend", "scores": "rank of n_params",
                    "groups": [labels[g] for g in sized], "group_scores": scores,
                    "statistic": tr.statistic, "df": 1, "p_value": tr.p_value, "u": tr.u,
                    "variance": tr.variance, "direction": direction}
    return out


def _scaling(obs: Observations, tables: GroupTables, curves: list[Any], horizon: float, n_boot: int,
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
    groups = [(obs.groups[g].label, float(obs.groups[g].n_params), *tables.table(g)) for g in sized]  # type: ignore[arg-type]
    fit = scaling_fit(groups, statistic, horizon=horizon, n_boot=n_boot, seed=seed, alpha=alpha)
    note = None
    if statistic == "rmst":
        note = "some median is not reached, so the restricted mean up to the horizon is fitted instead"
    return {"statistic": fit.statistic, "slope": fit.slope, "intercept": fit.intercept, "r2": fit.r2,
            "slope_ci_low": fit.slope_ci_low, "slope_ci_high": fit.slope_ci_high, "n_boot": fit.n_boot,
            "n_boot_used": fit.n_boot_used, "points": fit.points, "horizon": _num(fit.horizon), "note": note,
            "model": "log(statistic) = intercept + slope * log(n_params)"}


# --------------------------------------------------------------------------------------------
# Writing files


CSV_COLUMNS = ("group", "model", "n_params", "sample", "annotator", "n_annotators", "tokens", "words", "chars",
               "event", "category", "end")


def render_csv(obs: Observations) -> bytes:
    """The observation table as CSV bytes (header + one row per observation)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    labels = [g.label for g in obs.groups]
    models = [(g.model or {}).get("id", "") for g in obs.groups]
    params = ["" if g.n_params is None else g.n_params for g in obs.groups]
    cats = [*obs.categories, ""]  # code -1 -> ""
    writer.writerows(
        (labels[g], models[g], params[g], s, a, k, t, w, c, int(e), cats[code], end)
        for g, s, a, k, t, w, c, e, code, end in zip(
            obs.group.tolist(), obs.sample, obs.annotator, obs.n_annotators.tolist(), obs.tokens.tolist(),
            obs.words.tolist(), obs.chars.tolist(), obs.event.tolist(), obs.category_code.tolist(), obs.end,
            strict=True,
        )
    )
    return buf.getvalue().encode("utf-8")


def render_plot(doc: dict[str, Any], fmt: str) -> bytes:
    """Step curves with CI bands per group, as ``fmt`` (png, svg or pdf) bytes; needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        from matplotlib.figure import Figure
    except ImportError:
        raise LmreadError("plotting needs matplotlib, which is not installed: pip install 'lmread[plot]'") from None
    fig = Figure(figsize=(8, 5), dpi=120)
    ax = fig.add_subplot()
    for group in doc["groups"]:
        pts = group["curve"]
        t = [p["t"] for p in pts]
        (line,) = ax.step(t, [p["survival"] for p in pts], where="post",
                          label=f"{group['label']} (n={group['n']})")
        ax.fill_between(t, [p["ci_low"] for p in pts], [p["ci_high"] for p in pts], step="post",
                        alpha=0.2, color=line.get_color(), linewidth=0)
    ax.set_xlabel(f"coherent length ({doc['unit']})")
    ax.set_ylabel("S(t): still coherent")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.axhline(0.5, color="grey", linewidth=0.6, linestyle=":")
    ax.set_title(f"Survival of coherent length - {doc['study'].get('name', '')}".rstrip(" -"))
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return buf.getvalue()


def plot_format(path: Path) -> str:
    """The plot format named by ``path``'s suffix, or :class:`OptionError`."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in PLOT_FORMATS:
        raise OptionError(f"--plot {path}: unknown image type {path.suffix or '(none)'!r}; use a .png, .svg or .pdf file")
    return fmt


def check_writable(path: Path, option: str) -> None:
    """Raise :class:`OptionError` unless ``path`` can be created or replaced."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OptionError(f"{option} {path} is a folder; give a file path")
    if not parent.is_dir():
        raise OptionError(f"{option} {path}: folder {parent} does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OptionError(f"{option} {path} is not writable; choose a writable path")


def write_file(path: Path, data: bytes, option: str) -> None:
    """Write ``data`` to ``path`` atomically; a one-line :class:`OptionError` on failure."""
    try:
        write_atomic(path, data)
    except StudyError as exc:
        raise OptionError(f"{option}: {exc}; choose a writable path") from None
