"""Reader calibration on controls with a known answer, reading speed and order effects.

Controls (issue 10) are samples with a known answer (``Sample.control``): *splice* and *loop*
controls fall at a known token ``onset``; *human* controls are text a person wrote, whose right
answer is no fall.  Per annotator, over their readings (see :mod:`lmread.analysis.readings`):

Splice and loop controls
    A reading is **detected** when it is a fall at or after the onset, **early** when it is a
    fall before the onset, **missed** when it is a no-fall reading that read past the onset
    (``read_to > onset``).  A no-fall reading that stopped at or before the onset never saw the
    fall: it is counted as *not reached* and left out of the rates.  Detection, early and miss
    rates are shares of the evaluable readings (detected + early + missed), so they sum to 1.
    The **delay** of a detected reading is its mark minus the onset, in tokens and in words
    (words before the mark minus words before the onset); the median and quartiles are numpy's
    linear-interpolation percentiles (Hyndman-Fan type 7).

Human controls
    The **false-fall rate** is the share of readings of human controls that marked a fall.

RoFT-style score
    After RoFT (Dugan et al. 2023), which gave 5 points for a guess at the true boundary, one
    point less per sentence after it and 0 for a guess before it: a detected reading scores
    ``max(0, 5 - delay_words // 10)`` points (5 for a mark within 10 words of the onset, 4 within
    20 words, ..., 0 from 50 words on), an early or missed reading 0, a human-control reading 5
    for no fall and 0 for a fall.  The score is the mean points per scored reading (0-5).

RoFT's own score (``unit="sentences"``)
    RoFT's rule exactly, in sentences: a reader's answer is the sentence they marked as the first
    machine-written one; ``n`` sentences after the true first one earns ``max(5 - n, 0)`` points,
    any sentence before it 0.  Scored are the passages with a known boundary: imported boundary
    passages (``prompt.human``: the machine text starts at the sample's first sentence; a
    ``prompt_fall`` mark is a guess before it), splice and loop controls (the onset's sentence)
    and human controls (5 for no fall, 0 for a fall).  The sentence of a fall is the sentence
    holding the fall token; a no-fall reading is an "all human" answer and is scored as a guess
    one past the last sentence read (RoFT's "last sentence" rule: on a fully read passage ``n``
    is the number of machine sentences), or left unscored when it stopped before the boundary.
    Reported per annotator (mean points, exact hits and their share: RoFT's headline measure,
    against 10% by chance with ten sentences) and per group (``by``: model, model+decoding,
    prompt set; controls in their own groups), as RoFT published.  On an imported RoFT file each
    reader's mean equals the mean of the file's ``points`` over their rows.

Reading speed
    Per reading, :func:`lmread.analysis.reading_speed.reading_speed` (words read over the mark's
    ``elapsed_s``; unknown when no clock ran), the very measure the survival filter
    ``--max-read-speed`` uses.  Reported per annotator as the pooled speed (all words / all
    seconds) and the median per reading; readings faster than a stated limit (the study's
    ``max_read_speed_wps``, else 8 words/s, well above fast reading) are flagged.

Order effects
    Whether readings drift with the sample's position in the reader's queue (fatigue, anchoring):
    Spearman's rank correlation (average ranks for ties) of queue position with the fall position
    in tokens (falls on ordinary samples, censored readings left out) and with the delay on
    detected controls, with a two-sided p-value from Student's t on n - 2 degrees of freedom (as
    :func:`scipy.stats.spearmanr`).  Queue positions come from the marks' ``queue_pos`` where
    recorded, else from the order in which the annotator marked the samples.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lmread import __version__
from lmread.analysis.distributions import average_ranks, t_sf
from lmread.analysis.observations import check_grouping, group_label
from lmread.analysis.reading_speed import DEFAULT_MAX_WPS, reading_speed
from lmread.analysis.readings import Reading, WordCounter, is_machine, readings_of
from lmread.errors import OptionError
from lmread.records import Sample, control_kind, control_onset
from lmread.sentences import sentence_starts
from lmread.study import Study

CALIBRATION_SCHEMA = "lmread.calibration/1"

#: readings faster than this many words per second are flagged (unless the study sets its own limit)
DEFAULT_MAX_READ_SPEED = DEFAULT_MAX_WPS
#: warn when an annotator fails to detect more than this share of the controls with a known fall
DEFAULT_WARN_MISS_SHARE = 0.5
#: warn when an annotator's median delay on detected controls exceeds this many words
DEFAULT_WARN_LATE_WORDS = 20.0
#: RoFT-style score: points for a mark at the onset, one point less per this many words of delay
SCORE_MAX_POINTS = 5
SCORE_STEP_WORDS = 10


def distribution(values: list[float] | np.ndarray) -> dict[str, Any]:
    """``{"n", "median", "q1", "q3", "mean"}`` of ``values`` (None entries when empty)."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return {"n": 0, "median": None, "q1": None, "q3": None, "mean": None}
    q1, med, q3 = np.percentile(arr, [25, 50, 75])
    return {"n": int(arr.size), "median": float(med), "q1": float(q1), "q3": float(q3), "mean": float(arr.mean())}


