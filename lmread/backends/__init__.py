"""Backends: adapters that stream tokens from a model.  See :mod:`lmread.backends.base`.

The registry :data:`BACKENDS` names every backend (the ``--backend`` choices); each class
declares the options it takes (:func:`option_table`; declarations in
:mod:`lmread.backends.options`) and its abilities (class attributes of
:class:`~lmread.backends.base.Backend`).  :func:`open_backend` turns a model card
from the catalogue into a loaded backend; the heavy libraries (llama_cpp, torch, httpx) are
imported only when a model is loaded.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lmread.errors import ModelError, OptionError

if TYPE_CHECKING:
    from lmread.backends.base import Backend, BackendOption
    from lmread.catalog import ModelCard

#: backend name -> (module, class)
BACKENDS: dict[str, tuple[str, str]] = {
    "llamacpp": ("lmread.backends.llamacpp", "LlamaCppBackend"),
    "hf": ("lmread.backends.hf", "HFBackend"),
    "openai": ("lmread.backends.openai", "OpenAIBackend"),
    "scripted": ("lmread.backends.scripted", "ScriptedBackend"),
}

#: the pip extra that installs each backend's library
EXTRAS = {"llamacpp": "llamacpp", "hf": "hf", "openai": "openai"}


def backend_names() -> list[str]:
    """Every registered backend, in registry order (the ``--backend`` choices)."""
    return list(BACKENDS)


def backend_class(name: str) -> type[Backend]:
    """The backend class for ``name``; :class:`ModelError` if unknown or its library is missing."""
    if name not in BACKENDS:
        raise ModelError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")
    module_name, cls_name = BACKENDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = EXTRAS.get(name, "all")
        raise ModelError(
            f"backend {name!r} is not installed ({exc.name or exc}); install it with: pip install 'lmread[{extra}]'"
        ) from None
    cls: type[Backend] = getattr(module, cls_name)
    return cls


def option_table() -> list[tuple[BackendOption, list[str]]]:
    """Every declared backend option once (first declaration wins), with the backends that take
    it, in registry order."""
    table: dict[str, tuple[BackendOption, list[str]]] = {}
    for name in BACKENDS:
        for opt in backend_class(name).options:
            if opt.name not in table:
                table[opt.name] = (opt, [])
            table[opt.name][1].append(name)
    return list(table.values())


def check_backend_options(name: str, options: dict[str, Any], model_id: str | None = None) -> dict[str, Any]:
    """``options`` checked against what backend ``name`` declares: each must be one of its
    options and valid; :class:`OptionError` names the flag otherwise."""
    cls = backend_class(name)
    declared = {opt.name: opt for opt in cls.options}
    flags = {opt.name: opt.flag for opt, _ in option_table()}
    out: dict[str, Any] = {}
    for key, value in options.items():
        opt = declared.get(key)
        if opt is None:
            where = f" (model {model_id!r})" if model_id else ""
            raise OptionError(f"option {flags.get(key, key)} does not apply to the {name} backend{where}; leave it out")
        out[key] = opt.check(value)
    return out


def open_backend(card: ModelCard, backend: str | None = None, **options: Any) -> Backend:
    """Load ``card`` with ``backend`` (default: the card's first).

    ``options`` are backend-specific (``n_threads``, ``n_gpu_layers``, ``n_ctx``, ``device``,
    ``allow_pickle``, ``base_url``, ...) and passed to the backend's ``from_card``.
    """
    name = backend or card.backends[0]
    if name not in card.backends:
        raise ModelError(f"model {card.id!r} has no backend {name!r} (it has: {', '.join(card.backends)})")
    return backend_class(name).from_card(card, **options)
