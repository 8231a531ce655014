"""The llama.cpp backend (GGUF models through llama-cpp-python), as a package of its parts.

:class:`LlamaCppBackend` lives in :mod:`~lmread.backends.llamacpp.backend`; it composes the
loading facts (:mod:`~lmread.backends.llamacpp.loading`), the one context of the single stream
(:mod:`~lmread.backends.llamacpp.context`), the stream (:mod:`~lmread.backends.llamacpp.stream`),
the scorer (:mod:`~lmread.backends.llamacpp.scoring`), the parallel decoder
(:mod:`~lmread.backends.llamacpp.parallel`) and the memory rule of ``--parallel``
(:mod:`~lmread.backends.llamacpp.memory`).
"""

from __future__ import annotations

from lmread.backends.llamacpp.backend import LlamaCppBackend
from lmread.backends.llamacpp.loading import DEFAULT_CTX, GPU_LAYERS, default_threads
from lmread.backends.llamacpp.memory import available_memory, check_parallel_memory

__all__ = ["DEFAULT_CTX", "GPU_LAYERS", "LlamaCppBackend", "available_memory", "check_parallel_memory",
           "default_threads"]
