"""The ``openai`` backend: OpenAI-compatible servers (vLLM, llama-server, llama-cpp-python's server).

:class:`OpenAIBackend` composes the parts of this package: one :class:`~.http.HttpClient`, the
server's answers about itself (:class:`~.discovery.ServerInfo`), the protocol its streams use
(:class:`~.completions.CompletionsProtocol`, or llama-server's native
:class:`~.native.NativeProtocol` where it finds llama-server), the one stream loop
(:func:`~.stream.run_stream`) and the scorer (:func:`~.scorer.score_echo`).  What the chunks hold
is said in :mod:`lmread.backends.openai`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lmread import __version__
from lmread.backends.base import Backend, GenOptions, ModelIdentity, Option, StreamEnd, TokenChunk
from lmread.backends.openai.completions import CompletionsProtocol
from lmread.backends.openai.discovery import SERVER_KINDS, VLLM_MAX_LOGPROBS, ServerInfo, server_identity
from lmread.backends.openai.http import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, RETRIES, HttpClient
from lmread.backends.openai.native import NativeProtocol
from lmread.backends.openai.scorer import score_echo
from lmread.backends.openai.stream import ServerProtocol, run_stream
from lmread.errors import ModelError, OptionError

if TYPE_CHECKING:
    from lmread.catalog import ModelCard

#: protocols: ``auto`` takes llama-server's native endpoint where the server is llama-server
PROTOCOLS = ("auto", "openai", "native")

BASE_URL = Option("base_url", "--base-url", str, "OpenAI-compatible server URL",
                  prefixes=("http://", "https://"), rule="must start with http:// or https://")
API_KEY_ENV = Option("api_key_env", "--api-key-env", str, "Environment variable holding the API key",
                     rule="name the environment variable holding the key")
CONCURRENCY = Option("concurrency", "--concurrency", int, "Concurrent requests", minimum=1)
CONNECT_TIMEOUT = Option("connect_timeout_s", "--connect-timeout", float,
                         f"Seconds to wait for a connection to the server (default {CONNECT_TIMEOUT_S:g})",
                         above=0.0, rule="must be a timeout in seconds > 0")
READ_TIMEOUT = Option("read_timeout_s", "--read-timeout", float,
                      f"Seconds to wait for each next piece of an answer (default {READ_TIMEOUT_S:g})",
                      above=0.0, rule="must be a timeout in seconds > 0")
RETRIES_OPTION = Option("retries", "--retries", int,
                        f"Attempts after the first for a request that could not connect, never once tokens came "
                        f"(default {RETRIES})", minimum=0, maximum=10)
PROTOCOL = Option("protocol", "--protocol", str,
                  "Server protocol: auto (llama-server's native /completion where it finds llama-server), "
                  "openai (always /v1/completions) or native", choices=PROTOCOLS)
MAX_LOGPROBS = Option("max_logprobs", "--max-logprobs", int,
                      "The most alternatives the server returns per token (vLLM's --max-logprobs, default 20)",
                      minimum=0)
N_PARAMS = Option("n_params", "--n-params", int,
                  "Parameter count of a served model whose server does not publish it", minimum=1)

#: the order of the identity's keys in a sample record (the server's identity after the
#: fields older samples have)
_LAYOUT = ("id", "name", "served_model", "owned_by", "meta", "max_model_len", "n_params", "quantization",
           "architecture", "sha256", "revision", "backend", "backend_version", "library_versions", "base_url",
           "n_params_source", "n_vocab", "n_ctx", "n_ctx_train", "size_bytes", "file", "server", "server_build",
           "endpoint", "logprobs_mode")


class OpenAIBackend(Backend):
    """Streams tokens from an OpenAI-compatible server (``/v1/completions``, or llama-server's
    native ``/completion``).

    ``model`` is the name the server knows the model by (``None``: the first model the server
    lists).  ``model_id``/``display_name``/``n_params``/``quantization``/``architecture``
    describe the model for the records (from the card; what the server publishes comes first).
    ``concurrency`` is how many streams the generate driver may run at once (one shared,
    thread-safe HTTP client).  ``connect_timeout_s`` bounds the wait for a connection,
    ``read_timeout_s`` (``timeout_s``, the older name) each wait for the next piece of an answer;
    ``retries`` is how often a request that could not connect is tried again (never a stream that
    has sent tokens).  ``api_key_env`` names the variable holding the API key (an error when it is
    not set; ``None``: ``LMREAD_API_KEY`` if set).  ``protocol`` is ``auto``, ``openai`` or
    ``native``; ``server`` forces the server kind instead of asking ``/v1/models``;
    ``max_logprobs`` is vLLM's ``--max-logprobs``.  ``transport`` is an optional ``httpx``
    transport (tests).  Every option is checked by its declaration.
    """

    name = "openai"
    options = (BASE_URL, API_KEY_ENV, CONCURRENCY, CONNECT_TIMEOUT, READ_TIMEOUT, RETRIES_OPTION, PROTOCOL,
               MAX_LOGPROBS, N_PARAMS)
    supports_score = True
    needs_local_model = False
    knows_token_ids = False
    full_distribution = False
    sends_limits = True

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key_env: str | None = None,
        concurrency: int = 4,
        timeout_s: float | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        retries: int = RETRIES,
        protocol: str = "auto",
        max_logprobs: int = VLLM_MAX_LOGPROBS,
        server: str | None = None,
        model_id: str | None = None,
        display_name: str | None = None,
        n_params: int | None = None,
        quantization: str | None = None,
        architecture: str | None = None,
        transport: Any = None,
    ) -> None:
        if timeout_s is not None:  # the older single timeout: the read timeout
            read_timeout_s = timeout_s
        for option, value in ((CONCURRENCY, concurrency), (CONNECT_TIMEOUT, connect_timeout_s),
                              (READ_TIMEOUT, read_timeout_s), (RETRIES_OPTION, retries), (PROTOCOL, protocol),
                              (MAX_LOGPROBS, max_logprobs), (N_PARAMS, n_params), (API_KEY_ENV, api_key_env)):
            option.check(value)
        if server is not None and server not in SERVER_KINDS:
            raise OptionError(f"invalid server kind {server!r}: use one of {', '.join(SERVER_KINDS)}")
        if api_key_env is not None and not os.environ.get(api_key_env):
            raise OptionError(
                f"the environment variable ${api_key_env} named by --api-key-env is not set: "
                "export it with the server's API key, or leave --api-key-env out"
            )
        self.http = HttpClient(base_url, api_key_env=api_key_env, connect_timeout_s=connect_timeout_s,
                               read_timeout_s=read_timeout_s, retries=retries, max_connections=concurrency + 2,
                               transport=transport)
        self.server = ServerInfo(self.http, model, server)
        self.base_url = self.http.base_url
        self.url = self.http.url
        self.api_key_env = api_key_env
        self.max_concurrency = concurrency
        self.connect_timeout_s = self.http.connect_timeout_s
        self.read_timeout_s = self.timeout_s = self.http.read_timeout_s
        self.retries = retries
        self.protocol = protocol
        self.max_logprobs = max_logprobs
        self.model_id = model_id
        self.display_name = display_name
        self.n_params = n_params
        self.quantization = quantization
        self.architecture = architecture
        self._lock = threading.Lock()
        self._identity: ModelIdentity | None = None

    @classmethod
    def from_card(cls, card: ModelCard, **options: Any) -> OpenAIBackend:
        """Connect to the server of ``card`` (``source = {url, model}``); ``base_url`` overrides
        the card's URL, ``n_params`` the card's parameter count, the other declared options
        (and ``timeout_s``) go to the constructor.  Nothing is requested until the first use."""
        source = card.source or {}
        url = options.get("base_url") or source.get("url")
        if not url:
            raise ModelError(
                f"model {card.id!r} has no server URL: give --base-url http://HOST:PORT or set source.url in its card"
            )
        taken = {opt.name for opt in cls.options} - {"base_url", "n_params"} | {"timeout_s"}
        kwargs = {k: v for k, v in options.items() if k in taken and v is not None}
        n_params = options.get("n_params")
        return cls(url, source.get("model"), model_id=card.id, display_name=card.name,
                   n_params=n_params if n_params is not None else card.n_params,
                   quantization=card.quantization, architecture=card.architecture, **kwargs)

    # ---------------------------------------------------------------------------- the server

    @property
    def model(self) -> str | None:
        """The name the server knows the model by (None: the first model it lists)."""
        return self.server.model

    @model.setter
    def model(self, value: str | None) -> None:
        self.server.model = value

    def models(self) -> list[dict[str, Any]]:
        """The server's ``/v1/models`` list (fetched once)."""
        return self.server.models()

    def served_model(self) -> str:
        """The model name sent with each request (the configured one, else the server's first)."""
        return self.server.served_model()

    def server_kind(self) -> str:
        """The server behind the URL: ``llama-server``, ``vllm``, ``llama-cpp-python`` or ``openai``."""
        return self.server.kind()

    def native(self) -> bool:
        """Whether streams use llama-server's native ``/completion`` endpoint."""
        if self.protocol == "native":
            return True
        return self.protocol == "auto" and self.server_kind() == "llama-server"

    def stream_protocol(self) -> ServerProtocol:
        """The protocol streams use (asks the server what it is on first use)."""
        if self.native():
            return NativeProtocol(self.server_kind(), self.server.n_ctx())
        return CompletionsProtocol(self.served_model(), self.server_kind(), self.max_logprobs, self.url)

    # ---------------------------------------------------------------------------- the contract

    def identity(self) -> ModelIdentity:
        """Model identity for the records: what the server publishes about the model (llama-server's
        ``/v1/models`` ``meta`` and ``/props``, vLLM's ``max_model_len``), else the card's and
        ``--n-params``; never the API key."""
        with self._lock:
            if self._identity is None:
                self._identity = self._read_identity()
            return replace(self._identity)

    def _read_identity(self) -> ModelIdentity:
        httpx = self.http.httpx
        served = self.served_model()
        entry = self.server.entry()
        kind = self.server_kind()
        ident = server_identity(entry, self.server.props())
        n_params = ident["n_params"] if ident["n_params"] is not None else self.n_params
        return ModelIdentity(
            id=self.model_id or served,
            name=self.display_name or served,
            file=ident["file"],
            n_params=n_params,
            quantization=ident["quantization"] or self.quantization,
            architecture=self.architecture,
            backend=self.name,
            backend_version=f"{__version__} (httpx {httpx.__version__})",
            library_versions={"lmread": __version__, "httpx": httpx.__version__},
            details={
                "served_model": served, "owned_by": entry.get("owned_by"), "meta": self.server.meta(),
                "max_model_len": ident["max_model_len"], "base_url": self.url,
                "n_params_source": ("server" if ident["n_params"] is not None
                                    else "card" if self.n_params is not None else None),
                "n_vocab": ident["n_vocab"], "n_ctx": ident["n_ctx"], "n_ctx_train": ident["n_ctx_train"],
                "size_bytes": ident["size_bytes"], "server": kind, "server_build": ident["server_build"],
                "endpoint": "/completion" if self.native() else "/v1/completions",
                # what the logprobs are: vLLM's default --logprobs-mode, llama-server's n_probs
                # without post_sampling_probs; both are the unmodified (raw) distribution
                "logprobs_mode": {"vllm": "raw_logprobs", "llama-server": "raw_logprobs"}.get(kind),
            },
            layout=_LAYOUT,
        )

    def stream(
        self, prompt: str, options: GenOptions, cancel: threading.Event | None = None
    ) -> Iterator[TokenChunk | StreamEnd]:
        """Stream one completion: one :class:`TokenChunk` per token, then one :class:`StreamEnd`
        (carrying the stream's report as ``server``; see :mod:`lmread.backends.openai.report`).

        Options are validated before any request.  Transport and server errors raise
        :class:`~lmread.errors.BackendError` (also mid-stream, from the iterator).
        """
        options.validate()
        if not isinstance(prompt, str):
            raise OptionError(f"invalid prompt {type(prompt).__name__}: give a string")
        return self._stream(prompt, options, cancel)

    def _stream(self, prompt: str, options: GenOptions,
                cancel: threading.Event | None) -> Iterator[TokenChunk | StreamEnd]:
        yield from run_stream(self.http, self.stream_protocol(), prompt, options, cancel)

    def score(self, text: str, prompt: str = "", top_logprobs: int = 5) -> list[TokenChunk]:
        """Teacher-forced log-probabilities of ``text`` after ``prompt`` via ``echo: true``
        (:func:`~.scorer.score_echo`)."""
        return score_echo(self.server, text, prompt, top_logprobs)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

