"""Controls with a known answer, mixed blind into the reading queue.

A control is an ordinary :class:`~lmread.records.Sample` with a ``control`` record
``{"kind", "onset", "category", "parts", "seed"}`` (written with schema ``lmread.sample/2``):

* **splice**: the first ``k`` tokens of sample A followed by sample B's tokens from ``k`` on
  (B answers another prompt, of the same model when there is one, so the tokenizer matches).
  Known fall at ``k``, category ``drift``.  The control is as long as B, an ordinary sample.
* **loop**: sample A up to token ``k``, then the span of A just before ``k`` (8-40 tokens)
  repeated until the control is as long as A.  Known fall at ``k``, category ``repetition``.
* **human**: text imported with ``lmread import --control human``; the right answer is no fall.
  Imported human controls form the study's pool; ``make_controls`` picks some of them into the
  reading queue (their ids are kept in ``study.toml`` under ``[controls] human``).

``k`` is drawn uniformly from 10%-80% of the shorter source (at a token boundary that is also a
character boundary in both sources, preferably where a word starts), so controls have the
lengths of ordinary samples and their onsets are spread over them.

Token arrays stay exact: the text is the concatenation of the copied token pieces, ``offsets``
has ``n + 1`` entries, and ids and byte counts are those of the source tokens.  Only A's own
prefix keeps its recorded distribution (logprob, rank, entropy, top-k): the grafted tokens
(B's continuation, the repeated span) were scored in another context, so their distribution
entries are null (and empty top-k lists).

Everything is deterministic for a seed (default: the study's reading-order seed): the same
study, seed and rate give the same control ids, and running ``make_controls`` again adds only
what the rate still asks for (nothing, when nothing changed).  The known answer is never shown
before the mark (see :func:`control_line` for what the reader says after it).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from typing import Any

from lmread.errors import OptionError
from lmread.records import (
    CONTROL_CATEGORY,
    CONTROL_KINDS,
    Mark,
    Sample,
    Tokens,
    control_category,
    control_kind,
    control_onset,
    human_control,
    is_control,
    stable_id,
)
from lmread.study import Study
from lmread.study.settings import picked_human_ids

__all__ = [
    "CONTROL_KINDS", "DEFAULT_RATE", "ControlsReport", "build_loop", "build_splice", "control_category",
    "control_kind", "control_line", "control_onset", "human_control", "human_pool", "is_control",
    "make_controls", "ordinary_samples", "picked_human_ids",
]

#: controls per ordinary sample when ``--rate`` is not given
DEFAULT_RATE = 0.1
#: a source sample needs at least this many tokens
MIN_SOURCE_TOKENS = 20
#: the onset is drawn from this share of the shorter source
ONSET_RANGE = (0.1, 0.8)
#: length in tokens of the span a loop repeats
LOOP_SPAN = (8, 40)
_ATTEMPTS = 64


# --------------------------------------------------------------------------------------------
# Which samples are what


def ordinary_samples(study: Study) -> list[Sample]:
    """The study's samples that are not controls and can be cut exactly (valid UTF-8), by id."""
    return [s for sid, s in sorted(study.samples.items()) if not is_control(s) and s.raw is None]


def human_pool(study: Study) -> list[Sample]:
    """Imported human controls (picked into the queue or not), by id."""
    return [s for sid, s in sorted(study.samples.items()) if control_kind(s) == "human"]


# --------------------------------------------------------------------------------------------
# Exact cutting and pasting of token runs


def clean_boundaries(sample: Sample) -> list[bool]:
    """``out[k]`` is True when the first ``k`` tokens' bytes are exactly the UTF-8 of
    ``text[:offsets[k]]``, i.e. no character is split at token boundary ``k``."""
    toks = sample.tokens
    out = [True]
    nbytes = 0
    chars = 0
    for i in range(sample.n_tokens):
        nbytes += toks.nbytes[i]
        chars += len(sample.text[toks.offsets[i]:toks.offsets[i + 1]].encode("utf-8"))
        out.append(nbytes == chars)
    return out


@dataclass(frozen=True)
class _Run:
    """Tokens ``start..end-1`` of ``sample``; ``own`` when they keep their recorded distribution."""

    sample: Sample
    start: int
    end: int
    own: bool


