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


def distribution_fields(
    logits: np.ndarray, token_id: int, k: int
) -> tuple[float, int, float, np.ndarray, np.ndarray]:
    """From raw logits (1-D, float32/64), the chosen token's logprob, its rank (1 = argmax),
    the entropy in nats, and the top-``k`` ids and logprobs (best first).

    Computed at temperature 1 over the whole vocabulary, in float64 for the reductions.
    """
    x = np.asarray(logits, dtype=np.float32)
    m = float(x.max())
    shifted = x - m
    ex = np.exp(shifted)
    total = float(ex.sum(dtype=np.float64))
    log_z = math.log(total)
    chosen = float(shifted[token_id])
    logprob = chosen - log_z
    # entropy = log Z - E[shifted]
    entropy = log_z - float(np.dot(ex.astype(np.float64), shifted.astype(np.float64))) / total
    rank = int(np.count_nonzero(x > x[token_id])) + 1
    if k > 0:
        kk = min(k, x.shape[0])
        part = np.argpartition(-x, kk - 1)[:kk]
        order = part[np.argsort(-x[part], kind="stable")]
        top_lp = shifted[order].astype(np.float64) - log_z
    else:
        order = np.empty(0, dtype=np.int64)
        top_lp = np.empty(0, dtype=np.float64)
    return logprob, rank, entropy, order, top_lp


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
