"""RoFT benchmark (issue 18): a synthetic file in the released layout of ``roft.csv``, 27,614
rows by 30 readers, imported with ``lmread import --format roft`` in at most 30 s, and
``lmread survival --unit sentences`` on the study it makes in at most 2 s.

Wall-clock time is the measure (``cpu_s`` beside it says how much of it this process ran, which
tells a loaded machine from slow code).  The import is the product's own code path,
:func:`lmread.importer.roft.import_roft` (parse, check, build samples and marks, write the
study).  The survival target is the command a user types: ``lmread survival --study DIR --unit
sentences`` run as its own process (interpreter start, imports, opening the study, the analysis
with its default bootstrap, the printed table), best of three.  Beside it, ``analysis_s`` is the
same work in this process without the start and the imports
(:func:`lmread.analysis.report.compute` and the table).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lmread.bench.result import BenchResult

ROWS = 27_614


def _command_s(study: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``lmread survival --study STUDY --unit sentences`` as a new process."""
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lmread.cli", "survival", "--study", str(study), "--unit",
                           "sentences"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - start
    after = os.times()
    if done.returncode != 0:
        raise RuntimeError(f"lmread survival failed on the benchmark study: {done.stderr.strip()[-500:]}")
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def run(quick: bool = False) -> list[BenchResult]:
    """Time the import of a synthetic RoFT file and the survival command on it."""
    from lmread.analysis.report import compute
    from lmread.cli.survival import format_table
    from lmread.importer.roft import import_roft
    from lmread.importer.synthetic import synth_rows, write_roft

    n = 3_000 if quick else ROWS
    repeats = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="lmread-bench-roft-") as tmp:
        folder = Path(tmp)
        file = write_roft(folder / "roft.csv", synth_rows(n, 30, seed=0))
        size = file.stat().st_size
        start, cpu = time.perf_counter(), time.process_time()
        summary = import_roft(folder / "study", file)
        import_s, import_cpu = time.perf_counter() - start, time.process_time() - cpu
        runs, cpus = zip(*(_command_s(folder / "study") for _ in range(repeats)), strict=True)
        analysis = []
        for _ in range(repeats):
            start = time.perf_counter()
            doc, obs = compute(folder / "study", unit="sentences")
            format_table(doc)
            analysis.append(time.perf_counter() - start)
    details = {"rows": n, "passages": summary["passages"], "marks": summary["marks"],
               "file_bytes": size, "cpu_s": import_cpu}
    return [
        BenchResult("roft import (27,614 rows)" if not quick else "roft import", import_s, "s",
                    target=None if quick else 30.0, comparison="<=", details=details),
        BenchResult("roft lmread survival --unit sentences (the command)", min(runs), "s",
                    target=None if quick else 2.0, comparison="<=",
                    details={"observations": len(obs), "runs_s": list(runs), "cpu_s": list(cpus),
                             "analysis_s": min(analysis), "analysis_runs_s": analysis}),
    ]
