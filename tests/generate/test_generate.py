"""The generation driver and ``lmread generate``: exact records, stop strings, seeds, resume,
interruption, bad inputs; with the scripted backend (fast) and once per real local backend."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk
from lmread.backends.scripted import ScriptedBackend
from lmread.catalog import ModelCard
from lmread.cli import main
from lmread.cli.generate import ProgressBar, unescape
from lmread.errors import BackendError, OptionError
from lmread.generate import (
    GenerationPlan,
    ModelJob,
    Progress,
    StopMatcher,
    derive_seed,
    generate_batch,
    generate_sample,
    limited_stream,
    run_generation,
)
from lmread.prompts import builtin_set, load_prompt_file, prompt_set_names
from lmread.records import sample_id
from lmread.study import Study

SCRIPT = (
    "The keeper climbed the stairs at dusk. Café lights blinked on the quay; 日本 ships waited 👍🏽. "
    "He wrote the weather in the log, as every night, and went down again."
)
PROMPT = {"text": "The lighthouse", "set": "test", "name": "test-01"}
REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# helpers


def write_card(home: Path, model_id: str = "scr", text: str = SCRIPT, extra: str = "") -> Path:
    """A scripted model card in the user's model folder (found by load_catalog)."""
    models = home / "models"
    models.mkdir(exist_ok=True)
    script = home / f"{model_id}.txt"
    script.write_text(text, encoding="utf-8")
    card = models / f"{model_id}.toml"
    card.write_text(
        f'id = "{model_id}"\nname = "Scripted {model_id}"\nfamily = "scripted"\nbackends = ["scripted"]\n'
        f"source = {{ path = {orjson.dumps(str(script)).decode()} }}\nn_params = 1000\n{extra}",
        encoding="utf-8",
    )
    return card


