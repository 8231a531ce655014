"""The openai backend against answers recorded in llama-server's and vLLM's own formats, served
by a tiny HTTP server on 127.0.0.1: exact token counts, merged tokens recorded honestly, the
server's finish reason, model identity from the server, vLLM's token-id keys and logprob limit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk
from lmread.backends.openai import OpenAIBackend
from lmread.catalog import ModelCard
from lmread.errors import BackendError, OptionError
from lmread.generate import GenerationPlan, ModelJob, run_generation
from tests.fixtures.fake_server import FakeServer, Reply
from tests.fixtures.server_payloads import (
    LLAMA_META,
    LLAMA_TOKENS,
    VLLM_MODEL,
    llama_models,
    llama_native_events,
    llama_props,
    vllm_events,
    vllm_models,
)
from tests.generate.test_generate import read_samples

PROMPT = "東京の朝は静かだ。🌸 Café crème, naïve façade — continue:"
REPO = Path(__file__).resolve().parents[3]


def llama_server(events: list[dict[str, Any]]) -> FakeServer:
    routes: dict[tuple[str, str], Any] = {("GET", "/v1/models"): Reply(json=llama_models()),
                                          ("GET", "/props"): Reply(json=llama_props()),
                                          ("POST", "/completion"): Reply(events=events)}
    return FakeServer(routes)


def run(backend: OpenAIBackend, options: GenOptions) -> tuple[list[TokenChunk], StreamEnd]:
    items = list(backend.stream(PROMPT, options))
    assert isinstance(items[-1], StreamEnd) and all(isinstance(i, TokenChunk) for i in items[:-1])
    return items[:-1], items[-1]  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# llama-server, native /completion


def test_llama_server_native_stream_counts_every_token() -> None:
    with llama_server(llama_native_events(LLAMA_TOKENS)) as server:
        backend = OpenAIBackend(server.base_url, None)
        chunks, end = run(backend, GenOptions(max_tokens=7, top_logprobs=2, seed=5, temperature=0.7))
        sent = server.posted("/completion")
        backend.close()
    assert len(chunks) == len(LLAMA_TOKENS) == 7  # = the server's tokens_predicted
    assert [c.id for c in chunks] == [1001, -1, 1003, -1, -1, 1006, 1007]
    assert [c.piece for c in chunks] == ["東".encode(), b"", "京".encode(), b"", b"", "🌸".encode(), b" ok"]
    assert b"".join(c.piece for c in chunks).decode() == "東京🌸 ok"
    # each known token carries its own numbers; the held-back ones carry none
    assert [c.logprob for c in chunks] == [-0.25, None, -0.01, None, None, -0.03, -0.7]
    assert all(c.top_ids == [] and c.rank is None for c in chunks if c.id == -1)
    assert chunks[0].top_ids == [1001, 1501] and chunks[0].rank == 1
    assert end.reason == "length"
    assert end.server == {  # type: ignore[attr-defined]
        "kind": "llama-server", "endpoint": "/completion", "finish_reason": "limit", "completion_tokens": 7,
        "streamed_tokens": 7, "count_mismatch": False, "merged": [[1, 2], [3, 3]], "no_logprob": [1, 3, 4],
        "no_id": [1, 3, 4],
        "timings": {"predicted_n": 7, "predicted_ms": 70.0, "predicted_per_second": 100.0},
    }
    body = sent[0]
    assert body["prompt"] == PROMPT and body["stream"] is True and body["n_predict"] == 7
    assert body["n_probs"] == 2 and body["return_tokens"] is True and body["seed"] == 5
    assert body["temperature"] == 0.7 and body["top_k"] == 0 and body["min_p"] == 0.0 and body["top_p"] == 1.0
    assert body["repeat_penalty"] == 1.0 and "stop" not in body and "post_sampling_probs" not in body


def test_llama_server_token_outside_the_top_has_no_rank() -> None:
    tokens = [(2001, b" The", -0.1), (2002, b" odd", -3.0), (2003, b" one", -0.2)]
    with llama_server(llama_native_events(tokens)) as server:
        backend = OpenAIBackend(server.base_url, None)
        chunks, _ = run(backend, GenOptions(max_tokens=3, top_logprobs=2))
        backend.close()
    assert chunks[1].logprob == -3.0 and chunks[1].rank is None and chunks[1].top_logprobs == [-0.5, -0.9]


def test_llama_server_finish_reasons_are_the_servers() -> None:
    eos = [(1, b" a", -0.1), (2, b"", -0.05)]  # the end-of-text token is sent with no text
    cases = [
        (llama_native_events(eos, stop_type="eos"), 8, "eos"),
        (llama_native_events(LLAMA_TOKENS, stop_type="limit", truncated=True), 50, "context"),
        (llama_native_events(LLAMA_TOKENS, stop_type="word"), 50, "stop"),
        (llama_native_events(LLAMA_TOKENS, stop_type="none"), 50, "error"),
    ]
    for events, max_tokens, reason in cases:
        with llama_server(events) as server:
            backend = OpenAIBackend(server.base_url, None)
            chunks, end = run(backend, GenOptions(max_tokens=max_tokens))
            backend.close()
        assert end.reason == reason, (reason, end)
        assert len(chunks) == events[-1]["tokens_predicted"]
    assert [c.piece for c in run_eos_chunks(eos)] == [b" a", b""]


def run_eos_chunks(tokens: list[tuple[int, bytes, float]]) -> list[TokenChunk]:
    with llama_server(llama_native_events(tokens, stop_type="eos")) as server:
        backend = OpenAIBackend(server.base_url, None)
        chunks, _ = run(backend, GenOptions(max_tokens=8))
        backend.close()
    return chunks


def test_llama_server_limit_inside_a_character_keeps_the_count() -> None:
    tokens = [*LLAMA_TOKENS, (1008, b"\xf0\x9f", -0.5)]  # the last token only starts a character
    with llama_server(llama_native_events(tokens)) as server:
        backend = OpenAIBackend(server.base_url, None)
        chunks, end = run(backend, GenOptions(max_tokens=8))
        backend.close()
    assert len(chunks) == 8 and chunks[-1].id == -1 and chunks[-1].piece == b""
    assert end.reason == "length" and end.server["unsent"] == [7, 1]  # type: ignore[attr-defined]
    assert 7 in end.server["no_logprob"] and not end.server["count_mismatch"]  # type: ignore[attr-defined]


def test_llama_server_identity_from_models_meta_and_props() -> None:
    with llama_server(llama_native_events(LLAMA_TOKENS)) as server:
        card = ModelCard(id="smollm2-remote", name="SmolLM2 (server)", family="smollm2", backends=["openai"],
                         source={"url": server.base_url}, n_params=None)
        backend = OpenAIBackend.from_card(card)
        d = backend.describe()
        backend.close()
    assert d["id"] == "smollm2-remote" and d["served_model"] == "smollm2"
    assert d["n_params"] == LLAMA_META["n_params"] and d["n_params_source"] == "server"
    assert (d["n_vocab"], d["n_ctx"], d["n_ctx_train"]) == (49152, 1024, 8192)
    assert d["quantization"] == "Q4_1" and d["size_bytes"] == LLAMA_META["size"]
    assert d["file"] == "SmolLM2-135M-Instruct-Q4_1.gguf" and d["server_build"] == "b11434-0123abcd"
    assert d["server"] == "llama-server" and d["endpoint"] == "/completion" and d["logprobs_mode"] == "raw_logprobs"


def test_llama_server_through_v1_completions_is_flagged_not_relabelled() -> None:
    """Forced onto /v1/completions, llama-server merges tokens without saying how many: the
    count disagrees with usage, which is flagged; the finish reason stays the server's."""
    events = []
    for e in llama_native_events(LLAMA_TOKENS)[:-1]:
        p = e["completion_probabilities"][0]
        events.append({"choices": [{"text": e["content"], "index": 0, "logprobs": {"content": [p]},
                                    "finish_reason": None}], "object": "text_completion", "model": "smollm2"})
    events.append({"choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "length"}],
                   "usage": {"completion_tokens": 7, "prompt_tokens": 12, "total_tokens": 19},
                   "object": "text_completion", "model": "smollm2"})
    routes = {("GET", "/v1/models"): Reply(json=llama_models()),
              ("POST", "/v1/completions"): Reply(events=events, done=True)}
    with FakeServer(routes) as server:
        backend = OpenAIBackend(server.base_url, None, protocol="openai")
        chunks, end = run(backend, GenOptions(max_tokens=7, top_logprobs=2))
        body = server.posted("/v1/completions")[0]
        backend.close()
    assert len(chunks) == 4 and b"".join(c.piece for c in chunks).decode() == "東京🌸 ok"
    assert end.reason == "length"  # not "context": the server generated all 7
    assert end.server["count_mismatch"] is True and end.server["completion_tokens"] == 7  # type: ignore[attr-defined]
    assert "the server counted 7 tokens, 4 were streamed" in end.detail
    assert body["stream_options"] == {"include_usage": True} and "return_tokens_as_token_ids" not in body


