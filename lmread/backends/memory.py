"""Whether the KV caches of ``--parallel`` sequences fit in the memory available now: the rule
every backend that decodes sequences together applies before it decodes."""

from __future__ import annotations

import os

from lmread.errors import OptionError


def available_memory() -> int | None:
    """Bytes of memory available to new allocations now (Linux ``MemAvailable``; else the free
    physical pages); None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def check_kv_memory(n_parallel: int, tokens_per_seq: int, bytes_per_token: int | None,
                    available: int | None) -> None:
    """:class:`OptionError` (one line) when ``n_parallel`` KV caches of ``tokens_per_seq`` tokens
    of ``bytes_per_token`` bytes each take more than ``available`` bytes; nothing to check when
    either is unknown (None)."""
    if bytes_per_token is None or available is None:
        return
    need = n_parallel * tokens_per_seq * bytes_per_token
    if need <= available:
        return
    head = (f"--parallel {n_parallel} needs {n_parallel} x {tokens_per_seq} tokens of KV cache "
            f"({need / 2**30:.1f} GiB), more than the {available / 2**30:.1f} GiB of memory available; ")
    fit = max(available // (tokens_per_seq * bytes_per_token), 0)
    raise OptionError(head + (f"use --parallel {fit} or less, or lower --max-tokens" if fit >= 1
                              else "lower --max-tokens"))
