"""Faults against the openai backend are bounded: timeouts, retries before the first token only,
and a named error for an unset API key variable.  Local servers on 127.0.0.1 only."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk
from lmread.backends.openai import OpenAIBackend
from lmread.cli import main
from lmread.errors import BackendError, OptionError
from tests.fixtures.fake_server import FakeServer, Reply, refused_port, silent_socket
from tests.fixtures.server_payloads import LLAMA_TOKENS, llama_models, llama_native_events, llama_props
from tests.generate.test_generate import read_samples, write_card

PROMPT = "東京の朝は静かだ。🌸 Café crème, naïve façade — continue:"


def llama_routes(completion: Reply | Any) -> dict[tuple[str, str], Any]:
    return {("GET", "/v1/models"): Reply(json=llama_models()), ("GET", "/props"): Reply(json=llama_props()),
            ("POST", "/completion"): completion}


def test_silent_server_is_an_error_within_the_read_timeout() -> None:
    with silent_socket() as port:
        backend = OpenAIBackend(f"http://127.0.0.1:{port}", "m", read_timeout_s=0.5, retries=3)
        t0 = time.monotonic()
        with pytest.raises(BackendError) as info:
            list(backend.stream(PROMPT, GenOptions(max_tokens=4)))
        elapsed = time.monotonic() - t0
        backend.close()
    assert str(info.value).startswith(f"no answer from http://127.0.0.1:{port} within 0.5 s (--read-timeout)")
    assert "\n" not in str(info.value)
    assert elapsed < 3.0  # a read timeout is not retried


def test_server_silent_mid_stream_discards_the_sample() -> None:
    events = llama_native_events(LLAMA_TOKENS)
    with FakeServer(llama_routes(Reply(events=events, stall_after=2))) as server:
        backend = OpenAIBackend(server.base_url, None, read_timeout_s=0.5)
        got: list[Any] = []
        t0 = time.monotonic()
        with pytest.raises(BackendError) as info:
            for item in backend.stream(PROMPT, GenOptions(max_tokens=7)):
                got.append(item)
        assert time.monotonic() - t0 < 3.0
        backend.close()
        assert len(server.posted("/completion")) == 1  # never retried once tokens came
    assert str(info.value) == (f"no answer from {server.base_url} within 0.5 s after 3 tokens (--read-timeout); "
                               "the server is stuck or overloaded; the sample is discarded")
    assert got and all(isinstance(g, TokenChunk) for g in got)


def test_cli_silent_server_leaves_the_study_unchanged(lmread_home: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    write_card(lmread_home, "scr-a")
    study = tmp_path / "s"
    assert main(["generate", "--study", str(study), "--model", "scr-a", "--prompt", "x", "--max-tokens", "5"]) == 0
    before = (study / "samples.jsonl").read_bytes()
    capsys.readouterr()
    events = llama_native_events(LLAMA_TOKENS)
    with FakeServer(llama_routes(Reply(events=events, stall_after=3))) as server:
        t0 = time.monotonic()
        code = main(["generate", "--study", str(study), "--backend", "openai", "--base-url", server.base_url,
                     "--model", "served-model", "--prompt", PROMPT, "--samples", "2", "--max-tokens", "7",
                     "--read-timeout", "1", "--concurrency", "1"])
        assert time.monotonic() - t0 < 10.0
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lmread: error: no answer from {server.base_url} within 1 s")
    assert (study / "samples.jsonl").read_bytes() == before
    assert len(read_samples(study)) == 1


def test_refused_port_is_retried_with_backoff_then_one_line() -> None:
    port = refused_port()
    backend = OpenAIBackend(f"http://127.0.0.1:{port}", "m", retries=2)
    t0 = time.monotonic()
    with pytest.raises(BackendError) as info:
        list(backend.stream(PROMPT, GenOptions(max_tokens=2)))
    elapsed = time.monotonic() - t0
    backend.close()
    assert str(info.value) == f"cannot connect to http://127.0.0.1:{port}: connection refused; is the server running?"
    assert 1.4 <= elapsed < 5.0  # waited 0.5 + 1.0 s between the three attempts
    none = OpenAIBackend(f"http://127.0.0.1:{port}", "m", retries=0)
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="connection refused"):
        list(none.stream(PROMPT, GenOptions(max_tokens=2)))
    assert time.monotonic() - t0 < 0.4
    none.close()


def test_loading_server_is_retried_until_it_answers() -> None:
    calls = {"n": 0}

    def models(_: Any) -> Reply:
        calls["n"] += 1
        if calls["n"] <= 2:  # llama-server answers 503 while it loads the model
            return Reply(json={"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}},
                         status=503)
        return Reply(json=llama_models())

    routes = llama_routes(Reply(events=llama_native_events(LLAMA_TOKENS)))
    routes[("GET", "/v1/models")] = models
    with FakeServer(routes) as server:
        backend = OpenAIBackend(server.base_url, None, retries=3)
        items = list(backend.stream(PROMPT, GenOptions(max_tokens=7)))
        backend.close()
    assert calls["n"] == 3
    assert isinstance(items[-1], StreamEnd) and items[-1].reason == "length"


def test_stream_cut_after_tokens_is_never_retried() -> None:
    events = llama_native_events(LLAMA_TOKENS)[:3]  # three events, then the connection closes
    with FakeServer(llama_routes(Reply(events=events))) as server:
        backend = OpenAIBackend(server.base_url, None, retries=3)
        got: list[Any] = []
        with pytest.raises(BackendError) as info:
            for item in backend.stream(PROMPT, GenOptions(max_tokens=7)):
                got.append(item)
        backend.close()
        assert len(server.posted("/completion")) == 1
    assert str(info.value).startswith(f"the server at {server.base_url} ended the stream after 6 tokens")
    assert len(got) == 6 and not any(isinstance(g, StreamEnd) for g in got)


def test_unset_api_key_variable_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch, lmread_home: Path,
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LMREAD_NO_SUCH_KEY", raising=False)
    with pytest.raises(OptionError) as info:
        OpenAIBackend("http://127.0.0.1:9", "m", api_key_env="LMREAD_NO_SUCH_KEY")
    assert "$LMREAD_NO_SUCH_KEY" in str(info.value) and "not set" in str(info.value)
    study = tmp_path / "s"
    code = main(["generate", "--study", str(study), "--backend", "openai", "--base-url", "http://127.0.0.1:9",
                 "--model", "m", "--prompt", "x", "--api-key-env", "LMREAD_NO_SUCH_KEY"])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1
    assert err.startswith("lmread: error: the environment variable $LMREAD_NO_SUCH_KEY named by --api-key-env is not set")
    assert not study.exists()
    monkeypatch.setenv("LMREAD_NO_SUCH_KEY", "k-123456")
    OpenAIBackend("http://127.0.0.1:9", "m", api_key_env="LMREAD_NO_SUCH_KEY").close()


def test_timeout_options_are_checked() -> None:
    for kw, flag in (({"read_timeout_s": 0}, "--read-timeout"), ({"connect_timeout_s": -1}, "--connect-timeout"),
                     ({"retries": -1}, "--retries"), ({"protocol": "grpc"}, "--protocol")):
        with pytest.raises(OptionError, match=f"^invalid option {flag}"):
            OpenAIBackend("http://127.0.0.1:9", "m", **kw)
    b = OpenAIBackend("http://127.0.0.1:9", "m", connect_timeout_s=2, read_timeout_s=7)
    assert (b.http.client.timeout.connect, b.http.client.timeout.read) == (2.0, 7.0)
    b.close()


def test_cancel_during_the_retry_wait_ends_the_stream_at_once() -> None:
    import threading

    port = refused_port()
    backend = OpenAIBackend(f"http://127.0.0.1:{port}", "m", retries=5, server="openai")
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    t0 = time.monotonic()
    items = list(backend.stream(PROMPT, GenOptions(max_tokens=2), cancel))
    backend.close()
    assert items == [StreamEnd("cancelled")] and time.monotonic() - t0 < 1.5
