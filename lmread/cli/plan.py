"""``lmread plan``: how many samples, readings and reader-hours a comparison of groups needs,
from a pilot (the marks read so far) or from stated assumptions; the plan is stored in the
study's study.toml (see :mod:`lmread.analysis.plan`)."""

from __future__ import annotations

from typing import Any

import click

from lmread.analysis.plan import DEFAULT_READING_WPS, DEFAULT_REPLICATES
from lmread.cli.common import emit_json, json_option, make_annotator_option, make_study_option, settings_from


def _n(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def format_plan(doc: dict[str, Any]) -> str:
    """A readable summary of a plan document."""
    from lmread.cli.agreement import format_columns

    st = doc["settings"]
    unit = st["unit"]
    where = doc["study"].get("name") or "no study"
    lines = [f"plan - {where} (from {doc['source']}; two-sided log-rank, alpha {st['alpha']:g}, "
             f"power {st['power']:g}; lengths in {unit})"]
    rows = [[g["label"], _n(g["n"]), _n(g["events"]), _n(g["median"]),
             "-" if g["median_ci"][0] is None else f"[{_n(g['median_ci'][0])}, {_n(g['median_ci'][1])}]",
             _n(g["samples"])] for g in doc["groups"]]
    lines.extend(format_columns(["group", "pilot n", "falls", "median", "95% CI", "plan: samples"], rows))
    for c in doc["comparisons"]:
        s = c["schoenfeld"]
        lines.append("")
        lines.append(f"  {c['b']} vs {c['a']}: hazard ratio {c['hazard_ratio']:.3g} ({c['hazard_ratio_source']})")
        lines.append(f"    Schoenfeld: {s['events']:,} falls; P(fall within the length) {s['p_event']:.2f} -> "
                     f"{s['samples']:,} samples ({s['samples_per_group']:,} per group)")
        sim = c["simulation"]
        if sim is not None:
            curve = "  ".join(f"{p['n_per_group']}:{p['power']:.2f}" for p in sim["curve"])
            lines.append(f"    simulated power ({sim['replicates']} replicates per N; N per group:power): {curve}")
            if sim["n_per_group"] is not None:
                err = (f" +/- {sim['n_per_group_mc_error']:.2g}" if sim["n_per_group_mc_error"] is not None else "")
                lines.append(f"    simulation: {sim['n_per_group']:,}{err} per group reach power {st['power']:g} "
                             f"(power there {sim['power_at_n']:.3f} +/- {sim['power_at_n_mc_error']:.3f})")
        for note in c["notes"]:
            lines.append(f"    note: {note}")
    if doc["median_ci_width"]:
        lines.append("")
        lines.append(f"  median CI width {st['ci_width']:g} {unit}:")
        for w in doc["median_ci_width"]:
            now = "" if w["width_now"] is None else f" (now {w['width_now']:.3g} with {w['n_now']})"
            lines.append(f"    {w['group']}: {_n(w['samples'])} samples{now}" + (f"; {w['note']}" if w["note"] else ""))
    ex = doc["exponent_ci"]
    if ex is not None:
        lines.append("")
        if ex["observations"] is not None:
            lines.append(f"  AFT scaling exponent {ex['exponent']:.3g}: CI width {ex['width_now']:.3g} with "
                         f"{ex['n_now']} readings -> {ex['observations']:,} readings for width {ex['target']:g}")
        else:
            lines.append(f"  AFT scaling exponent: {ex['note']}")
    rt = doc["reader_time"]
    lines.append("")
    lines.append(f"  samples to read: {doc['samples']:,} ({', '.join(f'{k} {v:,}' for k, v in doc['samples_per_group'].items())})"
                 f"; with controls ({100 * rt['controls_rate']:.0f}%) {rt['samples_with_controls']:,}")
    lines.append(f"  readings: {rt['readings']:,} by {rt['readers']} reader(s), overlap {100 * rt['overlap']:.0f}%; "
                 f"{rt['words_per_reading']:.0f} words per reading ({rt['words_per_reading_source']}) at "
                 f"{rt['reading_wps']:.2f} words/s ({rt['reading_wps_source']})")
    lines.append(f"  reader time: {rt['hours']:.1f} hours in all, {rt['hours_per_reader']:.1f} hours per reader")
    for w in doc["warnings"]:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


@click.command("plan")
@make_study_option("Study folder: its marks are the pilot, and the plan is stored in its study.toml.")
@json_option("Print the plan JSON (lmread.plan/1).")
@click.option("--unit", default="tokens", show_default=True, help="Length unit: tokens, words or chars (as lmread survival).")
@click.option("--by", "by", default="model", show_default=True, help="Grouping of the pilot (as lmread survival).")
@make_annotator_option("Whose marks are the pilot (as lmread survival).", default="all", show_default=True)
@click.option("--alpha", type=float, default=0.05, show_default=True, help="Level of the two-sided log-rank test.")
@click.option("--power", type=float, default=0.8, show_default=True, help="Power to reach.")
@click.option("--hazard-ratio", type=float, default=None,
              help="Plan for this hazard ratio (the smallest difference worth detecting) instead of the pilot's.")
@click.option("--median", "medians", default=None, help="No pilot: assumed medians per group, e.g. A=10,B=15.")
@click.option("--max-length", type=click.IntRange(1, None), default=None,
              help="No pilot: the generated length in the unit (default: the study's largest max_tokens, or "
                   "its longest sample in words or chars).")
@click.option("--censoring", type=float, default=None,
              help="No pilot: share of readers who stop early (with --median), or of readings without a fall "
                   "(with --hazard-ratio alone).")
@click.option("--ci-width", type=float, default=None, help="Also plan for a median 95% CI this wide (in the unit).")
@click.option("--exponent-ci-width", type=float, default=None,
              help="Also plan for an AFT scaling exponent 95% CI this wide (pilot of two or more sizes).")
@click.option("--readers", type=click.IntRange(1, None), default=1, show_default=True, help="Readers sharing the work.")
@click.option("--reading-speed", "reading_wps", type=float, default=None,
              help=f"Words/s (default: the pilot's measured speed, else {DEFAULT_READING_WPS}).")
@click.option("--controls-rate", type=float, default=None, help="Share of controls in the queue (default: the study's).")
@click.option("--overlap", type=float, default=None, help="Share every reader reads (default: the study's overlap).")
@click.option("--words-per-sample", type=float, default=None, help="Words a reading takes, without a pilot or study.")
@click.option("--replicates", type=click.IntRange(0, 100000), default=DEFAULT_REPLICATES, show_default=True,
              help="Simulated studies per N for the power curve (0: Schoenfeld only).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulation.")
@click.option("--dry-run", is_flag=True, help="Do not store the plan in the study's study.toml.")
@click.pass_context
def plan(ctx: click.Context, study: str | None, as_json: bool, unit: str, by: str, annotator: str, alpha: float,
         power: float, hazard_ratio: float | None, medians: str | None, max_length: int | None,
         censoring: float | None, ci_width: float | None, exponent_ci_width: float | None, readers: int,
         reading_wps: float | None, controls_rate: float | None, overlap: float | None,
         words_per_sample: float | None, replicates: int, seed: int, dry_run: bool) -> None:
    """How many samples per group, readings and reader-hours a comparison needs: Schoenfeld's
    events and a simulated power curve from the pilot's curves (the study's marks so far) or from
    assumptions (--median A=10,B=15 --max-length N, or --hazard-ratio with --max-length and
    --censoring).  The plan is stored in the study (pre-registration) unless --dry-run."""
    from lmread.analysis.observations import check_unit
    from lmread.analysis.plan import PlanOptions, build_plan, parse_medians, save_plan
    from lmread.study import Study

    check_unit(unit)
    opts = PlanOptions(unit=unit, by=by, annotator=annotator, alpha=alpha, power=power, hazard_ratio=hazard_ratio,
                       medians=parse_medians(medians) if medians is not None else None, max_length=max_length,
                       censoring=censoring, ci_width=ci_width, exponent_ci_width=exponent_ci_width, readers=readers,
                       reading_wps=reading_wps, controls_rate=controls_rate, overlap=overlap,
                       words_per_sample=words_per_sample, replicates=replicates, seed=seed)
    st = None
    if study is not None or (medians is None and hazard_ratio is None):
        st = Study.open(study if study is not None else settings_from(ctx).default_study, top_k=False)
    doc = build_plan(st, opts, progress=lambda text: click.echo(text, err=True))
    if st is not None and not dry_run:
        save_plan(st, doc)
        doc["stored"] = f"{st.path}/study.toml"
    if as_json:
        emit_json(doc)
    else:
        click.echo(format_plan(doc))
        if doc.get("stored"):
            click.echo(f"plan stored in {doc['stored']} ('lmread study info' shows progress against it)")


def progress_lines(prog: dict[str, Any]) -> list[str]:
    """Lines for ``lmread study info``: readings done against the stored plan (a progress JSON
    of :meth:`lmread.analysis.plan.PlanProgress.to_json`)."""
    if not prog.get("planned"):
        return []
    unit = prog.get("unit") or "tokens"
    cells = []
    for g in prog["groups"]:
        width = "-" if g["median_ci_width"] is None else f"{g['median_ci_width']:.3g}"
        cells.append(f"{g['label']} {g['read']:,}/{g['planned']:,} (median CI width {width} {unit})")
    info = prog.get("information")
    lines = [f"  plan of {prog.get('created')}: samples read/planned: " + "; ".join(cells),
             f"  readings {prog['readings_done']:,}/{prog['readings_planned']:,}, falls {prog['events_done']:,}/"
             f"{prog['events_planned']:,}" + ("" if info is None else f" (information {info:.2f})")
             + ("; the plan is complete" if prog.get("complete") else "")]
    return lines
