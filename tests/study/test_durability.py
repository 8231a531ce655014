"""Nothing reported saved is ever lost: SIGKILL at random moments, and a full disk."""

from __future__ import annotations

import os
import random
import resource
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from lmread.errors import DiskFullError
from lmread.records import Mark
from lmread.study import Study
from tests.study.test_study import make_sample

KILLS = 200


def _append_forever(path: Path, fd: int, annotator: str) -> None:
    """Child: append marks as fast as possible, reporting each id once append_mark returned."""
    study = Study.open(path)
    n = 0
    while True:
        mark = study.append_mark(Mark(sample="s_a", annotator=annotator, kind="fall", at=n % 5,
                                      note="x" * random.randrange(1, 3000)))
        os.write(fd, mark.id.encode() + b"\n")
        n += 1


def test_sigkill_at_random_moments_loses_no_reported_mark(study_dir: Path) -> None:
    study = Study.create(study_dir)
    study.add_samples([make_sample("s_a")])
    reported: list[str] = []
    rng = random.Random(1234)
    for trial in range(KILLS):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(read_fd)
            try:
                _append_forever(study_dir, write_fd, "ann" if trial % 2 else "bob")
            finally:
                os._exit(1)
        os.close(write_fd)
        # wait (bounded) until the child is writing, so a loaded machine still kills mid-write
        first = b""
        if select.select([read_fd], [], [], 20.0)[0]:
            first = os.read(read_fd, 65536)
        time.sleep(rng.uniform(0.0, 0.08))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(read_fd, "rb") as fh:
            data = first + fh.read()
        # the last line may itself be torn (killed while reporting): only count whole ids
        reported.extend(line.decode() for line in data.split(b"\n")[:-1] if line)
    loaded = Study.open(study_dir)
    on_disk = {m.id for m in loaded.marks()}
    missing = [mid for mid in reported if mid not in on_disk]
    assert not missing, f"{len(missing)} marks reported saved are not on disk"
    assert len(reported) > KILLS  # the children really wrote
    # no corrupt line is left inside any file: every complete line parses
    for file in (study_dir / "marks").glob("*.jsonl"):
        for line in file.read_bytes().split(b"\n")[:-1]:
            orjson.loads(line)
    # a fresh append after all that works and is readable
    Study.open(study_dir).append_mark(Mark(sample="s_a", annotator="ann", kind="fall", at=1))


def _disk_full_in_child(limit: int, write: Callable[[], object]) -> bool:
    """Run ``write`` in a forked child whose files may not grow past ``limit`` bytes; True when it
    raised :class:`DiskFullError` (and nothing else)."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            write()
            code = 0
        except DiskFullError:
            code = 7
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 7


def test_full_disk_fails_cleanly_and_file_stays_loadable(study_dir: Path) -> None:
    study = Study.create(study_dir)
    study.add_samples([make_sample("s_a")])
    first = study.append_mark(Mark(sample="s_a", annotator="ann", kind="fall", at=1))
    path = study_dir / "marks" / "ann.jsonl"
    before = path.read_bytes()
    assert _disk_full_in_child(len(before) + 200, lambda: Study.open(study_dir).append_mark(
        Mark(sample="s_a", annotator="ann", kind="fall", at=2, note="y" * 3000)))
    assert path.read_bytes() == before
    assert [m.id for m in Study.open(study_dir).marks()] == [first.id]


def test_full_disk_through_the_cli(study_dir: Path) -> None:
    study = Study.create(study_dir)
    study.add_samples([make_sample("s_a")])
    study.append_mark(Mark(sample="s_a", annotator="ann", kind="fall", at=1))
    path = study_dir / "marks" / "ann.jsonl"
    before = path.read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "lmread.cli", "mark", "--study", str(study_dir), "--sample", "s_a", "--at", "2",
         "--annotator", "ann", "--note", "z" * 3000],
        capture_output=True, text=True, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 100,) * 2),
        check=False,
    )
    assert proc.returncode != 0
    assert proc.stderr.startswith("lmread: error: no space to write")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert path.read_bytes() == before


@pytest.mark.parametrize("limit", [0, 10])
def test_full_disk_on_sample_append(study_dir: Path, limit: int) -> None:
    Study.create(study_dir)
    assert _disk_full_in_child(limit, lambda: Study.open(study_dir).add_samples([make_sample("s_x")]))
    assert Study.open(study_dir).samples == {}
