"""From a study to an observation table: one row per (sample, annotator) standing mark.

Coherent length of a marked sample:

* a **fall** at token ``i`` is an event at duration ``i`` tokens (tokens ``0..i-1`` were fine);
* a **no fall** read to ``r`` tokens is censored at ``r`` tokens; a sample that ended by
  end-of-text and was read to the end is thereby censored at its length (``end`` = ``"eos"``);
* a **skip** contributes nothing, and undone marks are withdrawn (the latest standing mark of
  each annotator on each sample counts, see :meth:`lmread.study.Study.current_marks`).

Durations come in four units.  ``tokens`` as above; ``chars`` is the number of characters
before the cut (``offsets[i]``, the characters of tokens ``0..i-1``); ``words`` is the number of
words in ``text[:offsets[i]]``, where a word is a maximal run of non-whitespace characters and a
word is counted when it *starts* before the cut (so a word the fall token cuts in half counts);
``sentences`` counts sentences the same way, with the sentence starts the import recorded, else
the splitter of :mod:`lmread.sentences`.

A ``prompt_fall`` mark (a fall the reader put in the human-written prompt of an imported
passage, see :class:`lmread.records.Mark`) is an early mark: it never enters a curve and is
counted in ``filters["left_out"]["prompt_falls"]`` (present only when there are some).

Several annotators on one sample (``consensus``):

* ``each``: every annotator's mark is its own observation;
* ``earliest``: one observation per sample: the earliest fall any annotator marked, or, when
  nobody marked a fall, censored at the furthest any annotator read;
* ``median``: one observation per sample: the annotators' marks ordered by duration (a fall
  before a censoring at the same duration) and the lower median taken (mark ``(k - 1) // 2``).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmread.analysis.reading_speed import speed_verdict, words_per_second
from lmread.errors import OptionError, StudyError
from lmread.records import MODEL_IDENTITY_KEYS, Mark, Sample, is_machine
from lmread.sentences import sentence_starts
from lmread.study import Study

UNITS = ("tokens", "words", "chars", "sentences")
GROUPINGS = ("model", "model+decoding", "prompt-set")
CONSENSUS = ("each", "earliest", "median")
DECODING_KEYS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")
UNCATEGORIZED = "uncategorized"
#: how many tokens before a fall the fall token's logprob and rank are compared with
BEFORE = 20


@dataclass
class Group:
    """One group of observations: its label and what defines it."""

    label: str
    model: dict[str, Any] | None
    n_params: int | None
    decoding: dict[str, Any] | None = None
    prompt_set: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "model": self.model, "n_params": self.n_params,
                "decoding": self.decoding, "prompt_set": self.prompt_set}


@dataclass(kw_only=True)
class Observations:
    """Column arrays, one row per observation, plus the groups they belong to (built with
    keywords: ``group[i]`` indexes ``groups``, ``category_code[i]`` indexes ``categories`` (-1:
    censored), ``sample_code[i]`` numbers the distinct samples)."""

    groups: list[Group]
    group: np.ndarray
    tokens: np.ndarray
    words: np.ndarray
    chars: np.ndarray
    event: np.ndarray
    category_code: np.ndarray
    categories: list[str]
    sample: list[str]
    sample_code: np.ndarray
    annotator: list[str]
    end: list[str]
    n_annotators: np.ndarray
    filters: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: severity 1-3 of each fall (0: unrated or censored); ``None`` when not collected
    severity: np.ndarray | None = None
    #: per row (falls only, else nan): logprob and rank at the fall token and the medians of the
    #: tokens before it (:func:`fall_token_measures`)
    fall_measures: np.ndarray | None = None
    #: durations in sentences (:mod:`lmread.sentences`)
    sentences: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.group.size)

    def duration(self, unit: str) -> np.ndarray:
        """Durations in ``unit`` (tokens, words, chars or sentences)."""
        check_unit(unit)
        if unit == "sentences":
            if self.sentences is None:
                raise OptionError("these observations were built without sentence counts")
            return self.sentences
        return {"tokens": self.tokens, "words": self.words, "chars": self.chars}[unit]

    def category(self, row: int) -> str:
        """Failure category of row ``row`` ("" for a censored observation)."""
        code = int(self.category_code[row])
        return self.categories[code] if code >= 0 else ""

    def group_rows(self, index: int) -> np.ndarray:
        """Row indexes of group ``index``."""
        return np.flatnonzero(self.group == index)


def check_unit(unit: str) -> str:
    """Return ``unit`` if known, else raise :class:`OptionError`."""
    if unit not in UNITS:
        raise OptionError(f"unknown unit {unit!r}: use one of {', '.join(UNITS)}")
    return unit


def check_grouping(by: str) -> str:
    """Return ``by`` if known, else raise :class:`OptionError`."""
    if by not in GROUPINGS:
        raise OptionError(f"unknown grouping {by!r}: use one of {', '.join(GROUPINGS)}")
    return by


def check_consensus(consensus: str) -> str:
    """Return ``consensus`` if known, else raise :class:`OptionError`."""
    if consensus not in CONSENSUS:
        raise OptionError(f"unknown consensus {consensus!r}: use one of {', '.join(CONSENSUS)}")
    return consensus


def model_identity(sample: Sample) -> dict[str, Any]:
    """The identifying fields of a sample's model (id, n_params, file hash or revision, ...)."""
    return {k: sample.model[k] for k in MODEL_IDENTITY_KEYS if sample.model.get(k) is not None}


