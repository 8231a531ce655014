"""lmread's llama.cpp paths against llama.cpp's own tools, side by side in one run.

For each bundled model (SmolLM2 135M, Gemma 3 270M), on the same threads and with the same
attention settings as lmread's contexts (flash attention off, as llama-cpp-python sets it), the
two sides taking turns trial by trial (medians reported):

* ``native_single_vs_llama_bench``: lmread's instrumented stream (logprob, rank, entropy and
  top-5 of every token, the driver's limits) in tokens/s after the first token, over
  ``llama-bench``'s ``tg`` rate (decoding alone, no sampling); target >= 0.90.
* ``native_parallel_vs_batched_bench_nN`` for N = 1, 4, 8, 16: ``lmread generate --parallel N``'s
  path (N samples of a 16-token prompt, 128 new tokens each, end of text ignored) in generated
  tokens over the wall time, prompt included, over ``llama-batched-bench`` at the same N and
  lengths (``-npp 16 -ntg 128 -npl N``: N x 128 over its total time ``t``); target >= 0.90 at
  N = 8 and 16, reported without one at 1 and 4.
* ``native_parallel_vs_single_nN``: the same aggregate over lmread's own single stream (no target:
  what batching buys on this machine).

The binaries come from ``scripts/build-llama-server.sh`` (``make setup-dev``), found like the
server's (``$LMREAD_LLAMA_SERVER``, the venv's ``llama-server.path``, ``PATH``); a missing one is
reported, and the ratios that need it are left out.  The machine's load average is recorded with
every result: on a shared machine the two sides of a ratio run one after the other, so a change
of load between them moves the ratio.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from lmread.bench.result import BenchResult

MODELS = ("smollm2-135m", "gemma3-270m")
#: a text of about 16 tokens on both tokenizers (the measured count is reported)
PROMPT = "The old lighthouse keeper opened his logbook and wrote down the weather:"
PP = 16
LEVELS = (1, 4, 8, 16)
TARGET = 0.90
TARGET_LEVELS = (8, 16)


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _run_json_lines(cmd: list[str], timeout: float) -> list[dict[str, Any]]:
    done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=True)
    rows: list[dict[str, Any]] = []
    for line in (done.stdout + b"\n" + done.stderr).decode("utf-8", errors="replace").splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def llama_bench_tg(binary: Path, model: Path, threads: int, n_gen: int, reps: int) -> float | None:
    """``llama-bench``'s generation rate (tokens/s of ``tg n_gen``, flash attention off), or None."""
    cmd = [str(binary), "-m", str(model), "-p", "0", "-n", str(n_gen), "-t", str(threads), "-r", str(reps),
           "-fa", "0", "-o", "json"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=900, check=True)
        rows = json.loads(done.stdout.decode("utf-8", errors="replace"))
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    rates = [float(r["avg_ts"]) for r in rows if isinstance(r, dict) and r.get("n_gen") and r.get("avg_ts")]
    return rates[0] if rates else None


