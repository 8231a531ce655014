"""The OpenAI-compatible backend: parsers (recorded-format payloads through a mock transport)
and end-to-end runs against a real llama-cpp-python server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk
from lmread.backends.openai import (
    OpenAIBackend,
    compute_rank,
    finish_of,
    normalize_base_url,
    parse_choice,
    server_message,
    token_bytes,
)
from lmread.catalog import ModelCard
from lmread.errors import BackendError, ModelError, OptionError
from lmread.records import TokenAssembler
from tests.fixtures.openai import SERVER_API_KEY, free_port

httpx = pytest.importorskip("httpx")

PROMPT = "The lighthouse keeper wrote in his log that"


# --------------------------------------------------------------------------------------------
# helpers


def sse(*events: Any, done: bool = True, ping: bool = False) -> bytes:
    """An SSE body from event objects (dicts are JSON-encoded)."""
    lines = []
    if ping:
        lines.append(": ping - 2025-01-01 00:00:00\r\n\r\n")
    for ev in events:
        lines.append(f"data: {json.dumps(ev) if not isinstance(ev, str) else ev}\n\n")
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def mock_backend(
    handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any
) -> tuple[OpenAIBackend, list[httpx.Request]]:
    """A backend whose HTTP traffic goes to ``handler``; returns it and the requests seen."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    kwargs.setdefault("transport", httpx.MockTransport(record))
    kwargs.setdefault("server", "openai")  # no /v1/models probe: the handlers answer completions only
    return OpenAIBackend("http://127.0.0.1:9/v1", "served-model", **kwargs), seen