def decoding_of(sample: Sample) -> dict[str, Any]:
    """The sampling settings that define a decoding group."""
    return {k: sample.settings[k] for k in DECODING_KEYS if sample.settings.get(k) is not None}


def group_label(sample: Sample, by: str) -> str:
    """The label of the group ``sample`` belongs to under grouping ``by`` (controls aside)."""
    return _group_key(sample, check_grouping(by))[0]


def _group_key(sample: Sample, by: str) -> tuple[str, dict[str, Any] | None, str | None]:
    if by == "model":
        return sample.model_id, None, None
    if by == "model+decoding":
        dec = decoding_of(sample)
        text = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in dec.items())
        return (f"{sample.model_id} {text}" if text else f"{sample.model_id} (default decoding)"), dec, None
    prompt_set = sample.prompt.set
    label = str(prompt_set) if prompt_set not in (None, "") else "(no set)"
    return label, None, label


def fall_token_measures(sample: Sample, at: int, before: int = BEFORE) -> tuple[float, float, float, float]:
    """``(logprob at the fall, median logprob of the previous tokens, rank at the fall, median rank
    of the previous tokens)`` of a fall at token ``at``; ``nan`` where nothing is recorded."""
    toks = sample.tokens
    out = [math.nan] * 4
    lo = max(0, at - before)
    for k, values in ((0, toks.logprob), (2, toks.rank)):
        if values is None or at >= len(values):
            continue
        here = values[at]
        if here is not None:
            out[k] = float(here)
        prev = [v for v in values[lo:at] if v is not None]
        if prev:
            out[k + 1] = float(np.median(prev))
    return out[0], out[1], out[2], out[3]


@dataclass
class _Row:
    sample: Sample
    mark: Mark
    tokens: int
    event: bool


def _row(sample: Sample, mark: Mark) -> _Row:
    if mark.kind == "fall":
        return _Row(sample, mark, int(mark.at), True)  # type: ignore[arg-type]
    return _Row(sample, mark, int(mark.read_to), False)  # type: ignore[arg-type]


