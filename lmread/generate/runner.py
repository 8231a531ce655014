"""Runs a :class:`~lmread.generate.plan.GenerationPlan` into a study, one model loaded at a time.

- a sample is written (one append + fsync) only when complete; samples already in the study
  (same id) are skipped, so re-running a command resumes it;
- cancelled or failed samples are never written: an interrupted run leaves only whole samples;
- with ``parallel`` > 1, a backend that ``supports_parallel`` decodes that many samples (of any
  prompts) in one batch per step, each written as soon as it is complete;
- a backend that ``supports_batch`` draws the samples of a prompt in batches; one with
  ``max_concurrency`` > 1 runs samples in threads.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmread.backends.base import Backend, GenOptions, LinkedEvent
from lmread.errors import LmreadError, OptionError, StudyError
from lmread.generate.plan import GenerationPlan, ModelJob
from lmread.generate.sample import STORED_REASONS, generate_batch, generate_parallel, generate_sample
from lmread.records import Sample

if TYPE_CHECKING:
    from lmread.study import Study


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
# Runs


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
    #: tokens a sample has at most (the plan's ``max_tokens``)
    max_tokens: int = 0
    #: samples drawn to their end (saved or not) and their tokens: the mean length so far
    finished: int = 0
    finished_tokens: int = 0

    @property
    def done(self) -> int:
        return self.generated + self.skipped + self.failed

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.gen_seconds if self.gen_seconds > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate: the samples not done yet times the mean length of
        those finished (``max_tokens`` before any), less the tokens already drawn for samples in
        flight; None before the rate is known."""
        rate = self.tokens_per_s
        if rate <= 0:
            return None
        mean = self.finished_tokens / self.finished if self.finished else float(self.max_tokens)
        in_flight = max(self.tokens - self.finished_tokens, 0)
        left = max((self.total - self.done) * mean - in_flight, 0.0)
        return left / rate


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

    def __init__(self, study: Study | str | Path) -> None:
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

#: ``opener(card, backend_name, **options)`` loads a model (default :func:`lmread.backends.open_backend`)
Opener = Callable[..., Backend]


class _Runner:
    """Runs a plan; keeps the counters and reports progress (thread-safe)."""

    def __init__(self, sink: StudySink, plan: GenerationPlan, progress: ProgressCallback | None,
                 cancel: threading.Event | None, opener: Opener) -> None:
        self.sink = sink
        self.plan = plan
        self.user_cancel = cancel
        self.stop = LinkedEvent(cancel)  # set by the user's cancel, or by us on a fatal error
        self.opener = opener
        self.callback = progress
        self.state = Progress(total=plan.total, max_tokens=plan.options.max_tokens)
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
        if sample.finish_reason != "cancelled":
            with self.lock:
                self.state.finished += 1
                self.state.finished_tokens += sample.n_tokens
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
        row: dict[str, Any] = {"id": job.model_id, "backend": job.backend or (job.card.backends[0] if job.card.backends else None),
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
            row["backend"] = backend.name
            identity = backend.identity()
            pending: list[tuple[dict[str, Any], GenOptions]] = []
            for planned in self.plan.samples_of(job.model_id):
                if planned.sample_id(identity) in existing:
                    with self.lock:
                        self.state.skipped += 1
                        row["skipped"] += 1
                else:
                    pending.append((planned.prompt, planned.options))
            self.state.phase = "generating"
            self.emit(force=True)
            t0 = time.perf_counter()
            self._gen_started = t0
            try:
                concurrency = int(backend.max_concurrency or 1)
                if self.plan.parallel > 1 and backend.supports_parallel and pending:
                    self.run_parallel(backend, pending, self.plan.parallel)
                elif concurrency > 1 and len(pending) > 1:
                    self.run_concurrent(backend, pending, concurrency)
                elif backend.supports_batch and self.plan.samples > 1:
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

    def one(self, backend: Backend, prompt: dict[str, Any], opts: GenOptions) -> None:
        if self.stop.is_set():
            return
        if prompt["text"] in self._bad_prompts:
            with self.lock:
                self.state.failed += 1
                self._model_row["failed"] += 1
            return
        try:
            sample = generate_sample(backend, prompt, opts, self.stop, self.on_token,
                                     record_model_path=self.plan.record_model_path)
        except OptionError as exc:
            self.prompt_failed(prompt, exc)
            return
        self.finish(sample)

    def run_sequential(self, backend: Backend, pending: list[tuple[dict[str, Any], GenOptions]]) -> None:
        for prompt, opts in pending:
            if self.stop.is_set():
                return
            self.one(backend, prompt, opts)

    def run_batched(self, backend: Backend, pending: list[tuple[dict[str, Any], GenOptions]]) -> None:
        size = self.plan.batch_size or (self.plan.parallel if self.plan.parallel > 1 else int(backend.max_batch_size or 8))
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
                    samples = generate_batch(backend, prompt, chunk, self.stop, self.on_token,
                                             record_model_path=self.plan.record_model_path)
                except OptionError as exc:
                    self.prompt_failed(prompt, exc, len(chunk))
                    continue
                for sample in samples:
                    self.finish(sample)

    def run_parallel(self, backend: Backend, pending: list[tuple[dict[str, Any], GenOptions]], n: int) -> None:
        """Decode ``n`` samples at a time in one batch per step; the backend checks that they fit
        before anything is decoded (an :class:`OptionError` there stops the run)."""
        refused = backend.prepare_parallel([p["text"] for p, _ in pending], self.plan.options, n)
        todo: list[tuple[dict[str, Any], GenOptions]] = []
        for prompt, opts in pending:
            if prompt["text"] in refused:
                self.prompt_failed(prompt, OptionError(refused[prompt["text"]]))
            else:
                todo.append((prompt, opts))
        if not todo or self.stop.is_set():
            return
        for sample in generate_parallel(backend, todo, n, self.stop, self.on_token,
                                        record_model_path=self.plan.record_model_path):
            self.finish(sample)

    def run_concurrent(self, backend: Backend, pending: list[tuple[dict[str, Any], GenOptions]], n: int) -> None:
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
    study: Study | StudySink | str | Path,
    plan: GenerationPlan,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    opener: Opener | None = None,
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
