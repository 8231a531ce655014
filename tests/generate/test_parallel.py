"""``lmread generate --parallel N``: several samples decoded in one batch per step (issue 20).

The runner's parallel path is checked on a scripted backend that interleaves its sequences the
way llama.cpp's continuous batching does; the llama.cpp decoder itself on both bundled models:
the same sample ids and exact records as one at a time, the same tokens run to run, the
recorded distributions within the README's tolerance of the single stream's on the same tokens,
and a ``--parallel`` that does not fit refused before anything is decoded.
"""

from __future__ import annotations

import base64
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk
from lmread.backends.scripted import ScriptedBackend
from lmread.cli.generate import ProgressBar, format_eta
from lmread.errors import OptionError
from lmread.generate import GenerationPlan, ModelJob, Progress, generate_parallel, generate_sample, run_generation
from tests.generate.test_generate import SCRIPT, NoClose, card_obj, cli, read_samples

#: Largest and mean |logprob| and |entropy| difference (nats) allowed between a token drawn in a
#: batch of 8 and the same token drawn alone (README, "Parallel decoding"): llama.cpp computes
#: several rows with other matmul kernels (repacked K-quants).  Measured on an AMD EPYC: SmolLM2
#: Q4_1 0 (bit-identical), Gemma 3 Q4_K_M up to 0.13, mean about 0.02.
BATCH_TOLERANCE = 0.3
BATCH_MEAN_TOLERANCE = 0.05

PROMPTS = [
    {"text": "The history of the old harbour town begins", "set": "t", "name": "harbour"},
    {"text": "東京の古い港町の歴史は", "set": "t", "name": "tokyo"},
    {"text": "Party emoji: 🎉🥳 and then", "set": "t", "name": "emoji"},
    {"text": "Dear Sir,", "set": "t", "name": "letter"},
]


# --------------------------------------------------------------------------------------------
# a scripted backend with continuous batching


class ParallelScripted(ScriptedBackend):
    """Replays its script for every request, ``n_parallel`` requests in flight, one token of each
    per step (round robin); refuses prompts longer than ``limit`` and more than ``max_parallel``."""

    supports_parallel = True

    def __init__(self, limit: int = 1000, max_parallel: int = 64, **kw: Any) -> None:
        super().__init__(**kw)
        self.limit, self.max_parallel = limit, max_parallel
        self.steps: list[list[int]] = []  # request indexes per step

    def prepare_parallel(self, prompts: Sequence[str], options: GenOptions, n_parallel: int) -> dict[str, str]:
        if n_parallel > self.max_parallel:
            raise OptionError(f"--parallel {n_parallel} does not fit (at most {self.max_parallel})")
        return {p: f"prompt has {len(p)} tokens, the context holds {self.limit}" for p in prompts if len(p) > self.limit}

    def stream_parallel(self, requests: Sequence[tuple[str, GenOptions]], n_parallel: int,
                        cancel: threading.Event | None = None, done: Sequence[threading.Event] | None = None,
                        started: Callable[[int], None] | None = None) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        refused = self.prepare_parallel([p for p, _ in requests], requests[0][1], n_parallel)
        if refused:
            raise OptionError(next(iter(refused.values())))
        return self._run(list(requests), n_parallel, cancel, done, started)

    def _run(self, requests: list[tuple[str, GenOptions]], n: int, cancel: threading.Event | None,
             done: Sequence[threading.Event] | None,
             started: Callable[[int], None] | None) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        queue = deque(range(len(requests)))
        active: dict[int, Iterator[TokenChunk | StreamEnd]] = {}
        while queue or active:
            while queue and len(active) < n:
                i = queue.popleft()
                if started is not None:
                    started(i)
                active[i] = super().stream(requests[i][0], requests[i][1], None)
            self.steps.append(sorted(active))
            for i in list(active):
                if cancel is not None and cancel.is_set():
                    yield i, StreamEnd("cancelled")
                    del active[i]
                    continue
                item = next(active[i])
                yield i, item
                if isinstance(item, StreamEnd):
                    del active[i]
                elif done is not None and done[i].is_set():
                    yield i, StreamEnd("cancelled")
                    del active[i]