def _consensus(rows: list[_Row], how: str) -> _Row:
    if how == "earliest":
        falls = [r for r in rows if r.event]
        if falls:
            return min(falls, key=lambda r: (r.tokens, r.mark.annotator))
        return max(rows, key=lambda r: (r.tokens, r.mark.annotator))
    ordered = sorted(rows, key=lambda r: (r.tokens, not r.event, r.mark.annotator))
    return ordered[(len(ordered) - 1) // 2]


def observations_from_marks(
    samples: dict[str, Sample],
    marks: Iterable[Mark],
    by: str = "model",
    consensus: str = "each",
    controls: bool = False,
    min_read_speed: float | None = None,
    max_read_speed: float | None = None,
) -> Observations:
    """Build the observation table from samples and standing marks (skips are dropped).

    Controls (samples with a known answer) never enter model groups: they are left out, or with
    ``controls`` form their own groups ``control:splice``, ``control:loop``, ``control:human``.
    Readings slower than ``min_read_speed`` or faster than ``max_read_speed`` words/s (see
    :mod:`lmread.analysis.reading_speed`) are left out; readings of unknown speed are kept.  What
    was left out is counted in ``filters["left_out"]``.
    """
    check_grouping(by)
    check_consensus(consensus)
    for name, value in (("--min-read-speed", min_read_speed), ("--max-read-speed", max_read_speed)):
        if value is not None and not value > 0:
            raise OptionError(f"{name} {value:g} must be > 0 words per second")
    warnings: list[str] = []
    per_sample: dict[str, list[_Row]] = {}
    missing = 0
    left_out = {"controls": 0, "too_fast": 0, "too_slow": 0}
    for mark in marks:
        if mark.kind == "prompt_fall" and mark.sample in samples:  # the key appears only when there are some
            left_out["prompt_falls"] = left_out.get("prompt_falls", 0) + 1
            continue
        if mark.kind not in ("fall", "no_fall"):
            continue
        sample = samples.get(mark.sample)
        if sample is None:
            missing += 1
            continue
        if sample.control is not None and not controls:
            left_out["controls"] += 1
            continue
        if min_read_speed is not None or max_read_speed is not None:
            verdict = speed_verdict(words_per_second(mark, sample), min_read_speed, max_read_speed)
            if verdict in ("too_fast", "too_slow"):
                left_out[verdict] += 1
                continue
        per_sample.setdefault(sample.id, []).append(_row(sample, mark))
    if missing:
        warnings.append(f"{missing} marks refer to samples not in this study; they were left out")
    if left_out["too_fast"] or left_out["too_slow"]:
        warnings.append(f"{left_out['too_fast'] + left_out['too_slow']} readings outside the reading-speed limits "
                        "were left out")
    chosen: list[tuple[_Row, int]] = []
    for rows in per_sample.values():
        rows.sort(key=lambda r: r.mark.annotator)
        if consensus == "each":
            chosen.extend((r, 1) for r in rows)
        else:
            chosen.append((_consensus(rows, consensus), len(rows)))

    groups: dict[str, Group] = {}
    group_of: list[str] = []
    tokens: list[int] = []
    words: list[int] = []
    chars: list[int] = []
    sentences: list[int] = []
    event: list[bool] = []
    n_ann: list[int] = []
    category_code: list[int] = []
    severity: list[int] = []
    measures: list[tuple[float, float, float, float]] = []
    no_measures = (math.nan,) * 4
    categories: dict[str, int] = {}
    sample_ids: list[str] = []
    annotators: list[str] = []
    ends: list[str] = []
    sentence_cache: dict[str, list[int]] = {}
    for row, count in chosen:
        s = row.sample
        label, dec, prompt_set = _group_key(s, by)
        if s.control is not None:  # controls form their own groups, whatever the grouping
            label, dec, prompt_set = f"control:{s.control['kind']}", None, None
        group = groups.get(label)
        if group is None and s.control is not None:
            group = groups[label] = Group(label, None, None)
        elif group is None:
            ident = model_identity(s)
            group = groups[label] = Group(label, ident, ident.get("n_params"), dec, prompt_set)
        elif s.control is None and group.model is not None and group.model.get("id") != s.model_id:
            group.model = None  # a prompt-set group spanning several models
            group.n_params = None
        group_of.append(label)
        cut = s.tokens.offsets[row.tokens]
        tokens.append(row.tokens)
        chars.append(cut)
        words.append(bisect_left(s.word_starts, cut))
        sent = sentence_cache.get(s.id)
        if sent is None:
            sent = sentence_cache[s.id] = sentence_starts(s).tolist()
        sentences.append(bisect_left(sent, cut))
        event.append(row.event)
        n_ann.append(count)
        if row.event:
            cat = row.mark.category or UNCATEGORIZED
            category_code.append(categories.setdefault(cat, len(categories)))
            severity.append(row.mark.severity or 0)
            measures.append(fall_token_measures(s, row.tokens))
            ends.append("fall")
        else:
            category_code.append(-1)
            severity.append(0)
            measures.append(no_measures)
            if row.tokens >= s.n_tokens:
                ends.append("eos" if s.finish_reason in ("eos", "stop") else "end")
            else:
                ends.append("read")
        sample_ids.append(s.id)
        annotators.append(row.mark.annotator)
    ordered = sorted(groups.values(), key=lambda g: (g.n_params is None, g.n_params or 0, g.label))
    index = {g.label: k for k, g in enumerate(ordered)}
    group_arr = np.fromiter((index[label] for label in group_of), dtype=np.int64, count=len(group_of))
    code_of = {sid: k for k, sid in enumerate(sorted(set(sample_ids)))}  # codes in sorted id order
    sample_code = np.fromiter((code_of[sid] for sid in sample_ids), dtype=np.int64, count=len(sample_ids))
    def ints(values: list[int]) -> np.ndarray:
        return np.array(values, dtype=np.int64).reshape(len(values))

    return Observations(
        groups=ordered, group=group_arr, tokens=ints(tokens), words=ints(words), chars=ints(chars),
        event=np.array(event, dtype=bool).reshape(len(event)), category_code=ints(category_code),
        categories=list(categories), sample=sample_ids, sample_code=sample_code, annotator=annotators, end=ends,
        n_annotators=ints(n_ann),
        filters={"by": by, "consensus": consensus, "controls": controls, "min_read_speed_wps": min_read_speed,
                 "max_read_speed_wps": max_read_speed, "left_out": left_out},
        warnings=warnings, severity=ints(severity), fall_measures=np.array(measures, dtype=float).reshape(len(measures), 4),
        sentences=ints(sentences))


def observations_from_study(
    study: Study, by: str = "model", annotator: str = "all", consensus: str = "each",
    controls: bool = False, min_read_speed: float | None = None, max_read_speed: float | None = None,
) -> Observations:
    """The observation table of a study (see the module notes); raises a one-line
    :class:`OptionError` / :class:`StudyError` for an unknown option or a study with no marks.

    Reading-speed limits not given fall back on the study's settings."""
    check_grouping(by)
    check_consensus(consensus)
    known = study.annotators()
    if annotator != "all" and annotator not in known:
        have = ", ".join(known) if known else "nobody yet"
        raise OptionError(f"unknown annotator {annotator!r}: this study has marks by {have} (or use --annotator all)")
    marks = list(study.current_marks(None if annotator == "all" else annotator).values())
    if annotator == "all":  # every human reader; machine readers (auto-*) are chosen by name
        marks = [m for m in marks if not is_machine(m.annotator)]
    settings = study.settings
    obs = observations_from_marks(
        study.samples, marks, by=by, consensus=consensus, controls=controls,
        min_read_speed=settings.min_read_speed_wps if min_read_speed is None else min_read_speed,
        max_read_speed=settings.max_read_speed_wps if max_read_speed is None else max_read_speed)
    obs.filters["annotator"] = annotator
    obs.warnings[:0] = study.warnings
    if len(obs) == 0:
        who = "" if annotator == "all" else f" by {annotator}"
        machines = [a for a in known if is_machine(a)]
        if annotator == "all" and machines:
            raise StudyError(f"study {study.path} has no human fall or no-fall marks yet; machine readers' marks "
                             f"are read by name: --annotator {' or '.join(machines)}")
        raise StudyError(
            f"study {study.path} has no fall or no-fall marks{who} yet; mark samples with 'lmread read' or 'lmread mark'"
        )
    return obs
