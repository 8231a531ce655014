"""What a server tells about itself: its models (``/v1/models``), its kind, llama-server's ``/props``.

Pure functions over the servers' JSON:

* :func:`server_kind` recognizes the server from its ``/v1/models`` entry: llama.cpp's
  ``llama-server`` (``owned_by: "llamacpp"`` with a ``meta`` object), vLLM (``owned_by: "vllm"``),
  llama-cpp-python's server (``owned_by: "me"``), else a generic OpenAI-compatible one.
* :func:`server_identity` takes the model identity the server publishes: llama-server's
  ``meta = {n_params, n_vocab, n_ctx, n_ctx_train, size, ftype}`` and ``/props``
  (``model_path``, ``build_info``, ``total_slots``); vLLM's ``max_model_len``, ``root``.

and :class:`ServerInfo`, which asks a server once (through :class:`.http.HttpClient`) and keeps
the answers.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from lmread.backends.openai.http import HttpClient
from lmread.errors import BackendError, ModelError

#: server kinds :func:`server_kind` can tell apart
SERVER_KINDS = ("llama-server", "vllm", "llama-cpp-python", "openai")

#: vLLM's ``--max-logprobs`` default: the most alternatives it returns per token
VLLM_MAX_LOGPROBS = 20


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def server_kind(entry: dict[str, Any] | None) -> str:
    """Which server published this ``/v1/models`` entry (one of :data:`SERVER_KINDS`)."""
    entry = entry or {}
    owner = entry.get("owned_by")
    if owner == "llamacpp" or (isinstance(entry.get("meta"), dict) and "n_vocab" in entry["meta"]):
        return "llama-server"
    if owner == "vllm" or "max_model_len" in entry:
        return "vllm"
    if owner == "me":
        return "llama-cpp-python"
    return "openai"


def server_identity(entry: dict[str, Any] | None, props: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model identity a server publishes, by lmread's names (``None`` where it says nothing).

    Keys: ``n_params``, ``n_vocab``, ``n_ctx`` (the context a request gets), ``n_ctx_train``,
    ``quantization``, ``size_bytes``, ``max_model_len`` (vLLM), ``file`` (llama-server's model
    file name, from ``/props``), ``server_build`` and ``server_slots``.
    """
    entry = entry or {}
    props = props or {}
    meta: dict[str, Any] = entry["meta"] if isinstance(entry.get("meta"), dict) else {}
    ftype = meta.get("ftype") if isinstance(meta.get("ftype"), str) else props.get("model_ftype")
    path = props.get("model_path")
    max_len = _int(entry.get("max_model_len"))
    return {
        "n_params": _int(meta.get("n_params")),
        "n_vocab": _int(meta.get("n_vocab")),
        "n_ctx": _int(meta.get("n_ctx")) or max_len,
        "n_ctx_train": _int(meta.get("n_ctx_train")),
        "quantization": ftype if isinstance(ftype, str) and ftype else None,
        "size_bytes": _int(meta.get("size")),
        "max_model_len": max_len,
        "file": os.path.basename(path) if isinstance(path, str) and path else None,
        "server_build": props.get("build_info") if isinstance(props.get("build_info"), str) else None,
        "server_slots": _int(props.get("total_slots")),
    }



class ServerInfo:
    """One server's model list and kind, asked once (thread-safe).

    ``model`` is the name the server knows the model by (None: the first model it lists);
    ``kind`` forces the server kind instead of reading it from ``/v1/models``.
    """

    def __init__(self, http: HttpClient, model: str | None = None, kind: str | None = None) -> None:
        self.http = http
        self.model = model
        self._kind = kind
        self._lock = threading.Lock()
        self._models: list[dict[str, Any]] | None = None

    def models(self) -> list[dict[str, Any]]:
        """The server's ``/v1/models`` list (fetched once).  With a configured model name, a
        server that answers it with an HTTP error counts as listing nothing (the completions
        request then says what is wrong); transport errors are raised either way."""
        with self._lock:
            if self._models is None:
                data = self.http.get_json("/v1/models", optional=bool(self.model))
                if data is None:
                    self._models = []
                    return self._models
                items = data.get("data") if isinstance(data, dict) else data
                if not isinstance(items, list):
                    raise BackendError(
                        f"the server at {self.http.url} sent an unexpected /v1/models answer; is it OpenAI-compatible?"
                    )
                self._models = [m for m in items if isinstance(m, dict)]
            return self._models

    def served_model(self) -> str:
        """The model name sent with each request (the configured one, else the server's first)."""
        if self.model:
            return self.model
        models = self.models()
        if not models or not models[0].get("id"):
            raise ModelError(
                f"the server at {self.http.url} lists no models; give the model name in the card (source.model)"
            )
        return str(models[0]["id"])

    def entry(self) -> dict[str, Any]:
        """The ``/v1/models`` entry of the served model (``{}`` when the server lists none)."""
        served = self.served_model()
        models = self.models()
        entry = next((m for m in models if m.get("id") == served), None)
        if entry is None and len(models) == 1:  # llama-server answers to any model name
            entry = models[0]
        return entry or {}

    def kind(self) -> str:
        """The server behind the URL: ``llama-server``, ``vllm``, ``llama-cpp-python`` or ``openai``."""
        if self._kind is None:
            self._kind = server_kind(self.entry())
        return self._kind

    def meta(self) -> dict[str, Any] | None:
        """llama-server's ``meta`` object of the served model (None elsewhere)."""
        meta = self.entry().get("meta")
        return meta if isinstance(meta, dict) else None

    def n_ctx(self) -> int | None:
        """The context a request gets, as llama-server publishes it (None when unknown)."""
        meta = self.meta()
        value = meta.get("n_ctx") if meta is not None else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def props(self) -> dict[str, Any] | None:
        """llama-server's ``/props`` (None for other servers, or when it gives none)."""
        if self.kind() != "llama-server":
            return None
        props = self.http.get_json("/props", optional=True)
        return props if isinstance(props, dict) else None
