"""Reader benchmarks (ingest rate, first paint, cursor move).  The measuring harness lives in the
TUI package (:mod:`lmread.tui.bench_reader`, so that only ``lmread/tui`` touches textual); this
module imports it and turns its numbers into results."""

from __future__ import annotations

from lmread.bench.result import BenchResult


def run(quick: bool = False) -> list[BenchResult]:
    """Run the reader benchmarks in a headless Textual app."""
    from lmread.tui.bench_reader import measure

    numbers = measure(quick=quick)
    ingest, paint = numbers["ingest"], numbers["paint"]
    return [
        BenchResult(
            name="reader_ingest_tokens_per_s",
            value=ingest["rate"],
            unit="tokens/s",
            target=10_000.0,
            comparison=">=",
            details={k: v for k, v in ingest.items() if k != "rate"},
        ),
        BenchResult(
            name="reader_first_paint_s",
            value=paint["first_paint_s"],
            unit="s",
            target=0.5,
            comparison="<=",
            details={"tokens": paint["tokens"], "chars": paint["chars"], "lines": paint["lines"],
                     "load_and_render_lines_s": paint["load_and_render_lines_s"],
                     "method": "new_document() + load() + TokenView.show(), then await pilot.pause() in "
                               "App.run_test(size=(100, 40))"},
        ),
        BenchResult(
            name="reader_cursor_move_s",
            value=paint["cursor_move_s"],
            unit="s",
            target=0.020,
            comparison="<=",
            details={"tokens": paint["tokens"], "presses": paint["presses"],
                     "method": "key event sent through the app's driver (as Pilot does) at the end of the "
                               "sample, timed until the cursor moved, plus render_line of the cursor row",
                     "pilot_press_s": paint["pilot_press_s"],
                     "pilot_press_baseline_2_tokens_s": paint["pilot_press_baseline_2_tokens_s"]},
        ),
    ]
