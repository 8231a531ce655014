"""Loading a GGUF file into llama.cpp: the defaults, the quiet log, the identity's key order and
the KV-cache size read from the file's header."""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from typing import Any

from lmread.backends.base import BackendOption

#: Context size when neither the caller nor a smaller training context says otherwise.
DEFAULT_CTX = 4096

GPU_LAYERS = BackendOption("n_gpu_layers", "--gpu-layers", int, "Layers offloaded to the GPU, -1 = all",
                           minimum=-1, rule="must be >= 0, or -1 for all layers")

#: the order of the identity's keys in a sample record
LAYOUT = ("id", "name", "family", "file", "path", "sha256", "n_params", "quantization", "architecture",
          "n_ctx", "n_vocab", "backend", "backend_version", "library_versions")


def default_threads() -> int:
    """The number of CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def quiet_llama_log(llama_cpp: Any) -> Iterator[None]:
    """Silence llama.cpp's own log while a model loads (``verbose=False`` still lets warnings
    such as the SWA-cache note through); lmread reports failures itself, on one line."""

    @llama_cpp.llama_log_callback
    def drop(level: int, text: bytes, user_data: Any) -> None:
        return None

    llama_cpp.llama_log_set(drop, ctypes.c_void_p(0))
    try:
        yield
    finally:
        restore = getattr(getattr(llama_cpp, "_logger", None), "llama_log_callback", None)
        llama_cpp.llama_log_set(restore, ctypes.c_void_p(0))


def kv_bytes_per_token(header: Any) -> int | None:
    """Bytes of KV cache one token takes (f16 keys and values in every layer), from the GGUF
    metadata; None when the file does not say."""

    def whole(value: Any) -> int | None:
        if isinstance(value, list):  # per-layer counts: the largest
            value = max(value) if value else None
        return int(value) if isinstance(value, int) and value > 0 else None

    layers = whole(header.arch_value("block_count"))
    heads = whole(header.arch_value("attention.head_count"))
    kv_heads = whole(header.arch_value("attention.head_count_kv")) or heads
    embd = whole(header.arch_value("embedding_length"))
    head_dim = embd // heads if embd and heads else None
    k_len = whole(header.arch_value("attention.key_length")) or head_dim
    v_len = whole(header.arch_value("attention.value_length")) or head_dim
    if not (layers and kv_heads and k_len and v_len):
        return None
    return 2 * layers * kv_heads * (k_len + v_len)