def card_obj(model_id: str = "scr") -> ModelCard:
    return ModelCard(id=model_id, name=model_id, family="scripted", backends=["scripted"], source={"text": SCRIPT})


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["generate", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def read_samples(path: Path) -> list[dict[str, Any]]:
    f = path / "samples.jsonl"
    if not f.exists():
        return []
    return [orjson.loads(line) for line in f.read_bytes().splitlines() if line.strip()]


class CancelAfter(ScriptedBackend):
    """Sets ``event`` after ``n`` tokens of its ``which``-th stream (0-based)."""

    def __init__(self, event: threading.Event, which: int, n: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.event, self.which, self.n, self.calls = event, which, n, 0

    def stream(self, prompt: str, options: GenOptions, cancel: threading.Event | None = None) -> Iterator[Any]:
        call = self.calls
        self.calls += 1
        for i, item in enumerate(super().stream(prompt, options, cancel)):
            if call == self.which and i == self.n:
                self.event.set()
            yield item


class FailingBackend(ScriptedBackend):
    """Raises ``exc`` after 2 tokens of its ``which``-th stream."""

    def __init__(self, exc: Exception, which: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.exc, self.which, self.calls = exc, which, 0

    def stream(self, prompt: str, options: GenOptions, cancel: threading.Event | None = None) -> Iterator[Any]:
        call = self.calls
        self.calls += 1
        for i, item in enumerate(super().stream(prompt, options, cancel)):
            if call == self.which and i == 2:
                raise self.exc
            yield item


class ContextLimited(ScriptedBackend):
    """Refuses prompts longer than ``limit`` characters, as a real backend refuses a prompt that
    does not fit its context."""

    def __init__(self, limit: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.limit = limit
        self.refused = 0

    def stream(self, prompt: str, options: GenOptions, cancel: threading.Event | None = None) -> Iterator[Any]:
        if len(prompt) > self.limit:
            self.refused += 1
            raise OptionError(f"the prompt is {len(prompt)} tokens, longer than the context ({self.limit}); use --ctx")
        yield from super().stream(prompt, options, cancel)


class Batched(ScriptedBackend):
    """A scripted backend with ``stream_batch`` that interleaves its sequences."""

    batch_calls = 0
    supports_batch = True

    def stream_batch(self, prompt: str, options: Sequence[GenOptions], cancel: threading.Event | None = None,
                     done: Sequence[threading.Event] | None = None) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        type(self).batch_calls += 1
        streams = [iter(self.stream(prompt, o, cancel if done is None else done[i])) for i, o in enumerate(options)]
        live = set(range(len(streams)))
        while live:
            for i in sorted(live):
                item = next(streams[i])
                yield i, item
                if isinstance(item, StreamEnd):
                    live.discard(i)


class Concurrent(ScriptedBackend):
    """A scripted backend that allows concurrent streams (like the OpenAI-compatible one)."""

    max_concurrency = 4

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def stream(self, prompt: str, options: GenOptions, cancel: threading.Event | None = None) -> Iterator[Any]:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            yield from super().stream(prompt, options, cancel)
        finally:
            with self._lock:
                self.active -= 1


def plan_for(prompts: list[dict[str, Any]] | None = None, samples: int = 2, max_tokens: int = 12,
             models: list[str] | None = None, seed: int = 0, stop: list[str] | None = None) -> GenerationPlan:
    return GenerationPlan(
        models=[ModelJob(card_obj(m)) for m in (models or ["scr"])],
        prompts=prompts or [PROMPT, {"text": "Dear Sir,", "set": "test", "name": "test-02"}],
        samples=samples, options=GenOptions(max_tokens=max_tokens, stop=stop or []), base_seed=seed,
    )


# --------------------------------------------------------------------------------------------
# generate_sample / generate_batch


def test_generate_sample_records_exact_text_and_identity() -> None:
    backend = ScriptedBackend(text=SCRIPT, model_id="scr", n_params=1000)
    opts = GenOptions(max_tokens=500, seed=42)
    seen: list[int] = []
    sample = generate_sample(backend, PROMPT, opts, on_tokens=lambda asm, n: seen.append(len(asm)))
    assert sample.text == SCRIPT
    assert sample.finish_reason == "eos"
    assert b"".join(backend.pieces) == SCRIPT.encode()
    assert sample.tokens.nbytes == [len(p) for p in backend.pieces]
    assert "".join(sample.piece(i) for i in range(sample.n_tokens)) == SCRIPT
    assert seen == list(range(1, sample.n_tokens + 1))  # on_tokens after each token
    assert sample.id == sample_id(backend.describe(), PROMPT, opts.settings(), 42)
    assert sample.seed == 42 and sample.settings == opts.settings() and "seed" not in sample.settings
    assert sample.model == backend.describe() and sample.backend == "scripted"
    assert sample.prompt == PROMPT
    assert sample.tokens.logprob is not None and len(sample.tokens.logprob) == sample.n_tokens
    t = sample.times
    assert t["started"] and t["duration_s"] >= 0 and t["first_token_s"] is not None and t["tokens_per_s"]


def test_max_tokens_and_no_distribution() -> None:
    backend = ScriptedBackend(text=SCRIPT, fake_logprobs=False)
    sample = generate_sample(backend, PROMPT, GenOptions(max_tokens=5))
    assert sample.finish_reason == "length" and sample.n_tokens == 5
    assert SCRIPT.startswith(sample.text)
    # no distribution from the source: arrays are None as a whole
    assert sample.tokens.logprob is None and sample.tokens.top_ids is None


@pytest.mark.parametrize("tokenizer", ["words", "bytes"])
def test_stop_string_ends_sample_keeping_tokens(tokenizer: str) -> None:
    backend = ScriptedBackend(text=SCRIPT, tokenizer=tokenizer)
    stop = "on the quay"  # spans several tokens with either tokenizer
    sample = generate_sample(backend, PROMPT, GenOptions(max_tokens=500, stop=["never there", stop]))
    assert sample.finish_reason == "stop"
    assert stop in sample.text
    end = SCRIPT.index(stop) + len(stop)
    # the sample ends with the token that completed the stop string: exact prefix of the script
    assert SCRIPT.startswith(sample.text)
    assert end <= len(sample.text) < end + max(len(p) for p in backend.pieces)
    assert stop not in sample.text[: -1] or sample.text.index(stop) + len(stop) == end
    assert sample.settings["stop"] == ["never there", stop]


def test_stop_string_across_multibyte_split() -> None:
    # "日本" split inside characters: the stop matches once the completing byte arrives
    backend = ScriptedBackend(text=SCRIPT, tokenizer="bytes")
    sample = generate_sample(backend, PROMPT, GenOptions(max_tokens=1000, stop=["日本"]))
    assert sample.finish_reason == "stop"
    assert sample.text.endswith("日本")


def test_cancel_mid_sample_gives_cancelled() -> None:
    cancel = threading.Event()
    backend = CancelAfter(cancel, which=0, n=3, text=SCRIPT)
    sample = generate_sample(backend, PROMPT, GenOptions(max_tokens=500), cancel=cancel)
    assert sample.finish_reason == "cancelled"
    assert 3 <= sample.n_tokens < len(backend.pieces)


def test_backend_error_propagates() -> None:
    backend = FailingBackend(BackendError("server went away"), which=0, text=SCRIPT)
    with pytest.raises(BackendError, match="server went away"):
        generate_sample(backend, PROMPT, GenOptions(max_tokens=50))


def test_generate_batch_matches_one_by_one() -> None:
    opts = [GenOptions(max_tokens=n, seed=s, stop=st) for n, s, st in ((4, 1, []), (30, 2, ["quay"]), (500, 3, []))]
    single = [generate_sample(ScriptedBackend(text=SCRIPT), PROMPT, o) for o in opts]
    Batched.batch_calls = 0
    counts: dict[int, int] = {}
    batched = generate_batch(Batched(text=SCRIPT), PROMPT, opts,
                             on_tokens=lambda i, asm, n: counts.__setitem__(i, counts.get(i, 0) + n))
    assert Batched.batch_calls == 1
    assert [s.text for s in batched] == [s.text for s in single]
    assert [s.id for s in batched] == [s.id for s in single]
    assert [s.finish_reason for s in batched] == ["length", "stop", "eos"]
    assert counts == {i: s.n_tokens for i, s in enumerate(batched)}
    # without stream_batch: falls back to one by one
    plain = generate_batch(ScriptedBackend(text=SCRIPT), PROMPT, opts)
    assert [s.id for s in plain] == [s.id for s in single]


# --------------------------------------------------------------------------------------------
# seeds


def test_derive_seed_is_stable_and_separates_its_inputs() -> None:
    p2 = {"text": "other", "set": "x", "name": "y"}
    base = derive_seed(0, "m", PROMPT, 0)
    assert base == derive_seed(0, "m", dict(PROMPT, name="renamed"), 0)  # the text is the identity
    others = {derive_seed(1, "m", PROMPT, 0), derive_seed(0, "n", PROMPT, 0), derive_seed(0, "m", p2, 0),
              derive_seed(0, "m", PROMPT, 1)}
    assert base not in others and len(others) == 4
    assert all(0 <= s < 2**32 for s in [*others, base])
    # a pinned value: changing the derivation would change every seed (and id) of existing studies
    assert derive_seed(0, "smollm2-135m", {"text": "Hello"}, 0) == 1913940052
    assert derive_seed(7, "smollm2-135m", {"text": "Hello"}, 3) == 3706563745


def test_run_records_derived_seeds(tmp_path: Path) -> None:
    plan = plan_for(samples=3)
    result = run_generation(tmp_path / "st", plan, opener=lambda card, b, **o: ScriptedBackend(text=SCRIPT, model_id=card.id))
    assert result.generated == 6 and result.failed == 0 and not result.errors
    samples = Study.open(tmp_path / "st").samples.values()
    got = {(s.prompt["name"], s.seed) for s in samples}
    want = {(p["name"], derive_seed(0, "scr", p, i)) for p in plan.prompts for i in range(3)}
    assert got == want


# --------------------------------------------------------------------------------------------
# run_generation: resume, interruption, errors, concurrency, batching


def scripted_opener(**kw: Any) -> Any:
    return lambda card, backend, **opts: ScriptedBackend(text=SCRIPT, model_id=card.id, **kw)


def test_resume_skips_saved_samples(tmp_path: Path) -> None:
    path = tmp_path / "st"
    first = run_generation(path, plan_for(samples=2), opener=scripted_opener())
    assert (first.generated, first.skipped) == (4, 0)
    before = (path / "samples.jsonl").read_bytes()
    again = run_generation(path, plan_for(samples=2), opener=scripted_opener())
    assert (again.generated, again.skipped) == (0, 4)
    assert (path / "samples.jsonl").read_bytes() == before
    more = run_generation(path, plan_for(samples=3), opener=scripted_opener())
    assert (more.generated, more.skipped) == (2, 4)
    assert len(Study.open(path).samples) == 6


def test_interrupted_sample_is_discarded_and_rerun_completes(tmp_path: Path) -> None:
    path = tmp_path / "st"
    cancel = threading.Event()
    backend = CancelAfter(cancel, which=2, n=3, text=SCRIPT, model_id="scr")  # third sample interrupted
    result = run_generation(path, plan_for(samples=2, max_tokens=40), cancel=cancel, opener=lambda *a, **k: backend)
    assert result.interrupted and result.generated == 2 and result.failed == 0
    stored = read_samples(path)
    assert len(stored) == 2 and all(s["finish_reason"] in ("length", "eos") for s in stored)
    rerun = run_generation(path, plan_for(samples=2, max_tokens=40), opener=scripted_opener())
    assert (rerun.generated, rerun.skipped) == (2, 2)
    full = run_generation(tmp_path / "ref", plan_for(samples=2, max_tokens=40), opener=scripted_opener())
    assert full.generated == 4
    assert set(Study.open(path).samples) == set(Study.open(tmp_path / "ref").samples)


def test_backend_error_stops_run_and_keeps_saved(tmp_path: Path) -> None:
    path = tmp_path / "st"
    backend = FailingBackend(BackendError("connection dropped"), which=1, text=SCRIPT, model_id="scr")
    result = run_generation(path, plan_for(samples=2), opener=lambda *a, **k: backend)
    assert result.generated == 1
    assert any("connection dropped" in e for e in result.errors)
    assert len(read_samples(path)) == 1


def test_model_that_fails_to_load(tmp_path: Path) -> None:
    from lmread.errors import ModelError

    def opener(card: Any, backend: Any, **o: Any) -> Any:
        if card.id == "bad":
            raise ModelError("model 'bad': file is not a GGUF model")
        return ScriptedBackend(text=SCRIPT, model_id=card.id)

    path = tmp_path / "st"
    result = run_generation(path, plan_for(samples=1, models=["scr", "bad", "scr2"]), opener=opener)
    assert result.generated == 2  # the first model's samples stay; the run stops at the bad one
    assert result.errors == ["model 'bad': file is not a GGUF model"]
    assert [m["id"] for m in result.models] == ["scr", "bad"]


def test_prompt_too_long_reported_once_nothing_written(tmp_path: Path) -> None:
    path = tmp_path / "st"
    backend = ContextLimited(10, text=SCRIPT, model_id="scr")
    long_prompt = {"text": "x" * 50, "set": "test", "name": "long-01"}
    result = run_generation(path, plan_for(prompts=[long_prompt], samples=3), opener=lambda *a, **k: backend)
    assert result.generated == 0 and result.failed == 3
    assert backend.refused == 1  # not retried for the other samples of the same prompt
    assert len(result.errors) == 1 and "'long-01'" in result.errors[0] and "context" in result.errors[0]
    assert not path.exists()  # nothing half-written: the study was not even created


def test_concurrent_backend_runs_in_threads(tmp_path: Path) -> None:
    backend = Concurrent(text=SCRIPT, model_id="scr", delay_s=0.002)
    plan = plan_for(samples=4, max_tokens=15)
    result = run_generation(tmp_path / "c", plan, opener=lambda *a, **k: backend)
    assert result.generated == 8 and not result.errors
    assert backend.peak > 1
    ref = run_generation(tmp_path / "s", plan, opener=scripted_opener())
    assert set(Study.open(tmp_path / "c").samples) == set(Study.open(tmp_path / "s").samples)
    assert ref.generated == 8
    lines = read_samples(tmp_path / "c")
    assert len(lines) == 8 and len({s["id"] for s in lines}) == 8


def test_batched_backend_batches_samples_of_a_prompt(tmp_path: Path) -> None:
    Batched.batch_calls = 0
    plan = plan_for(samples=3, max_tokens=10)
    plan.batch_size = 2
    result = run_generation(tmp_path / "b", plan, opener=lambda card, b, **o: Batched(text=SCRIPT, model_id=card.id))
    assert result.generated == 6
    assert Batched.batch_calls == 4  # 2 prompts x (2 + 1)
    ref = run_generation(tmp_path / "s", plan_for(samples=3, max_tokens=10), opener=scripted_opener())
    assert ref.generated == 6
    assert set(Study.open(tmp_path / "b").samples) == set(Study.open(tmp_path / "s").samples)


def test_progress_reports(tmp_path: Path) -> None:
    seen: list[Progress] = []
    run_generation(tmp_path / "st", plan_for(samples=2), progress=lambda p: seen.append(
        Progress(**{k: getattr(p, k) for k in ("total", "generated", "skipped", "failed", "tokens", "model", "phase")})),
        opener=scripted_opener())
    assert seen[0].total == 4
    assert "loading" in {p.phase for p in seen} and seen[-1].phase == "done"
    assert seen[-1].generated == 4 and seen[-1].tokens == 4 * 12


def test_progress_bar_draws_on_a_terminal() -> None:
    import io

    buf = io.StringIO()
    bar = ProgressBar(stream=buf, enabled=True, width=10)
    bar.update(Progress(total=4, generated=2, tokens=100, model="scr", phase="done", gen_seconds=2.0))
    bar.close()
    assert buf.getvalue().startswith("\r[#####-----] 2/4 samples") and "50.0 tok/s" in buf.getvalue()
    quiet = io.StringIO()
    ProgressBar(stream=quiet, enabled=False).update(Progress(total=1))
    assert quiet.getvalue() == ""


# --------------------------------------------------------------------------------------------
# prompts


def test_builtin_prompt_sets() -> None:
    genres = ["encyclopedia", "news", "story", "list", "letter", "dialogue", "howto"]
    assert prompt_set_names() == [*genres, "all"]
    for g in genres:
        prompts = builtin_set(g)
        assert len(prompts) >= 6
        assert [p["name"] for p in prompts] == [f"{g}-{i:02d}" for i in range(1, len(prompts) + 1)]
        assert all(p["set"] == g and len(p["text"]) > 80 for p in prompts)
    everything = builtin_set("all")
    assert len(everything) == sum(len(builtin_set(g)) for g in genres)
    assert len({p["text"] for p in everything}) == len(everything)
    assert builtin_set("Story") == builtin_set("story")
    with pytest.raises(OptionError, match="unknown prompt set 'poems'"):
        builtin_set("poems")


def test_prompt_files(tmp_path: Path) -> None:
    txt = tmp_path / "mine.txt"
    txt.write_text("First opening.\n\n  \nSecond opening, with ünïcode 日本.\n", encoding="utf-8")
    assert load_prompt_file(txt) == [
        {"text": "First opening.", "set": "mine", "name": "mine-01"},
        {"text": "Second opening, with ünïcode 日本.", "set": "mine", "name": "mine-02"},
    ]
    jl = tmp_path / "p.jsonl"
    jl.write_text('{"text": "A", "name": "alpha"}\n{"text": "B\\nC", "set": "s"}\n', encoding="utf-8")
    assert load_prompt_file(jl) == [{"text": "A", "set": "p", "name": "alpha"},
                                    {"text": "B\nC", "set": "s", "name": "p-02"}]


@pytest.mark.parametrize(("content", "message"), [
    ("", "has no prompts"),
    ("\n  \n", "has no prompts"),
    ('{"text": "A"}\nnot json\n', "line 2 is not valid JSON"),
    ('{"name": "x"}\n', "line 1 has no non-empty string \"text\""),
    ('["A"]\n', "line 1 is not a JSON object"),
    ('{"text": "A", "name": "n"}\n{"text": "B", "name": "n"}\n', "appears twice"),
])
def test_bad_prompt_files(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(OptionError, match=message):
        load_prompt_file(f)


def test_missing_prompt_file(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="does not exist"):
        load_prompt_file(tmp_path / "nope.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(OptionError, match="not UTF-8"):
        load_prompt_file(tmp_path / "bin.txt")


def test_unescape_stop_strings() -> None:
    assert unescape(r"\n\nThe End\t\\n") == "\n\nThe End\t\\n"


# --------------------------------------------------------------------------------------------
# the command


def test_cli_generate_resume_and_json(lmread_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_card(lmread_home)
    study = tmp_path / "st"
    args = ["--study", str(study), "--model", "scr", "--prompt-set", "story", "--prompt", "Hello there.",
            "--samples", "2", "--max-tokens", "8", "--temperature", "0.7", "--top-k", "40", "--stop", r"\n\n"]
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    summary = orjson.loads(out)
    assert summary["generated"] == 14 and summary["skipped"] == 0 and summary["failed"] == 0
    assert summary["study"] == str(study) and summary["tokens"] == 14 * 8 and summary["seconds"] >= 0
    assert [m["id"] for m in summary["models"]] == ["scr"]
    samples = Study.open(study).samples
    assert len(samples) == 14
    s = next(iter(samples.values()))
    assert s.settings["temperature"] == 0.7 and s.settings["top_k"] == 40 and s.settings["stop"] == ["\n\n"]
    assert s.prompt["set"] == "story" and s.prompt["name"] == "story-01"
    assert {x.prompt["name"] for x in samples.values()} >= {"story-06", "prompt-01"}
    # the same command again: nothing new, all skipped
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0
    assert (orjson.loads(out)["generated"], orjson.loads(out)["skipped"]) == (0, 14)
    # plain output is one summary line
    code, out, err = cli(capsys, *args)
    assert code == 0 and out.startswith("generated 0 samples") and "skipped 14" in out


def test_cli_same_seed_same_samples(lmread_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_card(lmread_home)
    ids = []
    for name in ("a", "b"):
        code, _, err = cli(capsys, "--study", str(tmp_path / name), "--model", "scr", "--prompt", "Hi",
                           "--samples", "3", "--max-tokens", "6", "--seed", "17")
        assert code == 0, err
        ids.append([(s["id"], s["seed"], s["text"]) for s in read_samples(tmp_path / name)])
    assert ids[0] == ids[1] and len(ids[0]) == 3
    code, _, _ = cli(capsys, "--study", str(tmp_path / "c"), "--model", "scr", "--prompt", "Hi",
                     "--samples", "3", "--max-tokens", "6", "--seed", "18")
    assert {i for i, _, _ in ids[0]}.isdisjoint({s["id"] for s in read_samples(tmp_path / "c")})


@pytest.mark.parametrize(("args", "message"), [
    (["--temperature", "-1"], "invalid option --temperature -1.0"),
    (["--top-p", "2"], "invalid option --top-p 2.0"),
    (["--top-k", "-3"], "invalid option --top-k -3"),
    (["--max-tokens", "0"], "invalid option --max-tokens 0"),
    (["--samples", "0"], "invalid option --samples 0"),
    (["--seed", "-5"], "invalid option --seed -5"),
    (["--stop", ""], "invalid option --stop"),
    (["--threads", "0"], "invalid option --threads 0"),
    (["--ctx", "3"], "invalid option --ctx 3"),
    (["--concurrency", "0"], "invalid option --concurrency 0"),
    (["--prompt-set", "poems"], "unknown prompt set 'poems'"),
    (["--prompts", "MISSING"], "does not exist"),
    (["--prompts", "EMPTY"], "has no prompts"),
    (["--model", "no-such-model"], "unknown model 'no-such-model'"),
    (["--backend", "hf"], "has no backend 'hf'"),
    (["--backend", "nonsense"], "Invalid value for '--backend'"),
])
def test_cli_bad_inputs_one_line_nothing_written(lmread_home: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str], args: list[str],
                                                 message: str) -> None:
    write_card(lmread_home)
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    args = [{"MISSING": str(tmp_path / "missing.txt"), "EMPTY": str(tmp_path / "empty.txt")}.get(a, a) for a in args]
    base = ["--study", str(tmp_path / "st"), "--model", "scr", "--samples", "1", "--max-tokens", "4"]
    if not any(a.startswith("--prompt") for a in args):
        base += ["--prompt", "Hello"]
    code, out, err = cli(capsys, *base, *args)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lmread: error: ") and message in lines[0], err
    assert not (tmp_path / "st").exists()


def test_cli_model_fails_to_load(lmread_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_card(lmread_home)
    (lmread_home / "scr.txt").unlink()  # the card is fine, its file is gone: fails at load time
    code, out, err = cli(capsys, "--study", str(tmp_path / "st"), "--model", "scr", "--prompt", "Hi")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lmread: error: model 'scr'") and "does not exist" in lines[0]
    assert not (tmp_path / "st").exists()


def test_cli_no_prompt_given(lmread_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_card(lmread_home)
    code, _, err = cli(capsys, "--study", str(tmp_path / "st"), "--model", "scr")
    assert code != 0 and "no prompts given" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "st").exists()


def test_cli_existing_study_unchanged_on_bad_input(lmread_home: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    write_card(lmread_home)
    study = tmp_path / "st"
    assert cli(capsys, "--study", str(study), "--model", "scr", "--prompt", "Hi", "--max-tokens", "4")[0] == 0
    before = {p.name: p.read_bytes() for p in study.iterdir() if p.is_file()}
    code, _, err = cli(capsys, "--study", str(study), "--model", "scr", "--prompt", "Hi", "--min-p", "7")
    assert code != 0 and "invalid option --min-p" in err
    assert {p.name: p.read_bytes() for p in study.iterdir() if p.is_file()} == before


def test_cli_prompt_too_long(lmread_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    write_card(lmread_home)
    import lmread.backends as backends

    monkeypatch.setattr(backends, "open_backend", lambda card, b=None, **o: ContextLimited(20, text=SCRIPT))
    code, out, err = cli(capsys, "--study", str(tmp_path / "st"), "--model", "scr", "--prompt", "short",
                         "--prompt", "a much longer prompt that does not fit", "--samples", "2", "--max-tokens", "4")
    assert code != 0
    errors = [line for line in err.splitlines() if line.startswith("lmread: error:")]
    assert len(errors) == 1 and "'prompt-02'" in errors[0] and "context" in errors[0]
    assert len(read_samples(tmp_path / "st")) == 2  # the prompt that fits was generated
    assert all(s["prompt"]["name"] == "prompt-01" for s in read_samples(tmp_path / "st"))


def test_cli_adhoc_openai_card(lmread_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    import lmread.backends as backends
    import lmread.cli.generate as gc

    cards: list[Any] = []

    from lmread.backends.openai import OpenAIBackend

    class FakeOpenAI:
        options = OpenAIBackend.options

        @classmethod
        def from_card(cls, card: Any, **options: Any) -> Any:
            raise AssertionError("not called")

    monkeypatch.setattr(backends, "backend_class", lambda name: FakeOpenAI)

    def opener(card: Any, backend: Any = None, **options: Any) -> Any:
        cards.append((card, backend, options))
        b = ScriptedBackend(text=SCRIPT, model_id=card.id)
        b.name = "openai"
        return b

    monkeypatch.setattr(backends, "open_backend", opener)
    code, out, err = cli(capsys, "--study", str(tmp_path / "st"), "--model", "served-model", "--backend", "openai",
                         "--base-url", "http://127.0.0.1:9/v1", "--concurrency", "3", "--prompt", "Hi",
                         "--max-tokens", "3")
    assert code == 0, err
    card, backend, options = cards[0]
    assert (card.id, card.family, card.backends, card.source) == (
        "served-model", "remote", ["openai"], {"url": "http://127.0.0.1:9/v1", "model": "served-model"})
    assert backend == "openai" and options == {"base_url": "http://127.0.0.1:9/v1", "concurrency": 3}
    # without --base-url an unknown model stays an error
    code, _, err = cli(capsys, "--study", str(tmp_path / "st2"), "--model", "served-model", "--backend", "openai",
                       "--prompt", "Hi")
    assert code != 0 and "unknown model 'served-model'" in err
    assert gc.resolve_job  # the resolver is public for the TUI


def test_cli_option_not_for_backend(lmread_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # the scripted backend declares no options: every backend flag is refused for it
    write_card(lmread_home)
    code, _, err = cli(capsys, "--study", str(tmp_path / "st"), "--model", "scr", "--prompt", "Hi",
                       "--gpu-layers", "5")
    assert code != 0 and "option --gpu-layers does not apply to the scripted backend" in err
    assert not (tmp_path / "st").exists()


def test_cli_ctrl_c_exits_130_with_only_complete_samples(lmread_home: Path, tmp_path: Path) -> None:
    write_card(lmread_home, extra="\n[extra]\ndelay_s = 0.01\n")
    study = tmp_path / "st"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from lmread.cli import main; sys.exit(main(sys.argv[1:]))",
         "generate", "--study", str(study), "--model", "scr", "--prompt", "Hi", "--samples", "50",
         "--max-tokens", "15"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(read_samples(study)) < 2 and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.07)  # most likely mid-sample now
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    saved = read_samples(study)
    assert 2 <= len(saved) < 50
    assert f"interrupted: {len(saved)} samples saved" in err
    assert "Traceback" not in err
    st = Study.open(study)
    assert len(st.samples) == len(saved) and not st.warnings
    assert all(s.finish_reason == "length" and s.n_tokens == 15 for s in st.samples.values())


# --------------------------------------------------------------------------------------------
# real local backends through the command (short generations)

REAL_PROMPT = "The history of the old harbour town begins in the twelfth century, when"


def _real_run(capsys: pytest.CaptureFixture[str], backend: str, study: Path, *extra: str) -> dict[str, Any]:
    code, out, err = cli(capsys, "--study", str(study), "--model", "smollm2-135m", "--backend", backend,
                         "--prompt", REAL_PROMPT, "--samples", "2", "--max-tokens", "12", "--threads", "2",
                         "--seed", "5", "--json", *extra)
    if code != 0 and ("not available" in err or "not installed" in err):
        pytest.skip(f"{backend} or the bundled model is not available here: {err.strip()}")
    assert code == 0, err
    return orjson.loads(out)


def generated_bytes(sample: dict[str, Any]) -> bytes:
    """The bytes a sample record holds: ``raw_b64`` when they are not valid UTF-8 (a sample that
    stops inside a character, whichever token this CPU's path ended on), else its text."""
    if "raw_b64" in sample:
        raw = base64.b64decode(sample["raw_b64"])
        assert sample["text"] == raw.decode("utf-8", errors="replace")  # the incomplete tail is one U+FFFD
        return raw
    return sample["text"].encode("utf-8")


def _check_exact(samples: list[dict[str, Any]]) -> None:
    for s in samples:
        text, toks = s["text"], s["tokens"]
        assert len(toks["ids"]) == 12 or s["finish_reason"] == "eos"
        assert sum(toks["bytes"]) == len(generated_bytes(s))
        assert toks["offsets"][0] == 0 and toks["offsets"][-1] == len(text)
        assert all(a <= b for a, b in zip(toks["offsets"], toks["offsets"][1:], strict=False))
        assert s["model"]["sha256"] and s["backend"] in ("llamacpp", "hf")
        assert len(toks["logprob"]) == len(toks["ids"]) and all(lp is not None and lp <= 0 for lp in toks["logprob"])


@pytest.mark.slow
def test_real_llamacpp_generate_exact_seeded_resumable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    first = _real_run(capsys, "llamacpp", tmp_path / "a")
    assert first["generated"] == 2 and first["failed"] == 0
    second = _real_run(capsys, "llamacpp", tmp_path / "b")
    a, b = read_samples(tmp_path / "a"), read_samples(tmp_path / "b")
    assert [(s["id"], s["seed"], s["text"]) for s in a] == [(s["id"], s["seed"], s["text"]) for s in b]
    assert second["generated"] == 2
    assert a[0]["text"] != a[1]["text"]  # two seeds, two samples (sampling at temperature 1)
    _check_exact(a)
    # pieces round-trip exactly: the token ids' bytes, from the model's own vocabulary, are the text
    from lmread.backends import open_backend
    from lmread.catalog import load_catalog
    from lmread.config import load_settings

    backend = open_backend(load_catalog(load_settings()).get("smollm2-135m"), "llamacpp", n_threads=1)
    try:
        for s in a:
            assert b"".join(backend.piece(t) for t in s["tokens"]["ids"]) == generated_bytes(s)
    finally:
        backend.close()
    # the same command again resumes: nothing new
    again = _real_run(capsys, "llamacpp", tmp_path / "a")
    assert (again["generated"], again["skipped"]) == (0, 2)
    assert len(read_samples(tmp_path / "a")) == 2


@pytest.mark.slow
def test_real_llamacpp_prompt_longer_than_context(tmp_path: Path) -> None:
    # in a subprocess: a llama.cpp assertion must fail this test, not abort the test run.
    # llama.cpp pads a requested context of 64 up to 256 tokens, so the prompt (~360 tokens)
    # is longer than even the padded context.
    pytest.importorskip("llama_cpp")
    long_prompt = " ".join(["The keeper wrote down the weather every evening."] * 40)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from lmread.cli import main; sys.exit(main(sys.argv[1:]))",
         "generate", "--study", str(tmp_path / "st"), "--model", "smollm2-135m", "--backend", "llamacpp",
         "--prompt", long_prompt, "--samples", "3", "--max-tokens", "4", "--ctx", "64", "--threads", "2"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    if "not available" in proc.stderr:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("lmread: error:")]
    assert len(errors) == 1 and "'prompt-01'" in errors[0] and "context" in errors[0], proc.stderr[-2000:]
    assert not (tmp_path / "st").exists()


class NoClose:
    """A session-fixture backend lent to the command: everything passes through but close()."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def close(self) -> None:
        return None


@pytest.mark.slow
def test_real_hf_generate_exact_and_seeded(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    # through the command, with the session's hf model (loading it costs far more than generating)
    hf = request.getfixturevalue("hf_smollm2")
    import lmread.backends as backends

    opened: list[str | None] = []

    def lend(card: Any, backend: str | None = None, **options: Any) -> Any:
        opened.append(backend)
        assert card.id == "smollm2-135m" and options == {"n_threads": 2}
        return NoClose(hf)

    monkeypatch.setattr(backends, "open_backend", lend)
    first = _real_run(capsys, "hf", tmp_path / "a")
    second = _real_run(capsys, "hf", tmp_path / "b")
    assert opened == ["hf", "hf"]
    assert first["generated"] == second["generated"] == 2
    a, b = read_samples(tmp_path / "a"), read_samples(tmp_path / "b")
    assert [(s["id"], s["seed"], s["text"]) for s in a] == [(s["id"], s["seed"], s["text"]) for s in b]
    assert a[0]["text"] != a[1]["text"]
    _check_exact(a)
    again = _real_run(capsys, "hf", tmp_path / "a")
    assert (again["generated"], again["skipped"]) == (0, 2)


@pytest.mark.slow
@pytest.mark.server
def test_real_openai_server_concurrent(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                       request: pytest.FixtureRequest) -> None:
    # an ad-hoc remote model (not in the catalogue) on the session's llama-cpp-python server
    server = request.getfixturevalue("openai_server")
    args = ["--study", str(tmp_path / "st"), "--model", "served-smollm2", "--backend", "openai",
            "--base-url", server.base_url, "--concurrency", "2", "--prompt", REAL_PROMPT,
            "--prompt", "Dear Sir,", "--samples", "2", "--max-tokens", "6", "--json"]
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    summary = orjson.loads(out)
    assert summary["generated"] == 4 and summary["failed"] == 0
    samples = read_samples(tmp_path / "st")
    assert len({s["id"] for s in samples}) == 4
    for s in samples:
        assert s["backend"] == "openai" and s["model"]["id"] == "served-smollm2"
        assert s["tokens"]["offsets"][-1] == len(s["text"]) and sum(s["tokens"]["bytes"]) == len(generated_bytes(s))
    code, out, err = cli(capsys, *args)
    assert code == 0 and (orjson.loads(out)["generated"], orjson.loads(out)["skipped"]) == (0, 4)


# --------------------------------------------------------------------------------------------
# the driver's ends, plans of one sample, identities, pinned ids


def sample_digest(sample: Any) -> str:
    """A hash of a sample's JSON without its times (which differ from run to run)."""
    record = sample.to_json()
    record.pop("created")
    record.pop("times")
    return hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)).hexdigest()[:16]


#: Sample ids and JSON (without times) generated by lmread before the backend contract (issue 9):
#: the ids of stored samples and the files lmread writes must not change.
PINNED = {
    "scripted-eos": ["s_af4585a712377e07c727", "eos", 31, "022eaf89f77b6b65"],
    "scripted-length": ["s_b9fbfc8b658be8dbc7c6", "length", 7, "8026e0058bee9d43"],
    "scripted-stop": ["s_8515cd46e92e096fc777", "stop", 14, "f46fbbd0be9d1d6a"],
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_pinned_sample_ids_and_records(case: str) -> None:
    kw, opts = {
        "scripted-eos": (dict(text=SCRIPT, model_id="scr", n_params=1000), GenOptions(max_tokens=500, seed=42)),
        "scripted-length": (dict(text=SCRIPT, model_id="scr", n_params=1000, tokenizer="bytes"),
                            GenOptions(max_tokens=7, seed=1)),
        "scripted-stop": (dict(text=SCRIPT, model_id="scr", fake_logprobs=False),
                          GenOptions(max_tokens=500, seed=3, stop=["日本"])),
    }[case]
    sample = generate_sample(ScriptedBackend(**kw), PROMPT, opts)
    assert [sample.id, sample.finish_reason, sample.n_tokens, sample_digest(sample)] == PINNED[case]


def test_the_driver_ends_samples_not_the_backend() -> None:
    backend = ScriptedBackend(text=SCRIPT)
    n = len(backend.pieces)
    raw = [item for item in backend.stream("", GenOptions(max_tokens=2)) if isinstance(item, TokenChunk)]
    assert len(raw) == n  # the backend streams on: max_tokens is the driver's
    # the backend's own end for the last counted token still counts
    assert generate_sample(backend, PROMPT, GenOptions(max_tokens=n)).finish_reason == "eos"
    short = generate_sample(backend, PROMPT, GenOptions(max_tokens=n - 1))
    assert short.finish_reason == "length" and short.n_tokens == n - 1
    assert generate_sample(ScriptedBackend(text=SCRIPT, eos=False), PROMPT,
                           GenOptions(max_tokens=n)).finish_reason == "length"
    items = list(limited_stream(backend, "", GenOptions(max_tokens=3, stop=["keeper"])))
    assert [type(i).__name__ for i in items] == ["TokenChunk", "TokenChunk", "StreamEnd"]
    assert items[-1] == StreamEnd("stop")


def test_stop_matcher_agrees_with_a_search_of_the_text_and_keeps_a_bounded_window() -> None:
    rng = random.Random(3)
    alphabet = ["a", "b", "é", "日", "👍🏽", " "]
    for _ in range(400):
        data = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))).encode("utf-8")
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 12)))) if len(data) > 1 else []
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)] if data else []
        stops = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3))) for _ in range(2)]
        matcher = StopMatcher(stops)
        got = next((i for i, p in enumerate(pieces) if matcher.feed(p)), None)
        # the first token after which the decoded text (complete characters only) holds a stop string
        want = next((i for i in range(len(pieces)) if any(
            s in b"".join(pieces[: i + 1]).decode("utf-8", errors="ignore") for s in stops)), None)
        assert got == want, (pieces, stops)
    matcher = StopMatcher(["never here", "x"])
    for _ in range(20_000):
        assert not matcher.feed(b"token ")
    assert len(matcher._tail) <= len("never here") - 1  # linear: only a bounded tail is searched again