def _plan(n_parallel: int, samples: int = 3, prompts: list[dict[str, Any]] | None = None,
          **options: Any) -> GenerationPlan:
    opts = GenOptions(**{"max_tokens": 6, **options})
    return GenerationPlan(models=[ModelJob(card_obj())], prompts=prompts or PROMPTS[:2], samples=samples,
                          options=opts, base_seed=3, parallel=n_parallel)


def test_runner_parallel_path_gives_the_samples_of_the_sequential_one(tmp_path: Path) -> None:
    backend = ParallelScripted(text=SCRIPT)
    result = run_generation(tmp_path / "p", _plan(4, stop=["dusk"], max_tokens=10), opener=lambda *a, **k: backend)
    assert result.generated == 6 and not result.errors
    assert max(len(step) for step in backend.steps) == 4  # four in flight, refilled as they end
    single = run_generation(tmp_path / "s", _plan(1, stop=["dusk"], max_tokens=10), opener=lambda *a, **k: ParallelScripted(text=SCRIPT))
    assert single.generated == 6
    par, seq = read_samples(tmp_path / "p"), read_samples(tmp_path / "s")
    key = lambda s: s["id"]  # noqa: E731 - sort key
    for a, b in zip(sorted(par, key=key), sorted(seq, key=key), strict=True):
        assert (a["id"], a["text"], a["tokens"], a["finish_reason"]) == (b["id"], b["text"], b["tokens"], b["finish_reason"])
        assert a["times"]["parallel"] == 4 and "parallel" not in b["times"]
        assert a["settings"] == b["settings"]
    assert {s["finish_reason"] for s in par} == {"stop"}


def test_runner_parallel_refused_prompt_is_reported_once_and_the_others_run(tmp_path: Path) -> None:
    long = {"text": "x" * 50, "set": "t", "name": "long"}
    backend = ParallelScripted(text=SCRIPT, limit=45)
    result = run_generation(tmp_path / "p", _plan(3, samples=2, prompts=[PROMPTS[0], long]),
                            opener=lambda *a, **k: backend)
    assert (result.generated, result.failed) == (2, 2)
    assert len(result.errors) == 1 and "'long'" in result.errors[0] and "context holds 45" in result.errors[0]
    assert {s["prompt"]["name"] for s in read_samples(tmp_path / "p")} == {"harbour"}


def test_runner_parallel_that_does_not_fit_stops_before_any_sample(tmp_path: Path) -> None:
    backend = ParallelScripted(text=SCRIPT, max_parallel=2)
    result = run_generation(tmp_path / "p", _plan(3), opener=lambda *a, **k: backend)
    assert result.generated == 0 and result.errors == ["--parallel 3 does not fit (at most 2)"]
    assert backend.steps == [] and not (tmp_path / "p").exists()


def test_runner_parallel_cancel_keeps_only_whole_samples(tmp_path: Path) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def progress(p: Progress) -> None:
        seen.append(p.tokens)
        if p.tokens >= 10:
            cancel.set()

    result = run_generation(tmp_path / "p", _plan(2, samples=4, max_tokens=8), progress=progress, cancel=cancel,
                            opener=lambda *a, **k: ParallelScripted(text=SCRIPT))
    assert result.interrupted
    saved = read_samples(tmp_path / "p")
    assert len(saved) == result.generated < 8
    assert all(len(s["tokens"]["ids"]) == 8 and s["finish_reason"] == "length" for s in saved)


