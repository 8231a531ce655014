"""Boundary passages: human-written sentences followed by machine-written (or spliced) ones,
with readers' guesses of where the machine text starts, as lmread samples and marks.

This is how RoFT data (:mod:`lmread.importer.roft`) and the generic boundary format
(:mod:`lmread.importer.boundary`) enter a study.  A passage has sentences ``0..n-1``; sentences
``0..b`` are human-written (``b`` is the *last human* sentence, RoFT's boundary index), the rest
are machine-written (a *machine* passage), another person's text (a *splice*, RoFT's
``baseline``), or there is no boundary at all (an *all-human* passage).

Representation (the answer to "what does a RoFT reading mean in lmread"):

* **Machine passage**: the human sentences are the prompt the reader saw: ``prompt.text`` holds
  them (``prompt.sentences`` their starts, ``prompt.human = true``) and the sample's ``text``
  holds only the machine sentences, so a model curve measures the model's own text.  A guess
  ``g`` (the last sentence the reader took for human) with ``g >= b`` is a fall at the first
  token of machine sentence ``g - b`` (``g - b`` machine sentences survived); the "all human"
  answer ``g = last`` is no fall, censored at the end (all ``last - b`` machine sentences read);
  ``g < b`` marks a human sentence: a ``prompt_fall`` mark whose ``prompt_at`` is the character
  of the prompt where sentence ``g + 1`` starts.  It never enters a model curve (the survival
  filters count it as an early mark) and calibration scores it as a guess before the boundary.
* **All-human passage**: a human control (right answer: no fall), with sentence 0 as the prompt
  and sentences ``1..n-1`` as the text (sentence 0 can never be guessed: a guess names the last
  human sentence).  ``g < last`` is a fall at sentence ``g + 1``; ``g = last`` is no fall.
* **Splice**: a splice control with the same layout; its known onset is the first token of
  sentence ``b + 1``.

Sentences are joined with single spaces; the text starts with the space that follows the
prompt, so ``prompt.text + text`` is the passage as one string, and the sample records where
each sentence starts (``sentences``), the sentence unit's ground truth.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from lmread.errors import MergeConflict, StudyError
from lmread.records import Mark, Sample, Tokens, human_control, stable_id
from lmread.sentences import join_sentences
from lmread.storage import append_lines
from lmread.study import Study
from lmread.study.folder import READERS_FILE

#: the ``words`` tokenizer's pieces (lmread.backends.scripted.split_text): a word with the whitespace before it
_WORD_PIECE = re.compile(r"\s*\S+|\s+", re.UNICODE)
READER_SCHEMA = "lmread.reader/1"

#: RoFT's scoring: 5 points for the exact boundary, one less per sentence late, 0 before it
ROFT_MAX_POINTS = 5


def roft_points(guess: int, boundary: int) -> int:
    """RoFT's points for guessing ``guess`` as the last human sentence when it was ``boundary``."""
    if guess < boundary:
        return 0
    return max(ROFT_MAX_POINTS - (guess - boundary), 0)


@dataclass
class Guess:
    """One reader's answer on a passage: ``last_human`` is the sentence the reader took for the
    last human one (``None``: "all human", no fall)."""

    reader: str
    last_human: int | None
    category: str | None = None
    note: str | None = None
    time: str | None = None
    queue_pos: int | None = None
    key: tuple[Any, ...] = ()


@dataclass
class Passage:
    """A passage of sentences with its boundary (``None``: all human) and what made it."""

    sentences: list[str]
    boundary: int | None
    kind: str  # "machine", "splice" or "human"
    model: dict[str, Any]
    settings: dict[str, Any]
    prompt_set: str | None
    key: tuple[Any, ...]
    guesses: list[Guess] = field(default_factory=list)


def _assemble(text: str) -> tuple[Tokens, str]:
    """Tokens of ``text`` split by the ``words`` tokenizer, without a distribution: what
    :class:`~lmread.records.TokenAssembler` makes of them (a ``str`` is whole characters, so the
    offsets are the running lengths of the pieces), built directly for speed."""
    pieces = [m.group(0) for m in _WORD_PIECE.finditer(text)]
    offsets = [0, *itertools.accumulate(len(p) for p in pieces)]
    nbytes = [len(p.encode("utf-8")) for p in pieces]
    return Tokens(ids=[-1] * len(pieces), offsets=offsets, nbytes=nbytes), text


def passage_sample(passage: Passage) -> Sample:
    """The lmread sample of ``passage`` (see the module notes for the layout)."""
    sents = passage.sentences
    if passage.kind == "machine":
        b = passage.boundary
        assert b is not None
        human, rest = sents[: b + 1], sents[b + 1:]
    else:
        human, rest = sents[:1], sents[1:]
    prompt_text, prompt_starts = join_sentences(human)
    text, starts = join_sentences(rest, lead=" " if rest and human else "")
    tokens, text = _assemble(text)
    control = None
    if passage.kind == "human":
        control = human_control()
    elif passage.kind == "splice":
        assert passage.boundary is not None
        onset_char = starts[passage.boundary]  # text sentence b is passage sentence b + 1
        onset = next(i for i in range(len(tokens.ids)) if tokens.offsets[i + 1] > onset_char)
        control = {"kind": "splice", "onset": onset, "category": "drift", "parts": [], "seed": 0}
    sid = stable_id("s_", "import-passage", *passage.key)
    return Sample(
        id=sid,
        model=passage.model,
        backend="import",
        prompt={"text": prompt_text, "set": passage.prompt_set, "human": True, "sentences": prompt_starts},
        settings={**passage.settings, "tokenizer": "words"},
        seed=None,
        text=text,
        tokens=tokens,
        finish_reason="eos",
        source="imported",
        control=control,
        sentences=starts,
    )


