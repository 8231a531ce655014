"""The backend protocol: what every model adapter yields, and the validated generation options.

A backend streams raw :class:`TokenChunk` objects, one per generated token, and ends the stream
with one :class:`StreamEnd` giving the finish reason.  The driver (``lmread.generate``) adds
indexes, character offsets, timing and records; backends never write anything.

The distribution fields of a chunk (``logprob``, ``rank``, ``entropy``, ``top_*``) are computed
from the *unmodified* next-token distribution (temperature 1, before top-k/top-p/min-p and
repetition penalty) from the logits the token was sampled from.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lmread.errors import OptionError

#: Finish reasons a stream can end with.
FINISH_REASONS = ("length", "eos", "stop", "context", "cancelled", "error")


@dataclass(slots=True)
class TokenChunk:
    """One generated (or scored) token and the distribution it came from."""

    id: int
    piece: bytes
    logprob: float | None = None
    rank: int | None = None
    entropy: float | None = None
    top_ids: list[int] = field(default_factory=list)
    top_logprobs: list[float] = field(default_factory=list)
    top_pieces: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class StreamEnd:
    """The last item of a stream: why generation stopped (one of :data:`FINISH_REASONS`)."""

    reason: str
    detail: str = ""


@dataclass
class GenOptions:
    """Sampling options shared by every backend.  ``top_k=0``, ``top_p=1``, ``min_p=0`` and
    ``repetition_penalty=1`` mean "off"; ``temperature=0`` means greedy."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    top_logprobs: int = 5

    def validate(self) -> GenOptions:
        """Raise :class:`OptionError` naming the first invalid option; return self."""

        def bad(name: str, value: Any, rule: str) -> OptionError:
            return OptionError(f"invalid option --{name.replace('_', '-')} {value!r}: {rule}")

        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise bad("max_tokens", self.max_tokens, "must be a whole number >= 1")
        for name, lo, hi in (("temperature", 0.0, 100.0), ("top_p", 0.0, 1.0), ("min_p", 0.0, 1.0),
                             ("repetition_penalty", 0.0, 100.0)):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not lo <= value <= hi:
                raise bad(name, value, f"must be a number in [{lo:g}, {hi:g}]")
        if self.top_p <= 0.0:
            raise bad("top_p", self.top_p, "must be > 0 (1 turns it off)")
        if self.repetition_penalty <= 0.0:
            raise bad("repetition_penalty", self.repetition_penalty, "must be > 0 (1 turns it off)")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise bad("top_k", self.top_k, "must be a whole number >= 0 (0 turns it off)")
        if self.seed is not None and (not isinstance(self.seed, int) or not 0 <= self.seed < 2**32):
            raise bad("seed", self.seed, "must be a whole number in [0, 2^32)")
        if not isinstance(self.top_logprobs, int) or not 0 <= self.top_logprobs <= 20:
            raise bad("top_logprobs", self.top_logprobs, "must be a whole number in [0, 20]")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise bad("stop", self.stop, "stop strings must be non-empty")
        return self

    def settings(self) -> dict[str, Any]:
        """The options as recorded in a sample (without the seed, which is recorded apart)."""
        out = asdict(self)
        out.pop("seed")
        return out


@runtime_checkable
class Backend(Protocol):
    """What a model adapter provides.  See the module docstring for the chunk contract."""

    name: str

    def describe(self) -> dict[str, Any]:
        """Model identity recorded in samples: ``id``, ``sha256`` or ``revision``, ``n_params``,
        ``quantization``, ``architecture``, ``backend``, ``backend_version``, ``library_versions``."""
        ...

    def stream(
        self, prompt: str, options: GenOptions, cancel: threading.Event | None = None
    ) -> Iterator[TokenChunk | StreamEnd]:
        """Yield one chunk per generated token, then exactly one :class:`StreamEnd`."""
        ...

    def score(self, text: str, prompt: str = "") -> list[TokenChunk]:
        """Teacher-forced pass over ``text`` (after ``prompt``): one chunk per token of text."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...


def stream_many(
    backend: Any, prompt: str, options: Sequence[GenOptions], cancel: threading.Event | None = None
) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
    """Draw several samples of one prompt; yields ``(sequence_index, item)``.

    Uses the backend's own ``stream_batch`` when it has one (transformers batches them in one
    call); otherwise runs the samples one after the other.
    """
    batch = getattr(backend, "stream_batch", None)
    if batch is not None:
        yield from batch(prompt, list(options), cancel)
        return
    for index, opts in enumerate(options):
        for item in backend.stream(prompt, opts, cancel):
            yield index, item


# --------------------------------------------------------------------------------------------
# Distribution helpers shared by the local backends


#: Top-k candidates are first looked for within this many nats of the best logit (one cheap
#: comparison pass), falling back to a partition of the whole vocabulary when fewer are found.
_TOP_WINDOW = 12.0

#: Block size of the two-level inverse-CDF draw in :func:`sample_unmodified`.
_DRAW_BLOCK = 1024


def _softmax_parts(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, shifted, ex, block_sums)``: float32 logits, ``x - max``, ``exp(shifted)`` and the
    sums of ``ex`` over consecutive blocks of :data:`_DRAW_BLOCK` (float32 within a block)."""
    x = np.asarray(logits)
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    shifted = x - x.max()
    ex = np.exp(shifted)
    blocks = np.add.reduceat(ex, np.arange(0, ex.shape[0], _DRAW_BLOCK))
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
