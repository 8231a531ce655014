"""Whether the KV caches of ``--parallel`` sequences fit in the memory available now."""

from __future__ import annotations

import os

from lmread.backends.llamacpp.parallel import padded_ctx
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


def check_parallel_memory(n_parallel: int, n_ctx_seq: int, kv_bytes_per_token: int | None,
                          available: int | None = None) -> None:
    """:class:`OptionError` (one line) when ``n_parallel`` KV caches of ``n_ctx_seq`` tokens
    (as llama.cpp pads them) would take more than the memory available (``available``, default
    :func:`available_memory`)."""
    if kv_bytes_per_token is None:
        return
    cells = padded_ctx(n_ctx_seq) * n_parallel
    need = cells * kv_bytes_per_token
    avail = available_memory() if available is None else available
    if avail is not None and need > avail:
        fit = max(avail // (padded_ctx(n_ctx_seq) * kv_bytes_per_token), 0)
        raise OptionError(
            f"--parallel {n_parallel} needs {n_parallel} x {padded_ctx(n_ctx_seq)} tokens of KV cache "
            f"({need / 2**30:.1f} GiB), more than the {avail / 2**30:.1f} GiB of memory available; "
            f"use --parallel {fit} or less, or lower --max-tokens" if fit >= 1 else
            f"--parallel {n_parallel} needs {n_parallel} x {padded_ctx(n_ctx_seq)} tokens of KV cache "
            f"({need / 2**30:.1f} GiB), more than the {avail / 2**30:.1f} GiB of memory available; "
            "lower --max-tokens"
        )


