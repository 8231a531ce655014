"""``lmread bench``: speed targets measured as ratios side by side in one run.

Each benchmark module in :mod:`lmread.benchmarks` exposes ``run(quick: bool) -> list[BenchResult]``.
"""

from __future__ import annotations

import importlib
import platform
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import click

from lmread import __version__

#: benchmark name -> module
BENCHMARKS: dict[str, str] = {
    "llamacpp": "lmread.benchmarks.llamacpp",
    "hf": "lmread.benchmarks.hf",
    "reader": "lmread.benchmarks.reader",
    "survival": "lmread.benchmarks.survival",
}


@dataclass
class BenchResult:
    """One measured quantity and its target.

    ``comparison`` is ``">="`` or ``"<="``: the target is met when ``value comparison target``.
    """

    name: str
    value: float
    unit: str
    target: float | None = None
    comparison: str = ">="
    model: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.comparison == ">=" else self.value <= self.target

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["met"] = self.met
        return out


@click.command("bench")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--only", multiple=True, type=click.Choice(sorted(BENCHMARKS)), help="Run only these benchmarks.")
@click.option("--quick", is_flag=True, help="Shorter runs (noisier numbers).")
def bench(as_json: bool, only: tuple[str, ...], quick: bool) -> None:
    """Run the speed benchmarks; every target is a ratio or time measured in this run."""
    from lmread.cli import emit_json

    names = list(only) or list(BENCHMARKS)
    results: list[BenchResult] = []
    errors: dict[str, str] = {}
    for name in names:
        if not as_json:
            click.echo(f"running {name} ...", err=True)
        try:
            module = importlib.import_module(BENCHMARKS[name])
            results.extend(module.run(quick=quick))
        except ImportError as exc:
            errors[name] = f"not installed: {exc}"
    if as_json:
        emit_json({
            "lmread_version": __version__,
            "python": sys.version.split()[0],
            "machine": platform.platform(),
            "results": [r.to_json() for r in results],
            "errors": errors,
            "all_met": all(r.met is not False for r in results) and not errors,
        })
        return
    for r in results:
        target = "" if r.target is None else f"  target {r.comparison} {r.target:g}  {'MET' if r.met else 'NOT MET'}"
        model = f" [{r.model}]" if r.model else ""
        click.echo(f"{r.name}{model}: {r.value:.4g} {r.unit}{target}")
    for name, err in errors.items():
        click.echo(f"{name}: {err}")
