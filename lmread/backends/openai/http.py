"""The HTTP client every server conversation goes through (completions, llama-server, chat).

:class:`HttpClient` holds one thread-safe ``httpx`` client for one server and gives:

* :meth:`HttpClient.get_json` / :meth:`HttpClient.post_json` - a request and its JSON answer;
* :meth:`HttpClient.events` - the JSON events of a server-sent-event stream (``data: {...}``,
  ``[DONE]``, keep-alive comments, llama-server's ``error:`` lines);
* bounded retries before the first answer: a request that could not connect (refused, connect
  timeout, closed before any answer, HTTP 503 while the server loads) is tried again at most
  ``retries`` more times with doubling waits; a stream that has sent anything never is;
* error mapping: every transport or HTTP failure becomes one :class:`~lmread.errors.BackendError`
  sentence naming the server (never a traceback), with the flag that changes it;
* the API key: read from the environment variable ``api_key_env`` names (``LMREAD_API_KEY`` by
  default) at request time, sent as ``Authorization: Bearer``, and scrubbed from every message.

Nothing here knows a protocol; :mod:`.completions`, :mod:`.native`, :mod:`.scorer` and the
judge's chat requests are built on it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from lmread.errors import BackendError, ModelError

#: default seconds to wait for a connection, and for each next piece of an answer (llama-server
#: pings a silent stream every 30 s, so a healthy server always answers within the read timeout)
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 120.0
#: attempts after the first for a request that could not connect (never once tokens came)
RETRIES = 3
RETRY_BACKOFF_S = 0.5
#: the variable holding the API key when none is named
DEFAULT_KEY_ENV = "LMREAD_API_KEY"

_MAX_MESSAGE = 300

#: an event of :meth:`HttpClient.events`: a JSON object, ``None`` for ``[DONE]``
Event = dict[str, Any] | None


def server_message(body: bytes | str) -> str:
    """The human message in an error body (OpenAI ``error.message``, FastAPI ``detail``...)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    msg: Any = text
    try:
        data = json.loads(text)
    except ValueError:
        data = None
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


