"""A backend for OpenAI-compatible servers (vLLM, llama-server, llama-cpp-python's server).

It streams ``POST {base_url}/v1/completions`` (plain text completion, ``stream: true``) and turns
every generated token into one :class:`~lmread.backends.base.TokenChunk`.  Two shapes of
per-token log-probabilities are understood:

(a) parallel arrays (OpenAI's legacy format, vLLM, llama-cpp-python)::

        choices[0].logprobs = {"tokens": [...], "token_logprobs": [...],
                               "top_logprobs": [{token: logprob, ...}], "text_offset": [...]}

(b) llama-server's objects::

        choices[0].logprobs.content = [{"id", "token", "bytes", "logprob",
                                        "top_logprobs": [{"id", "token", "bytes", "logprob"}]}]

How the fields are filled:

* ``id`` is the token id where the server gives one (shape b), else ``-1``; ``top_ids`` likewise
  (``-1`` for each alternative whose id is unknown, so the three ``top_*`` lists stay aligned).
* ``piece`` is the raw bytes: the ``bytes`` list when present, else the token string in UTF-8.
  A token string ``"bytes:\\xe6\\x97"`` (OpenAI's and vLLM's spelling of a partial UTF-8
  character) is turned back into those bytes.  When a chunk holds exactly one token whose bytes
  are not given exactly and the chunk's ``text`` differs from the token string (a partial
  character sent as U+FFFD, or the last token cut at a stop string), the server's ``text`` is
  taken as the piece, so the pieces always add up to exactly the text the server reported.
  llama-cpp-python's server drops the bytes of partial UTF-8 characters from both its token
  strings and its text; such bytes cannot be recovered by any client.
* ``logprob`` is the server's log-probability of the chosen token; ``top_*`` are the server's
  best ``options.top_logprobs`` alternatives, best first (an entry the server appends for the
  chosen token beyond the top k is dropped).
* ``rank`` is ``1 +`` the number of listed alternatives more likely than the chosen token when
  the chosen token is among the listed top k or some listed alternative is less likely than it;
  otherwise (chosen token outside the top k) it is ``None``: its rank is above k but unknown.
* ``entropy`` is ``None``: a server does not report the full distribution.

Finish reasons: ``"length"`` -> ``length`` (``context`` when fewer than ``max_tokens`` tokens
came, i.e. the context window was full); ``"stop"`` -> ``eos``, or ``stop`` when the server says
a stop string matched (vLLM's ``stop_reason``); when stop strings were requested and the server
does not say which, ``stop`` with a detail saying so.  A stream that ends without any finish
reason (dropped connection, server error, llama-cpp-python interrupting a stream because another
request arrived) raises :class:`~lmread.errors.BackendError` from the iterator, so the driver
never stores a truncated sample as if it were complete.

Servers: llama-cpp-python's server cuts a running stream short whenever another request
arrives unless it is started with ``--interrupt_requests false`` (needed for ``concurrency`` > 1);
it serves one stream at a time and computes log-probabilities in Python (slow with big
vocabularies).  ``top_k=0``, ``min_p=0`` and ``repetition_penalty=1`` are always sent, because the
servers' own defaults are not "off"; ``repetition_penalty`` is sent under both of its names
(``repeat_penalty`` for llama.cpp, ``repetition_penalty`` for vLLM).

The API key is read from the environment variable named by ``api_key_env`` at request time and
sent as ``Authorization: Bearer``; it never appears in :meth:`OpenAIBackend.describe`, in error
messages or in samples.

Scoring (:meth:`OpenAIBackend.score`) uses ``echo: true`` with ``max_tokens: 1``.  Servers that
do not return prompt log-probabilities (llama-server), or whose echoed log-probabilities are one
token off (llama-cpp-python with models that add no BOS token), raise
``BackendError("scoring not supported by this server ...")``.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from lmread import __version__
from lmread.backends.base import Backend, BackendOption, GenOptions, ModelIdentity, StreamEnd, TokenChunk
from lmread.backends.openai_payloads import (
    SERVER_KINDS,
    VLLM_MAX_LOGPROBS,
    StreamReport,
    server_identity,
    server_kind,
)
from lmread.errors import BackendError, ModelError, OptionError

if TYPE_CHECKING:
    from lmread.catalog import ModelCard

_BYTES_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")
_TOKEN_ID = re.compile(r"token_id:(\d+)")
_MAX_MESSAGE = 300

#: default seconds to wait for a connection, and for each next piece of an answer (llama-server
#: pings a silent stream every 30 s, so a healthy server always answers within the read timeout)
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 120.0
#: attempts after the first for a request that could not connect (never once tokens came)
RETRIES = 3
RETRY_BACKOFF_S = 0.5
#: protocols: ``auto`` takes llama-server's native endpoint where the server is llama-server
PROTOCOLS = ("auto", "openai", "native")

BASE_URL = BackendOption("base_url", "--base-url", str, "OpenAI-compatible server URL",
                         prefixes=("http://", "https://"), rule="must start with http:// or https://")
API_KEY_ENV = BackendOption("api_key_env", "--api-key-env", str, "Environment variable holding the API key",
                            rule="name the environment variable holding the key")
CONCURRENCY = BackendOption("concurrency", "--concurrency", int, "Concurrent requests", minimum=1)
CONNECT_TIMEOUT = BackendOption("connect_timeout_s", "--connect-timeout", int,
                                f"Seconds to wait for a connection to the server (default {CONNECT_TIMEOUT_S:g})",
                                minimum=1)
READ_TIMEOUT = BackendOption("read_timeout_s", "--read-timeout", int,
                             f"Seconds to wait for each next piece of an answer (default {READ_TIMEOUT_S:g})",
                             minimum=1)
PROTOCOL = BackendOption("protocol", "--protocol", str,
                         "Server protocol: auto (llama-server's native /completion where it finds llama-server), "
                         "openai (always /v1/completions) or native", rule="use auto, openai or native")
MAX_LOGPROBS = BackendOption("max_logprobs", "--max-logprobs", int,
                             "The most alternatives the server returns per token (vLLM's --max-logprobs, default 20)",
                             minimum=0)
N_PARAMS = BackendOption("n_params", "--n-params", int,
                         "Parameter count of a served model whose server does not publish it", minimum=1)


# --------------------------------------------------------------------------------------------
# Parsing helpers (pure functions, unit-tested without a server)


def token_bytes(token: str) -> tuple[bytes, bool]:
    """The bytes of a token string and whether they were spelled out explicitly.

    ``"bytes:\\xe6\\x97"`` (a partial UTF-8 character spelled with escapes, as OpenAI and vLLM
    send it) gives ``(b"\\xe6\\x97", True)``; any other string gives its UTF-8 encoding and
    ``False`` (it may be lossy: a partial character sent as U+FFFD).
    """
    if token.startswith("bytes:"):
        rest = token[6:]
        out = bytearray()
        pos = 0
        for m in _BYTES_ESCAPE.finditer(rest):
            out += rest[pos : m.start()].encode("utf-8")
            out.append(int(m.group(1), 16))
            pos = m.end()
        out += rest[pos:].encode("utf-8")
        return bytes(out), True
    return token.encode("utf-8"), False


def compute_rank(chosen_logprob: float | None, chosen_listed: bool, other_logprobs: list[float]) -> int | None:
    """Rank of the chosen token (1 = most likely) from the listed top-k alternatives.

    ``other_logprobs`` are the listed alternatives other than the chosen token;
    ``chosen_listed`` says whether the chosen token itself is among the listed top k.  Returns
    ``None`` when it cannot be known (no logprob, or the chosen token lies beyond the list).
    """
    if chosen_logprob is None:
        return None
    above = sum(1 for lp in other_logprobs if lp > chosen_logprob)
    if chosen_listed or above < len(other_logprobs):
        return 1 + above
    return None


def _number(value: Any) -> float | None:
    """A logprob as float (``-inf`` allowed), or ``None`` for missing / malformed values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) or out == math.inf else out


