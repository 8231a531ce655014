"""A study folder on disk: append-only, crash-safe.

Layout::

    STUDY/
      study.toml            name, creation time, reading-order seed, settings (written atomically)
      samples.jsonl         one sample per line (lmread.sample/1)
      marks/NAME.jsonl      one append-only event file per annotator (lmread.mark/1)
      readers.jsonl         optional: reader metadata from imports (lmread.reader/1)

Files are written only through :mod:`lmread.storage` (locked fsynced appends of whole lines,
atomic whole-file writes); loading tolerates a torn last line (see there).
"""

from __future__ import annotations

import random
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from lmread import __version__
from lmread.errors import MarkError, MergeConflict, StudyError
from lmread.records import (
    MACHINE_PREFIX,
    STUDY_SCHEMA,
    Mark,
    Sample,
    check_annotator,
    check_person,
    is_machine,
    schema_version,
    utc_now,
    without_top_k,
)
from lmread.storage import JsonlReader, append_lines, write_atomic
from lmread.study.order import reading_order

SAMPLES_FILE = "samples.jsonl"
MARKS_DIR = "marks"
META_FILE = "study.toml"
#: what imports know about their readers (lmread.reader/1, see lmread.importer), merged line by line
READERS_FILE = "readers.jsonl"



@dataclass
class MarkState:
    """The effective state of marks: events applied in order, undos withdrawn."""

    events: list[Mark] = field(default_factory=list)
    undone: set[str] = field(default_factory=set)

    def current(self) -> dict[tuple[str, str], Mark]:
        """The latest standing mark (fall / no_fall / skip) per (annotator, sample)."""
        out: dict[tuple[str, str], Mark] = {}
        for mark in self.events:
            if mark.kind == "undo" or mark.id in self.undone:
                continue
            out[(mark.annotator, mark.sample)] = mark
        return out


