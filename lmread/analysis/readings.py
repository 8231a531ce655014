"""Readings: one standing fall or no-fall mark per (annotator, sample), with what the reader saw.

This is the table the reader-checking analyses (:mod:`lmread.analysis.calibration`,
:mod:`lmread.analysis.agreement`) start from.  It applies the same rule as the survival
observations: the latest standing mark of each annotator on each sample counts (undone marks are
withdrawn, see :meth:`lmread.study.Study.current_marks`), and when that mark is a skip the
annotator contributes nothing on that sample.

For each reading:

* ``fell`` and ``at``: a fall at token ``at`` (tokens ``0..at-1`` were read as fine);
* ``read_to``: for a no-fall reading, the tokens read without a fall (the censoring point);
* ``tokens_read``: how much the reader read: ``read_to`` when the mark recorded it, else the
  tokens revealed, else ``at + 1`` (as the survival reading-speed filter counts);
* ``queue_pos``: the sample's position in that reader's queue as recorded in the mark, or, for
  marks that did not record it, the order in which the annotator first marked each sample
  (``queue_pos_recorded`` says which).

Words are counted as in :mod:`lmread.analysis.observations`: the words of ``text[:offsets[i]]`` (a word is
a maximal run of non-whitespace characters, counted when it starts before the cut).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lmread.records import Mark, Sample

#: annotator names of machine readers (deterministic detectors, issue 11) start with this
MACHINE_PREFIX = "auto-"

CONTROL_KINDS = ("splice", "loop", "human")

_WORD = re.compile(r"\S+")  # a word, as in lmread.analysis.observations


def is_machine(annotator: str) -> bool:
    """Whether ``annotator`` is a machine reader (``auto-<detector>``)."""
    return annotator.startswith(MACHINE_PREFIX)


def control_of(sample: Sample) -> dict[str, Any] | None:
    """The known answer of a control sample (``{"kind", "onset", ...}``), or None for a sample.

    Read defensively: anything but a dict with a known ``kind`` counts as no control.
    """
    control = getattr(sample, "control", None)
    if not isinstance(control, dict) or control.get("kind") not in CONTROL_KINDS:
        return None
    return control


@dataclass
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
    #: most the sample's length: the rule of the survival reading-speed filter
    tokens_read: int

    @classmethod
    def of(cls, sample: Sample, mark: Mark, queue_pos: int, recorded: bool) -> Reading:
        """The reading of a fall or no-fall ``mark`` on ``sample``."""
        at = int(mark.at) if mark.kind == "fall" and mark.at is not None else None
        read_to = at if at is not None else int(mark.read_to or 0)
        if mark.read_to is not None:
            seen = int(mark.read_to)
        elif mark.revealed is not None:
            seen = int(mark.revealed)
        else:
            seen = (at or 0) + 1
        return cls(mark.annotator, sample, mark, queue_pos, recorded, at, read_to,
                   max(0, min(seen, sample.n_tokens)))

    @property
    def fell(self) -> bool:
        return self.at is not None


class WordCounter:
    """Words before a token index (as :func:`lmread.analysis.observations.word_starts` counts them: word
    starts before the cut), computed in C by the regex engine on the prefix and cached."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], int] = {}

    def before(self, sample: Sample, token: int) -> int:
        """Words of ``text[:offsets[token]]`` (``token`` clipped to the sample)."""
        token = max(0, min(int(token), sample.n_tokens))
        key = (sample.id, token)
        count = self._cache.get(key)
        if count is None:
            count = self._cache[key] = len(_WORD.findall(sample.text, 0, sample.tokens.offsets[token]))
        return count


def readings_of(study: Any) -> list[Reading]:
    """Every reading of a study (annotators in name order, then the reader's queue order)."""
    samples: dict[str, Sample] = study.samples
    first_seen: dict[str, dict[str, int]] = {}
    for mark in study.marks():
        if mark.kind == "undo":
            continue
        order = first_seen.setdefault(mark.annotator, {})
        order.setdefault(mark.sample, len(order))
    out: list[Reading] = []
    for (annotator, sid), mark in study.current_marks().items():
        if mark.kind not in ("fall", "no_fall") or sid not in samples:
            continue
        recorded = getattr(mark, "queue_pos", None)
        if isinstance(recorded, int) and not isinstance(recorded, bool):
            pos, is_recorded = recorded, True
        else:
            pos, is_recorded = first_seen.get(annotator, {}).get(sid, 0), False
        out.append(Reading.of(samples[sid], mark, pos, is_recorded))
    out.sort(key=lambda r: (r.annotator, r.queue_pos, r.sample.id))
    return out
