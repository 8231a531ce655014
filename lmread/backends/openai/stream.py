"""The one stream loop, over any server protocol (:class:`ServerProtocol`).

A protocol says where a stream is requested (``endpoint``), what its request is (``body``) and
how its events become chunks (a :class:`StreamParser` per stream); :func:`run_stream` sends the
request through the :class:`~.http.HttpClient`, feeds the events to the parser, yields its
chunks, watches the cancel flag and ends with exactly one
:class:`~lmread.backends.base.StreamEnd` (carrying the stream's report as ``server``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing
from typing import Any, Protocol

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk
from lmread.backends.openai.http import HttpClient
from lmread.errors import BackendError


class StreamParser(Protocol):
    """The events of one stream turned into chunks and one end."""

    @property
    def finished(self) -> bool:
        """Whether the server has said why the stream ends."""

    @property
    def done(self) -> bool:
        """Whether no more events are needed."""

    #: what an error says after "ended the stream after N tokens" when the stream ends unfinished
    incomplete: str

    def feed(self, event: dict[str, Any]) -> list[TokenChunk]:
        """The chunks of one event (none, one, or several)."""

    def final(self, event: dict[str, Any]) -> bool:
        """Whether ``event`` is the server's last word (read even after a cancel)."""

    def end(self) -> StreamEnd:
        """The stream's end, once :attr:`finished`."""


class ServerProtocol(Protocol):
    """One way of asking a server for a stream of tokens."""

    #: the path streams are requested at
    endpoint: str

    def check(self, options: GenOptions) -> None:
        """Raise :class:`~lmread.errors.OptionError` when the server cannot honour ``options``."""

    def body(self, prompt: str, options: GenOptions) -> dict[str, Any]:
        """The request for one stream of ``prompt``."""

    def parser(self, options: GenOptions) -> StreamParser:
        """A parser for one stream's events."""


def run_stream(http: HttpClient, protocol: ServerProtocol, prompt: str, options: GenOptions,
               cancel: threading.Event | None = None) -> Iterator[TokenChunk | StreamEnd]:
    """Stream one completion of ``prompt``: one chunk per token, then one :class:`StreamEnd`.

    ``cancel`` ends the stream with ``cancelled`` (after the server's last word, when it came,
    the server's own end is kept).  A stream that ends without the server saying why raises
    :class:`BackendError` (the sample is incomplete); so do transport and server errors.
    """
    protocol.check(options)
    parser = protocol.parser(options)
    count = 0
    body = protocol.body(prompt, options)
    with closing(http.events(protocol.endpoint, body, cancel, lambda: count)) as events:
        for event in events:
            if cancel is not None and cancel.is_set() and not parser.finished:
                if event is not None and parser.final(event):
                    parser.feed(event)  # the driver ended it at the server's own last token
                    break
                yield StreamEnd("cancelled")
                return
            if event is None:
                break
            for chunk in parser.feed(event):
                count += 1
                yield chunk
            if parser.done:
                break
    if not parser.finished:
        if cancel is not None and cancel.is_set():
            yield StreamEnd("cancelled")
            return
        raise BackendError(f"the server at {http.url} ended the stream after {count} tokens {parser.incomplete}")
    yield parser.end()
