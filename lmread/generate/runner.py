"""The headless generation driver: backend token chunks -> :class:`~lmread.records.Sample` records.

:func:`generate_sample` draws one sample (stop strings, timing, exact text via
:class:`~lmread.records.TokenAssembler`); :func:`generate_batch` draws several samples of one
prompt in one batched call where the backend supports it.  :func:`run_generation` runs a
:class:`GenerationPlan` (models x prompts x samples per prompt) into a study:

- each sample's seed is derived from (base seed, model id, prompt text, sample index), so the
  same command gives the same samples and ids on any machine;
- a sample is written (one append + fsync) only when complete; samples already in the study
  (same id) are skipped, so re-running a command resumes it;
- cancelled or failed samples are never written: an interrupted run leaves only whole samples.
"""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk, stream_many
from lmread.errors import LmreadError, OptionError, StudyError
from lmread.records import Sample, TokenAssembler, sample_id, utc_now

#: finish reasons of samples that are complete and get stored
STORED_REASONS = ("length", "eos", "stop", "context")

#: ``on_tokens(assembler, n_new)``, called after each token of a sample
TokenCallback = Callable[[TokenAssembler, int], None]


# --------------------------------------------------------------------------------------------
# Seeds and cancellation


def derive_seed(base_seed: int, model_id: str, prompt: dict[str, Any], index: int) -> int:
    """The seed of sample ``index`` of ``prompt`` for ``model_id``: a hash of all four, in [0, 2^32).

    The prompt enters by its text (its identity), so renaming a prompt keeps its seeds.
    """
    blob = orjson.dumps([int(base_seed), str(model_id), str(prompt.get("text", "")), int(index)])
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big")


class LinkedEvent(threading.Event):
    """An event that also reads as set when its ``parent`` is set (a child cancel flag)."""

    def __init__(self, parent: threading.Event | None = None) -> None:
        super().__init__()
        self.parent = parent

    def is_set(self) -> bool:
        return super().is_set() or (self.parent is not None and self.parent.is_set())

    def wait(self, timeout: float | None = None) -> bool:
        if self.parent is None:
            return super().wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            super().wait(0.05 if left is None else min(0.05, left))
        return True


