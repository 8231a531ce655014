"""Several llama.cpp sequences decoded together: one context, one batch per step.

:class:`ParallelDecoder` owns a second llama.cpp context on the backend's loaded model, made for
``n_seq`` sequences of ``n_ctx_seq`` tokens each (``n_seq_max = n_seq``, a KV cache per
sequence: ``kv_unified`` off, so the context holds ``n_seq x n_ctx_seq`` cells).  It runs a queue
of requests with continuous batching: up to ``n_seq`` requests are in flight, each in its own
sequence id with its own positions; every step puts the pending tokens of all of them (the
prompt of a request just admitted, the last sampled token of the others) into one
``llama_batch``, decodes it once, and samples each sequence from its own row of logits with
its own seed, exactly as the single stream does (:mod:`lmread.backends.llamacpp.stream`): pure
sampling draws from the unmodified softmax with the seeded numpy generator, greedy takes the
argmax, any other setting runs a seeded llama.cpp sampler chain on that row.  Logprob, rank,
entropy and top-k come from the same unmodified row.  When a request ends, its sequence is
cleared and the next request takes it.

Batching changes llama.cpp's floating-point sums (other matmul kernels for several rows), so
the logits of a sequence differ slightly from the single stream's and, rarely, a sampled token
differs; the same requests, seeds and ``n_seq`` give the same tokens run to run.
"""

from __future__ import annotations

import ctypes
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk, distribution_fields, sample_unmodified
from lmread.errors import BackendError, OptionError

#: llama.cpp's limit on sequences in one context (``LLAMA_MAX_SEQ``)
MAX_SEQ = 256

#: llama.cpp pads each sequence's context to a multiple of this many cells
CTX_PAD = 256


@dataclass
class ParallelRequest:
    """One sample to draw: its prompt's token ids, its options and its seed."""

    ids: list[int]
    options: GenOptions
    seed: int


@dataclass
class _Slot:
    """One sequence of the context and the request it is drawing (``index`` -1: free)."""

    seq: int
    index: int = -1
    todo: list[int] = field(default_factory=list)
    n_past: int = 0
    k: int = 0
    pure: bool = False
    greedy: bool = False
    chain: Any = None
    draw: Callable[[], float] | None = None


def sampling_mode(options: GenOptions) -> tuple[bool, bool]:
    """``(pure, greedy)``: whether the options draw from the unmodified softmax (temperature 1,
    nothing truncated or penalised) or take the argmax; neither means a llama.cpp sampler chain."""
    pure = (options.temperature == 1.0 and options.top_k == 0 and options.top_p >= 1.0
            and options.min_p == 0.0 and options.repetition_penalty == 1.0)
    greedy = options.temperature == 0.0 and options.repetition_penalty == 1.0
    return pure, greedy


def sampler_chain(lib: Any, n_vocab: int, options: GenOptions, seed: int) -> Any:
    """A seeded llama.cpp sampler chain for ``options``: repetition penalty (the prompt counts),
    temperature, top-k, top-p, min-p, draw (the order of transformers)."""
    chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
    if options.repetition_penalty != 1.0:
        lib.llama_sampler_chain_add(
            chain, lib.llama_sampler_init_penalties(n_vocab, -1, options.repetition_penalty, 0.0, 0.0)
        )
    if options.temperature == 0.0:
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
        return chain
    if options.temperature != 1.0:
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(options.temperature))
    if options.top_k > 0:
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_k(options.top_k))
    if options.top_p < 1.0:
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(options.top_p, 1))
    if options.min_p > 0.0:
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_min_p(options.min_p, 1))
    lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed))
    return chain


