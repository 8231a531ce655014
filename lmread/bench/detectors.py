"""Machine readers benchmark: ``lmread annotate`` with every detector over a study of 2,000
samples of 1,000 tokens (with full distributions: logprob, rank, entropy, top-5), measured in the
same run as a plain load of that study and reported beside it.

Target: annotate (opening and loading the study included, marks written and fsynced) in at
most 10 s.  Detectors never read the top-k alternatives, so annotate opens the study with
``top_k=False`` (the samples file parsed without them); the full plain load and that lighter load
are both timed and reported beside it.  The study is synthetic (written once into a temporary folder): word tokens, a loop
injected into a quarter of the samples, a special token into a tenth, an improbable stretch into
a tenth.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from lmread.bench.result import BenchResult
from lmread.records import Prompt, Sample, Tokens


def synthetic_sample(i: int, n_tokens: int, rng: np.random.Generator, vocab: int = 800) -> Sample:
    """One sample of ``n_tokens`` word tokens with distributions; some fall by design."""
    ids = rng.integers(0, vocab, n_tokens)
    kind = i % 20
    if kind < 5:  # a loop from a random point on
        start = int(rng.integers(50, n_tokens - 200))
        period = int(rng.integers(3, 40))
        reps = (n_tokens - start) // period + 1
        ids[start:] = np.tile(ids[start - period:start], reps)[: n_tokens - start]
    pieces = [f" w{t}" for t in ids.tolist()]
    if kind == 5 or kind == 6:
        pieces[int(rng.integers(5, n_tokens))] = "<start_of_image>"
    rank = np.where(rng.random(n_tokens) < 0.97, rng.geometric(0.45, n_tokens), rng.integers(50, 3000, n_tokens))
    if kind in (7, 8):
        at = int(rng.integers(10, n_tokens - 10))
        rank[at:at + 5] = 5000
    logprob = -np.log(rank + 0.5) - rng.random(n_tokens)
    entropy = rng.gamma(4.0, 0.6, n_tokens)
    text = "".join(pieces)
    offsets = np.concatenate(([0], np.cumsum([len(p) for p in pieces]))).tolist()
    top_ids = [[int(t), 1, 2, 3, 4] for t in ids.tolist()]
    top_lp = [[-0.5, -1.5, -2.5, -3.5, -4.5]] * n_tokens
    top_pieces = [[p, " a", " b", " c", " d"] for p in pieces]
    tokens = Tokens(ids=ids.tolist(), offsets=offsets, nbytes=[len(p.encode()) for p in pieces],
                    logprob=logprob.tolist(), rank=rank.tolist(), entropy=entropy.tolist(),
                    top_ids=top_ids, top_logprobs=top_lp, top_pieces=top_pieces)
    return Sample(id=f"s_bench{i:06d}", model={"id": f"bench-{i % 2}", "n_params": 10 ** (8 + i % 2)},
                  backend="scripted", prompt=Prompt.of({"text": "Once"}), settings={"temperature": 1.0}, seed=i,
                  text=text, tokens=tokens, finish_reason="length")


def write_study(path: Path, n_samples: int, n_tokens: int, seed: int = 0) -> Path:
    """A synthetic study folder for the benchmark."""
    from lmread.study import SAMPLES_FILE, Study

    st = Study.create(path, shuffle_seed=seed)
    rng = np.random.default_rng(seed)
    with open(path / SAMPLES_FILE, "wb") as fh:
        for i in range(n_samples):
            fh.write(synthetic_sample(i, n_tokens, rng).dumps())
    return st.path


def run(quick: bool = False) -> list[BenchResult]:
    """Time a plain load and ``annotate`` with every detector, side by side on one study."""
    from lmread.detectors import DETECTORS, resolve
    from lmread.detectors.annotate import annotate
    from lmread.study import Study

    n_samples = 400 if quick else 2000
    n_tokens = 1000
    with tempfile.TemporaryDirectory(prefix="lmread-bench-detectors-") as tmp:
        path = write_study(Path(tmp) / "study", n_samples, n_tokens)
        size = (path / "samples.jsonl").stat().st_size
        specs = resolve(list(DETECTORS), [])
        t0 = time.perf_counter()
        loaded = len(Study.open(path).samples)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        light = len(Study.open(path, top_k=False).samples)
        light_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = annotate(Study.open(path, top_k=False), specs)
        annotate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = annotate(Study.open(path, top_k=False), specs)
        rerun_s = time.perf_counter() - t0
    details = {"samples": loaded, "tokens_per_sample": n_tokens, "study_bytes": size, "plain_load_s": load_s,
               "load_without_top_k_s": light_s, "detect_and_write_s": annotate_s - light_s, "rerun_s (adds nothing)": rerun_s,
               "added": {d.annotator: d.added for d in report.detectors},
               "falls": {d.annotator: d.falls for d in report.detectors},
               "rerun_added": sum(d.added for d in again.detectors)}
    return [
        BenchResult("annotate, every detector (load included)", annotate_s, "s",
                    target=None if quick else 10.0, comparison="<=", details=details),
        BenchResult("plain load of the same study", load_s, "s", details={"samples": loaded}),
        BenchResult("load without top-k (what annotate reads)", light_s, "s", details={"samples": light}),
    ]
