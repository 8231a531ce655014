"""Whether the KV caches of ``--parallel`` sequences fit in the memory available now, with the
cells llama.cpp pads each sequence's context to (:func:`lmread.backends.memory.check_kv_memory`)."""

from __future__ import annotations

from lmread.backends.llamacpp.parallel import padded_ctx
from lmread.backends.memory import available_memory, check_kv_memory

__all__ = ["available_memory", "check_parallel_memory"]


def check_parallel_memory(n_parallel: int, n_ctx_seq: int, kv_bytes_per_token: int | None,
                          available: int | None = None) -> None:
    """:class:`OptionError` (one line) when ``n_parallel`` KV caches of ``n_ctx_seq`` tokens
    (as llama.cpp pads them) would take more than the memory available (``available``, default
    :func:`available_memory`)."""
    if kv_bytes_per_token is None:
        return
    check_kv_memory(n_parallel, padded_ctx(n_ctx_seq), kv_bytes_per_token,
                    available_memory() if available is None else available)