def _string_token(tok: str) -> tuple[int, bytes, bool]:
    """A token string -> ``(id, piece, explicit_bytes)``; ``token_id:N`` gives the id only."""
    m = _TOKEN_ID.fullmatch(tok)
    if m:
        return int(m.group(1)), b"", False
    piece, explicit = token_bytes(tok)
    return -1, piece, explicit


def _object_token(item: dict[str, Any]) -> tuple[int, bytes, bool]:
    """A shape (b) token object -> ``(id, piece, explicit_bytes)``."""
    tid = item.get("id")
    tid = tid if isinstance(tid, int) and not isinstance(tid, bool) else -1
    raw = item.get("bytes")
    if isinstance(raw, list) and all(isinstance(b, int) and 0 <= b < 256 for b in raw):
        return tid, bytes(raw), True
    tok = item.get("token")
    if isinstance(tok, str):
        sid, piece, explicit = _string_token(tok)
        return (tid if tid >= 0 else sid), piece, explicit
    return tid, b"", False


def _make_chunk(tid: int, piece: bytes, logprob: float | None, top: list[tuple[int, bytes, float]], k: int) -> TokenChunk:
    """Build a chunk from the chosen token and its alternatives (any order, any length)."""
    top = sorted(top, key=lambda e: -e[2])[:k]

    def same(entry: tuple[int, bytes, float]) -> bool:
        if tid >= 0 and entry[0] >= 0:
            return entry[0] == tid
        return entry[1] == piece

    listed = any(same(e) for e in top)
    others = [e[2] for e in top if not same(e)]
    return TokenChunk(
        id=tid,
        piece=piece,
        logprob=logprob,
        rank=compute_rank(logprob, listed, others),
        entropy=None,
        top_ids=[e[0] for e in top],
        top_logprobs=[e[2] for e in top],
        top_pieces=[e[1] for e in top],
    )


