"""The only file primitives of lmread: atomic whole-file writes, locked fsynced appends of whole
lines, and an incremental JSONL reader that tolerates a torn last line.

Every append is one ``write`` of whole lines under an exclusive ``flock``, followed by ``fsync``;
a record is reported saved only after that.  A failed write (full disk, file-size limit) is
rolled back with ``ftruncate`` so the file stays loadable.  Reading tolerates a torn last line
(a crash mid-write): it warns and ignores it; the next append moves the fragment to
``FILE.torn`` and starts on a fresh line.  Any other corrupt line is an error naming the file
and the line number.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from lmread.errors import DiskFullError, StudyError


def fsync_dir(path: Path) -> None:
    """fsync a folder so a rename or a new file in it survives a crash (best effort)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _set_aside_torn_tail(fd: int, path: Path, size: int) -> tuple[int, bool]:
    """Deal with a last line that has no newline (a writer died mid-write), under the lock.

    A tail that parses as JSON is a whole record missing only its newline: keep it (returns
    ``keep=True``, the caller writes the newline).  Anything else is a torn fragment that was
    never reported saved: it is moved to ``FILE.torn`` (so no byte is lost) and the file is
    truncated back to its last complete line, so the next record starts on a fresh line and no
    corrupt line is ever left inside the file.
    """
    start = size
    while start > 0:
        step = min(start, 1 << 20)
        chunk = os.pread(fd, step, start - step)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            start = start - step + nl + 1
            break
        start -= step
    tail = os.pread(fd, size - start, start)
    try:
        orjson.loads(tail)
        return size, True
    except orjson.JSONDecodeError:
        pass
    side = path.with_name(path.name + ".torn")
    with open(side, "ab") as fh:
        fh.write(tail + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.ftruncate(fd, start)
    os.fsync(fd)
    return start, False


def append_lines(path: Path, data: bytes) -> None:
    """Append ``data`` (whole lines, ending in newline) to ``path`` with one write and fsync.

    If the file ends in a torn line, it is set aside first (see :func:`_set_aside_torn_tail`).  On any
    write error the file is truncated back to its previous size and :class:`DiskFullError`
    (no space / size limit) or :class:`StudyError` is raised.
    """
    if not data.endswith(b"\n"):
        raise ValueError("append_lines needs whole lines")
    created = not path.exists()
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StudyError(f"cannot open {path} for writing: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            size, keep = _set_aside_torn_tail(fd, path, size)
            if keep:
                data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                if written <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[written:]
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            except OSError:
                pass
            if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                raise DiskFullError(
                    f"no space to write {path} ({exc.strerror}); nothing was saved - free disk space and retry"
                ) from None
            raise StudyError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a whole file atomically: temporary file in the same folder, fsync, rename, fsync the folder.

    The temporary file has a unique name (several writers of one path never share it) and the
    permissions of a newly created file.  On failure it is removed, the old file (if any) is left
    as it was, and :class:`DiskFullError` (no space / size limit) or :class:`StudyError` is raised.
    The folder must exist.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise DiskFullError(f"no space to write {path} ({exc.strerror})") from None
        raise StudyError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@dataclass
class JsonlReader:
    """Incremental reader of a JSONL file: each :meth:`read_new` parses only what was appended.

    A final line without newline that does not parse is a torn write: it is reported in
    ``warnings`` and skipped (and re-read later if it was merely still being written).
    """

    path: Path
    offset: int = 0
    line_no: int = 0
    warnings: list[str] = field(default_factory=list)
    #: rewrites each line before it is parsed (the original is parsed if the rewrite is not JSON)
    prepare: Callable[[bytes], bytes] | None = None

    def read_new(self) -> Iterator[tuple[int, Any]]:
        """Parse the lines appended since the last call: ``(line number, record)`` each."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StudyError(f"cannot read {self.path}: {exc.strerror}") from None
        pos = 0
        end = len(data)
        while pos < end:
            nl = data.find(b"\n", pos)
            complete = nl >= 0
            line = data[pos:nl] if complete else data[pos:]
            line_no = self.line_no + 1
            if line.strip():
                try:
                    record = orjson.loads(line if self.prepare is None else self.prepare(line))
                except orjson.JSONDecodeError:
                    record = None
                if record is None:
                    try:
                        record = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        if not complete:
                            self.warnings.append(
                                f"{self.path}: line {line_no} is incomplete (torn write); ignored"
                            )
                            return
                        raise StudyError(
                            f"{self.path}: line {line_no} is not valid JSON; repair or remove that line"
                        ) from None
                yield line_no, record
            if not complete:
                # a parsable last line without newline: accept it and move past it
                self.offset += end
                self.line_no = line_no
                return
            self.line_no = line_no
            self.offset += nl + 1 - pos
            pos = nl + 1
