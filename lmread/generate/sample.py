"""One sample: a backend's token chunks -> a :class:`~lmread.records.Sample` record.

:func:`generate_sample` draws one sample (exact text via :class:`~lmread.records.TokenAssembler`,
timing, the model's identity); :func:`generate_batch` draws several samples of one prompt in one
batched call where the backend ``supports_batch``.  Where a sample ends is decided in
:mod:`lmread.generate.limits`.  Nothing is written here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from typing import Any

from lmread.backends.base import Backend, GenOptions, ModelIdentity, StreamEnd, TokenChunk
from lmread.generate.limits import limited_batch, limited_parallel, limited_stream
from lmread.records import Prompt, Sample, TokenAssembler, sample_id, utc_now

#: finish reasons of samples that are complete and get stored
STORED_REASONS = ("length", "eos", "stop", "context")

#: ``on_tokens(assembler, n_new)``, called after each token of a sample
TokenCallback = Callable[[TokenAssembler, int], None]


class _SampleRun:
    """The state of one sample being drawn: assembler, times, finish reason."""

    def __init__(self, options: GenOptions) -> None:
        self.options = options
        self.assembler = TokenAssembler()
        self.created = utc_now()
        self.t0 = time.perf_counter()
        self.first_token_s: float | None = None
        self.end_s: float | None = None
        self.reason: str | None = None
        self.detail = ""
        self.has_distribution = False
        self.server: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self.reason is not None

    def add(self, chunk: TokenChunk) -> None:
        """Add a token."""
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.t0
        if chunk.logprob is not None or chunk.top_ids:
            self.has_distribution = True
        self.assembler.add(
            chunk.id, chunk.piece, chunk.logprob, chunk.rank, chunk.entropy,
            chunk.top_ids, chunk.top_logprobs, chunk.top_pieces,
        )

    def end(self, reason: str, detail: str = "", server: dict[str, Any] | None = None) -> None:
        if server is not None and self.server is None:
            self.server = server  # what a server reported about the stream (openai backend)
        if self.reason is None:
            self.reason = reason
            self.detail = detail
            self.end_s = time.perf_counter() - self.t0

    def sample(self, backend: Backend, identity: ModelIdentity, prompt: dict[str, Any],
               record_model_path: bool, parallel: int = 1) -> Sample:
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
        if parallel > 1:  # how many sequences were decoded together (not part of the id)
            times["parallel"] = parallel
        if self.detail:
            times["detail"] = self.detail
        return Sample(
            id=sample_id(identity.id_fields(), prompt, settings, self.options.seed),
            model=identity.record(include_path=record_model_path),
            backend=str(backend.name),
            prompt=Prompt(text=prompt["text"], set=prompt.get("set"), name=prompt.get("name")),
            settings=settings,
            seed=self.options.seed,
            text=text,
            tokens=tokens,
            finish_reason=str(self.reason),
            created=utc_now(),
            times=times,
            raw=raw,
            server=self.server,
        )


def generate_sample(
    backend: Backend,
    prompt: dict[str, Any],
    options: GenOptions,
    cancel: threading.Event | None = None,
    on_tokens: TokenCallback | None = None,
    *,
    record_model_path: bool = False,
) -> Sample:
    """Draw one sample of ``prompt`` from ``backend`` and return it as a :class:`Sample`.

    Stop strings end the sample (finish reason ``stop``) as soon as the generated text contains
    one; every token generated is kept.  ``cancel`` ends it early (finish reason ``cancelled``).
    ``on_tokens(assembler, 1)`` is called after each token.  The model's full file path is
    recorded only with ``record_model_path``.  Backend errors propagate; nothing is written here.
    """
    options.validate()
    identity = backend.identity()
    run = _SampleRun(options)
    with closing(limited_stream(backend, prompt["text"], options, cancel)) as items:
        for item in items:
            if isinstance(item, StreamEnd):
                run.end(item.reason, item.detail, item.server)
                break
            run.add(item)
            if on_tokens is not None:
                on_tokens(run.assembler, 1)
    return run.sample(backend, identity, prompt, record_model_path)


def generate_batch(
    backend: Backend,
    prompt: dict[str, Any],
    options_list: Sequence[GenOptions],
    cancel: threading.Event | None = None,
    on_tokens: Callable[[int, TokenAssembler, int], None] | None = None,
    *,
    record_model_path: bool = False,
) -> list[Sample]:
    """Draw ``len(options_list)`` samples of one prompt, batched when the backend
    ``supports_batch``, else one after the other.

    ``on_tokens(index, assembler, 1)`` is called after each token of sequence ``index``.
    """
    for opts in options_list:
        opts.validate()
    if not backend.supports_batch:
        out = []
        for i, opts in enumerate(options_list):
            cb = None if on_tokens is None else (lambda asm, n, _i=i: on_tokens(_i, asm, n))
            out.append(generate_sample(backend, prompt, opts, cancel, cb, record_model_path=record_model_path))
        return out
    identity = backend.identity()
    runs = [_SampleRun(opts) for opts in options_list]
    with closing(limited_batch(backend, prompt["text"], list(options_list), cancel)) as items:
        for index, item in items:
            run = runs[index]
            if isinstance(item, StreamEnd):
                run.end(item.reason, item.detail, item.server)
                continue
            run.add(item)
            if on_tokens is not None:
                on_tokens(index, run.assembler, 1)
    return [run.sample(backend, identity, prompt, record_model_path) for run in runs]


def generate_parallel(
    backend: Backend,
    requests: Sequence[tuple[dict[str, Any], GenOptions]],
    n_parallel: int,
    cancel: threading.Event | None = None,
    on_tokens: Callable[[int, TokenAssembler, int], None] | None = None,
    *,
    record_model_path: bool = False,
    cancels: Sequence[threading.Event] | None = None,
) -> Iterator[Sample]:
    """Draw one sample per ``(prompt, options)`` request with ``backend.stream_parallel``,
    ``n_parallel`` decoded together; yields each :class:`Sample` as soon as it is complete
    (cancelled ones too: the caller drops them).

    The backend checks the requests (:class:`OptionError`) when this is called.  A sample's
    times start when it enters the batch and record ``parallel``; its id and settings are those
    of the same sample drawn alone.  ``on_tokens(index, assembler, 1)`` follows each token.
    ``cancels[i]`` (optional, one per request) ends request ``i`` alone (the live reader's marks).
    """
    identity = backend.identity()
    runs: dict[int, _SampleRun] = {}

    def started(index: int) -> None:
        runs[index] = _SampleRun(requests[index][1])

    items = limited_parallel(backend, [(p["text"], o) for p, o in requests], n_parallel, cancel, started,
                             cancels=cancels)
    return _parallel_samples(backend, identity, requests, n_parallel, items, runs, on_tokens, record_model_path)


def _parallel_samples(
    backend: Backend,
    identity: ModelIdentity,
    requests: Sequence[tuple[dict[str, Any], GenOptions]],
    n_parallel: int,
    items: Iterator[tuple[int, TokenChunk | StreamEnd]],
    runs: dict[int, _SampleRun],
    on_tokens: Callable[[int, TokenAssembler, int], None] | None,
    record_model_path: bool,
) -> Iterator[Sample]:
    with closing(items):  # type: ignore[type-var]
        for index, item in items:
            run = runs.get(index)
            if run is None:  # ended before it entered the batch (cancelled)
                run = runs[index] = _SampleRun(requests[index][1])
            if isinstance(item, StreamEnd):
                run.end(item.reason, item.detail, getattr(item, "server", None))
                del runs[index]
                yield run.sample(backend, identity, requests[index][0], record_model_path, parallel=n_parallel)
                continue
            run.add(item)
            if on_tokens is not None:
                on_tokens(index, run.assembler, 1)