def test_generated_sample_records_the_server_report(tmp_path: Path) -> None:
    with llama_server(llama_native_events(LLAMA_TOKENS)) as server:
        card = ModelCard(id="smollm2-remote", name="SmolLM2", family="smollm2", backends=["openai"],
                         source={"url": server.base_url})
        plan = GenerationPlan(models=[ModelJob(card, "openai")], prompts=[{"text": PROMPT, "name": "p1"}],
                              samples=1, options=GenOptions(max_tokens=7, top_logprobs=2))
        result = run_generation(tmp_path / "s", plan)
    assert result.generated == 1 and not result.errors
    (sample,) = read_samples(tmp_path / "s")
    assert sample["schema"] == "lmread.sample/1" and sample["finish_reason"] == "length"
    assert sample["text"] == "東京🌸 ok" and len(sample["tokens"]["ids"]) == 7
    assert sample["tokens"]["offsets"] == [0, 1, 1, 2, 2, 2, 3, 6]
    assert sample["tokens"]["logprob"][1] is None and sample["tokens"]["logprob"][2] == -0.01
    assert sample["server"]["merged"] == [[1, 2], [3, 3]] and sample["server"]["completion_tokens"] == 7
    assert sample["model"]["n_params"] == LLAMA_META["n_params"]
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "annotations/schema/sample.schema.json").read_text())
    jsonschema.validate(sample, schema)


