"""Readings: one standing fall or no-fall mark per (annotator, sample), with what the reader saw.

This is the table the reader-checking analyses (:mod:`lmread.analysis.calibration`,
:mod:`lmread.analysis.agreement`) start from.  It applies the same rule as the survival
observations: the latest standing mark of each annotator on each sample counts (undone marks are
withdrawn, see :meth:`lmread.study.Study.current_marks`), and when that mark is a skip the
annotator contributes nothing on that sample.

For each reading:

* ``fell`` and ``at``: a fall at token ``at`` (tokens ``0..at-1`` were read as fine);
* ``read_to``: for a no-fall reading, the tokens read without a fall (the censoring point);
* ``tokens_read``: how much the reader read, as the reading-speed filter counts it
  (:func:`lmread.analysis.reading_speed.tokens_read`);
* ``queue_pos``: the sample's position in that reader's queue as recorded in the mark, or, for
  marks that did not record it, the order in which the annotator first marked each sample
  (``queue_pos_recorded`` says which).

Words are counted as in the ``words`` unit of survival: the words of ``text[:offsets[i]]`` (a
word is a maximal run of non-whitespace characters, counted when it starts before the cut);
sentences likewise (:mod:`lmread.sentences`).

A ``prompt_fall`` mark (an early mark in the human-written prompt of an imported passage) is a
reading only when asked for (``prompt_falls=True``, as RoFT's scoring in calibration does):
``fell`` is False, ``prompt_fall`` True, ``at`` None and ``read_to`` 0.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

import numpy as np

from lmread.analysis.reading_speed import tokens_read
from lmread.records import Mark, Sample, is_machine
from lmread.sentences import sentence_starts, sentences_before_char
from lmread.study import Study

__all__ = ["Reading", "WordCounter", "is_machine", "readings_of"]


@dataclass(slots=True)
class Reading:
    """One standing fall / no-fall mark of one annotator on one sample (build with
    :meth:`of`)."""

    annotator: str
    sample: Sample
    mark: Mark
    queue_pos: int
    queue_pos_recorded: bool
    #: the fall token (None for a no-fall reading)
    at: int | None
    #: tokens read without a fall: the censoring point of a no-fall reading; ``at`` for a fall
    read_to: int
    #: tokens the mark says were read (read_to, else revealed, else through the fall token), at
    #: most the sample's length (:func:`lmread.analysis.reading_speed.tokens_read`)
    tokens_read: int

    @classmethod
    def of(cls, sample: Sample, mark: Mark, queue_pos: int, recorded: bool) -> Reading:
        """The reading of a fall or no-fall ``mark`` on ``sample``."""
        at = int(mark.at) if mark.kind == "fall" and mark.at is not None else None
        read_to = at if at is not None else int(mark.read_to or 0)
        seen = tokens_read(mark, sample)
        return cls(mark.annotator, sample, mark, queue_pos, recorded, at, read_to, seen or 0)

    @property
    def fell(self) -> bool:
        return self.at is not None

    @property
    def prompt_fall(self) -> bool:
        """Whether the reader put the fall in the human-written prompt (an early mark)."""
        return self.mark.kind == "prompt_fall"


#: units a :class:`WordCounter` counts in besides tokens
COUNT_UNITS = ("words", "sentences")


class WordCounter:
    """Words before a token index (:func:`lmread.analysis.reading_speed.words_in_tokens`: the
    words starting before the token's first character), cached per (sample, token); with
    ``unit="sentences"`` sentences instead (:func:`lmread.sentences.sentences_before`)."""

    def __init__(self, unit: str = "words") -> None:
        if unit not in COUNT_UNITS:
            raise ValueError(f"unit {unit!r} is not one of {COUNT_UNITS}")
        self.unit = unit
        self._cache: dict[tuple[str, int], int] = {}
        self._starts: dict[str, np.ndarray] = {}

    def before(self, sample: Sample, token: int) -> int:
        """Words (or sentences) of ``text[:offsets[token]]`` (``token`` clipped to the sample)."""
        key = (sample.id, int(token))
        count = self._cache.get(key)
        if count is None:
            cut = sample.tokens.offsets[max(0, min(int(token), sample.n_tokens))]
            if self.unit == "words":  # as words_in_tokens counts them: the words starting before the cut
                count = bisect_left(sample.word_starts, cut)
            else:
                starts = self._starts.get(sample.id)
                if starts is None:
                    starts = self._starts[sample.id] = sentence_starts(sample)
                count = sentences_before_char(starts, cut)
            self._cache[key] = count
        return count


def readings_of(study: Study, prompt_falls: bool = False) -> list[Reading]:
    """Every reading of a study (annotators in name order, then the reader's queue order);
    ``prompt_falls``: include the early marks put in a prompt (see the module notes)."""
    samples: dict[str, Sample] = study.samples
    first_seen: dict[str, dict[str, int]] = {}
    for mark in study.marks():
        if mark.kind == "undo":
            continue
        order = first_seen.setdefault(mark.annotator, {})
        order.setdefault(mark.sample, len(order))
    out: list[Reading] = []
    for (annotator, sid), mark in study.current_marks().items():
        if (mark.kind not in ("fall", "no_fall") and not (prompt_falls and mark.kind == "prompt_fall")) \
                or sid not in samples:
            continue
        recorded = mark.queue_pos
        if isinstance(recorded, int) and not isinstance(recorded, bool):
            pos, is_recorded = recorded, True
        else:
            pos, is_recorded = first_seen.get(annotator, {}).get(sid, 0), False
        out.append(Reading.of(samples[sid], mark, pos, is_recorded))
    out.sort(key=lambda r: (r.annotator, r.queue_pos, r.sample.id))
    return out
