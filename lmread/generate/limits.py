"""Where a sample ends: stop strings, the token budget and cancellation, applied by the driver only.

Backends stream until the model ends, the context is full or their ``cancel`` event is set
(:mod:`lmread.backends.base`).  The functions here wrap a backend's stream and end each
sequence the same way for every backend:

- a stop string in the text ends it at once, with the token that completed it (``stop``);
- its ``max_tokens``-th token ends it (``length``): the driver sets the stream's cancel event
  and takes the backend's answer, so an end-of-text the backend reports for that very token
  still counts (``eos``) and nothing more is computed;
- the backend's own end passes through (``eos``, ``context``, ``cancelled``, ``error``).

Stop strings are matched on the raw bytes of the pieces, looking only at the bytes that can
complete a match (the longest stop string minus one, plus the new piece): linear in the text.
A character belongs to the token holding its last byte, so matching bytes ends a sample at
the same token as matching the decoded text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

from lmread.backends.base import Backend, GenOptions, LinkedEvent, StreamEnd, TokenChunk


class StopMatcher:
    """Finds the first stop string in a growing byte stream, one piece at a time."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s.encode("utf-8") for s in stops if s]
        self._keep = max((len(s) for s in self.stops), default=1) - 1
        self._tail = b""

    def feed(self, piece: bytes) -> bool:
        """Add a piece; True when the stream now contains a stop string."""
        if not self.stops or not piece:
            return False
        window = self._tail + piece
        hit = any(s in window for s in self.stops)
        self._tail = window[-self._keep:] if self._keep else b""
        return hit


class SequenceLimit:
    """The driver's end rule for one sequence (see the module docstring)."""

    def __init__(self, options: GenOptions) -> None:
        self.max_tokens = options.max_tokens
        self.matcher = StopMatcher(options.stop)
        self.count = 0
        #: ``stop`` or ``length`` once the driver has ended the sequence
        self.reason: str | None = None

    def add(self, chunk: TokenChunk) -> str | None:
        """Count a token; the driver's reason to end the sequence after it, if any."""
        self.count += 1
        if self.matcher.feed(chunk.piece):
            self.reason = "stop"
        elif self.count >= self.max_tokens:
            self.reason = "length"
        return self.reason

    def resolve(self, answer: StreamEnd | None) -> StreamEnd:
        """The end of a sequence the driver ended for ``length``, given what the backend yielded
        next (its own end for the last token, or ``cancelled``; None: anything else)."""
        if answer is not None and answer.reason != "cancelled":
            return answer
        return StreamEnd(self.reason or "length")

    def fallback(self, cancelled: bool) -> StreamEnd:
        """The end of a stream that stopped without a :class:`StreamEnd`."""
        if cancelled:
            return StreamEnd("cancelled")
        if self.count >= self.max_tokens:
            return StreamEnd("length")
        return StreamEnd("error", "the stream ended without a finish reason")


def _close(stream: Iterator[Any]) -> None:
    close = getattr(stream, "close", None)  # generators have close(); plain iterators need none
    if close is not None:
        close()


def limited_stream(
    backend: Backend,
    prompt: str,
    options: GenOptions,
    cancel: threading.Event | None = None,
    **stream_options: Any,
) -> Generator[TokenChunk | StreamEnd, None, None]:
    """``backend.stream`` with the driver's ends applied: the chunks of one sample, then exactly
    one :class:`StreamEnd`.  ``cancel`` (the caller's) ends it as ``cancelled``;
    ``stream_options`` go to the backend (``ignore_eos`` for benchmarks)."""
    options.validate()
    inner = LinkedEvent(cancel)
    limit = SequenceLimit(options)
    stream = backend.stream(prompt, options, inner, **stream_options)
    try:
        for item in stream:
            if isinstance(item, StreamEnd):
                yield item
                return
            yield item
            reason = limit.add(item)
            if reason is None:
                continue
            inner.set()
            if reason == "stop":
                yield StreamEnd("stop")
                return
            answer = next(stream, None)
            yield limit.resolve(answer if isinstance(answer, StreamEnd) else None)
            return
        yield limit.fallback(inner.is_set())
    finally:
        _close(stream)


