"""The backend contract: the abstract :class:`Backend`, what it yields, who it is, what it takes.

A backend streams raw :class:`TokenChunk` objects, one per generated token, and ends the stream
with one :class:`StreamEnd` when *it* has to stop (end of text, full context, cancel, error).
Stop strings and the token budget are the driver's (:mod:`lmread.generate`): it counts tokens,
matches stop strings and sets the stream's ``cancel`` event when a sample is done; a backend
checks ``cancel`` before computing each next token.  The driver also adds indexes, character
offsets, timing and records; backends never write anything.

The distribution fields of a chunk (``logprob``, ``rank``, ``entropy``, ``top_*``) are computed
from the *unmodified* next-token distribution (temperature 1, before top-k/top-p/min-p and
repetition penalty) from the logits the token was sampled from.

Every backend says who it is with a :class:`ModelIdentity` (the same typed fields from every
backend), declares the options it takes as :class:`~lmread.backends.options.Option` values, from
which the command line builds its flags and the checks (:mod:`lmread.backends.options`, which
also declares the sampling options, :class:`GenOptions`), and declares its abilities as class
attributes (never found by its name or by probing).
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from lmread.backends.distribution import distribution_fields, sample_token, sample_unmodified
from lmread.backends.options import (
    CONTEXT,
    MIN_CTX,
    SEED_LIMIT,
    THREADS,
    BackendOption,
    GenOptions,
    Option,
    check_seed,
)
from lmread.errors import BackendError
from lmread.records import ID_FIELDS as RECORD_ID_FIELDS

if TYPE_CHECKING:
    from lmread.catalog import ModelCard

__all__ = [
    "CONTEXT", "FINISH_REASONS", "MIN_CTX", "SEED_LIMIT", "THREADS", "Backend", "BackendOption", "GenOptions",
    "LinkedEvent", "ModelIdentity", "Option", "StreamEnd", "TokenChunk", "check_seed", "distribution_fields",
    "sample_token", "sample_unmodified", "stream_many",
]

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
    """The last item of a stream: why generation stopped (one of :data:`FINISH_REASONS`).

    ``server`` is what a server backend reports about the stream (its own finish reason and
    token count, tokens merged or without a distribution; see
    :class:`lmread.backends.openai.report.StreamReport`), recorded by the driver as the
    sample's ``server`` object; None for local backends.
    """

    reason: str
    detail: str = ""
    server: dict[str, Any] | None = None


# --------------------------------------------------------------------------------------------
# Model identity


#: The fields of an identity that make a sample's id (see :func:`lmread.records.sample_id`).
ID_FIELDS = RECORD_ID_FIELDS

#: Record order for identities that do not give their own.
DEFAULT_LAYOUT = ("id", "name", "family", "file", "path", "sha256", "revision", "source", "n_params",
                  "quantization", "architecture", "backend", "backend_version", "library_versions")


@dataclass
class ModelIdentity:
    """Who generated a sample: the same typed fields from every backend (None when unknown).

    - ``id``, ``name``, ``family``: the catalogue's names for the model;
    - ``file``: the name of the model file (or folder), never the folders above it;
      ``path``: its full path, recorded in samples only when the user asks (``record_model_path``);
    - ``sha256`` (a file) or ``revision`` (an HF commit), and ``source`` (where it came from:
      ``hf:ORG/NAME``, or a local path when ``source_is_path``, then recorded only with the path);
    - ``n_params``, ``quantization``, ``architecture``;
    - ``backend``, ``backend_version``, ``library_versions``;
    - ``details``: what only some backends know (``n_ctx``, ``n_vocab``, ``dtype``, ``device``,
      ``served_model``, ``base_url``...), recorded under their own keys;
    - ``layout``: the order of the keys in the record (each backend keeps its own, so the
      samples it writes stay byte-identical from one version of lmread to the next).
    """

    id: str
    backend: str
    name: str | None = None
    family: str | None = None
    file: str | None = None
    path: str | None = None
    sha256: str | None = None
    revision: str | None = None
    source: str | None = None
    source_is_path: bool = False
    n_params: int | None = None
    quantization: str | None = None
    architecture: str | None = None
    backend_version: str | None = None
    library_versions: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    layout: tuple[str, ...] = ()

    def id_fields(self) -> dict[str, Any]:
        """The fields a sample id is made of (:data:`ID_FIELDS`, those that are set).  Unlike
        :meth:`record`, this includes a local ``source`` path: ids never change."""
        return {k: getattr(self, k) for k in ID_FIELDS if getattr(self, k)}

    def record(self, include_path: bool = False) -> dict[str, Any]:
        """The identity as recorded in a sample, keys in :attr:`layout` order.

        The full path of the model file (``path``, and ``source`` when it is a local path) is
        left out unless ``include_path``.
        """
        out: dict[str, Any] = {}
        for key in self.layout or DEFAULT_LAYOUT:
            if not include_path and (key == "path" or (key == "source" and self.source_is_path)):
                continue
            if key in self.details:
                out[key] = self.details[key]
            elif key in _FIELD_NAMES:
                out[key] = getattr(self, key)
            else:
                raise KeyError(f"identity layout names {key!r}, which is neither a field nor a detail")
        return out


_FIELD_NAMES = frozenset(ModelIdentity.__dataclass_fields__) - {"details", "layout", "source_is_path"}


# --------------------------------------------------------------------------------------------
# Cancel flags


class LinkedEvent(threading.Event):
    """An event that also reads as set when its ``parent`` is set (a child cancel flag)."""

    def __init__(self, parent: threading.Event | None = None) -> None:
        super().__init__()
        self.parent = parent

    def is_set(self) -> bool:
        return super().is_set() or (self.parent is not None and self.parent.is_set())

    def wait(self, timeout: float | None = None) -> bool:
        if self.parent is None:
            return super().wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            super().wait(0.05 if left is None else min(0.05, left))
        return True


# --------------------------------------------------------------------------------------------
# The backend


class Backend(abc.ABC):
    """What every model adapter is.  See the module docstring for the stream contract.

    Abilities beyond one stream are declared as class attributes, never probed or read from the
    backend's name: ``supports_batch`` (``stream_batch`` draws several samples in one batched
    call), ``supports_score`` (``score`` works), ``scores_spans`` (``score`` takes ``spans``:
    character ranges outside which tokens may come without a distribution),
    ``needs_local_model`` (False for a client of a server elsewhere: nothing to load or check
    on this machine, a model may be named by the server alone), ``knows_token_ids`` (False
    where a token's id may be unknown, recorded as ``-1``), ``full_distribution`` (False where
    only the top k is known: no entropy, a rank beyond k unknown), ``sends_limits`` (True where
    ``max_tokens`` and stop strings go with the request to a server, which may end the stream
    on them itself), ``max_concurrency`` (streams the
    driver may run at once from threads), ``max_batch_size`` (samples per batch when the
    user gives no ``--batch-size``) and ``supports_parallel`` (``stream_parallel`` decodes several
    samples, of any prompts, in one batch per step: ``lmread generate --parallel N``).
    """

    #: the backend's registry name (``llamacpp``, ``hf``, ``openai``, ``scripted``)
    name: ClassVar[str] = ""
    #: the options ``from_card`` takes
    options: ClassVar[tuple[BackendOption, ...]] = ()
    supports_batch: ClassVar[bool] = False
    supports_score: ClassVar[bool] = False
    scores_spans: ClassVar[bool] = False
    needs_local_model: ClassVar[bool] = True
    knows_token_ids: ClassVar[bool] = True
    full_distribution: ClassVar[bool] = True
    sends_limits: ClassVar[bool] = False
    supports_parallel: ClassVar[bool] = False
    max_concurrency: int = 1
    max_batch_size: int = 8

    @classmethod
    @abc.abstractmethod
    def from_card(cls, card: ModelCard, **options: Any) -> Backend:
        """Load the model a catalogue card points to; ``options`` are this backend's declared
        :attr:`options` by name (others are ignored)."""

    @abc.abstractmethod
    def identity(self) -> ModelIdentity:
        """Who this model is (recorded with every sample)."""

    def describe(self) -> dict[str, Any]:
        """The identity as a plain dict, full path included (for display and tests)."""
        return self.identity().record(include_path=True)

    @abc.abstractmethod
    def stream(
        self, prompt: str, options: GenOptions, cancel: threading.Event | None = None
    ) -> Iterator[TokenChunk | StreamEnd]:
        """Yield one chunk per generated token until the model ends (``eos``), the context is
        full (``context``), ``cancel`` is set (``cancelled``: checked before each next token) or
        it fails (``error``); then exactly one :class:`StreamEnd`.  Stop strings and
        ``max_tokens`` are the driver's: a backend does not end on them.  Invalid options or
        prompts raise :class:`OptionError` when the stream is created."""

    def stream_batch(
        self,
        prompt: str,
        options_list: Sequence[GenOptions],
        cancel: threading.Event | None = None,
        done: Sequence[threading.Event] | None = None,
    ) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        """Draw ``len(options_list)`` samples of one prompt; yields ``(index, item)`` and ends
        every sequence with exactly one :class:`StreamEnd`.

        ``done[i]`` (set by the driver) ends sequence ``i``; ``cancel`` ends them all.  This
        default runs the streams one after the other; backends with ``supports_batch`` draw
        them together.
        """
        for index, opts in enumerate(options_list):
            flag = done[index] if done is not None else cancel
            if cancel is not None and cancel.is_set():
                yield index, StreamEnd("cancelled")
                continue
            stream = self.stream(prompt, opts, flag)
            try:
                for item in stream:
                    yield index, item
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()

    def prepare_parallel(self, prompts: Sequence[str], options: GenOptions, n_parallel: int) -> dict[str, str]:
        """Get ready to draw samples of ``prompts`` with ``options``, ``n_parallel`` at a time (only
        where ``supports_parallel``): the prompts it refuses (too long), each with the reason.
        :class:`OptionError` when ``n_parallel`` sequences do not fit."""
        raise BackendError(f"the {self.name} backend cannot decode sequences in parallel")

    def stream_parallel(
        self,
        requests: Sequence[tuple[str, GenOptions]],
        n_parallel: int,
        cancel: threading.Event | None = None,
        done: Sequence[threading.Event] | None = None,
        started: Callable[[int], None] | None = None,
    ) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        """Draw one sample per ``(prompt, options)`` request, ``n_parallel`` in one batch per step
        (only where ``supports_parallel``); yields ``(request index, item)``, each request's
        chunks then exactly one :class:`StreamEnd`.  ``started(i)`` is called when request ``i``
        enters the batch; ``done[i]`` ends request ``i``, ``cancel`` all of them."""
        raise BackendError(f"the {self.name} backend cannot decode sequences in parallel")

    def score(self, text: str, prompt: str = "", top_logprobs: int = 5) -> list[TokenChunk]:
        """Teacher-forced pass over ``text`` (after ``prompt``): one chunk per token of text.
        Only where ``supports_score``."""
        raise BackendError(f"the {self.name} backend cannot score texts")

    def close(self) -> None:  # noqa: B027 - optional, nothing to free by default
        """Free the model."""


def stream_many(
    backend: Backend, prompt: str, options: Sequence[GenOptions], cancel: threading.Event | None = None,
    done: Sequence[threading.Event] | None = None,
) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
    """Draw several samples of one prompt with ``backend.stream_batch``; yields
    ``(sequence_index, item)``."""
    yield from backend.stream_batch(prompt, list(options), cancel, done)
