"""The live worker: streams one live job in a thread and posts its tokens to the reader as messages.

:class:`LiveStream` runs :func:`lmread.generate.generate_sample` (the driver ``lmread generate``
uses) and, at most every :data:`FLUSH_INTERVAL_S`, posts the tokens generated since the last batch
as one :class:`LiveStream.TokenBatch` message; when the driver returns it posts
:class:`LiveStream.Ended` with the sample (or the error, one line).  Batches are the only thing the
reader receives while a sample streams: it appends them to the sample's token document, which is
the one copy of the text on screen.  ``post_message`` is thread-safe and does not wait for the
screen, and batching keeps the messages few however fast the backend is.

:class:`ParallelLive` (a live session's ``parallel`` > 1, on a backend that ``supports_parallel``)
decodes several queued jobs of one model in one batch per step; each job's :class:`JobFeed` holds
what was drawn of it and posts the same messages once the reader shows that job (what was drawn
so far at once, then the rest as it streams).  A job drawn to its end before the reader gets to it
is read like a stored sample, revealed at the reading pace (:meth:`JobFeed.drawn`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from textual.message import Message
from textual.message_pump import MessagePump

from lmread.errors import LmreadError
from lmread.generate import generate_parallel, generate_sample
from lmread.records import Sample, TokenAssembler
from lmread.tui.live_jobs import LiveJob

__all__ = ["FLUSH_INTERVAL_S", "JobFeed", "LiveStream", "LockChain", "ParallelLive", "one_line"]

#: the live stream is handed to the screen at most this often (seconds)
FLUSH_INTERVAL_S = 0.03


def one_line(text: str) -> str:
    """``text`` on one line (runs of whitespace, newlines included, become one space)."""
    return " ".join(str(text).split())


class LockChain:
    """Several locks held as one: taken in the given order, released in reverse (so two chains
    that list shared locks in the same order never deadlock)."""

    def __init__(self, *locks: threading.Lock) -> None:
        self.locks = locks

    def __enter__(self) -> LockChain:
        taken: list[threading.Lock] = []
        try:
            for lock in self.locks:
                lock.acquire()
                taken.append(lock)
        except BaseException:
            for lock in reversed(taken):
                lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for lock in reversed(self.locks):
            lock.release()


class LiveStream:
    """Stream ``job`` from ``backend`` and post its tokens to ``target``; call :meth:`run` in a
    worker thread.  ``lock`` is held while generating (one stream at a time per set of backends).
    Setting ``job.cancel`` stops the generation (the driver returns the partial sample)."""

    class TokenBatch(Message, bubble=False):
        """Tokens of ``job`` generated since the last batch: their text, their absolute end
        offsets (``Tokens.offsets[n_old + 1:]``) and their ranks (``None`` where unknown)."""

        def __init__(self, job: LiveJob, text: str, offsets: list[int], ranks: list[int | None] | None) -> None:
            super().__init__()
            self.job = job
            self.text = text
            self.offsets = offsets
            self.ranks = ranks

    class Ended(Message, bubble=False):
        """The driver returned: ``sample`` (complete, stopped, or cancelled) or ``error``."""

        def __init__(self, job: LiveJob, sample: Sample | None, error: str | None) -> None:
            super().__init__()
            self.job = job
            self.sample = sample
            self.error = error

    def __init__(
        self,
        job: LiveJob,
        backend: Any,
        target: MessagePump,
        lock: threading.Lock | LockChain | None = None,
        *,
        interval_s: float = FLUSH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job = job
        self.backend = backend
        self.target = target
        self.lock: threading.Lock | LockChain = lock or threading.Lock()
        self.interval_s = interval_s
        self.clock = clock
        self.batches = 0
        self._sent_tokens = 0
        self._sent_chars = 0
        self._sent_at = 0.0
        self._asm: TokenAssembler | None = None

    def _post(self, message: Message) -> None:
        if not self.target.post_message(message):  # the screen is gone: stop generating
            self.job.cancel.set()

    def flush(self, asm: TokenAssembler) -> None:
        """Post the tokens of ``asm`` not posted yet (nothing when there are none)."""
        n = len(asm)
        if n <= self._sent_tokens:
            return
        toks = asm.tokens
        offsets = toks.offsets[self._sent_tokens + 1 : n + 1]
        text = asm.text[self._sent_chars : offsets[-1]]
        ranks = toks.rank[self._sent_tokens : n] if toks.rank is not None else None
        self._sent_tokens, self._sent_chars, self._sent_at = n, offsets[-1], self.clock()
        self.batches += 1
        self._post(self.TokenBatch(self.job, text, offsets, ranks))

    def _on_tokens(self, asm: TokenAssembler, n_new: int) -> None:
        self._asm = asm
        if self.clock() - self._sent_at >= self.interval_s:
            self.flush(asm)

    def run(self) -> None:
        """Generate the sample, posting batches, then :class:`Ended` (errors become its one-line
        ``error``; nothing is raised)."""
        sample = None
        error = None
        try:
            if self.backend is None:
                raise LmreadError(f"model {self.job.model_id} is not loaded")
            with self.lock:
                sample = generate_sample(self.backend, self.job.prompt, self.job.options, self.job.cancel,
                                         self._on_tokens)
        except LmreadError as exc:
            error = one_line(str(exc))
        except Exception as exc:
            error = one_line(f"generation failed: {type(exc).__name__}: {exc}")
        if self._asm is not None:
            self.flush(self._asm)
        self._post(self.Ended(self.job, sample, error))


class JobFeed:
    """One job of a :class:`ParallelLive` batch: keeps what was drawn of it and, once
    :meth:`attach` names the reader showing the job, posts it there as :class:`LiveStream`
    does (token batches, then :class:`LiveStream.Ended`).  Thread-safe: the batch's worker calls
    :meth:`tokens` and :meth:`end`, the app calls :meth:`attach`."""

    def __init__(self, job: LiveJob, *, interval_s: float = FLUSH_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.job = job
        self.interval_s = interval_s
        self.clock = clock
        self.target: MessagePump | None = None
        self.ended = False
        self.batches = 0
        self._lock = threading.Lock()
        self._asm: TokenAssembler | None = None
        self._result: tuple[Sample | None, str | None] = (None, None)
        self._sent_tokens = 0
        self._sent_chars = 0
        self._sent_at = float("-inf")

    def _post(self, message: Message) -> None:
        if self.target is not None and not self.target.post_message(message):
            self.job.cancel.set()  # the screen is gone: stop drawing this job

    def _flush(self) -> None:
        asm = self._asm
        if asm is None or self.target is None or len(asm) <= self._sent_tokens:
            return
        n = len(asm)
        toks = asm.tokens
        offsets = toks.offsets[self._sent_tokens + 1 : n + 1]
        text = asm.text[self._sent_chars : offsets[-1]]
        ranks = toks.rank[self._sent_tokens : n] if toks.rank is not None else None
        self._sent_tokens, self._sent_chars, self._sent_at = n, offsets[-1], self.clock()
        self.batches += 1
        self._post(LiveStream.TokenBatch(self.job, text, offsets, ranks))

    @property
    def drawn(self) -> Sample | None:
        """The sample, once the job was drawn to its end (not cancelled, no error); else None."""
        with self._lock:
            sample, error = self._result
            if not self.ended or error is not None or sample is None or sample.finish_reason == "cancelled":
                return None
            return sample

    def attach(self, target: MessagePump) -> None:
        """The reader shows this job: post to ``target`` from now on.  A job already ended is
        posted at once (its tokens, then :class:`LiveStream.Ended`); one still drawing is posted
        from its next token (the assembler is only read on the worker's thread while it grows)."""
        with self._lock:
            self.target = target
            if self.ended:
                self._flush()
                self._post(LiveStream.Ended(self.job, *self._result))

    def tokens(self, asm: TokenAssembler) -> None:
        """The worker drew a token of this job (``asm`` holds all of them)."""
        with self._lock:
            self._asm = asm
            if self.target is not None and self.clock() - self._sent_at >= self.interval_s:
                self._flush()

    def end(self, sample: Sample | None, error: str | None) -> None:
        """The job ended with ``sample`` (complete, stopped or cancelled) or ``error``."""
        with self._lock:
            if self.ended:
                return
            self.ended = True
            self._result = (sample, error)
            if self.target is not None:
                self._flush()
                self._post(LiveStream.Ended(self.job, sample, error))


class ParallelLive:
    """Decode ``jobs`` (of one model) from ``backend`` in one batch per step
    (``backend.stream_parallel``, ``n_parallel`` in flight, as ``lmread generate --parallel``
    does); call :meth:`run` in a worker thread.  Each job gets a :class:`JobFeed` (``job.feed``)
    the reader attaches to when it shows the job; setting ``job.cancel`` ends that job alone.
    ``lock`` is held while decoding."""

    def __init__(self, jobs: list[LiveJob], backend: Any, n_parallel: int, lock: threading.Lock | None = None,
                 *, interval_s: float = FLUSH_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.jobs = list(jobs)
        self.backend = backend
        self.n_parallel = max(1, int(n_parallel))
        self.lock = lock or threading.Lock()
        self.feeds = [JobFeed(job, interval_s=interval_s, clock=clock) for job in self.jobs]
        for job, feed in zip(self.jobs, self.feeds, strict=True):
            job.feed = feed

    def run(self) -> None:
        """Draw the batch; every job's feed ends with its sample or a one-line error (nothing
        is raised)."""
        error = None
        try:
            if self.backend is None:
                raise LmreadError(f"model {self.jobs[0].model_id if self.jobs else '?'} is not loaded")
            with self.lock:
                self._draw()
        except LmreadError as exc:
            error = one_line(str(exc))
        except Exception as exc:
            error = one_line(f"generation failed: {type(exc).__name__}: {exc}")
        for feed in self.feeds:
            feed.end(None, error or "generation ended without this sample")

    def _draw(self) -> None:
        feeds = [f for f in self.feeds if not f.job.cancel.is_set()]
        for feed in self.feeds:
            if feed.job.cancel.is_set():
                feed.end(None, "cancelled before it was drawn")
        if not feeds:
            return
        refused = self.backend.prepare_parallel([str(f.job.prompt["text"]) for f in feeds], feeds[0].job.options,
                                                self.n_parallel)
        todo = []
        for feed in feeds:
            reason = refused.get(str(feed.job.prompt["text"]))
            if reason is not None:
                feed.end(None, one_line(reason))
            else:
                todo.append(feed)
        if not todo:
            return
        by_key: dict[tuple[str, Any], list[JobFeed]] = {}
        for feed in todo:
            by_key.setdefault((str(feed.job.prompt["text"]), feed.job.options.seed), []).append(feed)

        def on_tokens(index: int, asm: TokenAssembler, _n: int) -> None:
            todo[index].tokens(asm)

        samples = generate_parallel(self.backend, [(f.job.prompt, f.job.options) for f in todo], self.n_parallel,
                                    None, on_tokens, cancels=[f.job.cancel for f in todo])
        for sample in samples:
            waiting = by_key.get((str(sample.prompt.get("text", "")), sample.seed))
            if waiting:
                waiting.pop(0).end(sample, None)
