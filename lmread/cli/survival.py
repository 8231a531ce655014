"""``lmread survival``: Kaplan–Meier survival of coherent length per group, as a table, JSON,
CSV or a plot.  The document is built by :mod:`lmread.analysis.report`; this module parses the
options, writes the outputs and formats the table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from lmread.analysis.observations import CONSENSUS, GROUPINGS, UNITS
from lmread.analysis.summary_text import parametric_lines, ph_lines, severity_lines
from lmread.cli.common import make_annotator_option, make_study_option, study_path
from lmread.errors import OptionError
from lmread.units import format_params


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.{digits}f}"
    return f"{int(value):,}" if isinstance(value, (int, float)) else str(value)


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<1e-16" if p < 1e-16 else f"{p:.3g}"


def format_table(doc: dict[str, Any]) -> str:
    """A readable text summary of a survival document."""
    unit = doc["unit"]
    lines = [f"survival of coherent length in {unit} - {doc['study'].get('name', '')} "
             f"({doc['n']} observations; {doc['filters'].get('by')}, annotator {doc['filters'].get('annotator')}, "
             f"consensus {doc['filters'].get('consensus')})"]
    left_out = doc["filters"].get("left_out") or {}
    parts = [f"{n} {what}" for n, what in ((left_out.get("controls", 0), "control readings (--controls shows them)"),
                                           (left_out.get("too_fast", 0), "readings too fast"),
                                           (left_out.get("too_slow", 0), "readings too slow"),
                                           (left_out.get("prompt_falls", 0),
                                            "early marks in the human-written prompt")) if n]
    if parts:
        lines.append("  left out: " + ", ".join(parts))
    horizon = doc["horizon"]
    head = (f"  {'group':<30} {'params':>7} {'n':>6} {'falls':>6} {'cens':>6} {'median':>8} {'95% CI':>17} "
            f"{'RMST@' + _fmt(horizon, 0):>11}")
    lines.append(head)
    for g in doc["groups"]:
        m = g["median"]
        ci = f"[{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]" if m["ci_low"] is not None else "-"
        label = g["label"] if len(g["label"]) <= 30 else g["label"][:29] + "…"
        lines.append(f"  {label:<30} {format_params(g['n_params']):>7} {g['n']:>6} {g['events']:>6} {g['censored']:>6} "
                     f"{_fmt(m['value']):>8} {ci:>17} {_fmt(g['rmst']['value']):>11}")
    notes = {g["label"]: g["median"]["note"] for g in doc["groups"] if g["median"]["note"]}
    for label, note in notes.items():
        lines.append(f"  median of {label}: {note}")
    if doc["groups"] and doc["groups"][0]["curation"]:
        lengths = [c["length"] for c in doc["groups"][0]["curation"]][:6]
        lines.append("")
        lines.append(f"  curation ratio 1/S(L): samples to read to find one that holds up past L {unit}")
        lines.append(f"  {'group':<30} " + " ".join(f"{'L=' + _fmt(v, 0):>9}" for v in lengths))
        for g in doc["groups"]:
            cells = []
            for c in g["curation"][: len(lengths)]:
                cells.append(f"{c['ratio']:>9.3g}" if c["ratio"] is not None else
                             f"{('inf' if c.get('infinite') else '?'):>9}")
            label = g["label"] if len(g["label"]) <= 30 else g["label"][:29] + "…"
            lines.append(f"  {label:<30} " + " ".join(cells))
        shown = [c for g in doc["groups"] for c in g["curation"][: len(lengths)]]
        if any(c.get("infinite") for c in shown):
            lines.append("  inf: none of the group's samples held past L (S(L) = 0), so no number read finds one")
        if any(c["ratio"] is None and not c.get("infinite") for c in shown):
            lines.append("  ?: L lies beyond the group's longest observation (S(L) unknown)")
    comp = doc["comparisons"]
    if comp["overall"]:
        o = comp["overall"]
        lines.append("")
        lines.append(f"  log-rank, all groups: chi2 = {o['statistic']:.3g} on {o['df']} df, p = {_p(o['p_value'])}")
        for pair in comp["pairwise"]:
            lines.append(f"    {pair['a']} vs {pair['b']}: chi2 = {pair['statistic']:.3g}, p = {_p(pair['p_value'])}")
    if comp["trend"]:
        t = comp["trend"]
        lines.append(f"  trend across sizes: chi2 = {t['statistic']:.3g}, p = {_p(t['p_value'])} ({t['direction']})")
    elif comp.get("trend_note"):
        lines.append(f"  trend across sizes: {comp['trend_note']}")
    lines.extend(ph_lines(doc))
    sc = doc["scaling"]
    if sc["slope"] is not None:
        ci = (f" [{sc['slope_ci_low']:.3g}, {sc['slope_ci_high']:.3g}]" if sc["slope_ci_low"] is not None else "")
        lines.append(f"  scaling: log {sc['statistic']} = {sc['intercept']:.3g} + {sc['slope']:.3g}{ci} "
                     f"x log n_params (R^2 {sc['r2']:.3g}, bootstrap {sc['n_boot_used']}/{sc['n_boot']})")
        if sc["note"]:
            lines.append(f"    {sc['note']}")
    else:
        lines.append(f"  scaling: {sc['note']}")
    lines.extend(parametric_lines(doc))
    lines.extend(severity_lines(doc))
    for w in doc.get("warnings", []):
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


@click.command("survival")
@make_study_option()
@click.option("--unit", default="tokens", show_default=True, help=f"Length unit: {', '.join(UNITS)}.")
@click.option("--by", "by", default="model", show_default=True, help=f"Grouping: {', '.join(GROUPINGS)}.")
@make_annotator_option("Use one annotator's marks, or all (every human reader; machine readers by name, "
                       "e.g. auto-repetition).", default="all", show_default=True)
@click.option("--consensus", default="each", show_default=True,
              help=f"How several annotators' marks on one sample count: {', '.join(CONSENSUS)}.")
@click.option("--horizon", type=float, default=None,
              help="Horizon L of the restricted mean (default: the shortest longest observation of any group).")
@click.option("--bootstrap", "n_boot", type=click.IntRange(0, 100000), default=500, show_default=True,
              help="Bootstrap replicates for the scaling slope CI.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--controls", "controls", is_flag=True,
              help="Also show the controls, as their own groups (control:splice, control:loop, control:human).")
@click.option("--min-read-speed", type=float, default=None,
              help="Leave out readings slower than this many words/s (default: the study's min_read_speed_wps).")
@click.option("--max-read-speed", type=float, default=None,
              help="Leave out readings faster than this many words/s (default: the study's max_read_speed_wps).")
@click.option("--json", "json_path", default=None, help="Write the survival JSON to PATH ('-' for stdout).")
@click.option("--csv", "csv_path", default=None, help="Write one row per observation as CSV to PATH.")
@click.option("--plot", "plot_path", default=None, help="Write step curves with CI bands to PATH.png / .svg / .pdf.")
@click.pass_context
def survival(ctx: click.Context, study: str | None, unit: str, by: str, annotator: str, consensus: str,
             horizon: float | None, n_boot: int, seed: int, controls: bool, min_read_speed: float | None,
             max_read_speed: float | None, json_path: str | None, csv_path: str | None,
             plot_path: str | None) -> None:
    """Kaplan-Meier survival of coherent length per group (model, model+decoding or prompt set).

    Prints a table unless --json, --csv or --plot is given.  A fall at token i counts as i tokens
    of coherent text (event); a no-fall mark is censored at the tokens read; skips count nothing.
    """
    from lmread.analysis.export import check_writable, plot_format, render_csv, render_plot, write_file
    from lmread.analysis.report import compute

    targets: list[tuple[Path, str]] = []
    for given, option in ((json_path, "--json"), (csv_path, "--csv"), (plot_path, "--plot")):
        if given is not None and given != "-":
            targets.append((Path(given), option))
        elif given == "-" and option != "--json":
            raise OptionError(f"{option} needs a file path ('-' is only for --json)")
    if plot_path is not None and plot_path != "-":
        plot_format(Path(plot_path))
    for target, option in targets:
        check_writable(target, option)
    if horizon is not None and horizon <= 0:
        raise OptionError(f"--horizon {horizon:g} must be > 0")

    doc, obs = compute(study_path(ctx, study), unit=unit, by=by, annotator=annotator, consensus=consensus,
                       horizon=horizon, n_boot=n_boot, seed=seed, controls=controls,
                       min_read_speed=min_read_speed, max_read_speed=max_read_speed)
    from lmread.analysis.plan import interim_lines, samples_read
    from lmread.study import Study

    doc["warnings"].extend(interim_lines(Study.open(study_path(ctx, study), top_k=False).meta.get("plan"), doc,
                                         samples_read(obs)))
    for warning in doc["warnings"]:
        click.echo(f"lmread: warning: {warning}", err=True)
    outputs: list[tuple[Path, bytes, str]] = []
    if json_path is not None:
        blob = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"
        if json_path == "-":
            sys.stdout.write(blob.decode("utf-8"))
        else:
            outputs.append((Path(json_path), blob, "--json"))
    if csv_path is not None:
        outputs.append((Path(csv_path), render_csv(obs), "--csv"))
    if plot_path is not None:
        outputs.append((Path(plot_path), render_plot(doc, plot_format(Path(plot_path)), sorted(set(obs.annotator))), "--plot"))
    for target, data, option in outputs:
        write_file(target, data, option)
        if json_path != "-":
            click.echo(f"wrote {target}")
    if json_path is None and csv_path is None and plot_path is None:
        click.echo(format_table(doc))
