"""A plan of a study: built from its pilot or from assumptions, stored as the ``[plan]`` table of
study.toml (pre-registration), and the study's progress against it (see
:mod:`lmread.analysis.plan`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmread.analysis.plan.compare import (
    GroupInput,
    median_width_plan,
    plan_comparison,
)
from lmread.analysis.plan.power import (
    check_hazard_ratio,
    check_level,
    expected_read_length,
    obf_boundary,
    solve_rate_for_censoring,
)
from lmread.analysis.plan.sizes import n_for_width, reader_time
from lmread.errors import OptionError

#: people read prose at about 4-5 words/s
DEFAULT_READING_WPS = 4.5
DEFAULT_REPLICATES = 1000
PLAN_SCHEMA = "lmread.plan/1"


# --------------------------------------------------------------------------------------------
# A plan of a study (pilot or assumptions), stored in study.toml, and progress against it


@dataclass
class PlanOptions:
    """What ``lmread plan`` was asked (see the module notes; None: not given)."""

    unit: str = "tokens"
    by: str = "model"
    annotator: str = "all"
    alpha: float = 0.05
    power: float = 0.8
    hazard_ratio: float | None = None
    medians: dict[str, float] | None = None
    max_length: int | None = None
    censoring: float | None = None
    ci_width: float | None = None
    exponent_ci_width: float | None = None
    readers: int = 1
    reading_wps: float | None = None
    controls_rate: float | None = None
    overlap: float | None = None
    words_per_sample: float | None = None
    replicates: int = DEFAULT_REPLICATES
    seed: int = 0


def _pilot_groups(study: Any, opts: PlanOptions) -> tuple[list[GroupInput], Any]:
    from lmread.analysis.observations import observations_from_study
    from lmread.analysis.survival import km, median

    obs = observations_from_study(study, by=opts.by, annotator=opts.annotator)
    dur = obs.duration(opts.unit)
    groups = []
    for k, g in enumerate(obs.groups):
        rows = obs.group_rows(k)
        d = dur[rows].astype(float)
        e = obs.event[rows].astype(np.int64)
        med = median(km(d, e))
        groups.append(GroupInput(g.label, g.n_params, d, e, med.value, (med.ci_low, med.ci_high)))
    return groups, obs


def _reading_speed(study: Any) -> float | None:
    from lmread.analysis.reading_speed import reading_speed

    words = 0.0
    seconds = 0.0
    samples = study.samples
    for (annotator, sid), mark in study.current_marks().items():
        if annotator.startswith("auto-") or sid not in samples:
            continue
        speed = reading_speed(mark, samples[sid])
        if speed is not None:
            words += speed.words
            seconds += speed.elapsed_s
    return words / seconds if seconds > 0 and words > 0 else None


def _words_per_sample(study: Any) -> float | None:
    from lmread.analysis.reading_speed import words_in_tokens

    texts = [s for s in study.samples.values() if s.control is None]
    return float(np.mean([words_in_tokens(s, s.n_tokens) for s in texts])) if texts else None


def study_length(study: Any, unit: str) -> int | None:
    """The study's generated length in ``unit``: its reading horizon in tokens (the largest
    ``max_tokens``, else the longest sample), or the longest sample in words or characters."""
    from lmread.analysis.agreement import reading_horizon
    from lmread.analysis.reading_speed import words_in_tokens

    samples = [s for s in study.samples.values() if s.control is None] or list(study.samples.values())
    if not samples:
        return None
    if unit == "tokens":
        return reading_horizon(samples)[0] or None
    if unit == "words":
        return max(words_in_tokens(s, s.n_tokens) for s in samples) or None
    return max(len(s.text) for s in samples) or None


def build_plan(study: Any | None, opts: PlanOptions, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The plan document (schema ``lmread.plan/1``) of ``study`` (a pilot, or None) under
    ``opts``; one-line :class:`OptionError` for what cannot be planned.  ``progress(text)`` is
    called before each comparison's simulation."""
    from lmread import __version__
    from lmread.records import utc_now

    check_level(opts.alpha, opts.power)
    if opts.replicates < 0:
        raise OptionError(f"--replicates {opts.replicates} must be 0 (no simulation) or more")
    if opts.hazard_ratio is not None:
        check_hazard_ratio(opts.hazard_ratio, "--hazard-ratio")
    warnings: list[str] = []
    obs = None
    groups: list[GroupInput]
    length = opts.max_length
    if length is None and study is not None and study.samples:
        length = study_length(study, opts.unit)
    if opts.medians is not None or (opts.hazard_ratio is not None and study is None):
        source = "assumptions"
        if length is None or length < 1:
            raise OptionError("planning from assumptions needs --max-length (the generated length in the plan's unit)")
        censoring = 0.0 if opts.censoring is None else float(opts.censoring)
        if not 0 <= censoring < 1:
            raise OptionError(f"--censoring {censoring} must be at least 0 and below 1")
        if opts.medians is not None:
            groups = [GroupInput(name, rate=math.log(2) / m) for name, m in opts.medians.items()]
        else:
            assert opts.hazard_ratio is not None
            if opts.censoring is None:
                raise OptionError("--hazard-ratio without a pilot or --median needs --censoring (the share of "
                                  "readings without a fall) to know how often texts fall")
            rate = solve_rate_for_censoring(opts.hazard_ratio, length, censoring)
            groups = [GroupInput("A", rate=rate), GroupInput("B", rate=rate * opts.hazard_ratio)]
            censoring = 0.0  # the share is the falls' own; readers read to the end
    else:
        if study is None:
            raise OptionError("give --study DIR (a pilot) or assumptions (--median A=10,B=15 or --hazard-ratio "
                              "with --max-length and --censoring)")
        source = "pilot"
        censoring = 0.0
        groups, obs = _pilot_groups(study, opts)
    if len(groups) < 2:
        only = groups[0].label if groups else "none"
        raise OptionError(f"the {source} has one group only ({only}); a comparison needs two or more "
                          "(generate or import samples of another model, or give --median A=..,B=..)")
    comparisons = []
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            comparisons.append(plan_comparison(a, b, alpha=opts.alpha, power=opts.power,
                                               hazard_ratio=opts.hazard_ratio,
                                               replicates=opts.replicates, seed=opts.seed, length=length,
                                               censoring=censoring, progress=progress))
    per_group: dict[str, int] = {g.label: 0 for g in groups}
    p_event: dict[str, float] = {}
    for c in comparisons:
        per_group[c.a] = max(per_group[c.a], c.samples_per_group)
        per_group[c.b] = max(per_group[c.b], c.samples_per_group)
        p_event.setdefault(c.a, c.p_event)
        p_event.setdefault(c.b, c.p_event)
    widths = median_width_plan(groups, opts.ci_width, opts.alpha, p_event)
    for w in widths:
        if w["samples"] is not None:
            per_group[w["group"]] = max(per_group[w["group"]], int(w["samples"]))
    exponent = _exponent_plan(obs, opts) if opts.exponent_ci_width is not None else None
    if exponent is not None and exponent.get("observations") is not None:
        share = exponent["observations"] / max(1, sum(g.n for g in groups))
        for g in groups:
            per_group[g.label] = max(per_group[g.label], int(math.ceil(g.n * share)))
    total = sum(per_group.values())
    # reader time
    if obs is not None and len(obs):
        wpr, wsource = float(np.mean(obs.words)), "pilot: mean words read per reading"
    elif opts.words_per_sample is not None:
        wpr, wsource = float(opts.words_per_sample), "--words-per-sample"
    elif study is not None and _words_per_sample(study) is not None:
        wpr, wsource = float(_words_per_sample(study) or 0.0), "study: mean words per sample"
    elif opts.unit == "words" and comparisons[0].arms:
        wpr, wsource = expected_read_length(comparisons[0].arms), "assumed curves: expected words read per reading"
    else:
        raise OptionError("reader time needs the words a reading takes: give --words-per-sample "
                          "(or plan in --unit words, or from a study with samples)")
    measured = _reading_speed(study) if study is not None else None
    if opts.reading_wps is not None:
        wps, wps_source = float(opts.reading_wps), "--reading-speed"
    elif measured is not None:
        wps, wps_source = measured, "pilot: the readers' measured speed"
    else:
        wps, wps_source = DEFAULT_READING_WPS, "default (people read prose at about 4.5 words/s)"
    controls_rate = opts.controls_rate
    if controls_rate is None:
        n_controls = sum(1 for s in study.samples.values() if s.control is not None) if study is not None else 0
        controls_rate = n_controls / len(study.samples) if study is not None and study.samples else 0.0
    overlap = opts.overlap
    if overlap is None:
        overlap = float(study.meta.get("overlap") or 0.0) if study is not None else 0.0
    rt = reader_time(total, wpr, wsource, wps, wps_source, controls_rate, overlap, opts.readers)
    doc: dict[str, Any] = {
        "schema": PLAN_SCHEMA,
        "lmread_version": __version__,
        "created": utc_now(),
        "study": {} if study is None else {"path": str(study.path), "name": study.name,
                                           "samples": len(study.samples)},
        "source": source,
        "settings": {"unit": opts.unit, "by": opts.by, "annotator": opts.annotator, "alpha": opts.alpha,
                     "power": opts.power, "hazard_ratio": opts.hazard_ratio, "max_length": length,
                     "censoring": opts.censoring, "ci_width": opts.ci_width,
                     "exponent_ci_width": opts.exponent_ci_width, "replicates": opts.replicates, "seed": opts.seed,
                     "test": "two-sided log-rank, equal groups"},
        "groups": [{"label": g.label, "n_params": g.n_params, "n": g.n,
                    "events": None if g.events is None else int(g.events.sum()),
                    "median": g.median if g.durations is not None else (math.log(2) / g.rate if g.rate else None),
                    "median_ci": list(g.median_ci), "samples": per_group[g.label]} for g in groups],
        "comparisons": [c.to_json() for c in comparisons],
        "median_ci_width": widths,
        "exponent_ci": exponent,
        "samples_per_group": per_group,
        "samples": total,
        "events": max(c.events for c in comparisons),
        "reader_time": rt.to_json(),
        "warnings": warnings,
    }
    return doc