def _assemble(runs: list[_Run]) -> tuple[str, Tokens]:
    """Concatenate token runs (each starting and ending at a clean boundary) into exact arrays."""
    with_dist = runs[0].sample.tokens.logprob is not None
    toks = Tokens()
    if with_dist:
        toks.logprob, toks.rank, toks.entropy = [], [], []
        toks.top_ids, toks.top_logprobs, toks.top_pieces = [], [], []
    parts: list[str] = []
    length = 0
    for run in runs:
        src = run.sample.tokens
        base = src.offsets[run.start]
        parts.append(run.sample.text[base:src.offsets[run.end]])
        for i in range(run.start, run.end):
            toks.ids.append(src.ids[i])
            toks.nbytes.append(src.nbytes[i])
            toks.offsets.append(length + src.offsets[i + 1] - base)
        length += src.offsets[run.end] - base
        if not with_dist:
            continue
        n = run.end - run.start
        keep = run.own and src.logprob is not None
        for name in ("logprob", "rank", "entropy"):
            values = getattr(src, name)
            getattr(toks, name).extend(values[run.start:run.end] if keep and values is not None else [None] * n)
        for name in ("top_ids", "top_logprobs", "top_pieces"):
            values = getattr(src, name)
            getattr(toks, name).extend(
                [list(v) for v in values[run.start:run.end]] if keep and values is not None else [[] for _ in range(n)]
            )
    text = "".join(parts)
    assert toks.offsets[-1] == len(text) and len(toks.offsets) == len(toks.ids) + 1
    return text, toks


def _control_sample(kind: str, runs: list[_Run], onset: int, seed: int, parts: list[str],
                    key: list[Any], finish_reason: str) -> Sample:
    text, tokens = _assemble(runs)
    head = runs[0].sample
    return Sample(
        id=stable_id("s_", "control", kind, parts, key, seed),
        model={"id": f"control:{kind}", "name": f"control ({kind})", "source": "control"},
        backend="control",
        prompt=head.prompt,
        settings={},
        seed=None,
        text=text,
        tokens=tokens,
        finish_reason=finish_reason,
        source="control",
        control={"kind": kind, "onset": onset, "category": CONTROL_CATEGORY[kind], "parts": parts, "seed": seed},
    )


def build_splice(a: Sample, b: Sample, k: int, seed: int) -> Sample:
    """Sample A's first ``k`` tokens, then B's tokens from ``k`` on: known fall at ``k`` (drift).

    ``k`` must be a clean boundary (see :func:`clean_boundaries`) of both samples and leave at
    least one token of B.
    """
    if not 0 < k < min(a.n_tokens + 1, b.n_tokens):
        raise OptionError(f"splice point {k} is outside the samples ({a.n_tokens} and {b.n_tokens} tokens)")
    if not (clean_boundaries(a)[k] and clean_boundaries(b)[k]):
        raise OptionError(f"splice point {k} splits a character")
    runs = [_Run(a, 0, k, True), _Run(b, k, b.n_tokens, False)]
    return _control_sample("splice", runs, k, seed, [a.id, b.id], [k], b.finish_reason)


def build_loop(a: Sample, k: int, span_start: int, seed: int) -> Sample:
    """Sample A up to token ``k``, then A's tokens ``span_start..k-1`` repeated until the control
    is as long as A: known fall at ``k`` (repetition)."""
    clean = clean_boundaries(a)
    if not 0 <= span_start < k < a.n_tokens:
        raise OptionError(f"loop span {span_start}..{k} is outside sample {a.id} ({a.n_tokens} tokens)")
    if not (clean[k] and clean[span_start]):
        raise OptionError(f"loop span {span_start}..{k} splits a character")
    runs = [_Run(a, 0, k, True)]
    left = a.n_tokens - k
    span = k - span_start
    while left >= span:
        runs.append(_Run(a, span_start, k, False))
        left -= span
    take = left  # a last, partial repetition, cut where no character is split
    while take > 0 and not clean[span_start + take]:
        take -= 1
    if take:
        runs.append(_Run(a, span_start, span_start + take, False))
    return _control_sample("loop", runs, k, seed, [a.id], [k, span_start], "length")


