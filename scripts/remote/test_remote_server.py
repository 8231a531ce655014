"""The openai backend's suite against a real server given by URL (a vLLM on a GPU box, or any
OpenAI-compatible server): run by scripts/vllm-suite.sh, never by the default test run.

Environment: ``LMREAD_REMOTE_URL`` (required), ``LMREAD_REMOTE_MODEL`` (the served model name;
default: the server's first), ``LMREAD_REMOTE_KEY_ENV`` (the variable holding an API key, if any),
``LMREAD_REMOTE_N_PARAMS`` (the parameter count, when the server does not publish it).
Runs the backend contract suite (tests/backends/test_contract.py) on it, then the CJK/emoji
prompt, 4 concurrent streams and vLLM's token-id keys and logprob limit.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk
from lmread.backends.openai import OpenAIBackend
from lmread.catalog import ModelCard
from lmread.errors import OptionError
from lmread.generate import GenerationPlan, ModelJob, run_generation
from tests.backends.test_contract import (  # noqa: F401  (collected here, run on the remote backend)
    test_cancel_stops_the_stream,
    test_describe_names_the_model,
    test_distribution_fields_are_consistent,
    test_invalid_options_raise,
    test_pieces_assemble_exactly,
    test_respects_max_tokens,
    test_stream_is_chunks_then_one_end,
)
from tests.generate.test_generate import read_samples

URL = os.environ.get("LMREAD_REMOTE_URL", "")
CJK = "東京の朝は静かだ。🌸 Café crème, naïve façade — continue:"

if not URL:
    pytest.exit("set LMREAD_REMOTE_URL to the server's URL (see scripts/vllm-suite.sh)", returncode=2)


def _options() -> dict[str, Any]:
    n_params = os.environ.get("LMREAD_REMOTE_N_PARAMS")
    return {"api_key_env": os.environ.get("LMREAD_REMOTE_KEY_ENV") or None,
            "n_params": int(n_params) if n_params else None}


@pytest.fixture(scope="module")
def backend() -> Iterator[OpenAIBackend]:
    b = OpenAIBackend(URL, os.environ.get("LMREAD_REMOTE_MODEL") or None, concurrency=4, **_options())
    try:
        yield b
    finally:
        b.close()


def test_cjk_emoji_samples_match_the_servers_count(tmp_path: Path) -> None:
    card = ModelCard(id="remote", name="remote", family="remote", backends=["openai"],
                     source={"url": URL, "model": os.environ.get("LMREAD_REMOTE_MODEL") or None})
    opts = {k: v for k, v in {**_options(), "concurrency": 2}.items() if v is not None}
    plan = GenerationPlan(models=[ModelJob(card, "openai", opts)], prompts=[{"text": CJK, "name": "cjk"}],
                          samples=2, options=GenOptions(max_tokens=64, top_logprobs=5), base_seed=1)
    result = run_generation(tmp_path / "s", plan)
    assert result.generated == 2 and not result.errors, result.errors
    for s in read_samples(tmp_path / "s"):
        server = s["server"]
        assert not server["count_mismatch"]
        if server["completion_tokens"] is not None:  # vLLM and llama-server count; some servers do not
            assert len(s["tokens"]["ids"]) == server["completion_tokens"]
        assert s["finish_reason"] in ("length", "eos")
        if server["kind"] == "vllm":
            assert all(i >= 0 for i in s["tokens"]["ids"])  # ids from the token_id keys
            assert all(lp is not None for lp in s["tokens"]["logprob"])
            assert s["model"]["logprobs_mode"] == "raw_logprobs" and s["model"]["max_model_len"]


def test_four_concurrent_streams(backend: OpenAIBackend) -> None:
    results: dict[int, Any] = {}

    def worker(i: int) -> None:
        try:
            results[i] = list(backend.stream(CJK, GenOptions(max_tokens=32, seed=10 + i, top_logprobs=2)))
        except Exception as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    for items in results.values():
        assert not isinstance(items, Exception), items
        end = items[-1]
        assert isinstance(end, StreamEnd) and end.reason in ("length", "eos")
        counted = end.server["completion_tokens"]  # type: ignore[attr-defined]
        assert counted is None or sum(isinstance(i, TokenChunk) for i in items) == counted
    assert len(results) == 4


def test_vllm_logprob_limit_is_a_clear_error(backend: OpenAIBackend) -> None:
    if backend.server_kind() != "vllm":
        return
    limited = OpenAIBackend(URL, backend.model, max_logprobs=4, **_options())
    with pytest.raises(OptionError, match="at most 4 \\(its --max-logprobs\\)"):
        list(limited.stream(CJK, GenOptions(max_tokens=2, top_logprobs=5)))
    limited.close()
