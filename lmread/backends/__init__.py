"""Backends: adapters that stream tokens from a model.  See :mod:`lmread.backends.base`.

:func:`open_backend` turns a model card from the catalogue into a loaded backend; the heavy
libraries (llama_cpp, torch, httpx) are imported only there.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lmread.errors import ModelError

if TYPE_CHECKING:
    from lmread.catalog import ModelCard

#: backend name -> (module, class)
BACKENDS: dict[str, tuple[str, str]] = {
    "llamacpp": ("lmread.backends.llamacpp", "LlamaCppBackend"),
    "hf": ("lmread.backends.hf", "HFBackend"),
    "openai": ("lmread.backends.openai", "OpenAIBackend"),
    "scripted": ("lmread.backends.scripted", "ScriptedBackend"),
}


def backend_class(name: str) -> Any:
    """The backend class for ``name``; :class:`ModelError` if unknown or its library is missing."""
    if name not in BACKENDS:
        raise ModelError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")
    module_name, cls_name = BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = {"llamacpp": "llamacpp", "hf": "hf", "openai": "openai"}.get(name, "all")
        raise ModelError(
            f"backend {name!r} is not installed ({exc.name or exc}); install it with: pip install 'lmread[{extra}]'"
        ) from None
    return getattr(module, cls_name)


def open_backend(card: ModelCard, backend: str | None = None, **options: Any) -> Any:
    """Load ``card`` with ``backend`` (default: the card's first backend).

    ``options`` are backend-specific (``n_threads``, ``n_gpu_layers``, ``n_ctx``, ``device``,
    ``allow_pickle``, ``base_url``, ...) and passed to the backend's ``from_card``.
    """
    name = backend or card.backends[0]
    if name not in card.backends:
        raise ModelError(f"model {card.id!r} has no backend {name!r} (it has: {', '.join(card.backends)})")
    return backend_class(name).from_card(card, **options)