@contextmanager
def sigint_cancels(cancel: threading.Event) -> Iterator[threading.Event]:
    """While active, the first Ctrl-C sets ``cancel`` (samples in flight are discarded, saved ones
    stay); a second Ctrl-C raises :class:`KeyboardInterrupt` at once.  A no-op off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if cancel.is_set():
            signal.signal(signal.SIGINT, previous if callable(previous) else signal.default_int_handler)
            raise KeyboardInterrupt
        cancel.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------------------------
# One sample


class _SampleRun:
    """The state of one sample being drawn: assembler, stop-string matcher, times."""

    def __init__(self, options: GenOptions) -> None:
        self.options = options
        self.assembler = TokenAssembler()
        self.stops = [s for s in options.stop if s]
        self._keep = max((len(s) for s in self.stops), default=1) - 1
        self._tail = ""
        self.created = utc_now()
        self.t0 = time.perf_counter()
        self.first_token_s: float | None = None
        self.end_s: float | None = None
        self.reason: str | None = None
        self.detail = ""
        self.has_distribution = False

    @property
    def done(self) -> bool:
        return self.reason is not None

    def add(self, chunk: TokenChunk) -> bool:
        """Add a token; True when the text now contains a stop string."""
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.t0
        if chunk.logprob is not None or chunk.top_ids:
            self.has_distribution = True
        new = self.assembler.add(
            chunk.id, chunk.piece, chunk.logprob, chunk.rank, chunk.entropy,
            chunk.top_ids, chunk.top_logprobs, chunk.top_pieces,
        )
        if not self.stops or not new:
            return False
        window = self._tail + new
        hit = any(s in window for s in self.stops)
        self._tail = window[-self._keep:] if self._keep else ""
        return hit

    def end(self, reason: str, detail: str = "") -> None:
        if self.reason is None:
            self.reason = reason
            self.detail = detail
            self.end_s = time.perf_counter() - self.t0

    def sample(self, backend: Any, model: dict[str, Any], prompt: dict[str, Any]) -> Sample:
        if self.reason is None:
            self.end("error", "the stream ended without a finish reason")
        tokens, text, raw = self.assembler.finish()
        if not self.has_distribution:
            tokens.logprob = tokens.rank = tokens.entropy = None
            tokens.top_ids = tokens.top_logprobs = tokens.top_pieces = None
        settings = self.options.settings()
        duration = float(self.end_s or 0.0)
        n = len(tokens.ids)
        times: dict[str, Any] = {
            "started": self.created,
            "first_token_s": None if self.first_token_s is None else round(self.first_token_s, 6),
            "duration_s": round(duration, 6),
            "tokens_per_s": round(n / duration, 3) if duration > 0 and n else None,
        }
        if self.detail:
            times["detail"] = self.detail
        return Sample(
            id=sample_id(model, prompt, settings, self.options.seed),
            model=model,
            backend=str(getattr(backend, "name", model.get("backend", "?"))),
            prompt={"text": prompt["text"], "set": prompt.get("set"), "name": prompt.get("name")},
            settings=settings,
            seed=self.options.seed,
            text=text,
            tokens=tokens,
            finish_reason=str(self.reason),
            created=utc_now(),
            times=times,
            raw=raw,
        )


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()


def generate_sample(
    backend: Any,
    prompt: dict[str, Any],
    options: GenOptions,
    cancel: threading.Event | None = None,
    on_tokens: TokenCallback | None = None,
) -> Sample:
    """Draw one sample of ``prompt`` from ``backend`` and return it as a :class:`Sample`.

    Stop strings end the sample (finish reason ``stop``) as soon as the generated text contains
    one; every token generated is kept.  ``cancel`` ends it early (finish reason ``cancelled``).
    ``on_tokens(assembler, 1)`` is called after each token.  Backend errors propagate; nothing
    is written here.
    """
    options.validate()
    model = dict(backend.describe())
    run = _SampleRun(options)
    inner = LinkedEvent(cancel)
    stream = backend.stream(prompt["text"], options, inner)
    try:
        for item in stream:
            if isinstance(item, StreamEnd):
                run.end(item.reason, item.detail)
                break
            hit = run.add(item)
            if on_tokens is not None:
                on_tokens(run.assembler, 1)
            if hit:
                run.end("stop")
                inner.set()
                break
    finally:
        _close(stream)
    if not run.done:
        run.end("cancelled" if inner.is_set() else ("length" if len(run.assembler) >= options.max_tokens else "error"))
    return run.sample(backend, model, prompt)


def generate_batch(
    backend: Any,
    prompt: dict[str, Any],
    options_list: Sequence[GenOptions],
    cancel: threading.Event | None = None,
    on_tokens: Callable[[int, TokenAssembler, int], None] | None = None,
) -> list[Sample]:
    """Draw ``len(options_list)`` samples of one prompt, batched when the backend has
    ``stream_batch`` (see :func:`lmread.backends.base.stream_many`), else one after the other.

    ``on_tokens(index, assembler, 1)`` is called after each token of sequence ``index``.
    A sequence that hits a stop string ignores its further tokens; the batch is cancelled once
    every sequence is done.
    """
    for opts in options_list:
        opts.validate()
    if getattr(backend, "stream_batch", None) is None:
        out = []
        for i, opts in enumerate(options_list):
            cb = None if on_tokens is None else (lambda asm, n, _i=i: on_tokens(_i, asm, n))
            out.append(generate_sample(backend, prompt, opts, cancel, cb))
        return out
    model = dict(backend.describe())
    runs = [_SampleRun(opts) for opts in options_list]
    inner = LinkedEvent(cancel)
    stream = stream_many(backend, prompt["text"], list(options_list), inner)
    try:
        for index, item in stream:
            run = runs[index]
            if run.done:
                continue
            if isinstance(item, StreamEnd):
                run.end(item.reason, item.detail)
            else:
                if run.add(item):
                    run.end("stop")
                if on_tokens is not None:
                    on_tokens(index, run.assembler, 1)
            if all(r.done for r in runs):
                inner.set()
                break
    finally:
        _close(stream)
    for run in runs:
        if not run.done:
            n = len(run.assembler)
            run.end("cancelled" if inner.is_set() else ("length" if n >= run.options.max_tokens else "error"))
    return [run.sample(backend, model, prompt) for run in runs]


# --------------------------------------------------------------------------------------------
# Plans and runs


@dataclass
class ModelJob:
    """One model to generate with: its catalogue card, the backend name (None: the card's first)
    and the backend options the user set (``n_threads``, ``n_ctx``, ``base_url``...)."""

    card: Any
    backend: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return str(self.card.id)


@dataclass
class GenerationPlan:
    """Models x prompts x ``samples`` per prompt, with shared options and a base seed."""

    models: list[ModelJob]
    prompts: list[dict[str, Any]]
    samples: int
    options: GenOptions
    base_seed: int = 0
    batch_size: int | None = None

    def validate(self) -> GenerationPlan:
        """Raise :class:`OptionError` for an invalid plan (before anything is loaded); return self."""
        self.options.validate()
        if not isinstance(self.samples, int) or self.samples < 1:
            raise OptionError(f"invalid option --samples {self.samples!r}: must be a whole number >= 1")
        if not isinstance(self.base_seed, int) or not 0 <= self.base_seed < 2**32:
            raise OptionError(f"invalid option --seed {self.base_seed!r}: must be a whole number in [0, 2^32)")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise OptionError(f"invalid option --batch-size {self.batch_size!r}: must be a whole number >= 1")
        if not self.models:
            raise OptionError("no model given: add --model ID (see 'lmread models')")
        if not self.prompts:
            raise OptionError("no prompts given: use --prompt TEXT, --prompts FILE or --prompt-set NAME")
        return self

    @property
    def total(self) -> int:
        """Number of samples the plan asks for."""
        return len(self.models) * len(self.prompts) * self.samples

    def sample_options(self, model_id: str, prompt: dict[str, Any], index: int) -> GenOptions:
        """The options of one sample: the shared ones with its derived seed."""
        return replace(self.options, seed=derive_seed(self.base_seed, model_id, prompt, index),
                       stop=list(self.options.stop))


@dataclass
class Progress:
    """What a progress display shows; passed to the ``progress`` callback of :func:`run_generation`."""

    total: int
    generated: int = 0
    skipped: int = 0
    failed: int = 0
    tokens: int = 0
    model: str = ""
    phase: str = "starting"
    gen_seconds: float = 0.0

    @property
    def done(self) -> int:
        return self.generated + self.skipped + self.failed

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.gen_seconds if self.gen_seconds > 0 else 0.0


@dataclass
class GenerationResult:
    """Summary of a run; ``to_json`` is what ``lmread generate --json`` prints."""

    study: str
    generated: int = 0
    skipped: int = 0
    failed: int = 0
    tokens: int = 0
    seconds: float = 0.0
    models: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "study": self.study, "generated": self.generated, "skipped": self.skipped, "failed": self.failed,
            "models": self.models, "tokens": self.tokens, "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted, "errors": self.errors,
        }


class StudySink:
    """Where samples go: an existing study, or a folder created on the first write (so a run
    that saves nothing leaves no trace).  Appends are serialized by a lock."""

    def __init__(self, study: Any) -> None:
        from lmread.study import META_FILE, Study

        self._lock = threading.Lock()
        if isinstance(study, Study):
            self.path = study.path
            self.study: Study | None = study
        else:
            self.path = Path(study)
            if self.path.exists() and not self.path.is_dir():
                raise StudyError(f"{self.path} exists and is not a folder; choose another --study path")
            self.study = Study.open(self.path) if (self.path / META_FILE).exists() else None

    def ids(self) -> set[str]:
        """Ids of the samples already stored (re-read from disk)."""
        with self._lock:
            if self.study is None:
                return set()
            self.study.refresh()
            return set(self.study.samples)

    def add(self, sample: Sample) -> bool:
        """Append ``sample`` (creating the study if needed); False if its id was already there."""
        from lmread.study import Study

        with self._lock:
            if self.study is None:
                self.study = Study.open_or_create(self.path)
            return self.study.add_sample(sample)


ProgressCallback = Callable[[Progress], None]


class _Runner:
    """Runs a plan; keeps the counters and reports progress (thread-safe)."""

    def __init__(self, sink: StudySink, plan: GenerationPlan, progress: ProgressCallback | None,
                 cancel: threading.Event | None, opener: Callable[..., Any]) -> None:
        self.sink = sink
        self.plan = plan
        self.user_cancel = cancel
        self.stop = LinkedEvent(cancel)  # set by the user's cancel, or by us on a fatal error
        self.opener = opener
        self.callback = progress
        self.state = Progress(total=plan.total)
        self.result = GenerationResult(study=str(sink.path))
        self.lock = threading.Lock()
        self._last_emit = 0.0
        self._gen_started: float | None = None
        self._gen_base = 0.0
        self._bad_prompts: set[str] = set()
        self._model_row: dict[str, Any] = {}

    # -- progress ------------------------------------------------------------------------------

    def emit(self, force: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if not force and now - self._last_emit < 0.1:
            return
        self._last_emit = now
        if self._gen_started is not None:
            self.state.gen_seconds = self._gen_base + (time.perf_counter() - self._gen_started)
        self.callback(self.state)

    def on_token(self, *_: Any) -> None:
        with self.lock:
            self.state.tokens += 1
            self._model_row["tokens"] += 1
            self.emit()

    # -- outcomes ------------------------------------------------------------------------------

    def finish(self, sample: Sample) -> None:
        """Store a complete sample; count a failed one; drop a cancelled one."""
        row = self._model_row
        if sample.finish_reason in STORED_REASONS:
            added = self.sink.add(sample)
            with self.lock:
                key = "generated" if added else "skipped"
                setattr(self.state, key, getattr(self.state, key) + 1)
                row[key] += 1
                self.emit(force=True)
        elif sample.finish_reason == "cancelled" and self.stop.is_set():
            pass  # interrupted: discarded
        else:
            with self.lock:
                self.state.failed += 1
                row["failed"] += 1
                detail = sample.times.get("detail") or ""
                self.result.errors.append(
                    f"model {row['id']!r}, prompt {sample.prompt.get('name')!r}: sample ended with finish reason "
                    f"{sample.finish_reason!r}{': ' + detail if detail else ''}; not saved"
                )
                self.emit(force=True)

    def prompt_failed(self, prompt: dict[str, Any], exc: OptionError, count: int = 1) -> None:
        """A prompt the backend refused (too long for the context...): report it once."""
        key = prompt["text"]
        with self.lock:
            self.state.failed += count
            self._model_row["failed"] += count
            if key not in self._bad_prompts:
                self._bad_prompts.add(key)
                self.result.errors.append(
                    f"prompt {prompt.get('name')!r} (set {prompt.get('set')!r}) with model "
                    f"{self._model_row['id']!r}: {exc}"
                )
            self.emit(force=True)

    def fatal(self, exc: LmreadError) -> None:
        with self.lock:
            self.result.errors.append(str(exc))
        self.stop.set()

    # -- running ------------------------------------------------------------------------------

    def run(self) -> GenerationResult:
        t_start = time.perf_counter()
        try:
            existing = self.sink.ids()
            for job in self.plan.models:
                if self.stop.is_set():
                    break
                self.run_model(job, existing)
        finally:
            self.result.generated = self.state.generated
            self.result.skipped = self.state.skipped
            self.result.failed = self.state.failed
            self.result.tokens = self.state.tokens
            self.result.seconds = time.perf_counter() - t_start
            self.result.interrupted = self.user_cancel is not None and self.user_cancel.is_set()
            self.state.phase = "interrupted" if self.result.interrupted else "done"
            self._gen_started = None
            self.emit(force=True)
        return self.result

    def run_model(self, job: ModelJob, existing: set[str]) -> None:
        row = {"id": job.model_id, "backend": job.backend or (job.card.backends[0] if job.card.backends else None),
               "generated": 0, "skipped": 0, "failed": 0, "tokens": 0, "seconds": 0.0, "tokens_per_s": None}
        self._model_row = row
        self.result.models.append(row)
        self._bad_prompts = set()
        self.state.model = job.model_id
        self.state.phase = "loading"
        self.emit(force=True)
        try:
            backend = self.opener(job.card, job.backend, **job.options)
        except LmreadError as exc:
            self.fatal(exc)
            return
        try:
            row["backend"] = getattr(backend, "name", row["backend"])
            model = dict(backend.describe())
            pending: list[tuple[dict[str, Any], GenOptions]] = []
            for prompt in self.plan.prompts:
                for index in range(self.plan.samples):
                    opts = self.plan.sample_options(job.model_id, prompt, index)
                    sid = sample_id(model, prompt, opts.settings(), opts.seed)
                    if sid in existing:
                        with self.lock:
                            self.state.skipped += 1
                            row["skipped"] += 1
                    else:
                        pending.append((prompt, opts))
            self.state.phase = "generating"
            self.emit(force=True)
            t0 = time.perf_counter()
            self._gen_started = t0
            try:
                concurrency = int(getattr(backend, "max_concurrency", 1) or 1)
                if concurrency > 1 and len(pending) > 1:
                    self.run_concurrent(backend, pending, concurrency)
                elif getattr(backend, "stream_batch", None) is not None and self.plan.samples > 1:
                    self.run_batched(backend, pending)
                else:
                    self.run_sequential(backend, pending)
            finally:
                row["seconds"] = round(time.perf_counter() - t0, 3)
                self._gen_base += time.perf_counter() - t0
                self._gen_started = None
                if row["seconds"] > 0 and row["tokens"]:
                    row["tokens_per_s"] = round(row["tokens"] / row["seconds"], 3)
        except LmreadError as exc:
            self.fatal(exc)
        finally:
            backend.close()

    def one(self, backend: Any, prompt: dict[str, Any], opts: GenOptions) -> None:
        if self.stop.is_set():
            return
        if prompt["text"] in self._bad_prompts:
            with self.lock:
                self.state.failed += 1
                self._model_row["failed"] += 1
            return
        try:
            sample = generate_sample(backend, prompt, opts, self.stop, self.on_token)
        except OptionError as exc:
            self.prompt_failed(prompt, exc)
            return
        self.finish(sample)

    def run_sequential(self, backend: Any, pending: list[tuple[dict[str, Any], GenOptions]]) -> None:
        for prompt, opts in pending:
            if self.stop.is_set():
                return
            self.one(backend, prompt, opts)

    def run_batched(self, backend: Any, pending: list[tuple[dict[str, Any], GenOptions]]) -> None:
        size = self.plan.batch_size or int(getattr(backend, "max_batch_size", 0) or 8)
        groups: dict[str, list[tuple[dict[str, Any], GenOptions]]] = {}
        for prompt, opts in pending:
            groups.setdefault(prompt["text"], []).append((prompt, opts))
        for items in groups.values():
            prompt = items[0][0]
            for start in range(0, len(items), size):
                if self.stop.is_set():
                    return
                chunk = [opts for _, opts in items[start:start + size]]
                if prompt["text"] in self._bad_prompts:
                    self.prompt_failed(prompt, OptionError("refused"), len(chunk))
                    continue
                try:
                    samples = generate_batch(backend, prompt, chunk, self.stop, self.on_token)
                except OptionError as exc:
                    self.prompt_failed(prompt, exc, len(chunk))
                    continue
                for sample in samples:
                    self.finish(sample)

    def run_concurrent(self, backend: Any, pending: list[tuple[dict[str, Any], GenOptions]], n: int) -> None:
        pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="lmread-gen")
        futures: set[Future[None]] = set()
        try:
            for prompt, opts in pending:
                futures.add(pool.submit(self.one, backend, prompt, opts))
            while futures:
                done, futures = wait(futures, timeout=0.25, return_when=FIRST_COMPLETED)
                for fut in done:
                    exc = fut.exception()
                    if isinstance(exc, LmreadError):
                        self.fatal(exc)
                    elif exc is not None:
                        self.stop.set()
                        raise exc
        except BaseException:
            self.stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def run_generation(
    study: Any,
    plan: GenerationPlan,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    opener: Callable[..., Any] | None = None,
) -> GenerationResult:
    """Run ``plan`` into ``study`` (a :class:`~lmread.study.Study` or a folder, created on the first
    write); one model loaded at a time.

    Samples already in the study are skipped; complete samples are appended one by one;
    cancelled ones are discarded.  Backend errors and prompts the backend refuses (too long
    for the context) end up in ``result.errors`` (a refused prompt is reported once per model
    and its other samples are not tried); a model that fails to load or a backend error stops
    the run.  Setting ``cancel`` stops it cleanly (``result.interrupted``).  ``opener(card,
    backend, **options)`` loads a model (default :func:`lmread.backends.open_backend`).
    """
    plan.validate()
    if opener is None:
        from lmread.backends import open_backend

        opener = open_backend
    sink = study if isinstance(study, StudySink) else StudySink(study)
    return _Runner(sink, plan, progress, cancel, opener).run()