def _token_at(sample: Sample, char: int) -> int:
    offsets = sample.tokens.offsets
    lo, hi = 0, len(offsets) - 1
    while lo < hi:  # the first token whose span ends after ``char``
        mid = (lo + hi) // 2
        if offsets[mid + 1] > char:
            hi = mid
        else:
            lo = mid + 1
    return lo


def guess_mark(passage: Passage, sample: Sample, guess: Guess) -> Mark:
    """The mark of one reader's guess on a passage (see the module notes)."""
    stable = stable_id("m_", "import-guess", sample.id, guess.reader, *guess.key)
    common: dict[str, Any] = {"sample": sample.id, "annotator": guess.reader, "note": guess.note, "id": stable,
                              "client": "import", "queue_pos": guess.queue_pos}
    if guess.time:
        common["time"] = guess.time
    g = guess.last_human
    if g is None:
        return Mark(kind="no_fall", read_to=sample.n_tokens, revealed=sample.n_tokens, **common)
    first_marked = g + 1  # the sentence the reader took for the first machine one
    offset = passage.boundary + 1 if passage.kind == "machine" else 1  # type: ignore[operator]
    if first_marked < offset:
        return Mark(kind="prompt_fall", prompt_at=sample.prompt["sentences"][first_marked],
                    category=guess.category, **common)
    assert sample.sentences is not None
    at = _token_at(sample, sample.sentences[first_marked - offset])
    return Mark(kind="fall", at=at, category=guess.category, **common)


def reader_record(name: str, source: str, source_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A reader metadata record (schema ``lmread.reader/1``) for ``readers.jsonl``."""
    return {"schema": READER_SCHEMA, "annotator": name, "source": source, "source_id": source_id, **fields}


def read_readers(study_dir: Path) -> dict[str, dict[str, Any]]:
    """The reader metadata of a study (``readers.jsonl``), latest record per annotator."""
    path = study_dir / READERS_FILE
    out: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return out
    for line in path.read_bytes().splitlines():
        if line.strip():
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a torn last line
            if isinstance(rec, dict) and isinstance(rec.get("annotator"), str):
                out[rec["annotator"]] = rec
    return out


def write_import(study_dir: Path, samples: list[Sample], marks: list[Mark], readers: list[dict[str, Any]],
                 progress: Callable[[str], None] | None = None) -> tuple[int, int]:
    """Write ``samples``, ``marks`` and reader records into the study, all or nothing.

    A new study is built in a temporary folder beside ``study_dir`` and renamed into place, so
    an interrupted import leaves nothing.  Into an existing study, everything is checked first
    (no sample id with other content, no mark id already there, every mark inside its sample)
    and then appended (samples, then each reader's marks, one write each).  Returns the numbers
    of samples and marks written.
    """
    existing = (study_dir / "study.toml").exists()
    if existing:
        study = Study.open(study_dir)
        have = study.samples
        for s in samples:
            old = have.get(s.id)
            if old is not None and old.text != s.text:
                raise MergeConflict(f"sample {s.id} is already in the study with other text; nothing was imported")
        known = {m.id for m in study.marks()}
        clash = sum(m.id in known for m in marks)
        if clash:
            raise MergeConflict(f"{clash} of these readings are already in study {study_dir} (imported before?); "
                                "nothing was imported")
        new_samples = {s.id: s for s in samples if s.id not in have}
        probe = dict(have)
        probe.update(new_samples)
        for m in marks:  # every check append_marks makes, against the samples as they will be, before any write
            s = probe[m.sample]
            m.validate()
            prompt_len = len(str(s.prompt.get("text") or ""))
            if (m.at is not None and not 0 <= m.at < s.n_tokens) or (
                    m.read_to is not None and not 0 <= m.read_to <= s.n_tokens) or (
                    m.prompt_at is not None and not 0 <= m.prompt_at < prompt_len):
                raise StudyError(f"a reading of {s.id} by {m.annotator} lies outside the sample; nothing was imported")
        written = study.add_samples(list(new_samples.values()))
        study.append_marks(marks)
        _append_readers(study_dir, readers)
        return len(written), len(marks)
    parent = study_dir.resolve().parent
    if study_dir.exists() and not study_dir.is_dir():
        raise StudyError(f"{study_dir} exists and is not a folder; choose another study path")
    if study_dir.exists() and any(study_dir.iterdir()):
        raise StudyError(f"{study_dir} is a folder but not a study; choose an empty or new folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{study_dir.name}.import-", dir=parent))
    except OSError as exc:
        raise StudyError(f"cannot create study folder {study_dir}: {exc.strerror}") from None
    try:
        study = Study.create(tmp / "study", name=study_dir.name)
        if progress:
            progress(f"writing {len(samples)} samples")
        study.add_samples(samples)
        if progress:
            progress(f"writing {len(marks)} marks")
        study.append_marks(marks)
        _append_readers(study.path, readers)
        if study_dir.exists():
            study_dir.rmdir()  # empty (checked above)
        os.replace(study.path, study_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return len(samples), len(marks)


def _append_readers(study_dir: Path, readers: list[dict[str, Any]]) -> None:
    have = read_readers(study_dir)
    new = [r for r in readers if have.get(r["annotator"]) != r]
    if new:
        append_lines(study_dir / READERS_FILE, b"".join(orjson.dumps(r) + b"\n" for r in new))
