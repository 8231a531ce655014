"""Merging study folders: the union of samples and marks by id, conflicts reported, nothing guessed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmread.records import Mark, Sample
from lmread.storage import append_lines
from lmread.study.folder import MARKS_DIR, META_FILE, READERS_FILE, SAMPLES_FILE, Study, same_content


@dataclass
class MergeReport:
    """What a merge added, or the conflicts that stopped it."""

    samples_added: int = 0
    marks_added: int = 0
    conflicts: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"samples_added": self.samples_added, "marks_added": self.marks_added, "conflicts": self.conflicts}


def merge_studies(sources: list[Path], dest: Path, dry_run: bool = False) -> MergeReport:
    """Union samples and marks of ``sources`` into ``dest`` by id.

    Conflicts (one id, different content) are collected first; if there are any, nothing is
    written and the report lists them all.
    """
    report = MergeReport()
    target = Study.open_or_create(dest) if not dry_run else (Study.open(dest) if (dest / META_FILE).exists() else None)
    have_samples: dict[str, Sample] = dict(target.samples) if target else {}
    have_marks: dict[str, Mark] = {m.id: m for m in target.marks()} if target else {}
    new_samples: list[Sample] = []
    new_marks: dict[str, list[Mark]] = defaultdict(list)
    for src_path in sources:
        src = Study.open(src_path)
        for sid, sample in src.samples.items():
            old = have_samples.get(sid)
            if old is None:
                have_samples[sid] = sample
                new_samples.append(sample)
            elif not same_content(old, sample):
                report.conflicts.append(f"sample {sid}: different content in {src_path}")
        for mark in src.marks():
            old_mark = have_marks.get(mark.id)
            if old_mark is None:
                have_marks[mark.id] = mark
                new_marks[mark.annotator].append(mark)
            elif old_mark.to_json() != mark.to_json():
                report.conflicts.append(f"mark {mark.id}: different content in {src_path}")
    for marks in new_marks.values():
        for mark in marks:
            if mark.kind != "undo" and mark.sample not in have_samples:
                report.conflicts.append(f"mark {mark.id}: its sample {mark.sample} is in no study")
    if report.conflicts:
        return report
    # a dry run reports the same counts the real merge would add, then writes nothing
    report.samples_added = len(new_samples)
    report.marks_added = sum(len(marks) for marks in new_marks.values())
    if dry_run or target is None:
        return report
    if new_samples:
        append_lines(target.path / SAMPLES_FILE, b"".join(s.dumps() for s in new_samples))
    (target.path / MARKS_DIR).mkdir(exist_ok=True)
    for annotator, marks in new_marks.items():
        append_lines(target.path / MARKS_DIR / f"{annotator}.jsonl", b"".join(m.dumps() for m in marks))
    _merge_readers(sources, target.path)
    return report


def _merge_readers(sources: list[Path], dest: Path) -> None:
    """Append the sources' reader records (``readers.jsonl``) that ``dest`` lacks, line by line."""
    have = set((dest / READERS_FILE).read_bytes().splitlines()) if (dest / READERS_FILE).exists() else set()
    new: list[bytes] = []
    for src in sources:
        path = src / READERS_FILE
        for line in path.read_bytes().splitlines() if path.exists() else []:
            if line.strip() and line not in have:
                have.add(line)
                new.append(line + b"\n")
    if new:
        append_lines(dest / READERS_FILE, b"".join(new))