def test_parallel_flag_is_checked_and_declared(lmread_home: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from tests.generate.test_generate import write_card

    write_card(lmread_home)
    code, _, err = cli(capsys, "--study", str(tmp_path / "st"), "--model", "scr", "--prompt", "Hi", "--parallel", "0")
    assert code != 0 and err.strip().splitlines()[-1].startswith("lmread: error: invalid option --parallel 0")
    assert "Traceback" not in err and not (tmp_path / "st").exists()
    with pytest.raises(OptionError, match="--parallel"):
        GenerationPlan.check_settings(1, 0, None, True)


def test_progress_eta_and_bar() -> None:
    p = Progress(total=10, max_tokens=100, generated=2, tokens=250, gen_seconds=5.0, phase="generating",
                 finished=2, finished_tokens=150)
    # 8 samples left at 75 tokens each, 100 tokens already drawn for those in flight, 50 tok/s
    assert p.eta_s == pytest.approx((8 * 75 - 100) / 50.0)
    assert Progress(total=3, max_tokens=10).eta_s is None
    fresh = Progress(total=4, max_tokens=10, tokens=5, gen_seconds=1.0)
    assert fresh.eta_s == pytest.approx((4 * 10 - 5) / 5.0)
    assert (format_eta(59.6), format_eta(61), format_eta(3 * 3600 + 62)) == ("1:00", "1:01", "3:01:02")

    class Tty:
        def __init__(self) -> None:
            self.text = ""

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            return None

        def isatty(self) -> bool:
            return True

    out = Tty()
    ProgressBar(out).update(p)  # type: ignore[arg-type]
    assert "50.0 tok/s" in out.text and "ETA 0:10" in out.text


# --------------------------------------------------------------------------------------------
# llama.cpp: both bundled models


def _requests(n: int, max_tokens: int = 14, **options: Any) -> list[tuple[dict[str, Any], GenOptions]]:
    return [(PROMPTS[i % len(PROMPTS)], GenOptions(max_tokens=max_tokens, seed=700 + i, **options)) for i in range(n)]


def _exact(sample: Any, backend: Any) -> None:
    """Pieces tile the generated bytes (``raw`` when the last character was cut by the budget)."""
    toks = sample.tokens
    data = sample.raw if sample.raw is not None else sample.text.encode("utf-8")
    assert b"".join(backend.piece(t) for t in toks.ids) == data
    assert sum(toks.nbytes) == len(data)
    assert toks.offsets[0] == 0 and toks.offsets[-1] == len(sample.text)
    assert all(a <= b for a, b in zip(toks.offsets, toks.offsets[1:], strict=False))


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["llama_smollm2", "llama_gemma"])
def test_llamacpp_parallel_8_exact_records_same_ids_as_one_at_a_time(fixture: str,
                                                                      request: pytest.FixtureRequest) -> None:
    backend = request.getfixturevalue(fixture)
    reqs = _requests(8)
    par = {s.seed: s for s in generate_parallel(backend, reqs, 8)}
    seq = {o.seed: generate_sample(backend, p, o) for p, o in reqs}
    assert sorted(par) == sorted(seq)
    diffs: dict[str, list[float]] = {"logprob": [], "entropy": []}
    for seed, alone in seq.items():
        batched = par[seed]
        assert batched.id == alone.id and batched.finish_reason in ("length", "eos")
        assert batched.times["parallel"] == 8 and batched.settings == alone.settings
        _exact(batched, backend)
        n = 0  # the common prefix: the same tokens, whose distributions must agree
        while n < min(len(batched.tokens.ids), len(alone.tokens.ids)) and batched.tokens.ids[n] == alone.tokens.ids[n]:
            n += 1
        for name, found in diffs.items():
            a, b = getattr(batched.tokens, name)[:n], getattr(alone.tokens, name)[:n]
            found += [abs(x - y) for x, y in zip(a, b, strict=True)]
    assert len(diffs["logprob"]) >= 16  # enough tokens in common to compare
    for name, found in diffs.items():
        assert max(found) <= BATCH_TOLERANCE, name
        assert sum(found) / len(found) <= BATCH_MEAN_TOLERANCE, name
    texts = " ".join(s.text for s in par.values())
    assert any("\u3000" <= ch <= "\u9fff" for ch in texts)  # CJK went through


@pytest.mark.slow
def test_llamacpp_same_seeds_and_n_same_tokens_run_to_run(llama_smollm2: Any) -> None:
    # 6 requests through 4 sequences: two enter as others end (eos or their own max_tokens)
    reqs = [(p, GenOptions(max_tokens=6 + 3 * i, seed=40 + i, top_k=30 if i % 3 == 0 else 0,
                           temperature=0.0 if i == 4 else 1.0)) for i, (p, _) in enumerate(_requests(6))]
    runs = [[(s.seed, s.tokens.ids, s.tokens.logprob, s.finish_reason)
             for s in sorted(generate_parallel(llama_smollm2, reqs, 4), key=lambda s: s.seed)] for _ in range(2)]
    assert runs[0] == runs[1]
    assert [len(ids) for _, ids, _, reason in runs[0] if reason == "length"] == [
        6 + 3 * i for i in range(6) if runs[0][i][3] == "length"]