# --------------------------------------------------------------------------------------------
# vLLM


def vllm_server(events: list[dict[str, Any]] | None = None, extra: dict[Any, Reply] | None = None) -> FakeServer:
    routes: dict[tuple[str, str], Any] = {("GET", "/v1/models"): Reply(json=vllm_models())}
    if events is not None:
        routes[("POST", "/v1/completions")] = Reply(events=events, done=True)
    routes.update(extra or {})
    return FakeServer(routes)


def test_vllm_token_id_keys_and_usage() -> None:
    groups = [[(11, -0.1)], [(12, -0.2), (13, -0.3)], [(14, -0.4)], [(15, -0.6)]]
    texts = ["A", "BC", "", "日"]  # 14 only starts a character: vLLM sends no text for it
    with vllm_server(vllm_events(groups, texts)) as server:
        backend = OpenAIBackend(server.base_url, None)
        chunks, end = run(backend, GenOptions(max_tokens=5, top_logprobs=2))
        body = server.posted("/v1/completions")[0]
        backend.close()
    assert body["return_tokens_as_token_ids"] is True and body["stream_options"] == {"include_usage": True}
    assert body["logprobs"] == 2 and body["model"] == VLLM_MODEL
    assert [c.id for c in chunks] == [11, 12, 13, 14, 15]
    assert [c.piece for c in chunks] == [b"A", b"", b"BC", b"", "日".encode()]
    assert [c.logprob for c in chunks] == [-0.1, -0.2, -0.3, -0.4, -0.6]  # every token its own
    assert chunks[0].top_ids == [11, 12] and chunks[0].rank == 1
    assert end.reason == "length"
    assert end.server["merged"] == [[1, 2]] and "no_logprob" not in end.server  # type: ignore[attr-defined]
    assert end.server["completion_tokens"] == 5 and not end.server["count_mismatch"]  # type: ignore[attr-defined]