def _exponent_plan(obs: Any, opts: PlanOptions) -> dict[str, Any]:
    target = float(opts.exponent_ci_width or 0.0)
    if not target > 0:
        raise OptionError(f"--exponent-ci-width {opts.exponent_ci_width} must be above 0")
    if obs is None:
        return {"target": target, "exponent": None, "width_now": None, "n_now": 0, "observations": None,
                "note": "the AFT scaling exponent is planned from a pilot of two or more model sizes"}
    from lmread.analysis.report import build_survival

    doc = build_survival(obs, opts.unit, n_boot=0)
    fit = ((doc.get("parametric") or {}).get("scaling") or {}).get("weibull")
    if not fit or fit.get("exponent_ci_low") is None:
        note = ((doc.get("parametric") or {}).get("scaling") or {}).get("note") or "no Weibull AFT fit"
        return {"target": target, "exponent": None, "width_now": None, "n_now": len(obs), "observations": None,
                "note": f"no scaling exponent from the pilot: {note}"}
    width = float(fit["exponent_ci_high"] - fit["exponent_ci_low"])
    return {"target": target, "exponent": float(fit["exponent"]), "width_now": width, "n_now": len(obs),
            "observations": n_for_width(len(obs), width, target), "note": None}


def stored_plan(doc: dict[str, Any]) -> dict[str, Any]:
    """The flat ``[plan]`` table of study.toml (scalars and lists only) of a plan document."""
    labels = list(doc["samples_per_group"])
    out: dict[str, Any] = {
        "schema": PLAN_SCHEMA,
        "created": doc["created"],
        "source": doc["source"],
        "unit": doc["settings"]["unit"],
        "by": doc["settings"]["by"],
        "annotator": doc["settings"]["annotator"],
        "alpha": doc["settings"]["alpha"],
        "power": doc["settings"]["power"],
        "groups": labels,
        "samples_per_group": [int(doc["samples_per_group"][k]) for k in labels],
        "events": int(doc["events"]),
        "hazard_ratios": [float(c["hazard_ratio"]) for c in doc["comparisons"]],
        "readings": int(doc["reader_time"]["readings"]),
        "readers": int(doc["reader_time"]["readers"]),
        "reader_hours": round(float(doc["reader_time"]["hours"]), 3),
    }
    if doc["settings"]["ci_width"] is not None:
        out["ci_width"] = float(doc["settings"]["ci_width"])
    return out