def test_a_planned_live_sample_is_the_one_lmread_generate_stores(tmp_path: Path) -> None:
    plan = plan_for(samples=2)
    run_generation(tmp_path / "st", plan, opener=scripted_opener())
    stored = Study.open(tmp_path / "st").samples
    backend = ScriptedBackend(text=SCRIPT, model_id="scr")
    # the reader plans one live sample of one prompt with the same seed
    live = GenerationPlan(models=[ModelJob(card_obj())], prompts=[PROMPT], samples=1, options=plan.options,
                          base_seed=plan.base_seed)
    planned = live.planned("scr", PROMPT, index=1)
    assert planned.options.seed == derive_seed(0, "scr", PROMPT, 1)
    sample = generate_sample(backend, planned.prompt, planned.options)
    assert sample.id == planned.sample_id(backend.identity()) and sample.id in stored
    assert stored[sample.id].text == sample.text
    assert [p.index for p in plan.samples_of("scr")] == [0, 1, 0, 1]


class FileBacked(ScriptedBackend):
    """A scripted model that was loaded from a file, as llama.cpp and hf models are."""

    def __init__(self, path: Path, **kw: Any) -> None:
        super().__init__(**kw)
        self.path = path

    def identity(self) -> Any:
        ident = super().identity()
        ident.file, ident.path, ident.sha256 = self.path.name, str(self.path), "ab" * 32
        ident.layout = ("id", "name", "file", "path", "sha256", "n_params", "backend")
        return ident


