"""``lmread controls make``: build controls with a known answer and mix them blind into the queue."""

from __future__ import annotations

import click

from lmread.cli.common import emit_json, json_option, study_option, study_path


@click.group("controls")
def controls() -> None:
    """Controls with a known answer (spliced texts, loops, human-written texts), read blind."""


@controls.command("make")
@study_option
@click.option("--rate", type=float, default=0.1, show_default=True,
              help="Controls per ordinary sample (0.1: one control for every ten samples), shared out over the kinds.")
@click.option("--kinds", default=None,
              help="Comma-separated kinds: splice, loop, human (default: splice,loop, and human when the study "
                   "has imported human controls).")
@click.option("--seed", type=int, default=None, help="Seed of the choices (default: the study's reading-order seed).")
@json_option("Print a JSON report.")
@click.pass_context
def make(ctx: click.Context, study: str | None, rate: float, kinds: str | None, seed: int | None,
         as_json: bool) -> None:
    """Add controls to a study until each kind has its share of --rate; running it again with the
    same seed and rate adds nothing.  Their known answers are never shown before the mark."""
    from lmread.controls import human_pool, make_controls, parse_kinds
    from lmread.study import Study

    st = Study.open(study_path(ctx, study))
    chosen = parse_kinds(kinds, bool(human_pool(st)))
    report = make_controls(st, rate=rate, kinds=chosen, seed=seed)
    for warning in report.warnings:
        click.echo(f"lmread: warning: {warning}", err=True)
    if as_json:
        emit_json(report.to_json())
        return
    added = ", ".join(f"{len(report.added.get(k, []))} {k}" for k in report.kinds)
    total = ", ".join(f"{report.total.get(k, 0)} {k}" for k in report.kinds)
    click.echo(f"controls in {report.study} (seed {report.seed}, rate {report.rate:g} of "
               f"{report.ordinary} samples): added {added}; now {total}")