def save_plan(study: Any, doc: dict[str, Any]) -> None:
    """Store the plan in the study's study.toml (``[plan]``, rewritten atomically; a plan made
    earlier is replaced and its creation time kept as ``replaces``)."""
    table = stored_plan(doc)
    old = study.meta.get("plan")
    if isinstance(old, dict) and old.get("created"):
        table["replaces"] = str(old["created"])
    study.update_meta(plan=table)


@dataclass
class GroupProgress:
    """One planned group: samples planned and read so far, falls, and the median CI now."""

    label: str
    planned: int
    read: int
    events: int
    median: float | None
    median_ci_width: float | None


@dataclass
class PlanProgress:
    """Readings done against a study's stored plan (``plan`` None: no plan stored)."""

    plan: dict[str, Any] | None
    groups: list[GroupProgress]
    readings_done: int
    readings_planned: int
    events_done: int
    events_planned: int

    @property
    def information(self) -> float | None:
        """Information fraction: falls so far over the falls the plan needs (at most 1)."""
        if not self.events_planned:
            return None
        return min(1.0, self.events_done / self.events_planned)

    @property
    def complete(self) -> bool:
        return bool(self.groups) and all(g.read >= g.planned for g in self.groups)

    def to_json(self) -> dict[str, Any]:
        return {"planned": self.plan is not None, "created": (self.plan or {}).get("created"),
                "unit": (self.plan or {}).get("unit"),
                "groups": [g.__dict__ for g in self.groups], "readings_done": self.readings_done,
                "readings_planned": self.readings_planned, "events_done": self.events_done,
                "events_planned": self.events_planned, "information": self.information, "complete": self.complete}