def parse_choice(choice: dict[str, Any], k: int) -> list[TokenChunk]:
    """The token chunks of one streamed ``choices[i]`` object (either logprob shape).

    ``k`` is the number of alternatives asked for.  A choice without log-probabilities gives one
    chunk for its text (id ``-1``), or none when the text is empty.
    """
    text = choice.get("text")
    text = text if isinstance(text, str) else None
    lp = choice.get("logprobs")
    parsed: list[tuple[TokenChunk, bool]] = []
    content = lp.get("content") if isinstance(lp, dict) else lp
    if isinstance(content, list):  # shape (b)
        for item in content:
            if not isinstance(item, dict):
                continue
            tid, piece, explicit = _object_token(item)
            top = []
            for alt in item.get("top_logprobs") or []:
                value = _number(alt.get("logprob")) if isinstance(alt, dict) else None
                if value is not None:
                    aid, apiece, _ = _object_token(alt)
                    top.append((aid, apiece, value))
            parsed.append((_make_chunk(tid, piece, _number(item.get("logprob")), top, k), explicit))
    elif isinstance(lp, dict) and isinstance(lp.get("tokens"), list):  # shape (a)
        lps = lp.get("token_logprobs") or []
        tops = lp.get("top_logprobs") or []
        for i, tok in enumerate(lp["tokens"]):
            if not isinstance(tok, str):
                continue
            tid, piece, explicit = _string_token(tok)
            top = []
            alts = tops[i] if i < len(tops) else None
            if isinstance(alts, dict):
                for atok, alp in alts.items():
                    value = _number(alp)
                    if isinstance(atok, str) and value is not None:
                        aid, apiece, _ = _string_token(atok)
                        top.append((aid, apiece, value))
            logprob = _number(lps[i]) if i < len(lps) else None
            parsed.append((_make_chunk(tid, piece, logprob, top, k), explicit))
    elif text:
        return [TokenChunk(id=-1, piece=text.encode("utf-8"))]
    # A lone token whose bytes were not spelled out: the server's text is authoritative (a
    # partial character sent as U+FFFD, the last token cut at a stop string), so the pieces
    # always add up to exactly the text the server reported.
    if len(parsed) == 1 and text is not None:
        chunk, explicit = parsed[0]
        if not explicit and chunk.piece != text.encode("utf-8"):
            chunk.piece = text.encode("utf-8")
    elif len(parsed) > 1 and text and not any(explicit or chunk.piece for chunk, explicit in parsed):
        # several tokens keyed by id only (vLLM's return_tokens_as_token_ids): the text came
        # for all of them together; it goes on the last one (see merged_pieces)
        parsed[-1][0].piece = text.encode("utf-8")
    return [chunk for chunk, _ in parsed]


def merged_pieces(chunks: list[TokenChunk]) -> bool:
    """True when several chunks of one event share one piece (all bytes on the last one)."""
    return len(chunks) > 1 and bool(chunks[-1].piece) and not any(c.piece for c in chunks[:-1])


def finish_of(reason: str, stop_reason: Any, has_stop_reason: bool, options: GenOptions, n_tokens: int) -> StreamEnd:
    """Map a server finish reason to a :class:`StreamEnd`."""
    if reason == "length":
        if n_tokens < options.max_tokens:
            return StreamEnd("context", f"the server stopped after {n_tokens} of {options.max_tokens} tokens")
        return StreamEnd("length")
    if reason == "stop":
        if has_stop_reason:
            if isinstance(stop_reason, str) and stop_reason:
                return StreamEnd("stop", f"stop string {stop_reason!r}")
            return StreamEnd("eos")
        if options.stop:
            return StreamEnd("stop", "end of text or a stop string (the server does not say which)")
        return StreamEnd("eos")
    return StreamEnd("error", f"server finish reason {reason!r}")


