"""The in-process judge next to the model's own speed on the same tokens (issue 19).

Samples of exactly 200 SmolLM2 tokens (windows of the built-in prompt texts) are judged by
``lmread judge``'s own code path (:func:`lmread.judge.runner.run_judge` with the in-process
llama.cpp engine: prompt building, a schema-constrained answer, parsing, localization, writing
marks), one sample per study.  Right after each answer, the model's own cost of the same work is
measured on the same loaded model, under the same machine load: a prefill of as many tokens as
the judge's prompt had, then one decode step per answer token, with no chat template, grammar,
parsing or files.  The judge's reuse of the prompt prefix it shares with the previous answer is
turned off here, so both evaluate every prompt whole (in use, that reuse makes it faster still).

``judge_overhead`` = the median over samples of (judge time / model-only time) - 1, target <=
0.10 (the median keeps a burst of other work on the machine from deciding it).  The time per
sample and the model's prefill rate are reported beside it.  The default run judges 10 samples
(``--quick``: 4); ``LMREAD_BENCH_JUDGE_SAMPLES=100`` runs the issue's full 100.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from lmread.bench.result import BenchResult

MODEL = "smollm2-135m"
SAMPLE_TOKENS = 200
N_CTX = 2048


def _samples(backend: Any, count: int) -> list[Any]:
    """``count`` samples of exactly :data:`SAMPLE_TOKENS` tokens cut from the built-in prompts."""
    from lmread.prompts import builtin_set
    from lmread.records import Prompt, Sample, TokenAssembler

    prompts = builtin_set("all")
    corpus = " ".join(p["text"] for p in prompts)
    ids = backend.tokenize(corpus, as_prompt=False)
    while len(ids) < SAMPLE_TOKENS * 2:
        ids = ids + ids
    out = []
    step = max(1, (len(ids) - SAMPLE_TOKENS) // max(1, count))
    for i in range(count):
        start = (i * step) % (len(ids) - SAMPLE_TOKENS)
        asm = TokenAssembler(with_distribution=False)
        for tid in ids[start:start + SAMPLE_TOKENS]:
            asm.add(tid, backend.piece(tid))
        tokens, text, raw = asm.finish()
        out.append(Sample(id=f"s_bench{i:03d}", model={"id": "bench"}, backend="bench",
                          prompt=Prompt.of({"text": prompts[i % len(prompts)]["text"]}), settings={}, seed=0, text=text,
                          tokens=tokens, finish_reason="length", raw=raw))
    return out


def _model_only(backend: Any, n_in: int, n_out: int, filler: list[int]) -> tuple[float, float]:
    """Seconds of a prefill of ``n_in`` tokens and of ``n_out`` single-token decodes."""
    llm = backend._llama  # the same loaded model the judge used
    ids = (filler * (n_in // max(1, len(filler)) + 1))[:n_in]
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(ids)
    t1 = time.perf_counter()
    tok = ids[-1]
    for _ in range(n_out):
        llm.eval([tok])
    t2 = time.perf_counter()
    llm.reset()
    return t1 - t0, t2 - t1


def run(quick: bool) -> list[BenchResult]:
    """Judge samples in process and compare with the model-only time (see the module docstring)."""
    from lmread.backends.llamacpp import LlamaCppBackend
    from lmread.catalog import load_catalog
    from lmread.config import load_settings
    from lmread.judge.engines import JudgeSettings, LlamaCppJudge
    from lmread.judge.runner import run_judge
    from lmread.judge.templates import SHIPPED
    from lmread.study import Study

    env = os.environ.get("LMREAD_BENCH_JUDGE_SAMPLES", "").strip()
    count = int(env) if env.isdigit() and int(env) > 0 else (4 if quick else 10)
    threads = os.environ.get("LMREAD_BENCH_THREADS", "").strip()
    n_threads = int(threads) if threads.isdigit() and int(threads) > 0 else None
    card = load_catalog(load_settings()).get(MODEL)
    backend = LlamaCppBackend.from_card(card, n_ctx=N_CTX, n_threads=n_threads)
    judge = LlamaCppJudge(backend)
    judge.reuse_prefix = False  # the same work as the model-only run: every prompt evaluated whole
    template = SHIPPED["first-wrong"]
    settings = JudgeSettings(max_tokens=96)
    samples = _samples(backend, count)
    filler = backend.tokenize(" ".join(s.text for s in samples[:2]), as_prompt=False)
    judge_s: list[float] = []
    prefill_s: list[float] = []
    decode_s: list[float] = []
    tokens_in: list[int] = []
    tokens_out: list[int] = []
    ratios: list[float] = []
    with tempfile.TemporaryDirectory(prefix="lmread-bench-judge-") as tmp:
        # warm up: page in the weights, build the grammar once
        warm = Study.create(Path(tmp) / "warm", shuffle_seed=0)
        warm.add_samples(samples[:1])
        run_judge(warm, judge, [template], settings)
        for i, sample in enumerate(samples):
            st = Study.create(Path(tmp) / f"s{i}", shuffle_seed=0)
            st.add_samples([sample])
            t0 = time.perf_counter()
            run_judge(st, judge, [template], settings)
            judged = time.perf_counter() - t0
            ((_, mark),) = st.current_marks().items()
            det = mark.detector or {}
            n_in, n_out = int(det["tokens"]["in"]), int(det["tokens"]["out"])
            p, d = _model_only(backend, n_in, n_out, filler)  # right after, under the same load
            judge_s.append(judged)
            prefill_s.append(p)
            decode_s.append(d)
            tokens_in.append(n_in)
            tokens_out.append(n_out)
            ratios.append(judged / (p + d))
    backend.close()
    total_judge = sum(judge_s)
    total_model = sum(prefill_s) + sum(decode_s)
    overhead = statistics.median(ratios) - 1.0
    prefill_rate = sum(tokens_in) / sum(prefill_s)
    details: dict[str, Any] = {
        "samples": count,
        "sample_tokens": SAMPLE_TOKENS,
        "template": template.id,
        "overhead_from_totals": total_judge / total_model - 1.0,
        "overhead_per_sample": [r - 1.0 for r in ratios],
        "seconds_per_sample_judge": total_judge / count,
        "seconds_per_sample_model_only": total_model / count,
        "prefill_tokens_per_s": prefill_rate,
        "decode_tokens_per_s": sum(tokens_out) / sum(decode_s) if sum(decode_s) else None,
        "tokens_in_median": statistics.median(tokens_in),
        "tokens_out_median": statistics.median(tokens_out),
        "n_threads": backend.n_threads,
        "max_tokens": settings.max_tokens,
        "prefix_reuse": False,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    return [
        BenchResult(name="judge_overhead", value=overhead, unit="share", target=0.10, comparison="<=",
                    model=MODEL, details=details),
        BenchResult(name="judge_seconds_per_sample", value=total_judge / count, unit="s", model=MODEL,
                    details={"model_only_s": total_model / count, "prefill_tokens_per_s": prefill_rate}),
    ]
