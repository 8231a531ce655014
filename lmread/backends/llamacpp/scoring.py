"""Scoring a given text: teacher-forced distributions on the loaded model's context.

``score(text, prompt)`` tokenizes ``prompt`` as a prompt (with BOS when the model wants one) and
``text`` on its own as a continuation (no BOS, no special-token parsing) and appends the two
token lists: the scored ids are exactly ``tokenize(text)`` of the model's tokenizer, and their
pieces concatenate to ``text``'s bytes.  When the prompt gives no tokens at all, the model's BOS
token is used as the context, so every text token has a distribution.  The text is evaluated one
token per decode, exactly like generation (:func:`score_each`), so scoring a generated text gives
back the logprobs it was streamed with; :func:`score_rows` decodes in batches with logits for
the rows asked for only.
"""

from __future__ import annotations

import bisect
import codecs
from collections.abc import Sequence

from lmread.backends.base import TokenChunk, distribution_fields
from lmread.backends.llamacpp.context import LlamaContext
from lmread.errors import BackendError


def score_each(context: LlamaContext, prompt_ids: list[int], target: list[int], k: int) -> list[TokenChunk]:
    """One chunk per token of ``target`` after ``prompt_ids`` (both checked to fit by the
    caller), each with its distribution, decoding one token at a time."""
    chunks: list[TokenChunk] = []
    piece = context.piece
    with context.lock:
        context.epoch += 1
        context.reset()
        # The same path as generation: the prompt in batches, then one token per decode, so a
        # generated text scores to the logprobs it was streamed with.  (Batched rows differ
        # by up to ~0.2 nats on quantized models: llama.cpp picks other matmul kernels.)
        status = context.prefill(prompt_ids)
        pos = len(prompt_ids)
        for i, tid in enumerate(target):
            if status != 0:
                break
            lp, rank, ent, top_ids, top_lps = distribution_fields(context.logits(-1), tid, k)
            top = top_ids.tolist()
            chunks.append(TokenChunk(
                id=tid, piece=piece(tid), logprob=lp, rank=rank, entropy=ent,
                top_ids=top, top_logprobs=top_lps.tolist(), top_pieces=[piece(t) for t in top],
            ))
            if i + 1 < len(target):
                status = context.decode_one(tid, pos)
                pos += 1
    if status != 0:
        raise BackendError(f"llama_decode failed while scoring (status {status})")
    return chunks


def score_rows(context: LlamaContext, prompt_ids: list[int], target: list[int], rows: set[int],
               k: int) -> list[TokenChunk]:
    """Score ``target`` after ``prompt_ids`` in batches, with distributions for ``rows`` only."""
    ids = prompt_ids + target
    first = len(prompt_ids)
    wanted = {first + r - 1 for r in rows}  # the input position whose logits predict text token r
    found: dict[int, tuple[float, int, float, list[int], list[float]]] = {}
    lib, batch = context.lib, context.batch
    status = 0
    with context.lock:
        context.epoch += 1
        context.reset()
        for start in range(0, len(ids) - 1, context.n_batch):
            part = ids[start : min(start + context.n_batch, len(ids) - 1)]
            batch.n_tokens = len(part)
            for i, tid in enumerate(part):
                batch.token[i] = tid
                batch.pos[i] = start + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = (start + i) in wanted
            status = int(lib.llama_decode(context.ctx, batch))
            if status != 0:
                break
            for i in range(len(part)):
                if start + i in wanted:
                    lp, rank, ent, top_ids, top_lps = distribution_fields(context.logits(i), ids[start + i + 1], k)
                    found[start + i + 1 - first] = (lp, rank, ent, top_ids.tolist(), top_lps.tolist())
    if status != 0:
        raise BackendError(f"llama_decode failed while scoring (status {status})")
    chunks: list[TokenChunk] = []
    for r, tid in enumerate(target):
        if r in found:
            lp, rank, ent, top, top_lp = found[r]
            chunks.append(TokenChunk(id=tid, piece=context.piece(tid), logprob=lp, rank=rank, entropy=ent, top_ids=top,
                                     top_logprobs=top_lp, top_pieces=[context.piece(t) for t in top]))
        else:
            chunks.append(TokenChunk(id=tid, piece=context.piece(tid)))
    return chunks


def rows_in_spans(pieces: Sequence[bytes], spans: Sequence[tuple[int, int]]) -> set[int]:
    """Indexes of the tokens holding a byte of a character in one of ``spans`` (character ranges
    of the text the ``pieces`` spell; a character belongs to the token holding its last byte, and
    a token that only starts a character holds a byte of it too)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    offsets = [0]
    for p in pieces:
        offsets.append(offsets[-1] + len(decoder.decode(p)))
    offsets[-1] += len(decoder.decode(b"", final=True))
    rows: set[int] = set()
    for a, b in spans:
        lo = bisect.bisect_right(offsets, a) - 1
        while lo > 0 and offsets[lo] == a and offsets[lo - 1] == a:
            lo -= 1
        j = max(lo, 0)
        while j < len(pieces) and offsets[j] < b:
            rows.add(j)
            j += 1
    return rows
