"""A scripted backend: replays a given text or token list, optionally with fake distributions.

It serves tests, demos and human-written controls.  Text is split into byte pieces by a
tokenizer (``words``: runs of non-space followed by their trailing space, ``chars``: one
character each, ``bytes``: one byte each) or given directly as a list of byte pieces.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmread import __version__
from lmread.backends.base import Backend, GenOptions, ModelIdentity, StreamEnd, TokenChunk
from lmread.errors import ModelError
from lmread.tokenizers import split_text

if TYPE_CHECKING:
    from lmread.catalog import ModelCard

class ScriptedBackend(Backend):
    """Replays ``pieces`` (or ``text`` split by ``tokenizer``) as a token stream.

    With ``fake_logprobs`` each chunk carries a deterministic pseudo-distribution (seeded by the
    token index), so rank colouring and top-k panels have something to show.  ``delay_s`` sleeps
    between tokens to imitate a live model.  ``eos`` ends with finish reason ``eos`` when the
    script runs out (else ``length``).
    """

    name = "scripted"
    supports_score = True

    def __init__(
        self,
        text: str | None = None,
        pieces: Sequence[bytes] | None = None,
        tokenizer: str = "words",
        fake_logprobs: bool = True,
        delay_s: float = 0.0,
        model_id: str = "scripted",
        n_params: int | None = None,
        eos: bool = True,
    ) -> None:
        if pieces is None:
            pieces = split_text(text or "", tokenizer)
        self.pieces = [bytes(p) for p in pieces]
        self.tokenizer = tokenizer
        self.fake_logprobs = fake_logprobs
        self.delay_s = delay_s
        self.model_id = model_id
        self.n_params = n_params
        self.eos = eos
        vocab = sorted(set(self.pieces)) or [b""]
        self._vocab = {p: i for i, p in enumerate(vocab)}
        self._pieces_by_id = vocab

    @classmethod
    def from_card(cls, card: ModelCard, **options: Any) -> ScriptedBackend:
        """Build from a model card whose ``source`` holds ``{"text": ...}`` or ``{"path": TEXTFILE}``.

        ``tokenizer``, ``delay_s``, ``eos`` and ``fake_logprobs`` are read from the card's
        ``extra`` table (or its source).  Options meant for real backends (threads, context
        size...) are accepted and ignored.
        """
        source = dict(card.source or {})
        extra = {**dict(getattr(card, "extra", None) or {}), **source}
        text = source.get("text")
        if text is None and source.get("path"):
            resolve = getattr(card, "resolve_path", None)
            path = resolve() if resolve is not None else Path(str(source["path"])).expanduser()
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ModelError(f"model {card.id!r}: cannot read script {path}: {exc}") from None
        if not isinstance(text, str):
            raise ModelError(f"model {card.id!r}: a scripted card needs source.text or source.path")
        return cls(
            text=text,
            tokenizer=str(extra.get("tokenizer", "words")),
            fake_logprobs=bool(extra.get("fake_logprobs", True)),
            delay_s=float(options.get("delay_s", extra.get("delay_s", 0.0))),
            model_id=card.id,
            n_params=card.n_params,
            eos=bool(extra.get("eos", True)),
        )

    def identity(self) -> ModelIdentity:
        return ModelIdentity(
            id=self.model_id, name=self.model_id, backend=self.name, n_params=self.n_params,
            architecture="scripted", backend_version=__version__, library_versions={"lmread": __version__},
            layout=_LAYOUT,
        )

    def _chunk(self, index: int, piece: bytes) -> TokenChunk:
        tid = self._vocab.get(piece, 0)
        if not self.fake_logprobs:
            return TokenChunk(id=tid, piece=piece)
        rng = np.random.default_rng(index)
        rank = 1 + int(rng.geometric(0.45)) - 1 if rng.random() < 0.97 else int(rng.integers(50, 3000))
        k = 5
        others = [i for i in rng.permutation(len(self._pieces_by_id))[: k + 1].tolist() if i != tid]
        while len(others) < k:  # tiny vocabularies: pad with ids outside it
            others.append(len(self._pieces_by_id) + len(others))
        ids = others[:k]
        if rank <= k:
            ids = others[: rank - 1] + [tid] + others[rank - 1 : k - 1]
        lps = [-1.0 - 0.7 * j - float(rng.random()) * 0.1 for j in range(k)]  # sums to < 1
        logprob = lps[rank - 1] if rank <= k else lps[-1] - 0.01 * (rank - k)
        entropy = float(1.0 + rng.random() * 3.0)
        n = len(self._pieces_by_id)
        return TokenChunk(
            id=tid,
            piece=piece,
            logprob=float(logprob),
            rank=rank,
            entropy=entropy,
            top_ids=ids,
            top_logprobs=[float(v) for v in lps],
            top_pieces=[self._pieces_by_id[i] if i < n else b"?" for i in ids],
        )

    def stream(
        self, prompt: str, options: GenOptions, cancel: threading.Event | None = None
    ) -> Iterator[TokenChunk | StreamEnd]:
        options.validate()
        for index, piece in enumerate(self.pieces):
            if cancel is not None and cancel.is_set():
                yield StreamEnd("cancelled")
                return
            if self.delay_s:
                time.sleep(self.delay_s)
            yield self._chunk(index, piece)
        yield StreamEnd("eos" if self.eos else "length")

    def score(self, text: str, prompt: str = "", top_logprobs: int = 5) -> list[TokenChunk]:
        """The script's pseudo-distribution for each piece of ``text`` (``prompt`` is ignored)."""
        return [self._chunk(i, p) for i, p in enumerate(split_text(text, self.tokenizer))]

    def close(self) -> None:
        return None


#: the order of the identity's keys in a sample record
_LAYOUT = ("id", "name", "n_params", "architecture", "quantization", "backend", "backend_version", "library_versions")
