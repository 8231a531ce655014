"""``lmread bench``: speed targets measured as ratios side by side in one run (see :mod:`lmread.bench`)."""

from __future__ import annotations

import click

from lmread.bench.runner import BENCHMARKS, report_json, run_benchmarks
from lmread.cli.common import emit_json, json_option


@click.command("bench")
@json_option("Print the results as JSON.")
@click.option("--only", multiple=True, type=click.Choice(sorted(BENCHMARKS)), help="Run only these benchmarks.")
@click.option("--quick", is_flag=True, help="Shorter runs (noisier numbers).")
def bench(as_json: bool, only: tuple[str, ...], quick: bool) -> None:
    """Run the speed benchmarks; every target is a ratio or time measured in this run."""
    names = list(only) or list(BENCHMARKS)

    def progress(name: str) -> None:
        if not as_json:
            click.echo(f"running {name} ...", err=True)

    results, errors = run_benchmarks(names, quick=quick, progress=progress)
    if as_json:
        emit_json(report_json(results, errors))
        return
    for r in results:
        target = "" if r.target is None else f"  target {r.comparison} {r.target:g}  {'MET' if r.met else 'NOT MET'}"
        if r.met is False and r.target:
            target += f" (missed by {abs(r.value / r.target - 1):.0%})"
        model = f" [{r.model}]" if r.model else ""
        click.echo(f"{r.name}{model}: {r.value:.4g} {r.unit}{target}")
    for name, err in errors.items():
        click.echo(f"{name}: {err}")
