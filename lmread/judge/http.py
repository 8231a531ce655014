"""The one place a judge talks HTTP: ``POST`` a JSON body to an OpenAI-compatible server.

:class:`ChatClient` holds one thread-safe ``httpx`` client (``concurrency`` connections),
the API key (read from the named environment variable at request time, sent as ``Authorization:
Bearer``, scrubbed from every message), a connect and a read timeout, and bounded retries: a
request that could not connect, or that the server answered 429/502/503/504, is tried again up to
``retries`` times with doubling waits.  Errors come back as one-line
:class:`~lmread.errors.BackendError`; an answer the server refused because the prompt does not
fit the model's context is a :class:`ContextTooLong` (the runner skips that sample and goes on).
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from lmread.backends.openai import normalize_base_url, server_message
from lmread.errors import BackendError, OptionError

RETRY_STATUS = (429, 502, 503, 504)
RETRY_BACKOFF_S = 0.5
#: what servers say when a prompt does not fit (llama-server, vLLM, OpenAI)
_CONTEXT_WORDS = re.compile(r"context (length|size|window)|maximum context|context.{0,40}exceed", re.IGNORECASE)


class ContextTooLong(BackendError):
    """The judge's prompt for one sample does not fit the judge model's context."""


class AnswerTimeout(BackendError):
    """No answer for one request within the read timeout (the sample is left for a re-run)."""


class ChatClient:
    """POST JSON to ``base_url`` with key handling, timeouts and bounded retries (see module)."""

    def __init__(self, base_url: str, *, api_key_env: str | None = None, concurrency: int = 4,
                 connect_timeout_s: float = 10.0, read_timeout_s: float = 300.0, retries: int = 3,
                 transport: Any = None) -> None:
        import httpx

        if api_key_env is not None and not os.environ.get(api_key_env):
            raise OptionError(f"the environment variable ${api_key_env} named by --api-key-env is not set: "
                              "export it with the server's API key, or leave --api-key-env out")
        if not isinstance(retries, int) or not 0 <= retries <= 10:
            raise OptionError(f"invalid option --retries {retries!r}: must be a whole number in [0, 10]")
        for flag, value in (("--connect-timeout", connect_timeout_s), ("--read-timeout", read_timeout_s)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise OptionError(f"invalid option {flag} {value!r}: must be a timeout in seconds > 0")
        self.base_url = normalize_base_url(base_url)
        self.api_key_env = api_key_env
        self.retries = retries
        self.connect_timeout_s = float(connect_timeout_s)
        self.read_timeout_s = float(read_timeout_s)
        self._httpx = httpx
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s),
            limits=httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency),
            transport=transport, follow_redirects=False, trust_env=False,
        )

    def _key(self) -> str:
        return os.environ.get(self.api_key_env or "LMREAD_API_KEY", "")

    def scrub(self, text: str) -> str:
        """``text`` with the API key replaced by ``***``."""
        key = self._key()
        return text.replace(key, "***") if key and len(key) >= 4 else text

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        """POST ``body`` to ``path``; the JSON answer, or a one-line :class:`BackendError`."""
        httpx = self._httpx
        headers = {"Accept": "application/json"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                resp = self._client.post(url, json=body, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                if attempt >= self.retries:
                    raise self._transport_error(exc) from None
            except httpx.TimeoutException:
                raise AnswerTimeout(f"no answer from {self.base_url} within {self.read_timeout_s:g} s "
                                    "(--read-timeout); the sample is left for a re-run") from None
            except httpx.HTTPError as exc:
                raise self._transport_error(exc) from None
            else:
                if resp.status_code not in RETRY_STATUS or attempt >= self.retries:
                    return self._answer(resp, path)
            time.sleep(RETRY_BACKOFF_S * (2 ** attempt))
            attempt += 1

    def _answer(self, resp: Any, path: str) -> Any:
        status = resp.status_code
        if status >= 400:
            msg = self.scrub(server_message(resp.content))
            if status in (401, 403):
                var = self.api_key_env or "LMREAD_API_KEY"
                if self._key():
                    raise BackendError(f"the server refused the API key from ${var} (HTTP {status})")
                raise BackendError(f"the server at {self.base_url} needs an API key (HTTP {status}): "
                                   "name the variable holding it with --api-key-env")
            if status in (400, 413) and _CONTEXT_WORDS.search(msg):
                raise ContextTooLong(f"the judge's context is too small for this sample: {msg}")
            raise BackendError(f"the server at {self.base_url} answered HTTP {status} to POST {path}: {msg}")
        try:
            return resp.json()
        except ValueError:
            raise BackendError(f"the server at {self.base_url} sent no JSON for POST {path}; "
                               "is it OpenAI-compatible?") from None

    def _transport_error(self, exc: Exception) -> BackendError:
        httpx = self._httpx
        reason = self.scrub(" ".join(str(exc).split())) or type(exc).__name__
        if isinstance(exc, httpx.ConnectTimeout):
            return BackendError(f"cannot connect to {self.base_url} within {self.connect_timeout_s:g} s "
                                "(--connect-timeout); is the server running and reachable?")
        if isinstance(exc, httpx.ConnectError):
            if "refused" in reason.lower():
                reason = "connection refused"
            return BackendError(f"cannot connect to {self.base_url}: {reason}; is the server running?")
        return BackendError(f"request to {self.base_url} failed: {reason}")

    def close(self) -> None:
        """Close the connections."""
        self._client.close()