def limited_batch(
    backend: Backend,
    prompt: str,
    options_list: Sequence[GenOptions],
    cancel: threading.Event | None = None,
    **stream_options: Any,
) -> Generator[tuple[int, TokenChunk | StreamEnd], None, None]:
    """``backend.stream_batch`` with the driver's ends applied to each sequence: yields
    ``(index, item)``, each sequence's chunks then exactly one :class:`StreamEnd`.  A sequence
    the driver ends gets its ``done`` flag set, so the backend drops it from the batch.
    ``stream_options`` go to the backend (``ignore_eos`` for benchmarks)."""
    for opts in options_list:
        opts.validate()
    return _limited_indexed(
        lambda inner, done: backend.stream_batch(prompt, list(options_list), inner, done, **stream_options),
        options_list, cancel)


def limited_parallel(
    backend: Backend,
    requests: Sequence[tuple[str, GenOptions]],
    n_parallel: int,
    cancel: threading.Event | None = None,
    started: Callable[[int], None] | None = None,
    cancels: Sequence[threading.Event] | None = None,
    **stream_options: Any,
) -> Generator[tuple[int, TokenChunk | StreamEnd], None, None]:
    """``backend.stream_parallel`` (one sample per ``(prompt, options)`` request, ``n_parallel``
    decoded together) with the driver's ends applied to each request, as :func:`limited_batch`.
    Setting ``cancels[i]`` (optional, one per request) ends request ``i`` alone (``cancelled``).
    The backend checks the requests when this is called, before the first item is asked for."""
    options_list = [opts.validate() for _, opts in requests]
    inner = LinkedEvent(cancel)
    # a request's flag follows its own cancel where given (the backend checks ``inner`` itself)
    flags = [LinkedEvent(cancels[i] if cancels is not None else inner) for i in range(len(requests))]
    stream = backend.stream_parallel(list(requests), n_parallel, inner, flags, started, **stream_options)
    return _limited_indexed(lambda _inner, _done: stream, options_list, cancel, inner, flags)


def _limited_indexed(
    open_stream: Callable[[LinkedEvent, list[LinkedEvent]], Iterator[tuple[int, TokenChunk | StreamEnd]]],
    options_list: Sequence[GenOptions],
    cancel: threading.Event | None,
    inner: LinkedEvent | None = None,
    done: list[LinkedEvent] | None = None,
) -> Generator[tuple[int, TokenChunk | StreamEnd], None, None]:
    n = len(options_list)
    inner = inner if inner is not None else LinkedEvent(cancel)
    done = done if done is not None else [LinkedEvent(inner) for _ in range(n)]
    limits = [SequenceLimit(o) for o in options_list]
    finished = [False] * n
    waiting: set[int] = set()  # ended for length: the backend's next item for it decides
    stream = open_stream(inner, done)
    try:
        for index, item in stream:
            if finished[index]:
                continue
            if index in waiting:
                finished[index] = True
                yield index, limits[index].resolve(item if isinstance(item, StreamEnd) else None)
            elif isinstance(item, StreamEnd):
                finished[index] = True
                yield index, item
            else:
                yield index, item
                reason = limits[index].add(item)
                if reason is not None:
                    done[index].set()
                    if reason == "stop":
                        finished[index] = True
                        yield index, StreamEnd("stop")
                    else:
                        waiting.add(index)
            if all(finished):
                inner.set()
                break
    finally:
        _close(stream)
    for index in range(n):
        if not finished[index]:
            if index in waiting:
                yield index, limits[index].resolve(None)
            else:
                yield index, limits[index].fallback(inner.is_set())
