"""Scoring a list text with one model and reading the right answer's rank at every item start.

One teacher-forced :meth:`score` pass per model covers the whole list text (empty prompt: the
first token is predicted from BOS).  Backends that can (llama.cpp) are told which character
``spans`` will be read, and compute distributions only there, in batches.  The scored tokens' pieces are assembled into exact character
offsets (:class:`lmread.records.TokenAssembler`: a character belongs to the token holding its
last byte), and every item after the first is read at **its first token**:

    the first token that holds a byte of the item's first character.

Usually that token starts exactly at the item (``George`` after a line break).  When the
tokenizer merges separator white space into it (`` George`` after ``", "``, or ``"\\nGeorge"``)
the token *straddles* the item boundary: it is still the item's first token (the token the model
had to predict to begin the item), and the separator text it carries is reported as ``lead``.
When the item's first character is split over several byte tokens, the first of them is used.

For that token the probe records its rank (1 = the model's argmax), its log-probability, whether
it is top-1 / top-10, the model's top-k there, and the shots (how many items came before).  The
item's whole **first word** (see :mod:`lmread.probe.items`) is read too: the tokens from the first
token to the one holding the word's last character, their joint log-probability (the sum), and
the word's split into pieces, so that models whose tokenizers split it differently can be told.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lmread.errors import BackendError, ModelError, OptionError
from lmread.probe.items import Item
from lmread.records import TokenAssembler

if TYPE_CHECKING:
    from lmread.backends.base import Backend

#: alternatives recorded at each item start (where the backend can give that many)
TOP_K = 10


@dataclass
class ScoredText:
    """A text scored teacher-forced: per-token arrays and ``offsets`` (n + 1 character offsets)."""

    text: str
    ids: list[int]
    offsets: list[int]
    logprob: list[float]
    rank: list[int]
    top_ids: list[list[int]]
    top_logprobs: list[list[float]]
    top_pieces: list[list[str]]

    def __len__(self) -> int:
        return len(self.ids)

    def piece(self, index: int) -> str:
        """The characters of token ``index`` (empty for a token that only starts a character)."""
        return self.text[self.offsets[index] : self.offsets[index + 1]]


@dataclass
class ItemReading:
    """What one model predicted at the start of one item."""

    item: int
    shots: int
    token: int
    token_id: int
    piece: str
    lead: str
    rank: int
    logprob: float
    top_ids: list[int]
    top_pieces: list[str]
    top_logprobs: list[float]
    word_tokens: int
    word_logprob: float
    word_split: list[str]
    word_exact: bool

    @property
    def top1(self) -> bool:
        return self.rank == 1

    @property
    def top10(self) -> bool:
        return self.rank <= 10

    @property
    def straddles(self) -> bool:
        return bool(self.lead)

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item, "shots": self.shots, "token": self.token, "token_id": self.token_id,
            "piece": self.piece, "lead": self.lead, "straddles": self.straddles, "rank": self.rank,
            "logprob": self.logprob, "top1": self.top1, "top10": self.top10,
            "top": [{"id": i, "piece": p, "logprob": lp}
                    for i, p, lp in zip(self.top_ids, self.top_pieces, self.top_logprobs, strict=True)],
            "word": {"tokens": self.word_tokens, "logprob": self.word_logprob, "split": self.word_split,
                     "exact": self.word_exact},
        }


@dataclass
class ModelProbe:
    """One model's readings over a list, with its identity and timings."""

    model: str
    backend: str
    identity: dict[str, Any]
    n_tokens: int
    readings: list[ItemReading] = field(default_factory=list)
    load_s: float = 0.0
    score_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Top-1 and top-10 rates, the median rank of the right first token, mean logprobs."""
        ranks = np.array([r.rank for r in self.readings], dtype=float)
        n = int(ranks.size)
        if not n:
            return {"n": 0, "top1_rate": None, "top10_rate": None, "median_rank": None, "mean_logprob": None,
                    "mean_word_logprob": None}
        return {
            "n": n,
            "top1_rate": float(np.mean(ranks == 1)),
            "top10_rate": float(np.mean(ranks <= 10)),
            "median_rank": float(np.median(ranks)),
            "mean_logprob": float(np.mean([r.logprob for r in self.readings])),
            "mean_word_logprob": float(np.mean([r.word_logprob for r in self.readings])),
        }


def score_text(backend: Backend, text: str, top_k: int = TOP_K, label: str = "the model",
               spans: Sequence[tuple[int, int]] | None = None) -> ScoredText:
    """Score ``text`` with one teacher-forced pass of ``backend`` and assemble exact offsets.

    ``spans`` (character ranges) tells a backend that can use it which tokens will be read; it
    may leave the others without a distribution (NaN logprob, rank 0 here).

    Raises :class:`ModelError` when the backend cannot score at all, :class:`BackendError`
    when its tokens do not add up to ``text`` or carry no log-probabilities.
    """
    if not backend.supports_score:
        raise ModelError(f"{label} cannot score texts (its backend has no teacher-forced pass); use another backend")
    if spans is not None and backend.scores_spans:
        chunks = backend.score(text, prompt="", top_logprobs=top_k, spans=list(spans))  # type: ignore[call-arg]
    else:
        chunks = backend.score(text, prompt="", top_logprobs=top_k)
    asm = TokenAssembler()
    for c in chunks:
        asm.add(c.id, c.piece, c.logprob, c.rank, c.entropy, c.top_ids, c.top_logprobs, c.top_pieces)
    toks, assembled, _ = asm.finish()
    if assembled != text:
        raise BackendError(f"the scored tokens of {label} do not add up to the list text "
                           f"({len(assembled)} of {len(text)} characters); its backend cannot be probed")
    # a server may give no distribution for the very first token (nothing before it): NaN / rank 0
    return ScoredText(text=text, ids=list(toks.ids), offsets=list(toks.offsets),
                      logprob=[math.nan if x is None else float(x) for x in toks.logprob or []],
                      rank=[0 if x is None else int(x) for x in toks.rank or []],
                      top_ids=[list(x) for x in toks.top_ids or []],
                      top_logprobs=[list(x) for x in toks.top_logprobs or []],
                      top_pieces=[list(x) for x in toks.top_pieces or []])


def token_at(offsets: Sequence[int], char: int) -> int:
    """The first token holding a byte of character ``char`` (see the module docstring).

    ``offsets`` are the n + 1 character offsets of n tokens; ``0 <= char < offsets[-1]``.
    """
    if not 0 <= char < offsets[-1]:
        raise ValueError(f"character {char} is outside the scored text of {offsets[-1]} characters")
    i = bisect.bisect_right(offsets, char) - 1  # the token whose span holds the character's last byte
    while i > 0 and offsets[i] == char and offsets[i - 1] == char:  # earlier bytes in zero-width tokens
        i -= 1
    return i


def read_item(scored: ScoredText, item: Item, top_k: int = TOP_K) -> ItemReading:
    """The reading of ``scored`` at the start of ``item``."""
    offsets = scored.offsets
    first = token_at(offsets, item.start)
    last = max(first, token_at(offsets, item.word_end - 1))
    while last + 1 < len(scored) and offsets[last + 1] < item.word_end:  # zero-width tokens inside the word
        last += 1
    if any(scored.rank[j] < 1 for j in range(first, last + 1)):
        raise BackendError(f"the backend gave no log-probability for token {first} (item {item.index}, "
                           f"{item.first_word!r}); it cannot be probed")
    split = [scored.text[max(offsets[j], item.start) : min(offsets[j + 1], item.word_end)]
             for j in range(first, last + 1)]
    k = min(top_k, len(scored.top_ids[first]))
    return ItemReading(
        item=item.index,
        shots=item.index,
        token=first,
        token_id=scored.ids[first],
        piece=scored.piece(first),
        lead=scored.text[offsets[first] : item.start] if offsets[first] < item.start else "",
        rank=scored.rank[first],
        logprob=scored.logprob[first],
        top_ids=scored.top_ids[first][:k],
        top_pieces=scored.top_pieces[first][:k],
        top_logprobs=scored.top_logprobs[first][:k],
        word_tokens=last - first + 1,
        word_logprob=float(sum(scored.logprob[first : last + 1])),
        word_split=split,
        word_exact=offsets[first] == item.start and offsets[last + 1] == item.word_end,
    )


def read_items(scored: ScoredText, items: Sequence[Item], top_k: int = TOP_K) -> list[ItemReading]:
    """Readings at every item after the first (the first item has no earlier item to learn from)."""
    return [read_item(scored, item, top_k) for item in items[1:]]


def probe_backend(backend: Backend, text: str, items: Sequence[Item], *, model: str, backend_name: str,
                  source: str = "the list", top_k: int = TOP_K, record_model_path: bool = False) -> ModelProbe:
    """Score ``text`` with ``backend`` once and read every item after the first.

    A text longer than the model's context is an :class:`OptionError` naming the list, the model
    and both lengths (from the backend's message).
    """
    label = f"model {model} ({backend_name})"
    start = time.perf_counter()
    try:
        spans = [(item.start, item.word_end) for item in items[1:]]  # the first tokens and first words read
        scored = score_text(backend, text, top_k=top_k, label=label, spans=spans)
    except OptionError as exc:
        if "context" in str(exc):
            fix = "" if "shorten" in str(exc) else "; use a shorter list (fewer items)"
            raise OptionError(f"{source} does not fit the context of {label}: {exc}{fix}") from None
        raise
    except BackendError as exc:
        raise BackendError(f"{label} cannot probe {source}: {exc}") from None
    elapsed = time.perf_counter() - start
    # the model file's name and identity, not its path (unless the user asks: record_model_path)
    identity = dict(backend.identity().record(include_path=record_model_path))
    probe = ModelProbe(model=model, backend=backend_name, identity=identity, n_tokens=len(scored),
                       readings=read_items(scored, items, top_k), score_s=elapsed)
    return probe


def word_splits(probes: Sequence[ModelProbe]) -> dict[int, dict[str, list[str]]]:
    """Per item index, each model's split of the item's first word into token pieces."""
    out: dict[int, dict[str, list[str]]] = {}
    for p in probes:
        for r in p.readings:
            out.setdefault(r.item, {})[p.model] = r.word_split
    return out


def run_probe(models: Sequence[str], open_model: Callable[[str], Backend], text: str, items: Sequence[Item], *,
              source: str = "the list", progress: Callable[[str], None] | None = None,
              top_k: int = TOP_K, record_model_path: bool = False) -> list[ModelProbe]:
    """Load each model in turn with ``open_model(model_id)``, probe ``text`` once, close it.

    ``progress`` gets one line per step (loading, scoring, done).  Models are loaded one at a
    time, so only one is in memory at once.
    """
    say = progress or (lambda line: None)
    out: list[ModelProbe] = []
    for i, model in enumerate(models, start=1):
        say(f"[{i}/{len(models)}] loading {model} ...")
        start = time.perf_counter()
        backend = open_model(model)
        load_s = time.perf_counter() - start
        name = backend.name
        try:
            say(f"[{i}/{len(models)}] scoring {source} ({len(text):,} characters, {len(items)} items) "
                f"with {model} ({name}), loaded in {load_s:.1f} s ...")
            probe = probe_backend(backend, text, items, model=model, backend_name=name, source=source, top_k=top_k,
                                  record_model_path=record_model_path)
        finally:
            backend.close()
        probe.load_s = load_s
        say(f"[{i}/{len(models)}] {model}: {probe.n_tokens:,} tokens scored in {probe.score_s:.1f} s")
        out.append(probe)
    return out