def progress(study: Any) -> PlanProgress:
    """Progress of ``study`` against its stored plan: per planned group the samples read (by
    the plan's annotators) and the median CI width now; readings and falls against the plan."""
    from lmread.analysis.observations import observations_from_study
    from lmread.analysis.survival import km, median
    from lmread.errors import StudyError

    plan = study.meta.get("plan")
    if not isinstance(plan, dict):
        return PlanProgress(None, [], 0, 0, 0, 0)
    unit = str(plan.get("unit", "tokens"))
    try:
        obs = observations_from_study(study, by=str(plan.get("by", "model")),
                                      annotator=str(plan.get("annotator", "all")))
    except (StudyError, OptionError):
        obs = None
    found: dict[str, tuple[int, int, float | None, float | None]] = {}
    if obs is not None:
        dur = obs.duration(unit)
        for k, g in enumerate(obs.groups):
            rows = obs.group_rows(k)
            med = median(km(dur[rows].astype(float), obs.event[rows]))
            width = None if med.ci_low is None or med.ci_high is None else float(med.ci_high - med.ci_low)
            found[g.label] = (len({obs.sample[i] for i in rows}), int(obs.event[rows].sum()), med.value, width)
    groups = []
    for label, planned in zip(plan.get("groups", []), plan.get("samples_per_group", []), strict=False):
        read, events, med_value, width = found.get(str(label), (0, 0, None, None))
        groups.append(GroupProgress(str(label), int(planned), read, events, med_value, width))
    return PlanProgress(plan, groups, len(obs) if obs is not None else 0, int(plan.get("readings", 0)),
                        sum(g.events for g in groups), int(plan.get("events", 0)))


def samples_read(obs: Any) -> dict[str, int]:
    """Distinct samples with a reading per group label of an observation table."""
    return {g.label: len({obs.sample[i] for i in obs.group_rows(k)}) for k, g in enumerate(obs.groups)}


def interim_lines(plan: dict[str, Any] | None, doc: dict[str, Any], read: dict[str, int] | None = None) -> list[str]:
    """Warnings for a survival document looked at before the plan's N: which groups are short
    (``read``: distinct samples read per group, else the document's observations), that repeated
    looks inflate the false-positive rate, and the O'Brien–Fleming boundary of a single interim
    look at the current information fraction."""
    if not isinstance(plan, dict):
        return []
    planned = dict(zip(plan.get("groups", []), plan.get("samples_per_group", []), strict=False))
    short = []
    events = 0
    for g in doc.get("groups", []):
        if g["label"] in planned:
            events += int(g.get("events", 0))
            n = (read or {}).get(g["label"], g["n"])
            if n < planned[g["label"]]:
                short.append(f"{g['label']} {n} of {planned[g['label']]}")
    if not short:
        return []
    need = int(plan.get("events", 0))
    alpha = float(plan.get("alpha", 0.05))
    t = min(1.0, events / need) if need else None
    bound = obf_boundary(t, alpha) if t else None
    line = (f"this look comes before the planned N ({', '.join(short)} samples; plan of {plan.get('created', '?')}): "
            "every look at a comparison before its planned N inflates the false-positive rate, so its p-values "
            f"are not at level {alpha:g}")
    if bound is not None and t is not None:
        line += (f"; O'Brien-Fleming (Lan-DeMets) boundary for a single planned interim look at information "
                 f"{t:.2f} ({events} of {need} falls): p < {bound:.2g}; lmread does not record earlier looks, so "
                 "for several looks it does not compute the boundary")
    else:
        line += "; no falls yet, so no O'Brien-Fleming boundary can be offered"
    return [line]
