"""``lmread agreement``: agreement between readers on samples two or more annotators read
(see :mod:`lmread.analysis.agreement` for the measures and the censoring rule)."""

from __future__ import annotations

from typing import Any

import click

from lmread.analysis.agreement import DEFAULT_BOOTSTRAP, DEFAULT_TOLERANCE
from lmread.cli.common import emit_json, json_option, study_option, study_path


def _est(block: dict[str, Any], digits: int = 2) -> str:
    if block["value"] is None:
        return "-"
    text = f"{block['value']:.{digits}f}"
    if block.get("ci_low") is not None:
        text += f" [{block['ci_low']:.{digits}f}, {block['ci_high']:.{digits}f}]"
    return text


def format_agreement(doc: dict[str, Any]) -> str:
    """A readable summary of an agreement document."""
    o = doc["overall"]
    lines = [f"agreement - {doc['study'].get('name', '')}: {o['samples']} samples read by 2+ of "
             f"{o['annotators']} annotators ({o['readings']} readings; 95% bootstrap CIs)"]
    if o["samples"]:
        lines.append(f"  Fleiss' kappa (fell or not): {_est(o['fleiss_kappa'])} on {o['fleiss_kappa']['n']} samples"
                     + (f", {o['fleiss_kappa']['readings_left_out']} readings not comparable"
                        if o["fleiss_kappa"]["readings_left_out"] else ""))
        lines.append(f"  Krippendorff's alpha (interval, fall positions): {_est(o['alpha'])} "
                     f"on {o['alpha']['n']} samples")
        dist = o["mean_abs_distance"]
        unit = doc["settings"].get("distance_unit", "words")
        lines.append(f"  mean distance between falls: {_est(dist['tokens'], 1)} tokens, "
                     f"{_est(dist[unit], 1)} {unit} ({dist['n']} pairs of falls)")
    if doc["pairs"]:
        lines.append("")
        lines.append(f"  {'pair':<34} {'comp':>5} {'excl':>4} {'agree':>6} {'kappa [95% CI]':>22} "
                     f"{'distance tok':>18} {'alpha [95% CI]':>22}")
        for p in doc["pairs"]:
            pair = f"{p['a']} / {p['b']}"
            agree = "-" if p["percent_agreement"] is None else f"{100 * p['percent_agreement']:.0f}%"
            lines.append(f"  {pair:<34} {p['comparable']:>5} {p['not_comparable']:>4} {agree:>6} "
                         f"{_est(p['cohen_kappa']):>22} {_est(p['mean_abs_distance']['tokens'], 1):>18} "
                         f"{_est(p['alpha']):>22}")
    if doc["machine_vs_human"]:
        lines.append("")
        lines.append(f"  machine vs human (tolerance {doc['settings']['tolerance_tokens']} tokens):")
        for m in doc["machine_vs_human"]:
            off = m["offset_tokens"]
            med = "-" if off["median"] is None else f"{off['median']:+g}"
            mean = "-" if off["mean"] is None else f"{off['mean']:+.1f}"
            prec = "-" if m["precision"] is None else f"{m['precision']:.2f}"
            rec = "-" if m["recall"] is None else f"{m['recall']:.2f}"
            lines.append(f"    {m['machine']} vs {m['human']}: offset median {med}, mean {mean} tokens "
                         f"({m['both_fell']} both fell); precision {prec}, recall {rec}")
    for w in doc["warnings"]:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


@click.command("agreement")
@study_option
@json_option("Print the agreement JSON (lmread.agreement/1).")
@click.option("--tolerance", type=click.IntRange(0, None), default=DEFAULT_TOLERANCE, show_default=True,
              help="Machine vs human: a machine fall within this many tokens of the human's matches.")
@click.option("--bootstrap", "n_boot", type=click.IntRange(0, 100000), default=DEFAULT_BOOTSTRAP, show_default=True,
              help="Bootstrap replicates (over samples) for the CIs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--unit", type=click.Choice(["words", "sentences"]), default="words", show_default=True,
              help="Distances between falls in tokens and in this unit.")
@click.pass_context
def agreement(ctx: click.Context, study: str | None, as_json: bool, tolerance: int, n_boot: int, seed: int,
              unit: str) -> None:
    """Agreement between readers on samples two or more annotators read: Cohen's kappa per pair
    and Fleiss' kappa on fell-or-not, mean distance and Krippendorff's alpha on fall positions,
    machine-vs-human offsets.  A fall beyond another reader's read extent is not a disagreement."""
    from lmread.analysis.agreement import agreement_of_study
    from lmread.study import Study

    st = Study.open(study_path(ctx, study))
    doc = agreement_of_study(st, tolerance=tolerance, n_boot=n_boot, seed=seed, unit=unit)
    for warning in st.warnings:
        click.echo(f"lmread: warning: {warning}", err=True)
    if as_json:
        emit_json(doc)
    else:
        click.echo(format_agreement(doc))
