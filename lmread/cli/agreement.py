"""``lmread agreement``: agreement between readers on samples two or more annotators read
(see :mod:`lmread.analysis.agreement` for the measures and the horizon rule)."""

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


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def format_columns(head: list[str], rows: list[list[str]], left: int = 1, indent: str = "  ") -> list[str]:
    """Lines of a table whose columns are as wide as their widest cell (the first ``left``
    columns left-aligned, the rest right-aligned), two spaces apart."""
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        parts = [f"{c:<{w}}" if i < left else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return (indent + "  ".join(parts)).rstrip()

    return [line(head), *(line(r) for r in rows)]


def what_fell_line(block: dict[str, Any]) -> str:
    """One line on agreement about what the fall is (category and severity)."""
    cat, sev = block["category"], block["severity"]
    return (f"category kappa {_est(cat['kappa'])} ({cat['same']}/{cat['n']} same); severity weighted kappa "
            f"{_est(sev['weighted_kappa'])}, ordinal alpha {_est(sev['alpha_ordinal'])} ({sev['same']}/{sev['n']} same)")


def format_agreement(doc: dict[str, Any]) -> str:
    """A readable summary of an agreement document."""
    o = doc["overall"]
    st = doc["settings"]
    lines = [f"agreement - {doc['study'].get('name', '')}: {o['samples']} samples read by 2+ of "
             f"{o['annotators']} annotators ({o['readings']} readings; 95% bootstrap CIs)"]
    if o["samples"]:
        fk = o["fleiss_kappa"]
        lines.append(f"  fell within the first {st['horizon_tokens']} tokens (horizon from {st['horizon_source']}): "
                     f"Fleiss' kappa {_est(fk)} on {fk['n']} samples; {fk['readings_left_out']} readings left out "
                     "(stopped before the horizon without a fall)")
        lines.append(f"  Krippendorff's alpha (interval, fall positions): {_est(o['alpha'])} "
                     f"on {o['alpha']['n']} samples")
        dist = o["mean_abs_distance"]
        unit = st.get("distance_unit", "words")
        lines.append(f"  mean distance between falls: {_est(dist['tokens'], 1)} tokens, "
                     f"{_est(dist[unit], 1)} {unit} ({dist['n']} pairs of falls)")
        wf = o["what_fell"]
        lines.append(f"  what the fall is ({wf['n']} pairs of falls within {st['tolerance_tokens']} tokens): "
                     + what_fell_line(wf))
    if doc["pairs"]:
        head = ["pair", "common", "answered", "left out a/b", "agree", "kappa [95% CI]", "distance tok",
                "alpha [95% CI]", "severity wkappa", "category kappa"]
        rows = []
        for p in doc["pairs"]:
            left = p["left_out"]
            rows.append([f"{p['a']} / {p['b']}", str(p["common"]), str(p["answered"]),
                         f"{left['a_unknown']}/{left['b_unknown']}", _share(p["percent_agreement"]),
                         _est(p["cohen_kappa"]), _est(p["mean_abs_distance"]["tokens"], 1), _est(p["alpha"]),
                         _est(p["what_fell"]["severity"]["weighted_kappa"]),
                         _est(p["what_fell"]["category"]["kappa"])])
        lines.append("")
        lines.extend(format_columns(head, rows))
    if doc["machine_vs_human"]:
        lines.append("")
        lines.append(f"  machine vs human (tolerance {st['tolerance_tokens']} tokens):")
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
@json_option("Print the agreement JSON (lmread.agreement/2).")
@click.option("--horizon", type=click.IntRange(1, None), default=None,
              help="Fell-or-not asks 'did the text fall within the first N tokens?' (default: the study's reading "
                   "horizon, the largest max_tokens of its samples, else its longest sample).")
@click.option("--tolerance", type=click.IntRange(0, None), default=DEFAULT_TOLERANCE, show_default=True,
              help="Two falls within this many tokens are the same fall (machine vs human matches; category and "
                   "severity agreement).")
@click.option("--bootstrap", "n_boot", type=click.IntRange(0, 100000), default=DEFAULT_BOOTSTRAP, show_default=True,
              help="Bootstrap replicates (over samples) for the CIs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--unit", type=click.Choice(["words", "sentences"]), default="words", show_default=True,
              help="Distances between falls in tokens and in this unit.")
@click.pass_context
def agreement(ctx: click.Context, study: str | None, as_json: bool, horizon: int | None, tolerance: int, n_boot: int,
              seed: int, unit: str) -> None:
    """Agreement between readers on samples two or more annotators read: Cohen's kappa per pair
    and Fleiss' kappa on whether the text fell within the horizon, mean distance and
    Krippendorff's alpha on fall positions, category and severity agreement on shared falls,
    machine-vs-human offsets.  A no-fall reading that stopped before the horizon is left out."""
    from lmread.analysis.agreement import agreement_of_study
    from lmread.collector import call_paused
    from lmread.study import Study

    def analyse() -> tuple[dict[str, Any], list[str]]:
        st = Study.open(study_path(ctx, study), top_k=False)  # agreement never reads the alternatives
        return agreement_of_study(st, horizon=horizon, tolerance=tolerance, n_boot=n_boot, seed=seed,
                                  unit=unit), st.warnings

    doc, warnings = call_paused(analyse)  # a whole study's records, freed when analyse() returns
    for warning in warnings:
        click.echo(f"lmread: warning: {warning}", err=True)
    if as_json:
        emit_json(doc)
    else:
        click.echo(format_agreement(doc))