def batched_bench(binary: Path, model: Path, threads: int, n_gen: int, levels: tuple[int, ...]) -> dict[int, float]:
    """``llama-batched-bench``'s aggregate rate per level: ``pl x tg`` generated tokens over its
    total time (prompts included), flash attention off; empty when it fails."""
    per_seq = -(-(PP + n_gen) // 256) * 256
    cmd = [str(binary), "-m", str(model), "-c", str(per_seq * max(levels)), "-b", "2048", "-ub", "512",
           "-npp", str(PP), "-ntg", str(n_gen), "-npl", ",".join(str(n) for n in levels), "-t", str(threads),
           "-fa", "off", "--output-format", "jsonl"]
    try:
        rows = _run_json_lines(cmd, 1800)
    except (OSError, subprocess.SubprocessError):
        return {}
    out: dict[int, float] = {}
    for r in rows:
        if {"pl", "tg", "t"} <= r.keys() and float(r["t"]) > 0:
            out[int(r["pl"])] = int(r["pl"]) * int(r["tg"]) / float(r["t"])
    return out


def _bench_model(model_id: str, n_gen: int, trials: int, threads: int | None) -> list[BenchResult]:
    from lmread.backends.base import GenOptions, TokenChunk
    from lmread.backends.llamacpp import LlamaCppBackend
    from lmread.bench.binaries import find_llama_binary
    from lmread.catalog import load_catalog
    from lmread.config import load_settings
    from lmread.generate import limited_parallel, limited_stream

    card = load_catalog(load_settings()).get(model_id)
    path = Path(card.resolve_path())
    backend = LlamaCppBackend.from_card(card, n_ctx=512, n_threads=threads)
    n_threads = backend.n_threads
    prompt_tokens = len(backend.tokenize(PROMPT))

    def single() -> float:
        opts = GenOptions(max_tokens=n_gen, seed=1234, top_logprobs=5)
        stamps = [time.perf_counter() for item in limited_stream(backend, PROMPT, opts, ignore_eos=True)
                  if isinstance(item, TokenChunk)]
        return (len(stamps) - 1) / (stamps[-1] - stamps[0])

    def parallel(n: int, tokens: int = n_gen) -> float:
        reqs = [(PROMPT, GenOptions(max_tokens=tokens, seed=2000 + i, top_logprobs=5)) for i in range(n)]
        t0 = time.perf_counter()
        count = sum(isinstance(item, TokenChunk)
                    for _, item in limited_parallel(backend, reqs, n, ignore_eos=True))
        seconds = time.perf_counter() - t0
        if count != n * tokens:
            raise RuntimeError(f"--parallel {n} produced {count} tokens instead of {n * tokens}")
        return count / seconds

    bench_bin = find_llama_binary("llama-bench")
    batched_bin = find_llama_binary("llama-batched-bench")
    lm_single: list[float] = []
    lm_par: dict[int, list[float]] = {n: [] for n in LEVELS}
    natives: list[float] = []
    batched_runs: list[dict[int, float]] = []

    def lmread_side() -> None:
        lm_single.append(single())
        for n in LEVELS:
            parallel(n, 4)  # a context for n sequences, its first decodes done
            lm_par[n].append(parallel(n))

    def native_side() -> None:
        if bench_bin is not None:
            rate = llama_bench_tg(bench_bin, path, n_threads, n_gen, 1)
            if rate:
                natives.append(rate)
        if batched_bin is not None:
            found = batched_bench(batched_bin, path, n_threads, n_gen, LEVELS)
            if found:
                batched_runs.append(found)

    load_before = _load()
    try:
        single()  # warm up: page in the weights
        for trial in range(trials):  # side by side: the two sides alternate which goes first
            for side in ((lmread_side, native_side) if trial % 2 == 0 else (native_side, lmread_side)):
                side()
    finally:
        backend.close()
    native = statistics.median(natives) if natives else None
    batched = {n: statistics.median(run[n] for run in batched_runs if n in run)
               for n in LEVELS if any(n in run for run in batched_runs)}
    load_after = _load()
    single_med = statistics.median(lm_single)
    common = {"threads": n_threads, "n_gen": n_gen, "prompt_tokens": prompt_tokens, "native_pp": PP,
              "trials": trials, "load_average": [load_before, load_after], "flash_attn": "off (both sides)"}
    results: list[BenchResult] = []
    if native:
        results.append(BenchResult(
            "native_single_vs_llama_bench", single_med / native, "ratio", target=TARGET, model=model_id,
            details={**common, "lmread_tokens_per_s": round(single_med, 2), "llama_bench_tg_tokens_per_s": round(native, 2),
                     "lmread_all": [round(v, 2) for v in lm_single], "llama_bench_all": [round(v, 2) for v in natives],
                     "binary": str(bench_bin)}))
    else:
        results.append(BenchResult("native_single_tokens_per_s", single_med, "tokens/s", model=model_id,
                                   details={**common, "note": "no llama-bench binary: ratio not measured"}))
    for n in LEVELS:
        agg = statistics.median(lm_par[n])
        details = {**common, "parallel": n, "lmread_tokens_per_s": round(agg, 2),
                   "lmread_all": [round(v, 2) for v in lm_par[n]]}
        if n in batched:
            details["batched_bench_tokens_per_s"] = round(batched[n], 2)
            details["batched_bench_all"] = [round(run[n], 2) for run in batched_runs if n in run]
            results.append(BenchResult(f"native_parallel_vs_batched_bench_n{n}", agg / batched[n], "ratio",
                                       target=TARGET if n in TARGET_LEVELS else None, model=model_id, details=details))
        else:
            details["note"] = "no llama-batched-bench result: ratio not measured"
        results.append(BenchResult(f"native_parallel_vs_single_n{n}", agg / single_med, "ratio", model=model_id,
                                   details=details))
    return results


def run(quick: bool) -> list[BenchResult]:
    """The native comparisons for each bundled model (two trials of 128 new tokens; ``quick``:
    one of 32)."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        raise ImportError("the native benchmark needs llama-cpp-python")
    n_gen, trials = (32, 1) if quick else (128, 2)
    threads = os.environ.get("LMREAD_BENCH_THREADS", "").strip()
    n_threads = int(threads) if threads.isdigit() and int(threads) > 0 else None
    results: list[BenchResult] = []
    for model_id in MODELS:
        results.extend(_bench_model(model_id, n_gen, trials, n_threads))
    return results
