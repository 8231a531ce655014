"""The live worker: streams one live job in a thread and posts its tokens to the reader as messages.

:class:`LiveStream` runs :func:`lmread.generate.generate_sample` (the driver ``lmread generate``
uses) and, at most every :data:`FLUSH_INTERVAL_S`, posts the tokens generated since the last batch
as one :class:`LiveStream.TokenBatch` message; when the driver returns it posts
:class:`LiveStream.Ended` with the sample (or the error, one line).  Batches are the only thing the
reader receives while a sample streams: it appends them to the sample's token document, which is
the one copy of the text on screen.  ``post_message`` is thread-safe and does not wait for the
screen, and batching keeps the messages few however fast the backend is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from textual.message import Message
from textual.message_pump import MessagePump

from lmread.errors import LmreadError
from lmread.generate import generate_sample
from lmread.records import Sample, TokenAssembler
from lmread.tui.live_jobs import LiveJob

__all__ = ["FLUSH_INTERVAL_S", "LiveStream", "one_line"]

#: the live stream is handed to the screen at most this often (seconds)
FLUSH_INTERVAL_S = 0.03


def one_line(text: str) -> str:
    """``text`` on one line (runs of whitespace, newlines included, become one space)."""
    return " ".join(str(text).split())


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
        lock: threading.Lock | None = None,
        *,
        interval_s: float = FLUSH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job = job
        self.backend = backend
        self.target = target
        self.lock = lock or threading.Lock()
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