class Study:
    """A study folder.  Open with :meth:`open` (existing) or :meth:`create`.

    Samples and marks are read lazily and incrementally; call :meth:`refresh` to pick up what
    other processes appended.  ``top_k=False`` reads samples without their top-k alternatives
    (``tokens.top_*`` are ``None``), several times faster, for analyses that do not need them.
    """

    def __init__(self, path: Path, meta: dict[str, Any], top_k: bool = True) -> None:
        self.path = path
        self.meta = meta
        self._samples: dict[str, Sample] = {}
        self._sample_reader = JsonlReader(path / SAMPLES_FILE, prepare=None if top_k else without_top_k)
        self._mark_readers: dict[str, JsonlReader] = {}
        self._marks = MarkState()
        self._mark_ids: set[str] = set()
        self._loaded = False

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, name: str | None = None, shuffle_seed: int | None = None) -> Study:
        """Create the study folder (or open it if it already is one)."""
        path = Path(path)
        if (path / META_FILE).exists():
            return cls.open(path)
        if path.exists() and not path.is_dir():
            raise StudyError(f"{path} exists and is not a folder; choose another study path")
        try:
            (path / MARKS_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StudyError(f"cannot create study folder {path}: {exc.strerror}") from None
        seed = random.SystemRandom().randrange(2**31) if shuffle_seed is None else int(shuffle_seed)
        meta = {
            "schema": STUDY_SCHEMA,
            "name": name or path.name,
            "created": utc_now(),
            "lmread_version": __version__,
            "shuffle_seed": seed,
        }
        write_atomic(path / META_FILE, _toml_dumps(meta).encode("utf-8"))
        return cls(path, meta)

    @classmethod
    def open(cls, path: str | Path, top_k: bool = True) -> Study:
        """Open an existing study; raises :class:`StudyError` naming what is wrong."""
        path = Path(path)
        meta_path = path / META_FILE
        if not path.is_dir():
            raise StudyError(f"study folder {path} does not exist; create it with 'lmread import' or 'lmread generate'")
        if not meta_path.exists():
            raise StudyError(f"{path} is not a study folder (no {META_FILE})")
        try:
            meta = tomllib.loads(meta_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise StudyError(f"{meta_path} is corrupt ({exc}); restore it from a copy") from None
        except OSError as exc:
            raise StudyError(f"cannot read {meta_path}: {exc.strerror}") from None
        schema_version(meta, STUDY_SCHEMA, str(meta_path))
        return cls(path, meta, top_k=top_k)

    @classmethod
    def open_or_create(cls, path: str | Path) -> Study:
        path = Path(path)
        return cls.open(path) if (path / META_FILE).exists() else cls.create(path)

    # -- reading -----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.path.name))

    @property
    def shuffle_seed(self) -> int:
        return int(self.meta.get("shuffle_seed", 0))

    @property
    def warnings(self) -> list[str]:
        out = list(self._sample_reader.warnings)
        for reader in self._mark_readers.values():
            out.extend(reader.warnings)
        return out

    def refresh(self) -> None:
        """Read whatever was appended to the samples and marks files since the last read."""
        self._sample_reader.warnings.clear()
        for line_no, record in self._sample_reader.read_new():
            sample = Sample.from_json(record, f"{self._sample_reader.path}: line {line_no}")
            self._samples.setdefault(sample.id, sample)
        marks_dir = self.path / MARKS_DIR
        if marks_dir.is_dir():
            for file in sorted(marks_dir.glob("*.jsonl")):
                annotator = file.stem
                reader = self._mark_readers.get(annotator)
                if reader is None:
                    reader = self._mark_readers[annotator] = JsonlReader(file)
                reader.warnings.clear()
                for line_no, record in reader.read_new():
                    where = f"{file}: line {line_no}"
                    mark = Mark.from_json(record, where)
                    if mark.annotator != annotator:
                        raise StudyError(f"{where}: mark by {mark.annotator!r} in {annotator!r}'s file")
                    self._add_mark_event(mark)
        self._loaded = True

    def _ensure(self) -> None:
        if not self._loaded:
            self.refresh()

    def _add_mark_event(self, mark: Mark) -> None:
        if mark.id in self._mark_ids:
            return
        self._mark_ids.add(mark.id)
        self._marks.events.append(mark)
        if mark.kind == "undo" and mark.undoes:
            self._marks.undone.add(mark.undoes)

    @property
    def samples(self) -> dict[str, Sample]:
        """All samples by id, in file order."""
        self._ensure()
        return self._samples

    def sample(self, sample_id: str) -> Sample:
        """The sample with this id (a unique prefix is accepted), or :class:`MarkError`."""
        self._ensure()
        if sample_id in self._samples:
            return self._samples[sample_id]
        hits = [sid for sid in self._samples if sid.startswith(sample_id)] if sample_id else []
        if len(hits) == 1:
            return self._samples[hits[0]]
        raise MarkError(
            f"no sample {sample_id!r} in study {self.path}"
            + (" (ambiguous prefix)" if len(hits) > 1 else "; see 'lmread study info'")
        )

    def marks(self, annotator: str | None = None) -> list[Mark]:
        """Every mark event (including undos), optionally of one annotator, in file order."""
        self._ensure()
        return [m for m in self._marks.events if annotator is None or m.annotator == annotator]

    def current_marks(self, annotator: str | None = None) -> dict[tuple[str, str], Mark]:
        """Standing marks per (annotator, sample): undone marks withdrawn, latest wins."""
        self._ensure()
        cur = self._marks.current()
        if annotator is None:
            return cur
        return {key: m for key, m in cur.items() if key[0] == annotator}

    def annotators(self) -> list[str]:
        self._ensure()
        return sorted(self._mark_readers)

    def reading_order(self, annotator: str | None = None, overlap: float | None = None) -> list[str]:
        """Sample ids interleaved across models in an order shuffled with the study's seed.

        Human controls not picked into the queue are left out; with an overlap share (``overlap``,
        else the study's ``overlap`` setting) see :func:`lmread.study.order.reading_order`.
        """
        return reading_order(self, annotator, overlap)

    def update_meta(self, **fields: Any) -> None:
        """Set ``fields`` in study.toml (rewritten atomically; the other fields are kept)."""
        meta = {**self.meta, **fields}
        write_atomic(self.path / META_FILE, _toml_dumps(meta).encode("utf-8"))
        self.meta = meta

    # -- writing -----------------------------------------------------------------------------

    def add_samples(self, samples: Iterable[Sample]) -> list[Sample]:
        """Append samples whose ids are new, all in one write; returns those written.

        A sample whose id is already present with the same text and tokens is skipped; with
        different content it is a :class:`MergeConflict` and nothing is written.
        """
        self.refresh()
        new: list[Sample] = []
        seen: set[str] = set()
        for sample in samples:
            old = self._samples.get(sample.id)
            if old is not None:
                if not same_content(old, sample):
                    raise MergeConflict(f"sample {sample.id} already exists with different content")
                continue
            if sample.id in seen:
                continue
            seen.add(sample.id)
            new.append(sample)
        if new:
            append_lines(self.path / SAMPLES_FILE, b"".join(s.dumps() for s in new))
            self.refresh()
        return new

    def add_sample(self, sample: Sample) -> bool:
        """Append one sample; False if it was already there."""
        return bool(self.add_samples([sample]))

    def check_mark(self, mark: Mark) -> Mark:
        """Validate ``mark`` against this study (sample exists, indexes inside it)."""
        mark.validate()
        if mark.kind == "undo":
            target = next((m for m in self.marks(mark.annotator) if m.id == mark.undoes), None)
            if target is None:
                raise MarkError(f"no mark {mark.undoes!r} by {mark.annotator!r} to undo")
            mark.sample = target.sample
            return mark
        sample = self.sample(mark.sample)
        mark.sample = sample.id
        n = sample.n_tokens
        if mark.at is not None and not 0 <= mark.at < n:
            raise MarkError(f"token index {mark.at} is outside sample {sample.id} (it has {n} tokens: 0..{n - 1})")
        if mark.read_to is not None and not 0 <= mark.read_to <= n:
            raise MarkError(f"--read-to {mark.read_to} is outside sample {sample.id} (it has {n} tokens)")
        if mark.prompt_at is not None and not 0 <= mark.prompt_at < len(str(sample.prompt.get("text") or "")):
            raise MarkError(f"prompt character {mark.prompt_at} is outside the prompt of sample {sample.id}")
        if mark.kind == "fall" and mark.read_to is not None and mark.read_to <= mark.at:  # type: ignore[operator]
            mark.read_to = mark.at + 1  # type: ignore[operator]
        return mark

    def append_mark(self, mark: Mark, *, machine: bool = False) -> Mark:
        """Validate, append with one write + fsync, and return the mark once it is on disk.

        A person's mark (the default) may not use a machine reader's ``auto-`` name; a machine
        reader (``machine=True``) must use one.
        """
        _check_writer(mark.annotator, machine)
        self.refresh()
        self.check_mark(mark)
        (self.path / MARKS_DIR).mkdir(exist_ok=True)
        append_lines(self.path / MARKS_DIR / f"{mark.annotator}.jsonl", mark.dumps())
        self._mark_readers.setdefault(mark.annotator, JsonlReader(self.path / MARKS_DIR / f"{mark.annotator}.jsonl"))
        self.refresh()
        return mark

    def append_marks(self, marks: list[Mark]) -> list[Mark]:
        """Validate every mark, then append them with one write per annotator file (an import).

        Nothing is written when any mark is invalid or its id is already in the study."""
        self.refresh()
        by_annotator: dict[str, list[Mark]] = {}
        for mark in marks:
            if mark.kind == "undo":
                raise MarkError("undo events are appended one at a time (Study.undo)")
            self.check_mark(mark)
            if mark.id in self._mark_ids:
                raise MergeConflict(f"mark {mark.id} is already in the study")
            by_annotator.setdefault(mark.annotator, []).append(mark)
        (self.path / MARKS_DIR).mkdir(exist_ok=True)
        for annotator, own in by_annotator.items():
            file = self.path / MARKS_DIR / f"{annotator}.jsonl"
            append_lines(file, b"".join(m.dumps() for m in own))
            self._mark_readers.setdefault(annotator, JsonlReader(file))
        self.refresh()
        return marks

    def undo(self, annotator: str, mark_id: str | None = None, sample: str | None = None, *,
             machine: bool = False) -> Mark:
        """Withdraw ``mark_id``, or the annotator's latest standing mark (on ``sample`` if given),
        by appending an undo event.  Returns the undo event.  ``machine``: as in :meth:`append_mark`."""
        _check_writer(annotator, machine)
        self.refresh()
        if mark_id is None:
            sample_id = self.sample(sample).id if sample else None
            standing = [
                m for m in self.marks(annotator)
                if m.kind != "undo" and m.id not in self._marks.undone and (sample_id is None or m.sample == sample_id)
            ]
            if not standing:
                raise MarkError(f"annotator {annotator!r} has no mark to undo" + (f" on {sample}" if sample else ""))
            mark_id = standing[-1].id
        elif mark_id in self._marks.undone:
            raise MarkError(f"mark {mark_id} is already undone")
        return self.append_mark(Mark(sample="", annotator=annotator, kind="undo", undoes=mark_id), machine=machine)


    # -- summaries ---------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Counts per model and per annotator (samples, marked, fallen, censored, skipped)."""
        samples = self.samples
        per_model: dict[str, dict[str, Any]] = {}
        controls: Counter[str] = Counter()
        for s in samples.values():
            if s.control is not None:  # controls are no model's samples
                controls[str(s.control["kind"])] += 1
                continue
            entry = per_model.setdefault(
                s.model_id, {"model": s.model_id, "n_params": s.model.get("n_params"), "samples": 0, "tokens": 0}
            )
            entry["samples"] += 1
            entry["tokens"] += s.n_tokens
        per_annotator: dict[str, Counter[str]] = defaultdict(Counter)
        marked_samples: set[str] = set()
        for (annotator, sid), mark in self.current_marks().items():
            if sid not in samples:
                continue
            counts = per_annotator[annotator]
            counts["marked"] += 1
            counts[{"fall": "fallen", "no_fall": "censored", "skip": "skipped", "prompt_fall": "fallen"}[mark.kind]] += 1
            if mark.kind != "skip":
                marked_samples.add(sid)
            model = samples[sid].model_id
            if samples[sid].control is not None:
                continue
            per_model[model].setdefault("marked", 0)
            per_model[model]["marked"] += 1 if mark.kind != "skip" else 0
        for entry in per_model.values():
            entry.setdefault("marked", 0)
        return {
            "study": str(self.path),
            "name": self.name,
            "samples": len(samples),
            "marked_samples": len(marked_samples),
            "models": sorted(per_model.values(), key=lambda e: (e["n_params"] or 0, e["model"])),
            **({"controls": dict(sorted(controls.items()))} if controls else {}),
            "annotators": [
                {"annotator": a, "marked": c["marked"], "fallen": c["fallen"], "censored": c["censored"],
                 "skipped": c["skipped"], "events": len(self.marks(a))}
                for a, c in sorted(per_annotator.items())
            ] + [
                {"annotator": a, "marked": 0, "fallen": 0, "censored": 0, "skipped": 0, "events": len(self.marks(a))}
                for a in self.annotators() if a not in per_annotator
            ],
            "warnings": self.warnings,
        }


def same_content(a: Sample, b: Sample) -> bool:
    """Whether two samples with one id hold the same generation (times may differ)."""
    return a.text == b.text and a.tokens.ids == b.tokens.ids and a.tokens.offsets == b.tokens.offsets


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return orjson.dumps(value).decode("utf-8")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_dumps(data: dict[str, Any]) -> str:
    """A minimal TOML writer for flat tables of scalars and lists (enough for study.toml)."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in data.items() if not isinstance(value, dict)]
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
    return "\n".join(lines) + "\n"


def _check_writer(annotator: str, machine: bool) -> None:
    """A person may not write under a machine reader's ``auto-`` name, nor a machine reader
    under any other name (one-line :class:`MarkError`)."""
    if not machine:
        check_person(annotator)
    elif not (check_annotator(annotator) and is_machine(annotator)):
        raise MarkError(f"machine reader {annotator!r}: machine readers write under names starting {MACHINE_PREFIX!r}")
