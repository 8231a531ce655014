"""Speed of the instrumented llama.cpp stream, measured side by side with llama-cpp-python itself.

For each bundled model, three generators produce the same number of tokens from the same prompt
with the same sampling settings (temperature 1, no truncation, fixed seed, end-of-generation
ignored), interleaved over repeated trials; the medians of the tokens/s give two ratios:

* ``llamacpp_instrumented_vs_raw``: lmread's stream (logprob, rank, entropy and top-5 of every
  token) over a bare ``Llama.generate()`` loop on the same loaded model (target >= 0.95);
* ``llamacpp_instrumented_vs_create_completion``: lmread's stream over llama-cpp-python's
  ``create_completion(stream=True, logprobs=5)``, which needs ``logits_all=True`` (a second
  ``Llama`` instance of the same file); target >= 10 on Gemma 3 270M (262k vocabulary), reported
  without a target for SmolLM2.

llama.cpp runs on all cores unless ``LMREAD_BENCH_THREADS`` says otherwise: its worker threads
spin at every barrier, so on a machine busy with other work one thread gives steadier numbers.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from lmread.bench.result import BenchResult

MODELS = ("smollm2-135m", "gemma3-270m")
PROMPT = "The old lighthouse keeper opened his logbook and wrote:"
SEED = 1234
N_CTX = 512


def _timed(fn: Callable[[], int]) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn()
    return time.perf_counter() - t0, n


def _bench_model(model_id: str, n_tokens: int, trials: int, cc_trials: int,
                 n_threads: int | None) -> list[BenchResult]:
    import llama_cpp

    from lmread.backends.base import GenOptions, TokenChunk
    from lmread.backends.llamacpp import LlamaCppBackend
    from lmread.catalog import load_catalog
    from lmread.config import load_settings
    from lmread.generate import limited_stream

    card = load_catalog(load_settings()).get(model_id)
    path = card.resolve_path()
    backend = LlamaCppBackend.from_card(card, n_ctx=N_CTX, n_threads=n_threads)
    full = llama_cpp.Llama(
        model_path=str(path), n_ctx=N_CTX, n_threads=backend.n_threads, n_threads_batch=backend.n_threads,
        logits_all=True, seed=SEED, verbose=False,
    )
    opts = GenOptions(max_tokens=n_tokens, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=SEED, top_logprobs=5)
    raw = backend._llama  # the same loaded model and context the stream uses
    raw.set_seed(SEED)
    prompt_ids = raw.tokenize(PROMPT.encode("utf-8"), add_bos=True)

    def run_stream() -> int:
        n = 0
        for item in limited_stream(backend, PROMPT, opts, ignore_eos=True):
            if isinstance(item, TokenChunk):
                n += 1
        return n

    def run_raw() -> int:
        raw.reset()
        n = 0
        for _ in raw.generate(prompt_ids, top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0, temp=1.0,
                              repeat_penalty=1.0, reset=True):
            n += 1
            if n >= n_tokens:
                break
        return n

    def run_cc() -> int:
        full.reset()
        n = 0
        for chunk in full.create_completion(PROMPT, max_tokens=n_tokens, temperature=1.0, top_k=0, top_p=1.0,
                                        min_p=0.0, repeat_penalty=1.0, seed=SEED, logprobs=5, stream=True):
            logprobs = chunk["choices"][0].get("logprobs") or {}
            n += len(logprobs.get("tokens") or [])
        return n

    rates: dict[str, list[float]] = {"stream": [], "raw": [], "create_completion": []}
    counts: dict[str, list[int]] = {k: [] for k in rates}
    runners = {"stream": run_stream, "raw": run_raw, "create_completion": run_cc}
    run_stream()  # warm up (page in the weights, fill caches)
    run_raw()
    for trial in range(trials):
        order = ["stream", "raw"] if trial % 2 == 0 else ["raw", "stream"]
        if trial < cc_trials:
            order.insert(trial % 3, "create_completion")
        for name in order:
            dt, n = _timed(runners[name])
            rates[name].append(n / dt)
            counts[name].append(n)
    backend.close()
    full.close()

    med = {k: statistics.median(v) for k, v in rates.items() if v}
    details: dict[str, Any] = {
        "tokens_per_s_median": med,
        "tokens_per_s": rates,
        "tokens": counts,
        "n_tokens": n_tokens,
        "trials": trials,
        "create_completion_trials": cc_trials,
        "n_threads": backend.n_threads,
        "n_vocab": backend.n_vocab,
        "prompt": PROMPT,
        "sampling": "temperature 1, top_k 0, top_p 1, min_p 0, seed fixed, eos ignored (create_completion stops at eos)",
        "llama_cpp_python": llama_cpp.__version__,
    }
    return [
        BenchResult(
            name="llamacpp_instrumented_vs_raw",
            value=med["stream"] / med["raw"],
            unit="x",
            target=0.95,
            model=model_id,
            details=details,
        ),
        BenchResult(
            name="llamacpp_instrumented_vs_create_completion",
            value=med["stream"] / med["create_completion"],
            unit="x",
            target=10.0 if model_id == "gemma3-270m" else None,
            model=model_id,
            details=details,
        ),
    ]


def run(quick: bool) -> list[BenchResult]:
    """Measure both ratios on each bundled model (``quick``: fewer, shorter trials)."""
    n_tokens, trials, cc_trials = (48, 3, 1) if quick else (128, 7, 3)
    threads = os.environ.get("LMREAD_BENCH_THREADS", "").strip()
    n_threads = int(threads) if threads.isdigit() and int(threads) > 0 else None
    results: list[BenchResult] = []
    for model_id in MODELS:
        results.extend(_bench_model(model_id, n_tokens, trials, cc_trials, n_threads))
    return results