def server_message(body: bytes | str) -> str:
    """The human message in an error body (OpenAI ``error.message``, FastAPI ``detail``...)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        msg = text
    else:
        msg = text
        if isinstance(data, dict):
            err = data.get("error", data)
            if isinstance(err, dict):
                for key in ("message", "detail", "msg"):
                    if err.get(key):
                        msg = err[key]
                        break
            elif isinstance(err, str):
                msg = err
            if isinstance(msg, list):  # FastAPI validation errors
                msg = "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in msg)
    msg = " ".join(str(msg).split())
    if len(msg) > _MAX_MESSAGE:
        msg = msg[: _MAX_MESSAGE - 3] + "..."
    return msg or "(no message)"


def normalize_base_url(url: str) -> str:
    """``http://host:8000/v1/`` -> ``http://host:8000``; :class:`ModelError` if it is not http(s)."""
    if not isinstance(url, str) or not url.strip():
        raise ModelError("no server URL: give --base-url http://HOST:PORT or set source.url in the model card")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ModelError(f"invalid server URL {url!r}: use http://HOST:PORT (or https://...)")
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[:-3]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _display_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --------------------------------------------------------------------------------------------


class OpenAIBackend(Backend):
    """Streams tokens from an OpenAI-compatible server (``/v1/completions``, or llama-server's
    native ``/completion``: :mod:`lmread.backends.openai_llamaserver`).

    ``model`` is the name the server knows the model by (``None``: the first model the server
    lists).  ``model_id``/``name``/``n_params``/``quantization``/``architecture`` describe the
    model for the records (from the card; what the server publishes comes first).
    ``concurrency`` is how many streams the generate driver may run at once (one shared,
    thread-safe HTTP client).  ``connect_timeout_s`` bounds the wait for a connection,
    ``read_timeout_s`` (``timeout_s``, the older name) each wait for the next piece of an answer;
    ``retries`` is how often a request that could not connect is tried again (never a stream that
    has sent tokens).  ``api_key_env`` names the variable holding the API key (an error when it is
    not set; ``None``: ``LMREAD_API_KEY`` if set).  ``protocol`` is ``auto``, ``openai`` or
    ``native``; ``server`` forces the server kind instead of asking ``/v1/models``;
    ``max_logprobs`` is vLLM's ``--max-logprobs``.  ``transport`` is an optional ``httpx``
    transport (tests).
    """

    name = "openai"
    options = (BASE_URL, API_KEY_ENV, CONCURRENCY, CONNECT_TIMEOUT, READ_TIMEOUT, PROTOCOL, MAX_LOGPROBS, N_PARAMS)
    supports_score = True

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
        import httpx

        CONCURRENCY.check(concurrency)
        if timeout_s is not None:  # the older single timeout: the read timeout
            read_timeout_s = timeout_s
        for flag, value in (("--connect-timeout", connect_timeout_s), ("--read-timeout", read_timeout_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise OptionError(f"invalid option {flag} {value!r}: must be a timeout in seconds > 0")
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
            raise OptionError(f"invalid option --retries {retries!r}: must be a whole number in [0, 10]")
        if protocol not in PROTOCOLS:
            raise OptionError(f"invalid option --protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
        if server is not None and server not in SERVER_KINDS:
            raise OptionError(f"invalid server kind {server!r}: use one of {', '.join(SERVER_KINDS)}")
        if not isinstance(max_logprobs, int) or isinstance(max_logprobs, bool) or max_logprobs < 0:
            raise OptionError(f"invalid option --max-logprobs {max_logprobs!r}: must be a whole number >= 0")
        if n_params is not None and (not isinstance(n_params, int) or isinstance(n_params, bool) or n_params < 1):
            raise OptionError(f"invalid option --n-params {n_params!r}: must be a whole number >= 1")
        if api_key_env is not None:
            if not isinstance(api_key_env, str) or not api_key_env.strip():
                raise OptionError(f"invalid option --api-key-env {api_key_env!r}: name the environment variable holding the key")
            if not os.environ.get(api_key_env):
                raise OptionError(
                    f"the environment variable ${api_key_env} named by --api-key-env is not set: "
                    "export it with the server's API key, or leave --api-key-env out"
                )
        self.base_url = normalize_base_url(base_url)
        self.url = _display_url(self.base_url)
        self.model = model
        self.api_key_env = api_key_env
        self.max_concurrency = concurrency
        self.connect_timeout_s = float(connect_timeout_s)
        self.read_timeout_s = float(read_timeout_s)
        self.timeout_s = self.read_timeout_s
        self.retries = retries
        self.protocol = protocol
        self.max_logprobs = max_logprobs
        self.model_id = model_id
        self.display_name = display_name
        self.n_params = n_params
        self.quantization = quantization
        self.architecture = architecture
        self._httpx = httpx
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s),
            limits=httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency),
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )
        self._lock = threading.Lock()
        self._models: list[dict[str, Any]] | None = None
        self._identity: ModelIdentity | None = None
        self._kind: str | None = server

    @classmethod
    def from_card(
        cls,
        card: ModelCard,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 4,
        timeout_s: float | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        retries: int = RETRIES,
        protocol: str = "auto",
        max_logprobs: int = VLLM_MAX_LOGPROBS,
        n_params: int | None = None,
        **_ignored: Any,
    ) -> OpenAIBackend:
        """Connect to the server of ``card`` (``source = {url, model}``); ``base_url`` overrides
        the card's URL, ``n_params`` the card's parameter count.  Nothing is requested until
        the first use."""
        source = card.source or {}
        url = base_url or source.get("url")
        if not url:
            raise ModelError(
                f"model {card.id!r} has no server URL: give --base-url http://HOST:PORT or set source.url in its card"
            )
        return cls(
            url,
            source.get("model"),
            api_key_env=api_key_env,
            concurrency=concurrency,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            retries=retries,
            protocol=protocol,
            max_logprobs=max_logprobs,
            model_id=card.id,
            display_name=card.name,
            n_params=n_params if n_params is not None else card.n_params,
            quantization=card.quantization,
            architecture=card.architecture,
        )

    # ---------------------------------------------------------------------------- plumbing

    def _key(self) -> str:
        return os.environ.get(self.api_key_env or "LMREAD_API_KEY", "")

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json, text/event-stream"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _scrub(self, text: str) -> str:
        key = self._key()
        return text.replace(key, "***") if key and len(key) >= 4 else text

    def _transport_error(self, exc: Exception, n_tokens: int | None = None) -> BackendError:
        httpx = self._httpx
        reason = self._scrub(" ".join(str(exc).split())) or type(exc).__name__
        if isinstance(exc, httpx.ConnectError):
            low = reason.lower()
            if "refused" in low:
                reason = "connection refused"
            elif "name or service not known" in low or "nodename" in low or "getaddrinfo" in low:
                reason = "unknown host"
            return BackendError(f"cannot connect to {self.url}: {reason}; is the server running?")
        if isinstance(exc, httpx.ConnectTimeout):
            return BackendError(
                f"cannot connect to {self.url} within {self.connect_timeout_s:g} s (--connect-timeout); "
                "is the server running and reachable?"
            )
        if isinstance(exc, httpx.TimeoutException):
            where = f" after {n_tokens} tokens" if n_tokens else ""
            return BackendError(
                f"no answer from {self.url} within {self.read_timeout_s:g} s{where} (--read-timeout); "
                "the server is stuck or overloaded; the sample is discarded"
            )
        if n_tokens is not None:
            return BackendError(
                f"connection to {self.url} dropped mid-stream after {n_tokens} tokens ({reason}); "
                "the sample is incomplete, generate it again"
            )
        return BackendError(f"request to {self.url} failed: {reason}")

    def _http_error(self, status: int, body: bytes, what: str) -> BackendError:
        if status in (401, 403):
            var = self.api_key_env or "LMREAD_API_KEY"
            if self._key():
                return BackendError(f"the server refused the API key from ${var} (HTTP {status})")
            return BackendError(
                f"the server at {self.url} needs an API key (HTTP {status}): "
                "name the variable holding it with --api-key-env"
            )
        msg = self._scrub(server_message(body))
        return BackendError(f"the server at {self.url} answered HTTP {status} to {what}: {msg}")

    def _retrying(self, send: Any, cancel: threading.Event | None = None) -> Any:
        """Call ``send()``; when it cannot connect (refused, connect timeout, the connection
        closed before any answer, HTTP 503 while the server loads), wait and try again, at most
        ``retries`` more times with doubling waits.  Only requests that produced nothing yet
        come here: a stream that has sent tokens is never retried.  ``None`` when ``cancel`` is set
        while waiting."""
        httpx = self._httpx
        attempt = 0
        while True:
            try:
                resp = send()
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError):
                if attempt >= self.retries:
                    raise
            else:
                if resp.status_code != 503 or attempt >= self.retries:
                    return resp
                resp.close()
            wait_s = RETRY_BACKOFF_S * (2 ** attempt)
            attempt += 1
            if cancel is None:
                time.sleep(wait_s)
            elif cancel.wait(wait_s):
                return None  # cancelled while waiting: nothing was generated

    def _get_json(self, path: str, *, optional: bool = False) -> Any:
        httpx = self._httpx
        try:
            resp = self._retrying(lambda: self._client.get(self.base_url + path, headers=self._headers()))
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        if resp.status_code >= 400:
            if optional:
                return None
            raise self._http_error(resp.status_code, resp.content, f"GET {path}")
        try:
            return resp.json()
        except ValueError:
            if optional:
                return None
            raise BackendError(f"the server at {self.url} sent no JSON for GET {path}; is it OpenAI-compatible?") from None

    def _post_json(self, path: str, body: dict[str, Any]) -> Any:
        httpx = self._httpx
        try:
            resp = self._retrying(lambda: self._client.post(self.base_url + path, json=body, headers=self._headers()))
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        if resp.status_code >= 400:
            raise self._http_error(resp.status_code, resp.content, f"POST {path}")
        try:
            return resp.json()
        except ValueError:
            raise BackendError(f"the server at {self.url} sent no JSON for POST {path}; is it OpenAI-compatible?") from None

    def models(self) -> list[dict[str, Any]]:
        """The server's ``/v1/models`` list (fetched once).  With a configured model name, a
        server that answers it with an HTTP error counts as listing nothing (the completions
        request then says what is wrong); transport errors are raised either way."""
        with self._lock:
            if self._models is None:
                data = self._get_json("/v1/models", optional=bool(self.model))
                if data is None:
                    self._models = []
                    return self._models
                items = data.get("data") if isinstance(data, dict) else data
                if not isinstance(items, list):
                    raise BackendError(f"the server at {self.url} sent an unexpected /v1/models answer; is it OpenAI-compatible?")
                self._models = [m for m in items if isinstance(m, dict)]
            return self._models

    def served_model(self) -> str:
        """The model name sent with each request (the configured one, else the server's first)."""
        if self.model:
            return self.model
        models = self.models()
        if not models or not models[0].get("id"):
            raise ModelError(f"the server at {self.url} lists no models; give the model name in the card (source.model)")
        return str(models[0]["id"])

    def _entry(self) -> dict[str, Any]:
        served = self.served_model()
        models = self.models()
        entry = next((m for m in models if m.get("id") == served), None)
        if entry is None and len(models) == 1:  # llama-server answers to any model name
            entry = models[0]
        return entry or {}

    def server_kind(self) -> str:
        """The server behind the URL: ``llama-server``, ``vllm``, ``llama-cpp-python`` or ``openai``."""
        if self._kind is None:
            self._kind = server_kind(self._entry())
        return self._kind

    def native(self) -> bool:
        """Whether streams use llama-server's native ``/completion`` endpoint."""
        if self.protocol == "native":
            return True
        return self.protocol == "auto" and self.server_kind() == "llama-server"

    # ---------------------------------------------------------------------------- protocol

    def identity(self) -> ModelIdentity:
        """Model identity for the records: what the server publishes about the model (llama-server's
        ``/v1/models`` ``meta`` and ``/props``, vLLM's ``max_model_len``), else the card's and
        ``--n-params``; never the API key."""
        if self._identity is not None:
            return replace(self._identity)
        httpx = self._httpx
        served = self.served_model()
        entry = self._entry()
        kind = self.server_kind()
        meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else None
        props = self._get_json("/props", optional=True) if kind == "llama-server" else None
        ident = server_identity(entry, props if isinstance(props, dict) else None)
        n_params = ident["n_params"] if ident["n_params"] is not None else self.n_params
        self._identity = ModelIdentity(
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
                "served_model": served, "owned_by": entry.get("owned_by"), "meta": meta,
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
        return replace(self._identity)

    def _request_body(self, prompt: str, options: GenOptions) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.served_model(),
            "prompt": prompt,
            "stream": True,
            "echo": False,
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            # 0 / 1 mean "off" for vLLM, llama-server and llama-cpp-python alike; sent explicitly
            # because the servers' own defaults are not "off" (llama-cpp-python: top_k 40...).
            "top_k": options.top_k,
            "min_p": options.min_p,
            "repeat_penalty": options.repetition_penalty,
            "repetition_penalty": options.repetition_penalty,
            "logprobs": options.top_logprobs,
        }
        if options.seed is not None:
            body["seed"] = options.seed
        if options.stop:
            body["stop"] = list(options.stop)
        kind = self.server_kind()
        if kind in ("vllm", "llama-server"):
            body["stream_options"] = {"include_usage": True}
        if kind == "vllm":
            # top-k entries keyed "token_id:N": two tokens that decode alike cannot collide
            body["return_tokens_as_token_ids"] = True
        return body

    def _check_logprobs(self, options: GenOptions) -> None:
        if self.server_kind() == "vllm" and options.top_logprobs > self.max_logprobs:
            raise OptionError(
                f"invalid option --top-logprobs {options.top_logprobs}: the vLLM server at {self.url} returns at most "
                f"{self.max_logprobs} (its --max-logprobs); ask for fewer, or give --max-logprobs N if the server "
                "was started with a higher limit"
            )

    def stream(
        self, prompt: str, options: GenOptions, cancel: threading.Event | None = None
    ) -> Iterator[TokenChunk | StreamEnd]:
        """Stream one completion: one :class:`TokenChunk` per token, then one :class:`StreamEnd`
        (carrying the stream's report as ``server``; see :mod:`lmread.backends.openai_payloads`).

        Options are validated before any request.  Transport and server errors raise
        :class:`BackendError` (also mid-stream, from the iterator).
        """
        options.validate()
        if not isinstance(prompt, str):
            raise OptionError(f"invalid prompt {type(prompt).__name__}: give a string")
        return self._stream(prompt, options, cancel)

    def _events(self, path: str, body: dict[str, Any], cancel: threading.Event | None,
                counter: list[int]) -> Generator[dict[str, Any] | None, None, None]:
        """The JSON events of one SSE stream (``None`` for ``[DONE]``); ``counter[0]`` is the
        number of tokens yielded so far by the caller (for the error messages)."""
        httpx = self._httpx
        started = False
        try:
            request = self._client.build_request("POST", self.base_url + path, json=body, headers=self._headers())
            resp = self._retrying(lambda: self._client.send(request, stream=True), cancel)
            if resp is None:
                return
            try:
                if resp.status_code >= 400:
                    raise self._http_error(resp.status_code, resp.read(), f"POST {path}")
                started = True
                for line in resp.iter_lines():
                    if not line:
                        continue  # event separators
                    if line.startswith(":"):  # keep-alive comments (": ping") while the server is silent
                        if cancel is not None and cancel.is_set():
                            yield {}  # the caller sees the cancel flag and ends the stream
                        continue
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "error":  # llama-server reports failures as "error: {...}"
                        raise BackendError(
                            f"the server at {self.url} failed during generation: {self._scrub(server_message(value))}"
                        )
                    if name != "data":
                        continue
                    if value.strip() == "[DONE]":
                        yield None
                        return
                    try:
                        obj = json.loads(value)
                    except ValueError:
                        raise BackendError(
                            f"the server at {self.url} sent a malformed stream event; is it OpenAI-compatible?"
                        ) from None
                    if not isinstance(obj, dict):
                        continue
                    if obj.get("error"):
                        raise BackendError(
                            f"the server at {self.url} failed during generation: "
                            f"{self._scrub(server_message(json.dumps(obj)))}"
                        )
                    yield obj
            finally:
                resp.close()
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, counter[0] if started else None) from None

    def _stream(
        self, prompt: str, options: GenOptions, cancel: threading.Event | None
    ) -> Iterator[TokenChunk | StreamEnd]:
        if self.native():
            yield from self._stream_native(prompt, options, cancel)
            return
        self._check_logprobs(options)
        body = self._request_body(prompt, options)
        report = StreamReport(kind=self.server_kind(), endpoint="/v1/completions")
        counter = [0]
        reason: str | None = None
        stop_reason: Any = None
        has_stop_reason = False
        with closing(self._events("/v1/completions", body, cancel, counter)) as events:
            for obj in events:
                if cancel is not None and cancel.is_set() and reason is None:
                    yield StreamEnd("cancelled")
                    return  # (once the server said why it ended, its usage count is still read)
                if obj is None:
                    break
                usage = obj.get("usage")
                if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
                    report.completion_tokens = int(usage["completion_tokens"])
                for choice in obj.get("choices") or []:
                    if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                        continue
                    chunks = parse_choice(choice, options.top_logprobs)
                    if merged_pieces(chunks):
                        report.merge(counter[0], len(chunks), ids_known=True, logprobs_known=True)
                    for chunk in chunks:
                        counter[0] += 1
                        yield chunk
                    if choice.get("finish_reason"):
                        reason = str(choice["finish_reason"])
                        stop_reason, has_stop_reason = choice.get("stop_reason"), "stop_reason" in choice
        if reason is None and cancel is not None and cancel.is_set():
            yield StreamEnd("cancelled")
            return
        if reason is None:
            raise BackendError(
                f"the server at {self.url} ended the stream after {counter[0]} tokens without a finish reason "
                "(it failed or was interrupted; llama-cpp-python's server needs --interrupt_requests false "
                "for concurrent streams); the sample is incomplete"
            )
        report.n_streamed = counter[0]
        report.finish_reason = reason
        counted = report.completion_tokens if report.completion_tokens is not None else counter[0]
        yield report.end(finish_of(reason, stop_reason, has_stop_reason, options, counted))

    def _stream_native(
        self, prompt: str, options: GenOptions, cancel: threading.Event | None
    ) -> Iterator[TokenChunk | StreamEnd]:
        from lmread.backends.openai_llamaserver import ENDPOINT, NativeStreamParser, native_body

        parser = NativeStreamParser(options, self.server_kind())
        counter = [0]
        meta = self._entry().get("meta")
        n_ctx = meta.get("n_ctx") if isinstance(meta, dict) and isinstance(meta.get("n_ctx"), int) else None
        with closing(self._events(ENDPOINT, native_body(prompt, options, n_ctx), cancel, counter)) as events:
            for obj in events:
                if cancel is not None and cancel.is_set():
                    if isinstance(obj, dict) and obj.get("stop"):
                        parser.feed(obj)  # the driver ended it at the server's own last token
                        break
                    yield StreamEnd("cancelled")
                    return
                if obj is None:
                    break
                for chunk in parser.feed(obj):
                    counter[0] += 1
                    yield chunk
                if parser.end is not None:
                    break
        if parser.end is None and cancel is not None and cancel.is_set():
            yield StreamEnd("cancelled")
            return
        if parser.end is None:
            raise BackendError(
                f"the server at {self.url} ended the stream after {counter[0]} tokens without stopping "
                "(it failed or was stopped); the sample is incomplete"
            )
        yield parser.end

    def score(self, text: str, prompt: str = "", top_logprobs: int = 5) -> list[TokenChunk]:
        """Teacher-forced log-probabilities of ``text`` after ``prompt`` via ``echo: true``.

        Raises :class:`BackendError` "scoring not supported by this server" when the server
        returns no prompt log-probabilities or returns them misaligned (see the module doc).
        A token straddling the prompt/text boundary is kept with only its part inside ``text``.
        """
        if not isinstance(text, str) or not isinstance(prompt, str):
            raise OptionError("invalid score input: give the text and prompt as strings")
        if not text:
            return []
        k = top_logprobs
        full = prompt + text
        data = self._post_json("/v1/completions", {
            "model": self.served_model(), "prompt": full, "max_tokens": 1, "echo": True,
            "logprobs": k, "temperature": 0.0, "stream": False,
        })
        unsupported = f"scoring not supported by this server ({self.url})"
        try:
            choice = data["choices"][0]
        except (KeyError, IndexError, TypeError):
            raise BackendError(f"{unsupported}: no choices in its answer") from None
        lp = choice.get("logprobs")
        if not isinstance(lp, dict) or not isinstance(lp.get("tokens"), list) or not isinstance(
            lp.get("text_offset"), list
        ):
            raise BackendError(f"{unsupported}: it returns no prompt log-probabilities with echo")
        tokens: list[Any] = lp["tokens"]
        offsets: list[Any] = lp["text_offset"]
        chunks = parse_choice({"logprobs": lp}, k)
        if len(chunks) != len(tokens) or len(offsets) != len(tokens):
            raise BackendError(f"{unsupported}: its echo log-probabilities are malformed")
        # Offsets are relative to the start of the echoed prompt.
        start = offsets[0] if offsets and isinstance(offsets[0], int) else 0
        rel = [int(o) - start if isinstance(o, int) else -1 for o in offsets]
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        n_prompt = usage.get("prompt_tokens")
        covers_generated = any(o >= len(full) for o in rel)
        bos_skipped = isinstance(n_prompt, int) and sum(1 for o in rel if o < len(full)) == n_prompt - 1
        if not covers_generated and not bos_skipped:
            raise BackendError(
                f"{unsupported}: its echoed log-probabilities cannot be aligned with the tokens "
                "(llama-cpp-python without a BOS token); score with the llamacpp backend instead"
            )
        out: list[TokenChunk] = []
        for i, chunk in enumerate(chunks):
            o = rel[i]
            end = rel[i + 1] if i + 1 < len(rel) else o + len(chunk.piece.decode("utf-8", errors="replace"))
            if o >= len(full) or end <= len(prompt):
                continue
            if o < len(prompt):  # token straddles the boundary: keep its part inside the text
                chunk.piece = full[len(prompt) : end].encode("utf-8")
            out.append(chunk)
        if b"".join(c.piece for c in out).decode("utf-8", errors="replace") != text:
            raise BackendError(f"{unsupported}: its echoed tokens do not add up to the text")
        return out

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()


#: the order of the identity's keys in a sample record (the server's identity after the
#: fields older samples have)
_LAYOUT = ("id", "name", "served_model", "owned_by", "meta", "max_model_len", "n_params", "quantization",
           "architecture", "sha256", "revision", "backend", "backend_version", "library_versions", "base_url",
           "n_params_source", "n_vocab", "n_ctx", "n_ctx_train", "size_bytes", "file", "server", "server_build",
           "endpoint", "logprobs_mode")
