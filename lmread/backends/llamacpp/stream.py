"""The single stream: one sample drawn token by token on the loaded model's context.

Sampling: pure sampling (temperature 1, no top-k/top-p/min-p, no repetition penalty) draws from
the very softmax the distribution fields are computed from (:func:`~lmread.backends.base.
sample_unmodified`, seeded numpy PCG64), and greedy (temperature 0) takes the first argmax: both
are cheaper than llama.cpp's sampler on a 262k vocabulary.  Any other setting goes through a
seeded llama.cpp sampler chain in the order of :func:`lmread.backends.base.sample_token` and
transformers: repetition penalty (the prompt counts), temperature, top-k, top-p, min-p, draw.
The same seed, prompt and options give the same tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk, distribution_fields, sample_unmodified
from lmread.backends.llamacpp.context import LlamaContext
from lmread.backends.llamacpp.parallel import sampler_chain, sampling_mode


def generate(
    context: LlamaContext,
    ids: list[int],
    options: GenOptions,
    seed: int,
    cancel: threading.Event | None,
    ignore_eos: bool = False,
) -> Iterator[TokenChunk | StreamEnd]:
    """Chunks of one sample after the prompt ``ids`` (checked to fit by the caller), then its
    :class:`StreamEnd`; a stream or score started meanwhile on the same context supersedes it."""
    lib = context.lib
    ctx = context.ctx
    vocab = context.vocab
    k = options.top_logprobs
    n_ctx = context.n_ctx
    piece = context.piece
    pieces = context.pieces
    lock = context.lock
    superseded = StreamEnd("error", "another stream or score started on this model")
    if cancel is not None and cancel.is_set():
        yield StreamEnd("cancelled")
        return
    with lock:
        context.check_open()
        context.epoch += 1
        epoch = context.epoch
        context.reset()
        status = context.prefill(ids)
    if status != 0:
        yield StreamEnd("error", f"llama_decode failed on the prompt (status {status})")
        return
    # Pure sampling (temperature 1, nothing truncated or penalised) draws from the softmax
    # the distribution fields need anyway, and greedy takes its argmax: both skip llama.cpp's
    # sampler, which would build and normalise the whole vocabulary a second time.  Other
    # settings go through llama.cpp's seeded sampler chain.
    pure, greedy = sampling_mode(options)
    chain = None if pure or greedy else sampler_chain(lib, context.n_vocab, options, seed)
    draw = np.random.Generator(np.random.PCG64(seed)).random
    try:
        if chain is not None:
            for tid in ids:  # the prompt counts for the repetition penalty, as in transformers
                lib.llama_sampler_accept(chain, tid)
        n_past = len(ids)
        while True:
            if cancel is not None and cancel.is_set():
                yield StreamEnd("cancelled")
                return
            with lock:
                if context.epoch != epoch:
                    end: StreamEnd | None = superseded
                else:
                    end = None
                    logits = context.logits(-1)
                    if pure:
                        tid, logprob, rank, entropy, top_ids, top_lps = sample_unmodified(logits, k, draw())
                    else:
                        if greedy:
                            tid = int(logits.argmax())
                        else:
                            tid = lib.llama_sampler_sample(chain, ctx, -1)
                        logprob, rank, entropy, top_ids, top_lps = distribution_fields(logits, tid, k)
                    if not ignore_eos and lib.llama_vocab_is_eog(vocab, tid):
                        end = StreamEnd("eos")
            if end is not None:
                yield end
                return
            top = top_ids.tolist()
            text = pieces.get(tid) or piece(tid)
            yield TokenChunk(
                id=tid,
                piece=text,
                logprob=logprob,
                rank=rank,
                entropy=entropy,
                top_ids=top,
                top_logprobs=top_lps.tolist(),
                top_pieces=[pieces.get(t) or piece(t) for t in top],
            )
            # the driver sets ``cancel`` when the sample is done (stop string, max_tokens)
            if cancel is not None and cancel.is_set():
                yield StreamEnd("cancelled")
                return
            if n_past >= n_ctx:
                yield StreamEnd("context")
                return
            with lock:
                status = context.decode_one(tid, n_past) if context.epoch == epoch else -100
            if status == -100:
                yield superseded
                return
            if status == 1:  # no room left in the KV cache
                yield StreamEnd("context")
                return
            if status != 0:
                yield StreamEnd("error", f"llama_decode failed (status {status})")
                return
            n_past += 1
    finally:
        if chain is not None:
            lib.llama_sampler_free(chain)