def test_samples_record_the_model_file_name_unless_the_path_is_asked_for(
        lmread_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import lmread.backends as backends

    write_card(lmread_home)
    model_file = tmp_path / "home" / "someone" / "models" / "secret-layout.gguf"
    monkeypatch.setattr(backends, "open_backend",
                        lambda card, b=None, **o: FileBacked(model_file, text=SCRIPT, model_id=card.id))
    args = ["--model", "scr", "--prompt", "Hi", "--max-tokens", "3"]
    assert cli(capsys, "--study", str(tmp_path / "a"), *args)[0] == 0
    [plain] = read_samples(tmp_path / "a")
    assert plain["model"]["file"] == "secret-layout.gguf" and "path" not in plain["model"]
    assert str(model_file.parent) not in (tmp_path / "a" / "samples.jsonl").read_text(encoding="utf-8")
    monkeypatch.setenv("LMREAD_RECORD_MODEL_PATH", "1")
    assert cli(capsys, "--study", str(tmp_path / "b"), *args)[0] == 0
    [full] = read_samples(tmp_path / "b")
    assert full["model"]["path"] == str(model_file) and full["id"] == plain["id"]
    monkeypatch.delenv("LMREAD_RECORD_MODEL_PATH")
    (lmread_home / "no-config.toml").write_text("record_model_path = true\n", encoding="utf-8")
    assert cli(capsys, "--study", str(tmp_path / "c"), *args)[0] == 0
    assert read_samples(tmp_path / "c")[0]["model"]["path"] == str(model_file)
    monkeypatch.setenv("LMREAD_RECORD_MODEL_PATH", "maybe")
    code, _, err = cli(capsys, "--study", str(tmp_path / "d"), *args)
    assert code != 0 and "LMREAD_RECORD_MODEL_PATH" in err


def test_backend_flags_and_choices_come_from_the_declarations(capsys: pytest.CaptureFixture[str]) -> None:
    from lmread.backends import backend_names, option_table

    assert main(["generate", "--help"]) == 0
    helptext = " ".join(capsys.readouterr().out.split())
    assert "[" + "|".join(backend_names()) + "]" in helptext.replace(" ", "")
    for opt, names in option_table():
        assert opt.flag in helptext and f"({', '.join(names)})" in helptext
    assert "--n-ctx" not in helptext and "--n-threads" not in helptext


def test_one_context_minimum_and_one_seed_rule() -> None:
    from lmread.backends.base import CONTEXT, MIN_CTX, check_seed

    for bad in (MIN_CTX - 1, 0, True, "64"):
        with pytest.raises(OptionError, match=r"^invalid option --ctx .*: must be a whole number >= 16$"):
            CONTEXT.check(bad)
    assert CONTEXT.check(MIN_CTX) == MIN_CTX
    for bad in (-1, 2**32, 1.5):
        with pytest.raises(OptionError, match=r"invalid option --seed .*: must be a whole number in \[0, 2\^32\)"):
            check_seed(bad)
        with pytest.raises(OptionError, match="--seed"):
            GenOptions(seed=bad).validate()  # type: ignore[arg-type]
        with pytest.raises(OptionError, match="--seed"):
            plan_for(seed=bad).validate()  # type: ignore[arg-type]