@pytest.mark.slow
def test_llamacpp_parallel_cancel_ends_every_sequence(llama_smollm2: Any) -> None:
    cancel = threading.Event()
    count = 0

    def on_tokens(index: int, assembler: Any, n: int) -> None:
        nonlocal count
        count += 1
        if count == 5:
            cancel.set()

    samples = list(generate_parallel(llama_smollm2, _requests(6, max_tokens=40), 3, cancel, on_tokens))
    assert len(samples) == 6 and {s.finish_reason for s in samples} == {"cancelled"}


@pytest.mark.slow
def test_llamacpp_parallel_that_does_not_fit_is_refused_before_decoding(llama_smollm2: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import lmread.backends.llamacpp.memory as llamacpp_memory

    opts = GenOptions(max_tokens=500)
    with pytest.raises(OptionError, match=r"--parallel 257: .*\[1, 256\]"):
        llama_smollm2.prepare_parallel(["Hi"], opts, 257)
    monkeypatch.setattr(llamacpp_memory, "available_memory", lambda: 64 * 2**20)
    with pytest.raises(OptionError) as info:
        llama_smollm2.prepare_parallel(["Hi"], opts, 16)
    message = str(info.value)
    assert "--parallel 16 needs 16 x 512 tokens of KV cache" in message and "use --parallel" in message
    assert "\n" not in message
    # a prompt longer than the context of one sample is refused on its own
    refused = llama_smollm2.prepare_parallel(["word " * 5000, "Hi"], GenOptions(max_tokens=4), 2)
    assert list(refused) == ["word " * 5000] and "context holds" in refused["word " * 5000]


def test_parallel_memory_rule() -> None:
    from lmread.backends.llamacpp import check_parallel_memory

    check_parallel_memory(8, 300, 1000, available=8 * 512 * 1000)  # padded to 512 cells: just fits
    with pytest.raises(OptionError, match=r"needs 9 x 512 tokens .* use --parallel 8 or less"):
        check_parallel_memory(9, 300, 1000, available=8 * 512 * 1000)
    with pytest.raises(OptionError, match="lower --max-tokens"):
        check_parallel_memory(2, 300, 1000, available=100)
    check_parallel_memory(10**6, 10**6, None, available=1)  # unknown KV size: nothing to check


@pytest.mark.slow
@pytest.mark.parametrize("model_id", ["smollm2-135m", "gemma3-270m"])
def test_cli_parallel_8_writes_the_samples_of_parallel_1(model_id: str, capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         request: pytest.FixtureRequest) -> None:
    import lmread.backends as backends

    backend = request.getfixturevalue("llama_smollm2" if model_id == "smollm2-135m" else "llama_gemma")
    monkeypatch.setattr(backends, "open_backend", lambda card, name=None, **options: NoClose(backend))
    args = ["--model", model_id, "--backend", "llamacpp", "--prompt", PROMPTS[0]["text"], "--prompt",
            PROMPTS[1]["text"], "--prompt", PROMPTS[2]["text"], "--samples", "4", "--max-tokens", "10", "--seed", "9"]
    for n in (8, 1):
        code, _, err = cli(capsys, "--study", str(tmp_path / f"p{n}"), *args, "--parallel", str(n))
        assert code == 0, err
    par, seq = read_samples(tmp_path / "p8"), read_samples(tmp_path / "p1")
    assert len(par) == len(seq) == 12
    assert sorted(s["id"] for s in par) == sorted(s["id"] for s in seq)
    by_id = {s["id"]: s for s in seq}
    for s in par:
        assert s["times"]["parallel"] == 8 and "parallel" not in by_id[s["id"]]["times"]
        assert {k: v for k, v in s.items() if k not in ("times", "created", "text", "tokens")} == {
            k: v for k, v in by_id[s["id"]].items() if k not in ("times", "created", "text", "tokens")}
        toks, text = s["tokens"], s["text"]
        data = base64.b64decode(s["raw_b64"]) if "raw_b64" in s else text.encode("utf-8")
        assert sum(toks["bytes"]) == len(data) and toks["offsets"][-1] == len(text)
        assert b"".join(backend.piece(t) for t in toks["ids"]) == data
    # resuming with another N skips what is there
    code, out, err = cli(capsys, "--study", str(tmp_path / "p8"), *args, "--parallel", "4", "--json")
    assert code == 0 and '"skipped":12' in out.replace(" ", ""), err


# --------------------------------------------------------------------------------------------
# transformers: left-padded batches of different prompts


@pytest.mark.slow
def test_hf_parallel_left_padded_prompts_exact_and_reproducible(hf_smollm2: Any) -> None:
    reqs = _requests(6, max_tokens=8)  # 4 different prompts: two batches of 4 and 2, padded on the left
    first = {s.seed: s for s in generate_parallel(hf_smollm2, reqs, 4)}
    again = {s.seed: s for s in generate_parallel(hf_smollm2, reqs, 4)}
    assert [(s.tokens.ids, s.tokens.logprob) for s in first.values()] == [
        (again[k].tokens.ids, again[k].tokens.logprob) for k in first]
    compared = []
    for prompt, opts in reqs:
        alone = generate_sample(hf_smollm2, prompt, opts)
        batched = first[opts.seed]
        assert batched.id == alone.id and batched.times["parallel"] == 4
        _exact_hf(batched, hf_smollm2)
        n = 0
        while n < min(len(batched.tokens.ids), len(alone.tokens.ids)) and batched.tokens.ids[n] == alone.tokens.ids[n]:
            n += 1
        compared += [abs(x - y) for x, y in zip(batched.tokens.logprob[:n], alone.tokens.logprob[:n], strict=True)]
    assert len(compared) >= 6 and max(compared) <= BATCH_TOLERANCE


def _exact_hf(sample: Any, backend: Any) -> None:
    data = sample.raw if sample.raw is not None else sample.text.encode("utf-8")
    assert b"".join(backend.pieces[t] for t in sample.tokens.ids) == data
    assert sample.tokens.offsets[-1] == len(sample.text)


def _cache_bytes(cache: Any) -> int:
    """Bytes of the key and value tensors a transformers cache holds."""
    total = 0
    for layer in getattr(cache, "layers", []):
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            if tensor is not None and hasattr(tensor, "nelement"):
                total += tensor.nelement() * tensor.element_size()
    return total


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["hf_smollm2", "hf_gemma"])
def test_hf_parallel_that_does_not_fit_is_refused_before_decoding(fixture: str, request: pytest.FixtureRequest,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import lmread.backends.memory as backend_memory

    backend = request.getfixturevalue(fixture)
    per_token = backend.loaded.kv_bytes_per_token
    # the estimate is what a real forward pass keeps: ~30 prompt tokens in 2 rows (below any sliding window)
    torch = backend.loaded.torch
    row = backend.decoder.tokenize("The keeper wrote " * 10)
    with torch.inference_mode():
        _, cache = backend.decoder._forward(torch.tensor([row, row], device=backend.device), None)
    assert 20 < len(row) < 100 and _cache_bytes(cache) == 2 * len(row) * per_token
    opts = GenOptions(max_tokens=500)
    with pytest.raises(OptionError, match=r"--parallel 0: must be a whole number >= 1"):
        backend.prepare_parallel(["Hi"], opts, 0)
    monkeypatch.setattr(backend_memory, "available_memory", lambda: 64 * 2**20)
    with pytest.raises(OptionError) as info:
        backend.prepare_parallel(["Hi", "A longer prompt of a few more words"], opts, 64)
    message = str(info.value)
    width = max(backend.decoder.check_prompt(p) for p in ["Hi", "A longer prompt of a few more words"])
    assert f"--parallel 64 needs 64 x {width + 500} tokens of KV cache" in message and "\n" not in message
    fit = 64 * 2**20 // ((width + 500) * per_token)
    assert (f"use --parallel {fit} or less" in message) if fit else ("lower --max-tokens" in message)
    assert backend.prepare_parallel(["Hi"], GenOptions(max_tokens=4), 2) == {}  # small enough: accepted