def test_vllm_count_disagreement_is_flagged() -> None:
    with vllm_server(vllm_events([[(11, -0.1)], [(12, -0.2)]], ["a", "b"], usage_tokens=3)) as server:
        backend = OpenAIBackend(server.base_url, None)
        chunks, end = run(backend, GenOptions(max_tokens=3))
        backend.close()
    assert len(chunks) == 2 and end.reason == "length"
    assert end.server["count_mismatch"] is True  # type: ignore[attr-defined]


def test_vllm_stop_reasons() -> None:
    for finish, stop_reason, reason in (("stop", None, "eos"), ("stop", "###", "stop"), ("stop", 2, "eos")):
        with vllm_server(vllm_events([[(11, -0.1)]], ["a"], finish=finish, stop_reason=stop_reason)) as server:
            backend = OpenAIBackend(server.base_url, None)
            _, end = run(backend, GenOptions(max_tokens=3))
            backend.close()
        assert end.reason == reason


def test_vllm_max_logprobs_is_a_clear_error() -> None:
    error = {"object": "error", "message": "Requested sample logprobs of 12, which is greater than max allowed: 8",
             "type": "BadRequestError", "param": None, "code": 400}
    with vllm_server(extra={("POST", "/v1/completions"): Reply(json=error, status=400)}) as server:
        backend = OpenAIBackend(server.base_url, None)  # default limit: vLLM's default 20
        with pytest.raises(BackendError) as info:
            list(backend.stream(PROMPT, GenOptions(max_tokens=3, top_logprobs=12)))
        assert "greater than max allowed: 8" in str(info.value) and "HTTP 400" in str(info.value)
        limited = OpenAIBackend(server.base_url, None, max_logprobs=8)
        n_posts = len(server.posted("/v1/completions"))
        with pytest.raises(OptionError) as info2:
            list(limited.stream(PROMPT, GenOptions(max_tokens=3, top_logprobs=12)))
        assert len(server.posted("/v1/completions")) == n_posts  # refused before any request
        backend.close()
        limited.close()
    assert str(info2.value).startswith("invalid option --top-logprobs 12: the vLLM server at")
    assert "at most 8 (its --max-logprobs)" in str(info2.value)


def test_vllm_identity_and_n_params_from_the_card() -> None:
    with vllm_server() as server:
        card = ModelCard(id="smol-vllm", name="SmolLM2 on vLLM", family="smollm2", backends=["openai"],
                         source={"url": server.base_url, "model": VLLM_MODEL})
        b1, b2 = OpenAIBackend.from_card(card), OpenAIBackend.from_card(card, n_params=134_515_008)
        d, d2 = b1.describe(), b2.describe()
        b1.close()
        b2.close()
    assert d["server"] == "vllm" and d["max_model_len"] == 8192 and d["n_ctx"] == 8192
    assert d["n_params"] is None and d["n_params_source"] is None and d["logprobs_mode"] == "raw_logprobs"
    assert d2["n_params"] == 134_515_008 and d2["n_params_source"] == "card"


def test_llama_server_repetition_penalty_looks_at_the_whole_context() -> None:
    with llama_server(llama_native_events(LLAMA_TOKENS)) as server:
        backend = OpenAIBackend(server.base_url, None)
        run(backend, GenOptions(max_tokens=7))
        run(backend, GenOptions(max_tokens=7, repetition_penalty=1.1))
        plain, penalized = server.posted("/completion")
        backend.close()
    assert plain["repeat_last_n"] == 0 and penalized["repeat_last_n"] == LLAMA_META["n_ctx"]
    assert penalized["repeat_penalty"] == 1.1