def padded_ctx(n_tokens: int) -> int:
    """The per-sequence context llama.cpp allocates for ``n_tokens`` (a multiple of 256)."""
    return -(-max(n_tokens, 1) // CTX_PAD) * CTX_PAD


class ParallelDecoder:
    """A llama.cpp context for ``n_seq`` sequences of ``n_ctx_seq`` tokens on a loaded model.

    ``source_params`` (the backend's own ``llama_context_params``) gives everything else (threads,
    batch sizes, attention and cache types), so the two contexts compute alike.  ``piece(id)``
    is the backend's token-bytes lookup.
    """

    def __init__(self, lib: Any, model: Any, vocab: Any, source_params: Any, *, n_seq: int, n_ctx_seq: int,
                 piece: Callable[[int], bytes]) -> None:
        if not 1 <= n_seq <= MAX_SEQ:
            raise OptionError(f"invalid option --parallel {n_seq}: llama.cpp decodes at most {MAX_SEQ} sequences at once")
        self._lib = lib
        self._vocab = vocab
        self.n_seq = n_seq
        #: the tokens a sequence may hold (what lmread allows; llama.cpp pads its cells above it)
        self.n_ctx_seq = n_ctx_seq
        self._piece = piece
        params = lib.llama_context_params()
        ctypes.memmove(ctypes.byref(params), ctypes.byref(source_params), ctypes.sizeof(params))
        params.n_seq_max = n_seq
        params.kv_unified = False
        params.n_ctx = padded_ctx(n_ctx_seq) * n_seq
        self.n_batch = max(int(source_params.n_batch), n_seq)
        params.n_batch = self.n_batch
        params.n_ubatch = max(int(source_params.n_ubatch), min(n_seq, self.n_batch))
        ctx = lib.llama_init_from_model(model, params)
        if not ctx:
            raise OptionError(
                f"llama.cpp could not create a context for --parallel {n_seq} x {n_ctx_seq} tokens "
                "(out of memory?); lower --parallel or --max-tokens"
            )
        self._ctx = ctx
        self._memory = lib.llama_get_memory(ctx)
        self.n_vocab = int(lib.llama_vocab_n_tokens(vocab))
        self._batch = lib.llama_batch_init(self.n_batch, 0, 1)
        self._lock = threading.Lock()
        self._epoch = 0
        self._closed = False

    def close(self) -> None:
        """Free the context and its batch (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._epoch += 1
            self._lib.llama_batch_free(self._batch)
            self._lib.llama_free(self._ctx)

    def _rows(self, n_outputs: int) -> np.ndarray:
        """The ``n_outputs`` logits rows of the last decode (in batch order), as one float32
        ``(n_outputs, n_vocab)`` view without a copy."""
        ptr = self._lib.llama_get_logits(self._ctx)
        if not ptr:
            raise BackendError("llama.cpp returned no logits")
        flat = ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float * (n_outputs * self.n_vocab))).contents
        return np.ctypeslib.as_array(flat).reshape(n_outputs, self.n_vocab)

    def _start(self, slot: _Slot, index: int, request: ParallelRequest) -> None:
        lib = self._lib
        lib.llama_memory_seq_rm(self._memory, slot.seq, -1, -1)
        opts = request.options
        slot.index = index
        slot.todo = list(request.ids)
        slot.n_past = 0
        slot.k = opts.top_logprobs
        slot.pure, slot.greedy = sampling_mode(opts)
        slot.chain = None
        if not (slot.pure or slot.greedy):
            slot.chain = sampler_chain(lib, self.n_vocab, opts, request.seed)
            for tid in request.ids:  # the prompt counts for the repetition penalty
                lib.llama_sampler_accept(slot.chain, tid)
        slot.draw = np.random.Generator(np.random.PCG64(request.seed)).random

    def _free(self, slot: _Slot) -> None:
        if slot.chain is not None:
            self._lib.llama_sampler_free(slot.chain)
        slot.chain = None
        slot.index = -1
        slot.todo = []

    def _step(self, requests: list[ParallelRequest], slots: list[_Slot], queue: deque[int],
              started: Callable[[int], None] | None,
              results: list[tuple[_Slot, int, float, int, float, list[int], list[float]]]) -> list[tuple[int, StreamEnd]]:
        """Admit queued requests into free sequences, decode one batch and sample every sequence
        that has logits (into ``results``); the ends of all requests when the decode fails."""
        lib, ctx, batch = self._lib, self._ctx, self._batch
        n_batch = self.n_batch
        for slot in slots:
            if slot.index < 0 and queue:
                i = queue.popleft()
                self._start(slot, i, requests[i])
                if started is not None:
                    started(i)
        # one batch: the pending tokens of every sequence, logits for each one's last
        n = 0
        outputs: list[tuple[_Slot, int]] = []
        for slot in slots:
            if slot.index < 0 or n >= n_batch:
                continue
            take = min(len(slot.todo), n_batch - n)
            last = take == len(slot.todo)
            for j in range(take):
                batch.token[n] = slot.todo[j]
                batch.pos[n] = slot.n_past + j
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = slot.seq
                batch.logits[n] = last and j == take - 1
                n += 1
            slot.n_past += take
            del slot.todo[:take]
            if last:
                outputs.append((slot, n - 1))
        if n == 0:
            return []
        batch.n_tokens = n
        status = int(lib.llama_decode(ctx, batch))
        if status != 0:
            end = StreamEnd("context") if status == 1 else StreamEnd("error", f"llama_decode failed (status {status})")
            ends = [(slot.index, end) for slot in slots if slot.index >= 0]
            ends += [(i, StreamEnd("error", f"llama_decode failed (status {status})")) for i in queue]
            for slot in slots:
                self._free(slot)
            return ends
        rows = self._rows(len(outputs))
        for out, (slot, row) in enumerate(outputs):
            logits = rows[out]
            if slot.pure:
                assert slot.draw is not None
                tid, lp, rank, ent, top_ids, top_lps = sample_unmodified(logits, slot.k, slot.draw())
            else:
                tid = int(logits.argmax()) if slot.greedy else int(lib.llama_sampler_sample(slot.chain, ctx, row))
                lp, rank, ent, top_ids, top_lps = distribution_fields(logits, tid, slot.k)
            results.append((slot, tid, lp, rank, ent, top_ids.tolist(), top_lps.tolist()))
        return []

    def run(
        self,
        requests: Sequence[ParallelRequest],
        cancel: threading.Event | None = None,
        done: Sequence[threading.Event] | None = None,
        started: Callable[[int], None] | None = None,
        *,
        ignore_eos: bool = False,
    ) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        """Draw every request, ``n_seq`` at a time; yields ``(request index, item)``, each
        request's chunks then exactly one :class:`StreamEnd`.

        ``started(i)`` is called when request ``i`` enters the batch (its prompt is decoded in
        the next step); ``done[i]`` (the driver's flag), checked after each of its tokens, ends
        request ``i`` (``cancelled``); ``cancel`` ends them all.  A sequence that reaches
        ``n_ctx_seq`` tokens ends with ``context``.  Requests enter in order, so the same
        requests and ``n_seq`` give the same batches, and the same tokens, run to run.
        """
        with self._lock:
            if self._closed:
                raise BackendError("the parallel llama.cpp context was closed")
            self._epoch += 1
            epoch = self._epoch
        for r in requests:
            if len(r.ids) > self.n_ctx_seq:
                raise OptionError(f"prompt has {len(r.ids)} tokens, a sequence holds {self.n_ctx_seq}")
        return self._run(list(requests), cancel, done, started, ignore_eos, epoch)

    def _run(
        self,
        requests: list[ParallelRequest],
        cancel: threading.Event | None,
        done: Sequence[threading.Event] | None,
        started: Callable[[int], None] | None,
        ignore_eos: bool,
        epoch: int,
    ) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        lib, vocab, piece = self._lib, self._vocab, self._piece
        queue = deque(range(len(requests)))
        slots = [_Slot(seq=s) for s in range(self.n_seq)]
        limit = self.n_ctx_seq
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    for slot in slots:
                        if slot.index >= 0:
                            yield slot.index, StreamEnd("cancelled")
                    for i in queue:
                        yield i, StreamEnd("cancelled")
                    return
                ends: list[tuple[int, StreamEnd]] = []
                results: list[tuple[_Slot, int, float, int, float, list[int], list[float]]] = []
                with self._lock:
                    if self._epoch != epoch:
                        superseded = StreamEnd("error", "another parallel run started on this model")
                        ends = [(s.index, superseded) for s in slots if s.index >= 0]
                        ends += [(i, superseded) for i in queue]
                    else:
                        ends = self._step(requests, slots, queue, started, results)
                if ends:
                    for i, end in ends:
                        yield i, end
                    return
                if not results:
                    return
                for slot, tid, lp, rank, ent, top, top_lps in results:
                    i = slot.index
                    if not ignore_eos and lib.llama_vocab_is_eog(vocab, tid):
                        yield i, StreamEnd("eos")
                        self._free(slot)
                        continue
                    yield i, TokenChunk(id=tid, piece=piece(tid), logprob=lp, rank=rank, entropy=ent, top_ids=top,
                                        top_logprobs=top_lps, top_pieces=[piece(t) for t in top])
                    if (done is not None and done[i].is_set()) or (cancel is not None and cancel.is_set()):
                        yield i, StreamEnd("cancelled")
                        self._free(slot)
                    elif slot.n_past >= limit:
                        yield i, StreamEnd("context")
                        self._free(slot)
                    else:
                        slot.todo = [tid]
        finally:
            for slot in slots:
                if slot.chain is not None:
                    self._lib.llama_sampler_free(slot.chain)
                    slot.chain = None
