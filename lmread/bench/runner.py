"""Running the benchmarks of ``lmread bench``: speed targets measured as ratios side by side in one run.

Each benchmark module (``lmread.bench.llamacpp``, ``native``, ``hf``, ``reader``, ``survival``, ``judge``...)
exposes
``run(quick: bool) -> list[BenchResult]``; a module whose libraries are not installed is reported,
not run.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from typing import Any

from lmread import __version__
from lmread.bench.result import BenchResult

#: benchmark name -> module
BENCHMARKS: dict[str, str] = {
    "llamacpp": "lmread.bench.llamacpp",
    "native": "lmread.bench.native",
    "hf": "lmread.bench.hf",
    "reader": "lmread.bench.reader",
    "survival": "lmread.bench.survival",
    "detectors": "lmread.bench.detectors",
    "parametric": "lmread.bench.parametric",
    "server": "lmread.bench.server",
    "plan": "lmread.bench.plan",
    "roft": "lmread.bench.roft",
    "judge": "lmread.bench.judge",
}


def run_benchmarks(names: list[str], quick: bool = False,
                   progress: Any = None) -> tuple[list[BenchResult], dict[str, str]]:
    """Run the benchmarks ``names`` in order: their results, and an error per benchmark that could not run.

    ``progress(name)`` is called before each one starts.
    """
    results: list[BenchResult] = []
    errors: dict[str, str] = {}
    for name in names:
        if progress is not None:
            progress(name)
        try:
            module = importlib.import_module(BENCHMARKS[name])
            results.extend(module.run(quick=quick))
        except ImportError as exc:
            errors[name] = f"not installed: {exc}"
    return results, errors


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def report_json(results: list[BenchResult], errors: dict[str, str]) -> dict[str, Any]:
    """The JSON report of a run (``lmread bench --json``)."""
    return {
        "lmread_version": __version__,
        "python": sys.version.split()[0],
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average": _load_average(),
        "results": [r.to_json() for r in results],
        "errors": errors,
        "all_met": all(r.met is not False for r in results) and not errors,
    }
