"""Reader benchmarks (ingest rate, first paint, cursor move); the harness lives in the TUI
package (:mod:`lmread.tui.bench_reader`) so that only ``lmread/tui`` touches textual."""

from __future__ import annotations

from lmread.bench.result import BenchResult


def run(quick: bool = False) -> list[BenchResult]:
    """Run the reader benchmarks in a headless Textual app."""
    from lmread.tui.bench_reader import run as run_reader

    return run_reader(quick=quick)