def display_url(url: str) -> str:
    """``url`` without user information, query or fragment (as shown in messages)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class HttpClient:
    """One server's HTTP connections (thread-safe; ``max_connections`` at once).

    ``base_url`` is normalized (:func:`normalize_base_url`); ``url`` is what messages show.
    ``transport`` is an optional ``httpx`` transport (tests).
    """

    def __init__(self, base_url: str, *, api_key_env: str | None = None,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S, read_timeout_s: float = READ_TIMEOUT_S,
                 retries: int = RETRIES, max_connections: int = 6, transport: Any = None) -> None:
        import httpx

        self.base_url = normalize_base_url(base_url)
        self.url = display_url(self.base_url)
        self.api_key_env = api_key_env
        self.connect_timeout_s = float(connect_timeout_s)
        self.read_timeout_s = float(read_timeout_s)
        self.retries = retries
        self.httpx = httpx
        self.client = httpx.Client(
            timeout=httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max(1, max_connections - 2)),
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    # ---------------------------------------------------------------------------- the key

    @property
    def key_env(self) -> str:
        """The environment variable the API key is read from."""
        return self.api_key_env or DEFAULT_KEY_ENV

    def key(self) -> str:
        """The API key (read now; empty when the variable is not set)."""
        return os.environ.get(self.key_env, "")

    def headers(self) -> dict[str, str]:
        """The headers of every request (the key as ``Authorization: Bearer`` when set)."""
        headers = {"Accept": "application/json, text/event-stream"}
        key = self.key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def scrub(self, text: str) -> str:
        """``text`` with the API key replaced by ``***``."""
        key = self.key()
        return text.replace(key, "***") if key and len(key) >= 4 else text

    # ---------------------------------------------------------------------------- errors

    def transport_error(self, exc: Exception, n_tokens: int | None = None) -> BackendError:
        """The error for a transport failure; ``n_tokens`` is how many tokens a stream had sent
        (None: the request had no answer yet)."""
        httpx = self.httpx
        reason = self.scrub(" ".join(str(exc).split())) or type(exc).__name__
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

    def http_error(self, status: int, body: bytes, what: str) -> BackendError:
        """The error for an HTTP error answer to ``what`` (``POST /v1/completions``)."""
        if status in (401, 403):
            if self.key():
                return BackendError(f"the server refused the API key from ${self.key_env} (HTTP {status})")
            return BackendError(
                f"the server at {self.url} needs an API key (HTTP {status}): "
                "name the variable holding it with --api-key-env"
            )
        msg = self.scrub(server_message(body))
        return BackendError(f"the server at {self.url} answered HTTP {status} to {what}: {msg}")

    def stream_failed(self, message: str) -> BackendError:
        """The error for a failure the server reports inside a stream."""
        return BackendError(f"the server at {self.url} failed during generation: {self.scrub(server_message(message))}")

    # ---------------------------------------------------------------------------- requests

    def retrying(self, send: Callable[[], Any], cancel: threading.Event | None = None) -> Any:
        """Call ``send()``; when it cannot connect (refused, connect timeout, the connection
        closed before any answer, HTTP 503 while the server loads), wait and try again, at most
        ``retries`` more times with doubling waits.  Only requests that produced nothing yet
        come here: a stream that has sent tokens is never retried.  ``None`` when ``cancel`` is
        set while waiting."""
        httpx = self.httpx
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

    def _json_answer(self, send: Callable[[], Any], what: str, optional: bool) -> Any:
        try:
            resp = self.retrying(send)
        except self.httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        if resp.status_code >= 400:
            if optional:
                return None
            raise self.http_error(resp.status_code, resp.content, what)
        try:
            return resp.json()
        except ValueError:
            if optional:
                return None
            raise BackendError(f"the server at {self.url} sent no JSON for {what}; is it OpenAI-compatible?") from None

    def get_json(self, path: str, *, optional: bool = False) -> Any:
        """``GET path`` and its JSON answer; with ``optional``, None for an HTTP error or an
        answer that is not JSON (transport errors are raised either way)."""
        return self._json_answer(lambda: self.client.get(self.base_url + path, headers=self.headers()),
                                 f"GET {path}", optional)

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        """``POST path`` with the JSON ``body`` and its JSON answer (a chat or completion request
        without streaming)."""
        return self._json_answer(lambda: self.client.post(self.base_url + path, json=body, headers=self.headers()),
                                 f"POST {path}", False)

    def events(self, path: str, body: dict[str, Any], cancel: threading.Event | None = None,
               n_tokens: Callable[[], int] = lambda: 0) -> Generator[Event, None, None]:
        """``POST path`` with the JSON ``body`` (``stream: true``) and yield the JSON object of
        each ``data:`` event, ``None`` for ``[DONE]``, and ``{}`` for a keep-alive comment while
        ``cancel`` is set (so the caller sees the flag while the server is silent).  Ends
        quietly when ``cancel`` is set while waiting to retry.

        ``n_tokens()`` is how many tokens the caller has taken so far (for the messages).
        Server failures (HTTP errors, ``error`` events) and transport failures raise
        :class:`BackendError`.
        """
        httpx = self.httpx
        started = False
        try:
            request = self.client.build_request("POST", self.base_url + path, json=body, headers=self.headers())
            resp = self.retrying(lambda: self.client.send(request, stream=True), cancel)
            if resp is None:
                return
            try:
                if resp.status_code >= 400:
                    raise self.http_error(resp.status_code, resp.read(), f"POST {path}")
                started = True
                for line in resp.iter_lines():
                    if not line:
                        continue  # event separators
                    if line.startswith(":"):  # keep-alive comments (": ping") while the server is silent
                        if cancel is not None and cancel.is_set():
                            yield {}
                        continue
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "error":  # llama-server reports failures as "error: {...}"
                        raise self.stream_failed(value)
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
                        raise self.stream_failed(json.dumps(obj))
                    yield obj
            finally:
                resp.close()
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, n_tokens() if started else None) from None

    def close(self) -> None:
        """Close the connections."""
        self.client.close()