def spearman(x: list[float] | np.ndarray, y: list[float] | np.ndarray) -> dict[str, Any]:
    """Spearman's rho of ``x`` and ``y`` with a two-sided p-value (t on n - 2 df).

    ``rho`` and ``p_value`` are None with fewer than 3 pairs or when either side is constant.
    """
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    n = int(xa.size)
    out: dict[str, Any] = {"n": n, "rho": None, "p_value": None}
    if n < 3:
        return out
    rx = average_ranks(xa)
    ry = average_ranks(ya)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if denom == 0.0:
        return out
    rho = float(np.clip((rx @ ry) / denom, -1.0, 1.0))
    if abs(rho) >= 1.0:
        p = 0.0
    else:
        t = rho * math.sqrt((n - 2) / (1.0 - rho * rho))
        p = float(2.0 * t_sf(abs(t), n - 2))
    out.update(rho=rho, p_value=p)
    return out


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def roft_points(delay_words: int) -> int:
    """Points of a detected reading ``delay_words`` words after the onset (see the module notes)."""
    return max(0, SCORE_MAX_POINTS - max(0, int(delay_words)) // SCORE_STEP_WORDS)


CALIBRATION_UNITS = ("words", "sentences")


def _marked_sentence(starts: np.ndarray, sample: Sample, token: int) -> int:
    """The sentence holding token ``token`` (its last character; 0 before the first sentence)."""
    end = sample.tokens.offsets[min(token + 1, sample.n_tokens)]
    return max(int(np.searchsorted(starts, end - 1, side="right")) - 1, 0)


def roft_sentence_score(r: Reading, cache: dict[str, np.ndarray] | None = None) -> tuple[int, int | None] | None:
    """RoFT's ``(points, delay in sentences)`` of a reading (delay None on a human control), or
    None when the reading is not scored (see the module notes).  ``cache``: sentence starts by
    sample id, shared between calls."""
    sample = r.sample
    kind = control_kind(sample)
    if kind == "human":
        return (0 if r.fell or r.prompt_fall else SCORE_MAX_POINTS), None
    if kind is None and not sample.prompt.get("human"):
        return None  # no known boundary
    starts = None if cache is None else cache.get(sample.id)
    if starts is None:
        starts = sentence_starts(sample)
        if cache is not None:
            cache[sample.id] = starts
    onset = 0
    if kind is not None:
        known = control_onset(sample)
        if known is None:
            return None
        onset = _marked_sentence(starts, sample, known)
    if r.prompt_fall:
        return 0, -1
    if r.at is not None:
        delay = _marked_sentence(starts, sample, r.at) - onset
    else:
        cut = sample.tokens.offsets[max(0, min(r.read_to, sample.n_tokens))]
        guess = int(np.searchsorted(starts, cut, side="left"))  # one past the last sentence begun
        if guess <= onset:
            return None  # stopped before the boundary: never saw it
        delay = guess - onset
    return (0 if delay < 0 else max(SCORE_MAX_POINTS - delay, 0)), delay


def _score_block(scored: list[tuple[int, int | None]]) -> dict[str, Any]:
    points = [p for p, _ in scored]
    exact = sum(p == SCORE_MAX_POINTS for p in points)
    early = sum(d is not None and d < 0 for _, d in scored)
    return {"n": len(points), "points": sum(points), "mean": (sum(points) / len(points)) if points else None,
            "exact": exact, "exact_share": _rate(exact, len(points)), "early": early,
            "max_points": SCORE_MAX_POINTS, "rule": "roft", "unit": "sentences"}


def roft_scores_by_group(readings: list[Reading], by: str = "model") -> list[dict[str, Any]]:
    """RoFT's score per group of samples (``by``: model, model+decoding, prompt-set; controls in
    groups ``control:<kind>``), over every annotator's scored readings."""
    check_grouping(by)
    groups: dict[str, list[tuple[int, int | None]]] = {}
    meta: dict[str, dict[str, Any]] = {}
    cache: dict[str, np.ndarray] = {}
    for r in readings:
        score = roft_sentence_score(r, cache)
        if score is None:
            continue
        kind = control_kind(r.sample)
        label = f"control:{kind}" if kind is not None else group_label(r.sample, by)
        groups.setdefault(label, []).append(score)
        if label not in meta:
            n_params = None if kind is not None else r.sample.model.get("n_params")
            top_p = None if kind is not None else r.sample.settings.get("top_p")
            meta[label] = {"group": label, "n_params": n_params, "top_p": top_p if by == "model+decoding" else None}
    out = [{**meta[label], **_score_block(rows)} for label, rows in groups.items()]
    out.sort(key=lambda g: (g["group"].startswith("control:"), g["n_params"] is None, g["n_params"] or 0, g["group"]))
    return out


def _onset_block(rows: list[dict[str, Any]]) -> dict[str, Any]:
    detected = [r for r in rows if r["outcome"] == "detected"]
    early = [r for r in rows if r["outcome"] == "early"]
    missed = sum(r["outcome"] == "missed" for r in rows)
    not_reached = sum(r["outcome"] == "not_reached" for r in rows)
    evaluable = len(detected) + len(early) + missed
    return {
        "read": len(rows),
        "evaluable": evaluable,
        "not_reached": not_reached,
        "detected": len(detected),
        "early": len(early),
        "missed": missed,
        "detection_rate": _rate(len(detected), evaluable),
        "early_rate": _rate(len(early), evaluable),
        "miss_rate": _rate(missed, evaluable),
        "delay_tokens": distribution([r["delay_tokens"] for r in detected]),
        "delay_words": distribution([r["delay_words"] for r in detected]),
        "early_by_tokens": distribution([-r["delay_tokens"] for r in early]),
    }


def _speed_block(readings: list[Reading], limit: float) -> dict[str, Any]:
    timed: list[tuple[Reading, int, float, float]] = []
    for r in readings:
        speed = reading_speed(r.mark, r.sample)
        if speed is not None:
            timed.append((r, speed.words, speed.elapsed_s, speed.wps))
    total_words = sum(t[1] for t in timed)
    total_s = sum(t[2] for t in timed)
    fast = [t for t in timed if t[3] > limit]
    return {
        "readings": len(readings),
        "timed": len(timed),
        "words": total_words,
        "seconds": total_s if timed else 0.0,
        "wps": total_words / total_s if timed else None,
        "median_wps": float(np.median([t[3] for t in timed])) if timed else None,
        "too_fast": len(fast),
        "too_fast_share": _rate(len(fast), len(timed)),
        "too_fast_readings": [
            {"sample": r.sample.id, "mark": r.mark.id, "words": w, "elapsed_s": e, "wps": v}
            for r, w, e, v in fast
        ],
    }


def annotator_calibration(
    annotator: str,
    readings: list[Reading],
    words: WordCounter,
    *,
    max_read_speed: float = DEFAULT_MAX_READ_SPEED,
    warn_miss_share: float = DEFAULT_WARN_MISS_SHARE,
    warn_late_words: float = DEFAULT_WARN_LATE_WORDS,
    unit: str = "words",
) -> dict[str, Any]:
    """The calibration block of one annotator from their readings (see the module notes);
    ``unit="sentences"`` scores by RoFT's own rule."""
    onset_rows: list[dict[str, Any]] = []
    human_reads = human_falls = 0
    points: list[int] = []
    ordinary_falls: list[tuple[int, int]] = []
    for r in readings:
        kind = control_kind(r.sample)
        if r.prompt_fall:
            continue  # scored below (RoFT's rule); no position in the sample's own text
        if kind is None:
            if r.at is not None:
                ordinary_falls.append((r.queue_pos, r.at))
            continue
        if kind == "human":
            human_reads += 1
            human_falls += int(r.fell)
            points.append(0 if r.fell else SCORE_MAX_POINTS)
            continue
        known = control_onset(r.sample)
        if known is None:
            continue
        row: dict[str, Any] = {"kind": kind, "queue_pos": r.queue_pos}
        at = r.at
        if at is not None:
            row["delay_tokens"] = at - known
            row["delay_words"] = words.before(r.sample, at) - words.before(r.sample, known)
            if unit == "sentences":
                starts = sentence_starts(r.sample)
                row["delay_sentences"] = (_marked_sentence(starts, r.sample, at)
                                          - _marked_sentence(starts, r.sample, known))
            row["outcome"] = "detected" if at >= known else "early"
        else:
            row["outcome"] = "missed" if r.read_to > known else "not_reached"
        if row["outcome"] == "detected":
            points.append(roft_points(row["delay_words"]))
        elif row["outcome"] in ("early", "missed"):
            points.append(0)
        onset_rows.append(row)

    onset = _onset_block(onset_rows)
    if unit == "sentences":  # the sentence of the mark minus the sentence of the onset (RoFT's n)
        onset["delay_sentences"] = distribution([r["delay_sentences"] for r in onset_rows
                                                 if r["outcome"] == "detected"])
    onset["by_kind"] = {kind: _onset_block([r for r in onset_rows if r["kind"] == kind]) for kind in ("splice", "loop")}
    for block in onset["by_kind"].values():
        block.pop("early_by_tokens")
    detected_rows = [r for r in onset_rows if r["outcome"] == "detected"]
    order = {
        "method": "spearman",
        "queue_pos_recorded": sum(r.queue_pos_recorded for r in readings),
        "fall_position": spearman([q for q, _ in ordinary_falls], [a for _, a in ordinary_falls]),
        "control_delay": spearman([r["queue_pos"] for r in detected_rows], [r["delay_tokens"] for r in detected_rows]),
    }
    warnings: list[str] = []
    if onset["evaluable"]:
        not_detected = onset["early"] + onset["missed"]
        if not_detected / onset["evaluable"] > warn_miss_share:
            warnings.append(
                f"annotator {annotator} did not detect {not_detected} of {onset['evaluable']} controls with a known "
                f"fall ({onset['missed']} missed, {onset['early']} marked early; more than {warn_miss_share:.0%})"
            )
    med = onset["delay_words"]["median"]
    if med is not None and med > warn_late_words:
        warnings.append(
            f"annotator {annotator} marks controls late: median delay {med:g} words after the known fall "
            f"(more than {warn_late_words:g})"
        )
    if unit == "sentences":
        cache: dict[str, np.ndarray] = {}
        score = _score_block([sc for sc in (roft_sentence_score(r, cache) for r in readings) if sc is not None])
    else:
        score = {"n": len(points), "points": sum(points), "mean": (sum(points) / len(points)) if points else None,
                 "max_points": SCORE_MAX_POINTS, "step_words": SCORE_STEP_WORDS}
    return {
        "annotator": annotator,
        "machine": is_machine(annotator),
        "onset_controls": onset,
        "human_controls": {"read": human_reads, "false_falls": human_falls,
                           "false_fall_rate": _rate(human_falls, human_reads)},
        "score": score,
        "reading_speed": _speed_block(readings, max_read_speed),
        "order": order,
        "warnings": warnings,
    }


def calibration_from_readings(
    readings: list[Reading],
    *,
    max_read_speed: float = DEFAULT_MAX_READ_SPEED,
    warn_miss_share: float = DEFAULT_WARN_MISS_SHARE,
    warn_late_words: float = DEFAULT_WARN_LATE_WORDS,
    study: dict[str, Any] | None = None,
    controls: dict[str, int] | None = None,
    unit: str = "words",
    by: str = "model",
) -> dict[str, Any]:
    """The calibration document (schema ``lmread.calibration/1``) of a list of readings.

    ``unit="sentences"`` scores by RoFT's rule and adds ``unit``, ``by`` and ``groups`` (the score
    per group); pass readings with the prompt falls then (``readings_of(study, prompt_falls=True)``).
    """
    check_calibration_unit(unit)
    check_grouping(by)
    words = WordCounter()
    by_annotator: dict[str, list[Reading]] = {}
    for r in readings:
        by_annotator.setdefault(r.annotator, []).append(r)
    annotators = [
        annotator_calibration(name, rows, words, max_read_speed=max_read_speed,
                              warn_miss_share=warn_miss_share, warn_late_words=warn_late_words, unit=unit)
        for name, rows in sorted(by_annotator.items())
    ]
    extra: dict[str, Any] = {}
    if unit == "sentences":
        extra = {"unit": unit, "by": by, "groups": roft_scores_by_group(readings, by)}
    return {
        "schema": CALIBRATION_SCHEMA,
        "lmread_version": __version__,
        "study": study or {},
        "settings": {"max_read_speed_wps": max_read_speed, "warn_miss_share": warn_miss_share,
                     "warn_late_words": warn_late_words, "score_max_points": SCORE_MAX_POINTS,
                     "score_step_words": SCORE_STEP_WORDS, "quantiles": "linear (type 7)",
                     "order_test": "spearman"},
        "controls": controls or {kind: 0 for kind in ("splice", "loop", "human")},
        "annotators": annotators,
        "warnings": [w for a in annotators for w in a["warnings"]],
        **extra,
    }


def check_calibration_unit(unit: str) -> str:
    """Return ``unit`` if calibration scores in it (words: lmread's score; sentences: RoFT's)."""
    if unit not in CALIBRATION_UNITS:
        raise OptionError(f"unknown unit {unit!r} for calibration: use {' or '.join(CALIBRATION_UNITS)}")
    return unit


def calibration_of_study(study: Study, readings: list[Reading] | None = None, **options: Any) -> dict[str, Any]:
    """The calibration document of an open :class:`~lmread.study.Study` (``readings``: its
    :func:`~lmread.analysis.readings.readings_of`, if already built; options as
    :func:`calibration_from_readings`)."""
    counts = {kind: 0 for kind in ("splice", "loop", "human")}
    for sample in study.samples.values():
        kind = control_kind(sample)
        if kind is not None:
            counts[kind] += 1
    info = {"path": str(study.path), "name": study.name, "samples": len(study.samples)}
    if options.get("max_read_speed") is None:
        options["max_read_speed"] = study.settings.max_read_speed_wps or DEFAULT_MAX_READ_SPEED
    if readings is None:
        rows = readings_of(study, prompt_falls=options.get("unit") == "sentences")
    else:
        rows = readings
    return calibration_from_readings(rows, study=info, controls=counts, **options)
