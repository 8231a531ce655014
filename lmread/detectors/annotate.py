"""Run detectors over a study and write their findings as ordinary mark events.

Each detector writes as the annotator ``auto-<name>`` (``marks/auto-<name>.jsonl``), one mark
per sample, carrying ``detector = {name, version, params}`` with every parameter it ran with:

* a fall found at token ``i``: a ``fall`` mark ``at = i`` with the detector's category and a
  note saying what it saw (no severity: a machine does not rate how bad a fall is);
* no fall found: a ``no_fall`` mark censored at the sample's length (the machine read it all);
* a sample the detector cannot read (``improbable-run`` on text without distributions): a
  ``skip`` mark with a note.

Re-running is idempotent: a sample whose standing mark by that annotator came from the same
detector, version and parameters is left alone.  With other parameters (or a newer version) a
new mark is appended, which supersedes the old one (the latest standing mark counts, as for
humans); nothing is ever edited.

Control samples (issue 10: samples with a ``control`` field) are read like any other sample:
the machine readers' marks on controls are their calibration, the same as a human's.  Controls
never enter model curves, so this costs nothing there.

All marks of one annotator are written with one locked, fsynced append after every sample has
been read, so an error leaves nothing half-written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lmread.detectors import annotator_name
from lmread.detectors.base import Detector, SampleView
from lmread.records import Mark
from lmread.storage import append_lines
from lmread.study import MARKS_DIR, Study


@dataclass
class DetectorReport:
    """Counts of one detector's run."""

    detector: str
    annotator: str
    version: str
    params: dict[str, Any]
    falls: int = 0
    no_falls: int = 0
    skips: int = 0
    unchanged: int = 0

    @property
    def added(self) -> int:
        return self.falls + self.no_falls + self.skips

    def to_json(self) -> dict[str, Any]:
        return {"detector": self.detector, "annotator": self.annotator, "version": self.version,
                "params": self.params, "added": self.added, "falls": self.falls, "no_falls": self.no_falls,
                "skips": self.skips, "unchanged": self.unchanged}


@dataclass
class AnnotateReport:
    study: str
    samples: int
    detectors: list[DetectorReport] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"study": self.study, "samples": self.samples, "detectors": [d.to_json() for d in self.detectors]}


def annotate(study: Study, specs: list[tuple[Detector, dict[str, Any]]]) -> AnnotateReport:
    """Run each ``(detector, params)`` over every sample of ``study`` and append the new marks."""
    study.refresh()
    current = study.current_marks()
    samples = list(study.samples.values())
    report = AnnotateReport(str(study.path), len(samples))
    pending: list[tuple[str, list[Mark]]] = []
    runs: list[tuple[Detector, dict[str, Any], str, dict[str, Any], DetectorReport, list[Mark]]] = []
    for det, params in specs:
        who = annotator_name(det)
        meta = {"name": det.name, "version": det.version, "params": dict(params)}
        runs.append((det, params, who, meta, DetectorReport(det.name, who, det.version, dict(params)), []))
    for sample in samples:
        view = SampleView(sample)
        for det, params, who, meta, rep, marks in runs:
            old = current.get((who, sample.id))
            if old is not None and old.detector == meta:
                rep.unchanged += 1
                continue
            found = det.detect(view, params)
            n = sample.n_tokens
            if found.skip:
                mark = Mark(sample=sample.id, annotator=who, kind="skip", note=found.note)
                rep.skips += 1
            elif found.at is None:
                mark = Mark(sample=sample.id, annotator=who, kind="no_fall", read_to=n)
                rep.no_falls += 1
            else:
                mark = Mark(sample=sample.id, annotator=who, kind="fall", at=found.at, read_to=n,
                            category=found.category, note=found.note)
                rep.falls += 1
            mark.revealed = n
            mark.client = "annotate"
            mark.detector = meta
            marks.append(study.check_mark(mark))
    for _, _, who, _, rep, marks in runs:
        report.detectors.append(rep)
        if marks:
            pending.append((who, marks))
    if pending:
        (study.path / MARKS_DIR).mkdir(exist_ok=True)
        for who, marks in pending:
            append_lines(study.path / MARKS_DIR / f"{who}.jsonl", b"".join(m.dumps() for m in marks))
        study.refresh()
    return report
