"""A judge's chat requests, on the shared HTTP client of the openai backend.

:class:`ChatClient` posts one chat completion through
:class:`~lmread.backends.openai.http.HttpClient` (one thread-safe ``httpx`` client, the API key
read from the named environment variable and scrubbed from every message, connect and read
timeouts, bounded retries of a request that could not connect or met HTTP 503) and adds what a
judge needs on top:

* HTTP 429, 502 and 504 (a rate limit, a proxy in front of a busy server) are retried too, with
  the same bounded, doubling waits;
* an answer the server refused because the prompt does not fit the model's context is a
  :class:`ContextTooLong` (the runner skips that sample and goes on);
* no answer within the read timeout is an :class:`AnswerTimeout` (that sample is left for a
  re-run); every other failure is the client's one-line :class:`~lmread.errors.BackendError`.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from lmread.backends.openai.http import (
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    RETRIES,
    RETRY_BACKOFF_S,
    HttpClient,
    server_message,
)
from lmread.errors import BackendError, OptionError

#: answers retried besides those the shared client retries (503)
RETRY_STATUS = (429, 502, 504)
#: what servers say when a prompt does not fit (llama-server, vLLM, OpenAI)
_CONTEXT_WORDS = re.compile(r"context (length|size|window)|maximum context|context.{0,40}exceed", re.IGNORECASE)


class ContextTooLong(BackendError):
    """The judge's prompt for one sample does not fit the judge model's context."""


class AnswerTimeout(BackendError):
    """No answer for one request within the read timeout (the sample is left for a re-run)."""


class ChatClient:
    """POST chat requests to ``base_url`` (see the module notes)."""

    def __init__(self, base_url: str, *, api_key_env: str | None = None, concurrency: int = 4,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S, read_timeout_s: float = READ_TIMEOUT_S,
                 retries: int = RETRIES, transport: Any = None) -> None:
        if api_key_env is not None and not os.environ.get(api_key_env):
            raise OptionError(f"the environment variable ${api_key_env} named by --api-key-env is not set: "
                              "export it with the server's API key, or leave --api-key-env out")
        self.http = HttpClient(base_url, api_key_env=api_key_env, connect_timeout_s=connect_timeout_s,
                               read_timeout_s=read_timeout_s, retries=retries, max_connections=concurrency + 2,
                               transport=transport)
        self.base_url = self.http.url

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        """POST ``body`` to ``path``; the JSON answer, or a one-line :class:`BackendError`."""
        hc = self.http
        httpx = hc.httpx
        attempt = 0
        while True:
            try:
                resp = hc.retrying(lambda: hc.client.post(hc.base_url + path, json=body, headers=hc.headers()))
            except httpx.ConnectTimeout as exc:
                raise hc.transport_error(exc) from None
            except httpx.TimeoutException:
                raise AnswerTimeout(f"no answer from {hc.url} within {hc.read_timeout_s:g} s (--read-timeout); "
                                    "the sample is left for a re-run") from None
            except httpx.HTTPError as exc:
                raise hc.transport_error(exc) from None
            if resp.status_code not in RETRY_STATUS or attempt >= hc.retries:
                break
            resp.close()
            time.sleep(RETRY_BACKOFF_S * (2 ** attempt))
            attempt += 1
        status = resp.status_code
        if status >= 400:
            msg = hc.scrub(server_message(resp.content))
            if status in (400, 413) and _CONTEXT_WORDS.search(msg):
                raise ContextTooLong(f"the judge's context is too small for this sample: {msg}")
            raise hc.http_error(status, resp.content, f"POST {path}")
        try:
            return resp.json()
        except ValueError:
            raise BackendError(f"the server at {hc.url} sent no JSON for POST {path}; is it OpenAI-compatible?") from None

    def close(self) -> None:
        """Close the connections."""
        self.http.close()
