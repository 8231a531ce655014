"""The :class:`Mark` event: one line of an annotator's marks file, with its checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from lmread.errors import MarkError, StudyError
from lmread.records.names import (
    MARK_KINDS,
    MARK_SCHEMA,
    MARK_SCHEMA_PROMPT,
    check_annotator,
    check_category,
    new_mark_id,
    schema_version,
    utc_now,
)

# --------------------------------------------------------------------------------------------
# Marks


@dataclass(slots=True)
class Mark:
    """One event in an annotator's marks file.

    ``kind`` is ``fall`` (the text falls at token ``at``), ``no_fall`` (read to token ``read_to``
    without a fall: censored there), ``skip`` (contributes nothing), ``undo`` (withdraws mark
    ``undoes``) or ``prompt_fall``: the reader put the fall inside the sample's prompt, at
    character ``prompt_at`` of ``prompt.text``, where the prompt is human-written text the reader
    saw as the passage's beginning (imported RoFT-style passages, see :mod:`lmread.importer`).  A
    prompt fall is an early mark: it never enters a model curve (the survival filters count it)
    and calibration scores it as a guess before the boundary.  It is written with schema
    ``lmread.mark/2``; every other mark stays ``lmread.mark/1``.  ``read_to`` counts tokens read;
    ``revealed`` counts tokens shown.
    """

    sample: str
    annotator: str
    kind: str
    at: int | None = None
    read_to: int | None = None
    category: str | None = None
    severity: int | None = None
    note: str | None = None
    undoes: str | None = None
    revealed: int | None = None
    elapsed_s: float | None = None
    client: str = "cli"
    queue_pos: int | None = None
    #: tokens the reader revealed ahead of the reading pace (written by the reader)
    forced: int | None = None
    id: str = field(default_factory=new_mark_id)
    time: str = field(default_factory=utc_now)
    #: machine readers only: ``{"name", "version", "params"}`` of the detector that wrote the mark
    detector: dict[str, Any] | None = None
    #: ``prompt_fall`` marks only: the character of ``prompt.text`` where the reader put the fall
    prompt_at: int | None = None

    def validate(self) -> Mark:
        """Raise :class:`MarkError` unless the mark is self-consistent; return it."""
        check_annotator(self.annotator)
        if self.kind not in MARK_KINDS:
            raise MarkError(f"unknown mark kind {self.kind!r}: use one of {', '.join(MARK_KINDS)}")
        if self.kind == "fall" and (not isinstance(self.at, int) or self.at < 0):
            raise MarkError("a fall mark needs a token index --at >= 0")
        if self.kind == "no_fall" and (not isinstance(self.read_to, int) or self.read_to < 0):
            raise MarkError("a no-fall mark needs --read-to TOKENS (how many tokens were read)")
        if self.kind == "undo" and not self.undoes:
            raise MarkError("an undo event needs the id of the mark it withdraws")
        if self.kind == "prompt_fall" and (not isinstance(self.prompt_at, int) or isinstance(self.prompt_at, bool)
                                           or self.prompt_at < 0 or self.at is not None):
            raise MarkError("a prompt_fall mark needs a character index prompt_at >= 0 in the prompt (and no --at)")
        if self.kind != "prompt_fall" and self.prompt_at is not None:
            raise MarkError("prompt_at belongs to a prompt_fall mark only")
        self.category = check_category(self.category)
        if self.category is not None and self.kind not in ("fall", "prompt_fall"):
            raise MarkError("a category belongs to a fall mark only")
        if self.severity is not None and self.severity not in (1, 2, 3):
            raise MarkError(f"severity must be 1, 2 or 3, not {self.severity!r}")
        if self.queue_pos is not None and (not isinstance(self.queue_pos, int) or isinstance(self.queue_pos, bool)
                                           or self.queue_pos < 0):
            raise MarkError(f"queue_pos must be a whole number >= 0, not {self.queue_pos!r}")
        if self.forced is not None and (not isinstance(self.forced, int) or isinstance(self.forced, bool)
                                        or self.forced < 0):
            raise MarkError(f"forced must be a whole number >= 0, not {self.forced!r}")
        if self.note is not None and ("\n" in self.note or len(self.note) > 4000):
            self.note = " ".join(self.note.split())[:4000]
        if self.detector is not None and not (
            isinstance(self.detector, dict) and isinstance(self.detector.get("name"), str)
            and isinstance(self.detector.get("version"), str) and isinstance(self.detector.get("params"), dict)
        ):
            raise MarkError("a mark's detector must be {name: str, version: str, params: object}")
        return self

    def to_json(self) -> dict[str, Any]:
        schema = MARK_SCHEMA_PROMPT if self.kind == "prompt_fall" else MARK_SCHEMA
        out: dict[str, Any] = {"schema": schema, "id": self.id, "kind": self.kind}
        for key in ("sample", "annotator", "time", "at", "read_to", "category", "severity",
                    "note", "undoes", "revealed", "elapsed_s", "client", "queue_pos", "forced", "detector",
                    "prompt_at"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    def dumps(self) -> bytes:
        return orjson.dumps(self.to_json()) + b"\n"

    @classmethod
    def from_json(cls, data: Any, where: str) -> Mark:
        version = schema_version(data, MARK_SCHEMA_PROMPT, where)
        if version < 2 and data.get("kind") == "prompt_fall":
            raise StudyError(f"{where}: a prompt_fall mark needs schema {MARK_SCHEMA_PROMPT}")
        try:
            mark = cls(
                id=str(data["id"]),
                kind=str(data["kind"]),
                sample=str(data["sample"]),
                annotator=str(data["annotator"]),
                time=str(data["time"]),
                at=data.get("at"),
                read_to=data.get("read_to"),
                category=data.get("category"),
                severity=data.get("severity"),
                note=data.get("note"),
                undoes=data.get("undoes"),
                revealed=data.get("revealed"),
                elapsed_s=data.get("elapsed_s"),
                client=str(data.get("client", "cli")),
                queue_pos=data.get("queue_pos"),
                forced=data.get("forced"),
                detector=data.get("detector"),
                prompt_at=data.get("prompt_at"),
            )
        except (KeyError, TypeError) as exc:
            raise StudyError(f"{where}: malformed mark ({exc!r})") from None
        try:
            return mark.validate()
        except MarkError as exc:
            raise StudyError(f"{where}: {exc}") from None
