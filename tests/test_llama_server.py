"""The openai backend against the real llama.cpp ``llama-server`` (SmolLM2, 127.0.0.1): exact
token counts on CJK/emoji text, ids that match the server's own, model identity from the server,
4 concurrent streams, and a server killed mid-stream.  The contract suite runs on it too
(tests/test_backend_contract.py, ``openai_llamaserver``)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk
from lmread.backends.openai import OpenAIBackend
from lmread.catalog import ModelCard
from lmread.catalog.gguf import gguf_info
from lmread.errors import BackendError
from lmread.generate import GenerationPlan, ModelJob, generate_sample, run_generation
from tests.fixtures.llama_server import start_llama_server
from tests.fixtures.openai import stop_server
from tests.test_generate import read_samples

pytestmark = pytest.mark.server

CJK = "東京の朝は静かだ。🌸 Café crème, naïve façade — continue:"


def test_cjk_emoji_samples_are_exact_and_counted(llama_server: Any, tmp_path: Path) -> None:
    card = ModelCard(id="smollm2-server", name="SmolLM2 (llama-server)", family="smollm2", backends=["openai"],
                     source={"url": llama_server.base_url})
    plan = GenerationPlan(models=[ModelJob(card, "openai", {"concurrency": 2})],
                          prompts=[{"text": CJK, "name": "cjk"}], samples=2,
                          options=GenOptions(max_tokens=64, top_logprobs=3), base_seed=1)
    result = run_generation(tmp_path / "s", plan)
    assert result.generated == 2 and not result.errors, result.errors
    n_params = gguf_info(llama_server.model_path)["n_params"]
    for s in read_samples(tmp_path / "s"):
        server = s["server"]
        n = len(s["tokens"]["ids"])
        assert server["kind"] == "llama-server" and server["endpoint"] == "/completion"
        assert n == server["completion_tokens"] and not server["count_mismatch"]
        assert s["finish_reason"] == {"limit": "length", "eos": "eos"}[server["finish_reason"]]
        if s["finish_reason"] == "length":
            assert n == 64
        lacking = set(server.get("no_logprob", []))
        for i, lp in enumerate(s["tokens"]["logprob"]):
            assert (lp is None) == (i in lacking)
        for first, count in server.get("merged", []):
            assert all(s["tokens"]["ids"][j] == -1 for j in range(first, first + count - 1))
        assert s["model"]["n_params"] == n_params and s["model"]["n_params_source"] == "server"
        assert s["model"]["quantization"] == "Q4_1" and s["model"]["n_vocab"] == 49152
        assert s["model"]["n_ctx"] in (1024, 4096) and s["model"]["server"] == "llama-server"


def _completion(server: Any, n: int) -> dict[str, Any]:
    """One non-streamed greedy /completion of ``n`` tokens with every token id."""
    return httpx.post(f"{server.base_url}/completion", json={
        "prompt": CJK, "n_predict": n, "temperature": 0.0, "return_tokens": True, "cache_prompt": False,
        "top_k": 0, "top_p": 1.0, "min_p": 0.0, "repeat_penalty": 1.0}, timeout=120, trust_env=False).json()


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_greedy_ids_and_text_match_the_servers_own(llama_server_backend: OpenAIBackend, llama_server: Any) -> None:
    """The streamed tokens against one non-streamed /completion with return_tokens (all ids).

    Which greedy path a CPU takes differs between CPUs (other SIMD kernels), and so does whether
    40 tokens end inside a multi-byte character.  The comparison holds either way under lmread's
    rule (README, File formats -> Sample): the text ends in one U+FFFD for the incomplete bytes,
    as the server's ``content`` does, and the bytes are kept in ``raw``.  The cut inside a
    character is then tested on purpose: at the first length of this path that ends inside one.
    """
    opts = GenOptions(max_tokens=40, temperature=0.0, top_logprobs=2)
    items = list(llama_server_backend.stream(CJK, opts))
    chunks = [c for c in items if isinstance(c, TokenChunk)]
    end = items[-1]
    assert isinstance(end, StreamEnd)
    whole = _completion(llama_server, 40)
    assert len(chunks) == len(whole["tokens"]) == whole["tokens_predicted"]
    for c, tid in zip(chunks, whole["tokens"], strict=True):
        assert c.id in (-1, tid)  # an id is the token's own, or unknown (-1), never another's
    assert end.server["completion_tokens"] == len(chunks)  # type: ignore[attr-defined]
    data = b"".join(c.piece for c in chunks)
    sample = generate_sample(llama_server_backend, {"text": CJK}, opts)
    assert sample.text == data.decode("utf-8", errors="replace") == whole["content"]
    assert sample.raw == (None if _valid_utf8(data) else data)
    # on purpose: the first length at which this greedy path stops inside a character
    cut = next((n for n in range(1, len(chunks) + 1) if not _valid_utf8(b"".join(c.piece for c in chunks[:n]))), None)
    assert cut is not None, "no token of this path split a character; the cut case was not exercised"
    short = generate_sample(llama_server_backend, {"text": CJK}, GenOptions(max_tokens=cut, temperature=0.0))
    head = b"".join(c.piece for c in chunks[:cut])
    assert short.n_tokens == cut and short.finish_reason == "length" and short.raw == head
    assert short.text.endswith("\ufffd") and short.text == head.decode("utf-8", errors="replace")
    assert short.text == _completion(llama_server, cut)["content"]
    assert short.tokens.offsets[-1] == len(short.text) and short.piece(cut - 1).endswith("\ufffd")


def test_four_concurrent_streams(llama_server_backend: OpenAIBackend) -> None:
    spans: dict[int, tuple[float, float]] = {}
    results: dict[int, Any] = {}

    def worker(i: int) -> None:
        t0 = time.monotonic()
        try:
            items = list(llama_server_backend.stream(CJK, GenOptions(max_tokens=24, seed=100 + i, top_logprobs=1)))
            results[i] = items
        except Exception as exc:  # reported below
            results[i] = exc
        spans[i] = (t0, time.monotonic())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert sorted(results) == [0, 1, 2, 3]
    for items in results.values():
        assert not isinstance(items, Exception), items
        end = items[-1]
        assert isinstance(end, StreamEnd) and end.reason in ("length", "eos")
        assert len(items) - 1 == end.server["completion_tokens"]  # type: ignore[attr-defined]
    # the four streams ran at once (4 slots): each started before any ended
    assert max(s for s, _ in spans.values()) < min(e for _, e in spans.values())


def test_server_killed_mid_stream(tmp_path: Path) -> None:
    server = start_llama_server(tmp_path / "killed.log", slots=1)
    backend = OpenAIBackend(server.base_url, None, read_timeout_s=30.0)
    got: list[Any] = []
    try:
        with pytest.raises(BackendError) as info:
            for item in backend.stream(CJK, GenOptions(max_tokens=400, seed=2)):
                got.append(item)
                if len(got) == 3:
                    server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
    finally:
        backend.close()
        stop_server(server)
    msg = str(info.value)
    assert "\n" not in msg and str(server.port) in msg
    assert "mid-stream" in msg or "without stopping" in msg
    assert len(got) >= 3 and all(isinstance(g, TokenChunk) for g in got)
    # the server is gone: the next request is refused (retried, then one line)
    again = OpenAIBackend(server.base_url, "smollm2", retries=1, server="llama-server")
    with pytest.raises(BackendError, match="connection refused"):
        list(again.stream(CJK, GenOptions(max_tokens=2)))
    again.close()


def test_every_sampling_option_is_accepted(llama_server_backend: OpenAIBackend) -> None:
    opts = GenOptions(max_tokens=4, temperature=0.8, top_p=0.9, top_k=40, min_p=0.05, repetition_penalty=1.1,
                      seed=9, top_logprobs=20)
    items = list(llama_server_backend.stream(CJK, opts))
    assert isinstance(items[-1], StreamEnd) and items[-1].reason in ("length", "eos")
    assert all(len(c.top_ids) == 20 for c in items[:-1] if isinstance(c, TokenChunk) and c.id >= 0)
