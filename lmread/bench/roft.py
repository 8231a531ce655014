"""RoFT benchmark (issue 18): a synthetic file in the released layout of ``roft.csv``, 27,614
rows by 30 readers, imported with ``lmread import --format roft`` in at most 30 s, and
``lmread survival --unit sentences`` on the study it makes in at most 2 s.

Wall-clock time is the measure (``cpu_s`` beside it says how much of it this process ran, which
tells a loaded machine from slow code).  Both are the product's own code paths: :func:`lmread.importer.roft.import_roft` (parse, check,
build samples and marks, write the study) and the survival command's work (open the study, build
the observations and the survival document with its default bootstrap, format the table).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from lmread.bench.result import BenchResult

ROWS = 27_614


def run(quick: bool = False) -> list[BenchResult]:
    """Time the import of a synthetic RoFT file and the survival command on it."""
    from lmread.analysis.report import compute
    from lmread.cli.survival import format_table
    from lmread.importer.roft import import_roft
    from lmread.importer.synthetic import synth_rows, write_roft

    n = 3_000 if quick else ROWS
    with tempfile.TemporaryDirectory(prefix="lmread-bench-roft-") as tmp:
        folder = Path(tmp)
        file = write_roft(folder / "roft.csv", synth_rows(n, 30, seed=0))
        size = file.stat().st_size
        start, cpu = time.perf_counter(), time.process_time()
        summary = import_roft(folder / "study", file)
        import_s, import_cpu = time.perf_counter() - start, time.process_time() - cpu
        runs, cpus = [], []
        for _ in range(1 if quick else 3):
            start, cpu = time.perf_counter(), time.process_time()
            doc, obs = compute(folder / "study", unit="sentences")
            format_table(doc)
            runs.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
    details = {"rows": n, "passages": summary["passages"], "marks": summary["marks"],
               "file_bytes": size, "cpu_s": import_cpu}
    return [
        BenchResult("roft import (27,614 rows)" if not quick else "roft import", import_s, "s",
                    target=None if quick else 30.0, comparison="<=", details=details),
        BenchResult("roft survival --unit sentences", min(runs), "s", target=None if quick else 2.0,
                    comparison="<=", details={"observations": len(obs), "runs_s": runs, "cpu_s": cpus}),
    ]