# --------------------------------------------------------------------------------------------
# Choosing sources and onsets


def _rng(seed: int, kind: str, index: int, attempt: int) -> random.Random:
    digest = hashlib.sha256(f"lmread-controls:{seed}:{kind}:{index}:{attempt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _joins(left: Sample, k: int, right: Sample, j: int) -> bool:
    """Whether ``left``'s tokens up to ``k`` followed by ``right``'s token ``j`` join at a word
    boundary (whitespace on one side), so the seam does not glue two words together."""
    before = left.piece(k - 1) if k > 0 else " "
    after = right.piece(j) if j < right.n_tokens else " "
    return before[-1:].isspace() or after[:1].isspace()


def _onsets(a: Sample, b: Sample, m: int, lo_min: int = 1) -> list[int]:
    """Onsets in 10%-80% of ``m`` where A's first ``k`` tokens can be followed by B's token ``k``
    exactly (no split character), at a word boundary when there is such a ``k``."""
    lo = max(lo_min, math.ceil(ONSET_RANGE[0] * m))
    hi = math.floor(ONSET_RANGE[1] * m)
    clean_a, clean_b = clean_boundaries(a), clean_boundaries(b)
    ks = [k for k in range(lo, hi + 1) if clean_a[k] and clean_b[k]]
    return [k for k in ks if _joins(a, k, b, k)] or ks


def _pick_splice(pool: list[Sample], seed: int, index: int, taken: set[str]) -> Sample | None:
    for attempt in range(_ATTEMPTS):
        rng = _rng(seed, "splice", index, attempt)
        a = rng.choice(pool)
        others = [b for b in pool if b.prompt.text != a.prompt.text and b.id != a.id]
        if not others:
            continue
        same_model = [b for b in others if b.model_id == a.model_id]
        b = rng.choice(same_model or others)
        ks = _onsets(a, b, min(a.n_tokens, b.n_tokens - 1))
        if not ks:
            continue
        control = build_splice(a, b, rng.choice(ks), seed)
        if control.id not in taken:
            return control
    return None


def _pick_loop(pool: list[Sample], seed: int, index: int, taken: set[str]) -> Sample | None:
    for attempt in range(_ATTEMPTS):
        rng = _rng(seed, "loop", index, attempt)
        a = rng.choice(pool)
        ks = _onsets(a, a, a.n_tokens - 1, lo_min=LOOP_SPAN[0])
        if not ks:
            continue
        k = rng.choice(ks)
        clean = clean_boundaries(a)
        starts = [s for s in range(max(0, k - LOOP_SPAN[1]), k - LOOP_SPAN[0] + 1) if clean[s]]
        if not starts:
            continue
        words = [s for s in starts if _joins(a, k, a, s)]
        control = build_loop(a, k, rng.choice(words or starts), seed)
        if control.id not in taken:
            return control
    return None


def _human_order(pool: list[Sample], seed: int) -> list[Sample]:
    def key(s: Sample) -> str:
        return hashlib.sha256(f"lmread-controls:{seed}:human:{s.id}".encode()).hexdigest()

    return sorted(pool, key=key)


# --------------------------------------------------------------------------------------------
# Making controls for a study


@dataclass
class ControlsReport:
    """What :func:`make_controls` did."""

    study: str
    seed: int
    rate: float
    kinds: list[str]
    ordinary: int
    target: dict[str, int]
    added: dict[str, list[str]] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def n_added(self) -> int:
        return sum(len(v) for v in self.added.values())

    def to_json(self) -> dict[str, Any]:
        return {"study": self.study, "seed": self.seed, "rate": self.rate, "kinds": self.kinds,
                "ordinary_samples": self.ordinary, "target": self.target, "added": self.added,
                "total": self.total, "warnings": self.warnings}


def parse_kinds(text: str | None, has_human_pool: bool) -> list[str]:
    """Control kinds from ``"splice,loop,human"``; the default is splice and loop, plus human
    when the study has imported human controls."""
    if text is None:
        return ["splice", "loop"] + (["human"] if has_human_pool else [])
    kinds: list[str] = []
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        if part not in CONTROL_KINDS:
            raise OptionError(f"unknown control kind {part!r}: use {', '.join(CONTROL_KINDS)}")
        if part not in kinds:
            kinds.append(part)
    if not kinds:
        raise OptionError("--kinds names no control kind: use splice, loop and/or human")
    return kinds


def targets(n_ordinary: int, rate: float, kinds: list[str]) -> dict[str, int]:
    """Controls wanted per kind: ``round(rate * n_ordinary)`` in all, shared out in ``kinds`` order."""
    total = int(math.floor(rate * n_ordinary + 0.5))
    base, extra = divmod(total, len(kinds))
    return {kind: base + (1 if i < extra else 0) for i, kind in enumerate(kinds)}


def make_controls(study: Study, rate: float = DEFAULT_RATE, kinds: list[str] | None = None,
                  seed: int | None = None) -> ControlsReport:
    """Add controls to ``study`` until each kind has its share of ``rate`` controls per ordinary
    sample; returns what was added.  Deterministic for (study contents, rate, kinds, seed)."""
    if not 0 <= rate <= 1:
        raise OptionError(f"--rate {rate:g} must be between 0 and 1 (controls per ordinary sample)")
    study.refresh()
    seed = study.shuffle_seed if seed is None else int(seed)
    pool_h = human_pool(study)
    kinds = kinds or parse_kinds(None, bool(pool_h))
    ordinary = ordinary_samples(study)
    sources = [s for s in ordinary if s.n_tokens >= MIN_SOURCE_TOKENS]
    report = ControlsReport(str(study.path), seed, rate, list(kinds), len(ordinary), targets(len(ordinary), rate, kinds))
    existing = {kind: [s.id for s in study.samples.values() if control_kind(s) == kind] for kind in CONTROL_KINDS}
    picked = [sid for sid in study.settings.human_controls if sid in study.samples]
    taken = set(study.samples)
    new: list[Sample] = []
    for kind in kinds:
        want = report.target[kind]
        report.added[kind] = []
        if kind == "human":
            have = len(picked)
            for s in _human_order(pool_h, seed):
                if have >= want:
                    break
                if s.id not in picked:
                    picked.append(s.id)
                    report.added[kind].append(s.id)
                    have += 1
            if have < want:
                report.warnings.append(
                    f"the rate asks for {want} human controls but only {len(pool_h)} are imported; "
                    "import more with 'lmread import --control human FILE'")
            report.total[kind] = have
            continue
        have = len(existing[kind])
        index = have
        while have < want:
            if not sources:
                report.warnings.append(f"no sample has {MIN_SOURCE_TOKENS} tokens or more to build {kind} controls from")
                break
            pick = _pick_splice if kind == "splice" else _pick_loop
            control = pick(sources, seed, index, taken)
            index += 1
            if control is None:
                report.warnings.append(
                    f"could not build {want - have} more {kind} controls"
                    + (" (splices need samples of at least two different prompts)" if kind == "splice" else ""))
                break
            taken.add(control.id)
            new.append(control)
            report.added[kind].append(control.id)
            have += 1
        report.total[kind] = have
    if new:
        study.add_samples(new)
    if report.added.get("human"):
        controls = dict(study.meta.get("controls") or {})
        controls["human"] = picked
        study.update_meta(controls=controls)
    return report


# --------------------------------------------------------------------------------------------
# What the reader is told after the mark


def control_line(sample: Sample, mark: Mark) -> str | None:
    """One line saying what a control was and what the reader marked (after the mark only);
    None for an ordinary sample or a skip."""
    kind = control_kind(sample)
    if kind is None or mark.kind not in ("fall", "no_fall"):
        return None
    onset = control_onset(sample)
    if kind == "human":
        what = "control: human-written text (right answer: no fall)"
        if mark.kind == "fall":
            return f"{what}; you marked a fall at token {mark.at}"
        return f"{what}; you read {mark.read_to} tokens without a fall"
    what = (f"control: spliced at token {onset} (another text from there)" if kind == "splice"
            else f"control: a loop from token {onset} (an earlier span repeated from there)")
    if mark.kind == "fall":
        return f"{what}; you marked {mark.at}"
    read = mark.read_to or 0
    if onset is not None and read <= onset:
        return f"{what}; you stopped at token {read}, before it"
    return f"{what}; you read {read} tokens without marking a fall"
