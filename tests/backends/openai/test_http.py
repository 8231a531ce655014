"""The shared HTTP client of the openai package (lmread/backends/openai/http.py) on its own: what a
chat client (the judge) uses - JSON in and out, an event stream - with the key scrubbed from every
message, bounded retries before the first answer and one-line errors."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from lmread.backends.openai.http import HttpClient
from lmread.errors import BackendError

httpx = pytest.importorskip("httpx")

KEY = "sk-test-secret-key-1234"


def client(handler: Any, **kw: Any) -> HttpClient:
    return HttpClient("http://judge.example:8000/v1/", transport=httpx.MockTransport(handler), **kw)


def sse(*events: Any) -> bytes:
    out = [": ping\n\n"]
    for e in events:
        out.append(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n")
    return "".join(out).encode()


def test_post_json_sends_the_key_and_returns_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMREAD_JUDGE_KEY", KEY)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": "12"}}]})

    http = client(handler, api_key_env="LMREAD_JUDGE_KEY")
    answer = http.post_json("/v1/chat/completions", {"model": "j", "messages": [{"role": "user", "content": "hi"}]})
    assert answer["choices"][0]["message"]["content"] == "12"
    assert str(seen[0].url) == "http://judge.example:8000/v1/chat/completions"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(seen[0].content)["messages"][0]["content"] == "hi"
    assert http.url == "http://judge.example:8000"


def test_events_yield_each_data_object_then_none_for_done() -> None:
    chunks = [{"choices": [{"delta": {"content": "1"}}]}, {"choices": [{"delta": {"content": "2"}}]}]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=sse(*chunks, "[DONE]"), headers={"content-type": "text/event-stream"})

    got = list(client(handler).events("/v1/chat/completions", {"stream": True}))
    assert got == [*chunks, None]


def test_a_keep_alive_comment_surfaces_as_an_empty_event_once_cancelled() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=sse({"a": 1}), headers={"content-type": "text/event-stream"})

    cancel = threading.Event()
    cancel.set()
    assert list(client(handler).events("/x", {}, cancel)) == [{}, {"a": 1}]


def test_errors_name_the_server_and_never_show_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMREAD_API_KEY", KEY)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/bad"):
            return httpx.Response(400, json={"error": {"message": f"bad request from key {KEY}"}})
        if request.url.path.endswith("/denied"):
            return httpx.Response(401, json={"error": "no"})
        return httpx.Response(200, content=f"error: {json.dumps({'message': 'boom ' + KEY})}\n\n".encode(),
                              headers={"content-type": "text/event-stream"})

    http = client(handler)
    with pytest.raises(BackendError) as bad:
        http.post_json("/bad", {})
    assert str(bad.value) == ("the server at http://judge.example:8000 answered HTTP 400 to POST /bad: "
                              "bad request from key ***")
    with pytest.raises(BackendError, match=r"^the server refused the API key from \$LMREAD_API_KEY \(HTTP 401\)$"):
        http.get_json("/denied")
    assert http.get_json("/denied", optional=True) is None
    with pytest.raises(BackendError) as failed:
        list(http.events("/stream", {}))
    assert str(failed.value) == "the server at http://judge.example:8000 failed during generation: boom ***"


def test_retries_are_bounded_and_only_before_an_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lmread.backends.openai.http.RETRY_BACKOFF_S", 0.001)
    calls = {"n": 0}

    def loading(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(503, json={"error": "loading model"})

    with pytest.raises(BackendError, match="HTTP 503"):
        client(loading, retries=2).post_json("/v1/chat/completions", {})
    assert calls["n"] == 3  # the first try and two retries

    calls["n"] = 0

    def refused(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(BackendError, match=r"^cannot connect to http://judge.example:8000: connection refused; "):
        client(refused, retries=1).post_json("/v1/chat/completions", {})
    assert calls["n"] == 2
