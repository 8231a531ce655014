"""Speed of the instrumented transformers stream, measured side by side with ``model.generate()``.

For each bundled model (its GGUF dequantized by transformers), two generators produce the same
number of new tokens from the same prompt with the same sampling (temperature 1, no truncation,
no repetition penalty, end-of-text ignored / ``min_new_tokens`` forcing the length, KV cache on),
interleaved over repeated trials on the same loaded model; the medians of the tokens/s give

* ``hf_instrumented_vs_generate``: lmread's stream (logprob, rank, entropy and top-5 of every
  token, computed on the device) over plain ``model.generate()`` (target >= 0.90);
* ``hf_batched_vs_sequential_b8``: 8 samples of the prompt drawn in one batch (``stream_batch``:
  one forward pass per step for all 8, each row sampled with its own seed) over the same 8 drawn
  one after the other with the stream, in generated tokens per second (target >= 3).
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
BATCH = 8
BATCH_TARGET = 3.0


def _timed(fn: Callable[[], int]) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn()
    return time.perf_counter() - t0, n


def _bench_model(model_id: str, n_tokens: int, trials: int) -> list[BenchResult]:
    from lmread.backends.base import GenOptions, TokenChunk
    from lmread.backends.hf import HFBackend
    from lmread.catalog import load_catalog
    from lmread.config import load_settings
    from lmread.generate import limited_batch, limited_stream

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
    single = BenchResult(
        name="hf_instrumented_vs_generate",
        value=med["stream"] / med["generate"],
        unit="ratio",
        target=TARGET,
        comparison=">=",
        model=model_id,
        details=details,
    )
    batch_opts = [GenOptions(max_tokens=n_tokens, temperature=1.0, seed=SEED + i, top_logprobs=5) for i in range(BATCH)]

    def run_sequential() -> int:
        return sum(sum(isinstance(item, TokenChunk) for item in limited_stream(backend, PROMPT, o, ignore_eos=True))
                   for o in batch_opts)

    def run_batched() -> int:
        return sum(isinstance(item, TokenChunk)
                   for _, item in limited_batch(backend, PROMPT, batch_opts, ignore_eos=True))

    run_batched()  # warm up the batched shapes
    brates: dict[str, list[float]] = {"batched": [], "sequential": []}
    for trial in range(max(1, trials // 2)):
        border: list[tuple[str, Callable[[], int]]] = [("batched", run_batched), ("sequential", run_sequential)]
        if trial % 2:
            border.reverse()
        for name, fn in border:
            seconds, n = _timed(fn)
            if n != BATCH * n_tokens:
                raise RuntimeError(f"{name} produced {n} tokens instead of {BATCH * n_tokens}")
            brates[name].append(n / seconds)
    bmed = {name: statistics.median(values) for name, values in brates.items()}
    backend.close()
    batched = BenchResult(
        name=f"hf_batched_vs_sequential_b{BATCH}",
        value=bmed["batched"] / bmed["sequential"],
        unit="ratio",
        target=BATCH_TARGET,
        model=model_id,
        details={"batched_tokens_per_s": round(bmed["batched"], 2), "sequential_tokens_per_s": round(bmed["sequential"], 2),
                 "batch": BATCH, "n_tokens": n_tokens, "device": str(backend.device), "threads": torch.get_num_threads(),
                 "batched_all": [round(v, 2) for v in brates["batched"]],
                 "sequential_all": [round(v, 2) for v in brates["sequential"]]},
    )
    return [single, batched]


def run(quick: bool) -> list[BenchResult]:
    """``hf_instrumented_vs_generate`` and ``hf_batched_vs_sequential_b8`` per bundled model."""
    import importlib.util

    for lib in ("torch", "transformers", "gguf"):
        if importlib.util.find_spec(lib) is None:
            raise ImportError(f"the hf benchmark needs {lib}")
    n_tokens, trials = (32, 3) if quick else (64, 5)
    return [result for model_id in MODELS for result in _bench_model(model_id, n_tokens, trials)]
