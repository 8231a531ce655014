"""Speed of the instrumented transformers stream, measured side by side with ``model.generate()``.

For each bundled model (its GGUF dequantized by transformers), two generators produce the same
number of new tokens from the same prompt with the same sampling (temperature 1, no truncation,
no repetition penalty, end-of-text ignored / ``min_new_tokens`` forcing the length, KV cache on),
interleaved over repeated trials on the same loaded model; the medians of the tokens/s give

* ``hf_instrumented_vs_generate``: lmread's stream (logprob, rank, entropy and top-5 of every
  token, computed on the device) over plain ``model.generate()`` (target >= 0.90).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from lmread.bench.result import BenchResult

MODELS = ("smollm2-135m", "gemma3-270m")
PROMPT = "The old lighthouse keeper opened his logbook and wrote:"
SEED = 1234
TARGET = 0.90


def _timed(fn: Callable[[], int]) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn()
    return time.perf_counter() - t0, n


def _bench_model(model_id: str, n_tokens: int, trials: int) -> BenchResult:
    from lmread.backends.base import GenOptions, TokenChunk
    from lmread.backends.hf import HFBackend
    from lmread.catalog import load_catalog
    from lmread.config import load_settings
    from lmread.generate import limited_stream

    card = load_catalog(load_settings()).get(model_id)
    backend = HFBackend.from_card(card)
    torch = backend._torch
    model = backend.model
    ids = backend._prompt_ids(PROMPT)
    input_ids = torch.tensor([ids], device=backend.device)
    mask = torch.ones_like(input_ids)
    pad = min(backend.eos_ids) if backend.eos_ids else 0
    opts = GenOptions(max_tokens=n_tokens, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=SEED, top_logprobs=5)

    def run_stream() -> int:
        return sum(isinstance(item, TokenChunk) for item in limited_stream(backend, PROMPT, opts, ignore_eos=True))

    def run_generate() -> int:
        torch.manual_seed(SEED)
        with torch.inference_mode():
            out = model.generate(
                input_ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                min_p=None, repetition_penalty=1.0, max_new_tokens=n_tokens, min_new_tokens=n_tokens,
                use_cache=True, pad_token_id=pad,
            )
        return int(out.shape[1] - input_ids.shape[1])

    run_stream()  # warm up both paths (first calls allocate)
    run_generate()
    rates: dict[str, list[float]] = {"stream": [], "generate": []}
    for trial in range(trials):
        order: list[tuple[str, Callable[[], int]]] = [("stream", run_stream), ("generate", run_generate)]
        if trial % 2:
            order.reverse()
        for name, fn in order:
            seconds, n = _timed(fn)
            if n != n_tokens:
                raise RuntimeError(f"{name} produced {n} tokens instead of {n_tokens}")
            rates[name].append(n / seconds)
    med = {name: statistics.median(values) for name, values in rates.items()}
    details: dict[str, Any] = {
        "stream_tokens_per_s": round(med["stream"], 2),
        "generate_tokens_per_s": round(med["generate"], 2),
        "n_tokens": n_tokens,
        "trials": trials,
        "device": str(backend.device),
        "threads": torch.get_num_threads(),
        "stream_all": [round(v, 2) for v in rates["stream"]],
        "generate_all": [round(v, 2) for v in rates["generate"]],
    }
    backend.close()
    return BenchResult(
        name="hf_instrumented_vs_generate",
        value=med["stream"] / med["generate"],
        unit="ratio",
        target=TARGET,
        comparison=">=",
        model=model_id,
        details=details,
    )


def run(quick: bool) -> list[BenchResult]:
    """One ``hf_instrumented_vs_generate`` result per bundled model."""
    import importlib.util

    for lib in ("torch", "transformers", "gguf"):
        if importlib.util.find_spec(lib) is None:
            raise ImportError(f"the hf benchmark needs {lib}")
    n_tokens, trials = (32, 3) if quick else (64, 5)
    return [_bench_model(model_id, n_tokens, trials) for model_id in MODELS]
