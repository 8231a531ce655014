"""Distribution helpers shared by the local backends: the fields of a token (logprob, rank,
entropy, top-k) from raw logits, the unmodified draw, and the options' sampling rule in numpy.

All are computed at temperature 1 over the whole vocabulary from the logits the token was
sampled from (see :mod:`lmread.backends.base`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lmread.backends.options import GenOptions

#: Top-k candidates are first looked for within this many nats of the best logit (one cheap
#: comparison pass), falling back to a partition of the whole vocabulary when fewer are found.
_TOP_WINDOW = 12.0

#: Block size of the two-level inverse-CDF draw in :func:`sample_unmodified`.
_DRAW_BLOCK = 1024


@functools.lru_cache(maxsize=8)
def _block_starts(n: int) -> np.ndarray:
    """The first index of each :data:`_DRAW_BLOCK` block of an ``n``-long row (made once per size)."""
    starts = np.arange(0, n, _DRAW_BLOCK)
    starts.setflags(write=False)
    return starts


def _softmax_parts(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, shifted, ex, block_sums)``: float32 logits, ``x - max``, ``exp(shifted)`` and the
    sums of ``ex`` over consecutive blocks of :data:`_DRAW_BLOCK` (float32 within a block)."""
    x = np.asarray(logits)
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    shifted = x - x.max()
    ex = np.exp(shifted)
    blocks = np.add.reduceat(ex, _block_starts(ex.shape[0]))
    return x, shifted, ex, blocks


def _fields(
    x: np.ndarray, shifted: np.ndarray, ex: np.ndarray, total: float, token_id: int, k: int
) -> tuple[float, int, float, np.ndarray, np.ndarray]:
    log_z = math.log(total)
    weighted = float(np.dot(ex, shifted))
    if not math.isfinite(weighted):  # -inf logits (masked tokens): 0 * -inf is nan
        keep = np.isfinite(shifted)
        weighted = float(np.dot(ex[keep], shifted[keep]))
    entropy = max(log_z - weighted / total, 0.0)
    chosen = shifted[token_id]
    logprob = float(chosen) - log_z
    n = x.shape[0]
    kk = min(k, n)
    near = chosen >= -_TOP_WINDOW
    if kk <= 0:
        rank = int(np.count_nonzero(shifted > chosen)) + 1
        return logprob, rank, entropy, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    cand = np.flatnonzero(shifted >= -_TOP_WINDOW)
    # every logit above a near-max chosen one is a candidate: count there, not over the vocabulary
    rank = int(np.count_nonzero(shifted[cand] > chosen) if near else np.count_nonzero(shifted > chosen)) + 1
    if cand.size < kk:
        cand = np.argpartition(shifted, n - kk)[n - kk :]
    elif cand.size > 16 * kk:
        vals = shifted[cand]
        cut = np.partition(vals, vals.size - kk)[vals.size - kk]
        cand = cand[vals >= cut]  # keeps every tie at the cut
    vals = shifted[cand]
    order = cand[np.lexsort((cand, -vals))][:kk]
    top_lp = shifted[order].astype(np.float64) - log_z
    return logprob, rank, entropy, order, top_lp


def distribution_fields(
    logits: np.ndarray, token_id: int, k: int
) -> tuple[float, int, float, np.ndarray, np.ndarray]:
    """From raw logits (1-D, float32/64), the chosen token's logprob, its rank (1 = argmax),
    the entropy in nats, and the top-``k`` ids and logprobs (best first; ties by lower id).

    Computed at temperature 1 over the whole vocabulary.  Tuned for large vocabularies (262k
    for Gemma): float32 passes without float64 copies (block sums, then a float64 total; the
    BLAS dot is accurate to ~1e-6 relative), and the top-k and the rank are taken from the few
    logits near the maximum instead of the whole array.  ``logits`` is never modified.
    """
    x, shifted, ex, blocks = _softmax_parts(logits)
    return _fields(x, shifted, ex, float(blocks.sum(dtype=np.float64)), token_id, k)


def sample_unmodified(
    logits: np.ndarray, k: int, u: float
) -> tuple[int, float, int, float, np.ndarray, np.ndarray]:
    """Draw a token from the unmodified distribution (temperature 1, no truncation) with the
    uniform number ``u`` in [0, 1), and return ``(token_id, *distribution_fields)``.

    Shares the softmax with the fields, so pure sampling costs one extra pass over block sums:
    an inverse-CDF draw over float64 cumulative block sums, then within the chosen block.
    """
    x, shifted, ex, blocks = _softmax_parts(logits)
    cum = np.cumsum(blocks, dtype=np.float64)
    total = float(cum[-1])
    target = u * total
    b = min(int(np.searchsorted(cum, target, side="right")), cum.shape[0] - 1)
    start = b * _DRAW_BLOCK
    inner = np.cumsum(ex[start : start + _DRAW_BLOCK], dtype=np.float64)
    rest = target - (float(cum[b - 1]) if b else 0.0)
    i = min(int(np.searchsorted(inner, rest, side="right")), inner.shape[0] - 1)
    token_id = start + i
    if ex[token_id] == 0.0:  # rounding at a block edge: fall back to the block's best token
        token_id = start + int(np.argmax(ex[start : start + _DRAW_BLOCK]))
    return (token_id, *_fields(x, shifted, ex, total, token_id, k))


def sample_token(
    logits: np.ndarray,
    options: GenOptions,
    rng: np.random.Generator,
    history: Sequence[int] = (),
) -> int:
    """Sample one token id from raw logits with the options' repetition penalty, temperature,
    top-k, top-p and min-p (in that order).  ``temperature == 0`` takes the argmax."""
    x = np.array(logits, dtype=np.float64)
    if options.repetition_penalty != 1.0 and len(history):
        seen = np.unique(np.asarray(history, dtype=np.int64))
        vals = x[seen]
        x[seen] = np.where(vals > 0, vals / options.repetition_penalty, vals * options.repetition_penalty)
    if options.temperature == 0.0:
        return int(np.argmax(x))
    x /= options.temperature
    if options.top_k > 0 and options.top_k < x.shape[0]:
        cut = np.partition(x, -options.top_k)[-options.top_k]
        x[x < cut] = -np.inf
    x -= x.max()
    p = np.exp(x)
    p /= p.sum()
    if options.top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
        keep = int(np.searchsorted(cum, options.top_p)) + 1
        mask = np.zeros_like(p, dtype=bool)
        mask[order[:keep]] = True
        p = np.where(mask, p, 0.0)
        p /= p.sum()
    if options.min_p > 0.0:
        p = np.where(p >= options.min_p * p.max(), p, 0.0)
        p /= p.sum()
    return int(rng.choice(p.shape[0], p=p))