def streaming(body: bytes, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": "text/event-stream"})

    return handler


def run(backend: Any, options: GenOptions, prompt: str = PROMPT) -> tuple[list[TokenChunk], StreamEnd]:
    """Drain one stream; returns its chunks and its end."""
    chunks: list[TokenChunk] = []
    items = list(backend.stream(prompt, options))
    for item in items[:-1]:
        assert isinstance(item, TokenChunk)
        chunks.append(item)
    assert isinstance(items[-1], StreamEnd)
    return chunks, items[-1]


def assemble(chunks: list[TokenChunk]) -> str:
    asm = TokenAssembler()
    for c in chunks:
        asm.add(c.id, c.piece, c.logprob, c.rank, c.entropy, c.top_ids, c.top_logprobs, c.top_pieces)
    _tokens, text, _raw = asm.finish()
    return text


def choice_a(text: str, tokens: list[str], lps: list[float], tops: list[dict[str, float]], finish: str | None = None):
    return {"choices": [{"text": text, "index": 0, "finish_reason": finish,
                         "logprobs": {"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops,
                                      "text_offset": [0] * len(tokens)}}]}


def obj_b(tid: int, token: str, raw: bytes, lp: float, top: list[tuple[int, str, bytes, float]]) -> dict[str, Any]:
    return {"id": tid, "token": token, "bytes": list(raw), "logprob": lp,
            "top_logprobs": [{"id": i, "token": t, "bytes": list(b), "logprob": v} for i, t, b, v in top]}


# --------------------------------------------------------------------------------------------
# pure parsing


def test_token_bytes_conventions() -> None:
    assert token_bytes("bytes:\\xe6\\x97") == (b"\xe6\x97", True)
    assert token_bytes("bytes:a\\xc3") == (b"a\xc3", True)
    assert token_bytes(" hello") == (b" hello", False)
    assert token_bytes("\ufffd") == ("\ufffd".encode(), False)


def test_compute_rank() -> None:
    assert compute_rank(-1.0, True, [-0.5, -2.0]) == 2
    assert compute_rank(-0.1, True, [-0.5, -2.0]) == 1
    # chosen not listed, but a listed alternative is less likely: everything above it is listed
    assert compute_rank(-1.0, False, [-0.5, -2.0]) == 2
    # chosen beyond the list: rank > k, unknown
    assert compute_rank(-9.0, False, [-0.5, -2.0]) is None
    assert compute_rank(None, True, [-0.5]) is None


def test_shape_a_as_llama_cpp_python_sends_it() -> None:
    """llama-cpp-python adds the chosen token to its top dict even when it is beyond the top k."""
    inside = choice_a(" Paris", [" Paris"], [-0.26], [{" Paris": -0.26, " the": -2.8, " London": -4.4}])["choices"][0]
    (c,) = parse_choice(inside, 3)
    assert (c.id, c.piece, c.logprob, c.rank, c.entropy) == (-1, b" Paris", -0.26, 1, None)
    assert c.top_pieces == [b" Paris", b" the", b" London"] and c.top_ids == [-1, -1, -1]
    assert c.top_logprobs == [-0.26, -2.8, -4.4]
    beyond = choice_a(" Cities", [" Cities"], [-6.1], [{"\n": -1.0, " The": -2.4, " Paris": -2.5, " Cities": -6.1}])
    (c,) = parse_choice(beyond["choices"][0], 3)
    assert c.rank is None and c.logprob == -6.1
    assert c.top_pieces == [b"\n", b" The", b" Paris"]  # the appended chosen entry is not a top-3 entry
    second = choice_a(" are", [" are"], [-1.68], [{" in": -1.48, " are": -1.68, " can": -2.15}])
    assert parse_choice(second["choices"][0], 3)[0].rank == 2


def test_shape_a_partial_utf8_and_server_text() -> None:
    # vLLM/OpenAI spell partial characters as "bytes:\\x..": the bytes are exact, text is held back
    first = choice_a("", ["bytes:\\xe6\\x97"], [-0.5], [{"bytes:\\xe6\\x97": -0.5}])["choices"][0]
    second = choice_a("日", ["bytes:\\xa5"], [-0.1], [{"bytes:\\xa5": -0.1}])["choices"][0]
    chunks = parse_choice(first, 1) + parse_choice(second, 1)
    assert [c.piece for c in chunks] == [b"\xe6\x97", b"\xa5"]
    assert assemble(chunks) == "日"
    # a lossy token string (U+FFFD) gives way to the chunk's text
    lossy = choice_a("é", ["\ufffd"], [-0.3], [{"\ufffd": -0.3}])["choices"][0]
    assert parse_choice(lossy, 1)[0].piece == "é".encode()
    # the last token cut at a stop string: the server's text wins, so pieces == reported text
    cut = choice_a(" end", [" end."], [-0.2], [{" end.": -0.2}])["choices"][0]
    assert parse_choice(cut, 1)[0].piece == b" end"
    # several tokens in one chunk (vLLM batches them): each keeps its own piece
    multi = choice_a(" a b", [" a", " b"], [-1.0, -2.0], [{" a": -1.0}, {" c": -0.5, " b": -2.0}])["choices"][0]
    many = parse_choice(multi, 2)
    assert [c.piece for c in many] == [b" a", b" b"] and [c.rank for c in many] == [1, 2]
    # token ids as vLLM's return_tokens_as_token_ids spells them
    ids = choice_a(" x", ["token_id:42"], [-0.1], [{"token_id:42": -0.1, "token_id:7": -3.0}])["choices"][0]
    (c,) = parse_choice(ids, 2)
    assert (c.id, c.piece, c.rank, c.top_ids) == (42, b" x", 1, [42, 7])
    # no logprobs at all: one chunk of text, nothing for an empty text
    assert parse_choice({"text": "hi", "index": 0}, 5)[0].piece == b"hi"
    assert parse_choice({"text": "", "index": 0, "finish_reason": "stop"}, 5) == []


def test_shape_b_llama_server_stream() -> None:
    """A recorded-format llama-server stream: token objects with ids, bytes and top alternatives."""
    events = [
        {"choices": [{"text": " Hi", "index": 0, "finish_reason": None, "logprobs": {"content": [
            obj_b(1000, " Hi", b" Hi", -0.7, [(1000, " Hi", b" Hi", -0.7), (2, " Yo", b" Yo", -1.2)])]}}]},
        # one CJK character split across two tokens: text held back, then completed
        {"choices": [{"text": "", "index": 0, "finish_reason": None, "logprobs": {"content": [
            obj_b(31, "\ufffd", b"\xe6\x97", -2.0, [(5, ".", b".", -0.4), (6, ",", b",", -0.9)])]}}]},
        {"choices": [{"text": "日", "index": 0, "finish_reason": None, "logprobs": {"content": [
            obj_b(32, "\ufffd", b"\xa5", -0.01, [(32, "\ufffd", b"\xa5", -0.01), (9, "x", b"x", -5.0)])]}}]},
        {"choices": [{"text": "", "index": 0, "finish_reason": "stop", "logprobs": None}]},
    ]
    backend, seen = mock_backend(streaming(sse(*events, ping=True)))
    chunks, end = run(backend, GenOptions(max_tokens=8, top_logprobs=2))
    assert [c.id for c in chunks] == [1000, 31, 32]
    assert [c.piece for c in chunks] == [b" Hi", b"\xe6\x97", b"\xa5"]
    assert assemble(chunks) == " Hi日"
    assert [c.rank for c in chunks] == [1, None, 1]
    assert chunks[1].top_ids == [5, 6] and chunks[1].top_pieces == [b".", b","]
    assert chunks[1].top_logprobs == [-0.4, -0.9]
    assert (end.reason, end.detail) == ("eos", "")
    assert len(seen) == 1 and seen[0].url.path == "/v1/completions"


def test_request_fields_and_auth_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMREAD_API_KEY", "sk-abcdef-123456")
    body = sse({"choices": [{"text": "", "index": 0, "finish_reason": "length", "logprobs": None}]})
    backend, seen = mock_backend(streaming(body))
    opts = GenOptions(max_tokens=3, temperature=0.7, top_p=0.9, top_k=20, min_p=0.05,
                      repetition_penalty=1.1, seed=5, stop=["\n\n"], top_logprobs=4)
    _chunks, end = run(backend, opts)
    assert end.reason == "context"  # "length" after 0 of 3 tokens: the context was full
    sent = json.loads(seen[0].content)
    assert sent == {"model": "served-model", "prompt": PROMPT, "stream": True, "echo": False, "max_tokens": 3,
                    "temperature": 0.7, "top_p": 0.9, "top_k": 20, "min_p": 0.05, "repeat_penalty": 1.1,
                    "repetition_penalty": 1.1, "logprobs": 4, "seed": 5, "stop": ["\n\n"]}
    assert seen[0].headers["authorization"] == "Bearer sk-abcdef-123456"
    monkeypatch.delenv("LMREAD_API_KEY")
    run(backend, GenOptions(max_tokens=3))
    assert "authorization" not in seen[1].headers


def test_finish_reasons() -> None:
    opts = GenOptions(max_tokens=4)
    assert finish_of("length", None, False, opts, 4) == StreamEnd("length")
    assert finish_of("length", None, False, opts, 2).reason == "context"
    assert finish_of("stop", None, False, opts, 2) == StreamEnd("eos")
    assert finish_of("stop", None, True, opts, 2) == StreamEnd("eos")  # vLLM: stop_reason null = EOS
    assert finish_of("stop", "###", True, opts, 2).reason == "stop"
    assert finish_of("stop", None, False, GenOptions(stop=["###"]), 2).reason == "stop"
    assert finish_of("abort", None, False, opts, 2).reason == "error"


def test_stream_without_finish_reason_is_an_error() -> None:
    """llama-cpp-python interrupting a stream sends [DONE] with no finish reason."""
    ev = choice_a(" a", [" a"], [-1.0], [{" a": -1.0}])
    backend, _ = mock_backend(streaming(sse(ev)))
    it = backend.stream(PROMPT, GenOptions(max_tokens=4))
    assert isinstance(next(it), TokenChunk)
    with pytest.raises(BackendError, match=r"ended the stream after 1 tokens without a finish reason"):
        next(it)


def test_error_event_and_http_errors() -> None:
    backend, _ = mock_backend(streaming(b'error: {"code": 500, "message": "context overflow", "type": "server_error"}\n\n'))
    with pytest.raises(BackendError, match="failed during generation: context overflow"):
        list(backend.stream(PROMPT, GenOptions(max_tokens=2)))
    backend, _ = mock_backend(streaming(sse({"error": {"message": "out of memory"}}, done=False)))
    with pytest.raises(BackendError, match="out of memory"):
        list(backend.stream(PROMPT, GenOptions(max_tokens=2)))
    body = json.dumps({"error": {"message": "The model `x` does not exist.", "type": "NotFoundError"}}).encode()
    backend, _ = mock_backend(lambda r: httpx.Response(404, content=body))
    with pytest.raises(BackendError) as info:
        list(backend.stream(PROMPT, GenOptions(max_tokens=2)))
    assert str(info.value) == ("the server at http://127.0.0.1:9 answered HTTP 404 to POST /v1/completions: "
                               "The model `x` does not exist.")
    backend, _ = mock_backend(streaming(b"data: {not json\n\n"))
    with pytest.raises(BackendError, match="malformed stream event"):
        list(backend.stream(PROMPT, GenOptions(max_tokens=2)))
    assert server_message(b'{"detail": [{"msg": "field required"}]}') == "field required"
    assert server_message("plain\ntext") == "plain text"


def test_cancel_ends_the_stream() -> None:
    ev = [choice_a(f" w{i}", [f" w{i}"], [-1.0], [{f" w{i}": -1.0}]) for i in range(5)]
    backend, _ = mock_backend(streaming(sse(*ev, {"choices": [{"text": "", "index": 0, "finish_reason": "length"}]})))
    cancel = threading.Event()
    got = []
    for item in backend.stream(PROMPT, GenOptions(max_tokens=5), cancel):
        got.append(item)
        if len(got) == 2:
            cancel.set()
    assert len(got) == 3 and got[-1] == StreamEnd("cancelled")


def test_invalid_options_fail_before_any_request() -> None:
    backend, seen = mock_backend(streaming(sse()))
    for bad in (GenOptions(max_tokens=0), GenOptions(top_p=1.5), GenOptions(top_logprobs=50), GenOptions(seed=-1)):
        with pytest.raises(OptionError):
            backend.stream(PROMPT, bad)
    with pytest.raises(OptionError, match="concurrency"):
        OpenAIBackend("http://127.0.0.1:9", concurrency=0)
    with pytest.raises(OptionError, match="timeout"):
        OpenAIBackend("http://127.0.0.1:9", timeout_s=0)
    with pytest.raises(ModelError, match="invalid server URL 'ftp://x'"):
        OpenAIBackend("ftp://x")
    assert seen == []


def test_base_url_and_from_card() -> None:
    assert normalize_base_url("http://h:8000/v1/") == "http://h:8000"
    assert normalize_base_url("https://h/api/v1") == "https://h/api"
    card = ModelCard(id="remote-7b", name="Remote 7B", family="x", backends=["openai"],
                     source={"url": "http://127.0.0.1:1/v1", "model": "served-7b"}, n_params=7_000_000_000)
    b = OpenAIBackend.from_card(card, concurrency=8, n_threads=2)
    assert (b.base_url, b.model, b.max_concurrency, b.n_params) == ("http://127.0.0.1:1", "served-7b", 8, 7_000_000_000)
    b.close()
    b = OpenAIBackend.from_card(card, base_url="http://127.0.0.1:2")
    assert b.base_url == "http://127.0.0.1:2"
    b.close()
    card.source = {"model": "served-7b"}
    with pytest.raises(ModelError, match="has no server URL"):
        OpenAIBackend.from_card(card)


def test_describe_reports_server_metadata() -> None:
    models = {"object": "list", "data": [{"id": "llama-7b", "object": "model", "owned_by": "llamacpp",
                                          "meta": {"n_params": 6_738_415_616, "n_ctx_train": 4096}}]}
    backend, seen = mock_backend(lambda r: httpx.Response(200, json=models))
    backend.model = None
    d = backend.describe()
    assert d["served_model"] == "llama-7b" and d["id"] == "llama-7b" and d["n_params"] == 6_738_415_616
    assert d["owned_by"] == "llamacpp" and d["backend"] == "openai" and d["base_url"] == "http://127.0.0.1:9"
    assert "httpx" in d["backend_version"] and d["library_versions"]["httpx"] == httpx.__version__
    backend.describe()
    assert len(seen) == 1  # cached


def test_score_aligned_echo_and_unsupported() -> None:
    prompt, text = "Hello", " big world"
    answer = {"choices": [{"text": prompt + text + "!", "index": 0, "finish_reason": "length", "logprobs": {
        "tokens": ["Hello", " big", " world", "!"], "text_offset": [0, 5, 9, 15],
        "token_logprobs": [None, -3.0, -1.0, -0.5],
        "top_logprobs": [None, {" there": -0.5, " big": -3.0}, {" world": -1.0, " deal": -1.5}, {"!": -0.5}]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    backend, seen = mock_backend(lambda r: httpx.Response(200, json=answer))
    chunks = backend.score(text, prompt)
    assert [c.piece for c in chunks] == [b" big", b" world"]
    assert [c.logprob for c in chunks] == [-3.0, -1.0] and [c.rank for c in chunks] == [2, 1]
    sent = json.loads(seen[0].content)
    assert sent["echo"] is True and sent["max_tokens"] == 1 and sent["prompt"] == prompt + text
    no_lp = {"choices": [{"text": "Hello big world!", "index": 0, "finish_reason": "length"}]}
    backend, _ = mock_backend(lambda r: httpx.Response(200, json=no_lp))
    with pytest.raises(BackendError, match="^scoring not supported by this server"):
        backend.score(text, prompt)


# --------------------------------------------------------------------------------------------
# a real llama-cpp-python server


@pytest.mark.server
def test_e2e_stream_pieces_match_server_text(openai_smollm2: OpenAIBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    import lmread.backends.openai.completions as mod  # the module whose stream parser calls it

    texts: list[str] = []
    real = mod.parse_choice

    def spy(choice: dict[str, Any], k: int) -> list[TokenChunk]:
        texts.append(choice.get("text") or "")
        return real(choice, k)

    monkeypatch.setattr(mod, "parse_choice", spy)
    opts = GenOptions(max_tokens=6, temperature=1.0, seed=1234, top_logprobs=3)
    chunks, end = run(openai_smollm2, opts)
    assert end.reason in ("length", "eos")
    assert 1 <= len(chunks) <= 6
    if end.reason == "length":
        assert len(chunks) == 6
    assert assemble(chunks) == "".join(texts)
    assert "".join(texts)  # the model said something
    for c in chunks:
        assert c.id == -1 and c.entropy is None
        assert c.logprob is not None and c.logprob <= 0.0
        assert 1 <= len(c.top_logprobs) <= 3 and len(c.top_ids) == len(c.top_pieces) == len(c.top_logprobs)
        assert c.top_logprobs == sorted(c.top_logprobs, reverse=True)
        if c.rank is not None:
            assert c.rank == 1 + sum(lp > c.logprob for lp, p in zip(c.top_logprobs, c.top_pieces, strict=True) if p != c.piece)
        else:
            assert c.logprob < min(c.top_logprobs)
    # same seed, same text (llama-cpp-python honours the request's seed)
    again, _ = run(openai_smollm2, opts)
    assert [c.piece for c in again] == [c.piece for c in chunks]
    assert [c.logprob for c in again] == pytest.approx([c.logprob for c in chunks])


@pytest.mark.server
def test_e2e_describe(openai_smollm2: OpenAIBackend, openai_server: Any) -> None:
    d = openai_smollm2.describe()
    assert d["id"] == "smollm2-135m" and d["backend"] == "openai"
    assert d["served_model"] == str(openai_server.model_path)  # llama-cpp-python names it by its path
    assert d["owned_by"] == "me" and d["base_url"] == openai_server.base_url
    assert d["quantization"] == "Q4_1"


@pytest.mark.server
def test_e2e_concurrent_streams(openai_smollm2: OpenAIBackend) -> None:
    assert openai_smollm2.max_concurrency == 3
    results: dict[int, Any] = {}

    def worker(i: int) -> None:
        try:
            results[i] = run(openai_smollm2, GenOptions(max_tokens=3, seed=i, top_logprobs=1))
        except Exception as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert sorted(results) == [0, 1, 2]
    for i in range(3):
        assert not isinstance(results[i], Exception), results[i]
        chunks, end = results[i]
        assert end.reason in ("length", "eos") and 1 <= len(chunks) <= 3


@pytest.mark.server
def test_e2e_score_is_refused_on_llama_cpp_python(openai_smollm2: OpenAIBackend) -> None:
    """Its echoed logprobs are one token off for SmolLM2 (no BOS): refused, not silently wrong."""
    with pytest.raises(BackendError, match="^scoring not supported by this server"):
        openai_smollm2.score(" it rained", "Yesterday")


def test_e2e_connection_refused() -> None:
    port = free_port()
    backend = OpenAIBackend(f"http://127.0.0.1:{port}", "m")
    msg = f"cannot connect to http://127.0.0.1:{port}: connection refused; is the server running?"
    with pytest.raises(BackendError) as info:
        list(backend.stream(PROMPT, GenOptions(max_tokens=2)))
    assert str(info.value) == msg
    with pytest.raises(BackendError) as info:
        backend.describe()
    assert str(info.value) == msg
    backend.close()


@pytest.mark.server
def test_e2e_http_error_carries_server_message(openai_server: Any) -> None:
    backend = OpenAIBackend(openai_server.base_url + "/nope", "m")
    with pytest.raises(BackendError) as info:
        list(backend.stream(PROMPT, GenOptions(max_tokens=2)))
    assert str(info.value) == (f"the server at {openai_server.base_url}/nope answered HTTP 404 "
                               "to POST /v1/completions: Not Found")
    backend.close()


@pytest.mark.server
def test_e2e_prompt_over_context_is_an_error(openai_smollm2: OpenAIBackend) -> None:
    """llama-cpp-python answers 200 and then sends nothing: no finish reason -> BackendError."""
    with pytest.raises(BackendError, match="without a finish reason"):
        list(openai_smollm2.stream("word " * 1100, GenOptions(max_tokens=2, top_logprobs=1)))


class CuttingProxy:
    """A TCP proxy to ``upstream_port`` that cuts each connection after ``cut_after`` bytes of answer."""

    def __init__(self, upstream_port: int, cut_after: int) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.cut_after), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: limit - sent])
                    self.cut.set()
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self.listener.close()


@pytest.mark.server
def test_e2e_connection_dropped_mid_stream(openai_server: Any) -> None:
    proxy = CuttingProxy(openai_server.port, cut_after=1500)  # headers + about one event
    backend = OpenAIBackend(f"http://127.0.0.1:{proxy.port}", str(openai_server.model_path))
    got: list[Any] = []
    try:
        it = backend.stream(PROMPT, GenOptions(max_tokens=12, seed=3, top_logprobs=1))
        with pytest.raises(BackendError) as info:
            for item in it:
                got.append(item)
        assert proxy.cut.is_set()
        assert str(info.value).startswith(f"connection to http://127.0.0.1:{proxy.port} dropped mid-stream after ")
        assert "generate it again" in str(info.value)
        assert got and all(isinstance(g, TokenChunk) for g in got)  # tokens came, no StreamEnd
    finally:
        backend.close()
        proxy.close()


@pytest.mark.server
def test_e2e_api_key_never_leaks(
    openai_server_with_key: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = openai_server_with_key.base_url
    # no key at all
    monkeypatch.delenv("LMREAD_TEST_KEY", raising=False)
    monkeypatch.delenv("LMREAD_API_KEY", raising=False)
    with pytest.raises(OptionError, match=r"\$LMREAD_TEST_KEY named by --api-key-env is not set"):
        OpenAIBackend(url, None, api_key_env="LMREAD_TEST_KEY")
    keyless = OpenAIBackend(url, None)
    with pytest.raises(BackendError) as info:
        keyless.describe()
    assert str(info.value) == (f"the server at {url} needs an API key (HTTP 401): "
                               "name the variable holding it with --api-key-env")
    keyless.close()
    # a wrong key
    wrong = "wrong-key-5c2e8d1b"
    monkeypatch.setenv("LMREAD_TEST_KEY", wrong)
    backend = OpenAIBackend(url, None, api_key_env="LMREAD_TEST_KEY")
    with pytest.raises(BackendError) as info:
        list(backend.stream(PROMPT, GenOptions(max_tokens=2)))
    assert str(info.value) == "the server refused the API key from $LMREAD_TEST_KEY (HTTP 401)"
    assert wrong not in str(info.value)
    # the right key: generation works, and the key is nowhere
    monkeypatch.setenv("LMREAD_TEST_KEY", SERVER_API_KEY)
    chunks, end = run(backend, GenOptions(max_tokens=2, seed=1, top_logprobs=2))
    assert chunks and end.reason in ("length", "eos")
    desc = json.dumps(backend.describe())
    for key in (SERVER_API_KEY, wrong):
        assert key not in desc
        assert key not in caplog.text
        assert all(key.encode() not in c.piece and all(key.encode() not in p for p in c.top_pieces) for c in chunks)
        assert key not in repr(chunks)
    backend.close()
