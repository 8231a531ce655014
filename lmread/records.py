"""The data model: samples with their token arrays, mark events, and their JSON codec.

Every record carries a ``schema`` field ``"lmread.<kind>/<version>"``.  Readers accept any version
up to the one they know and refuse newer ones with :class:`SchemaVersionError`.

Token spans follow one rule: a character belongs to the token that holds its *last* byte.  So a
token that only starts a multi-byte character has an empty span, and the token that completes it
carries the whole character.  ``offsets`` has ``n + 1`` entries; token ``i`` spans
``text[offsets[i]:offsets[i + 1]]`` and the spans tile the text exactly.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from lmread.errors import MarkError, SchemaVersionError, StudyError

SAMPLE_SCHEMA = "lmread.sample/1"
#: schema of a control sample (a sample with a ``control`` field); ordinary samples stay at /1
SAMPLE_SCHEMA_CONTROL = "lmread.sample/2"
MARK_SCHEMA = "lmread.mark/1"
#: schema of a ``prompt_fall`` mark (a fall marked in the human-written prompt); other marks stay at /1
MARK_SCHEMA_PROMPT = "lmread.mark/2"
STUDY_SCHEMA = "lmread.study/1"
SURVIVAL_SCHEMA = "lmread.survival/1"

#: Failure categories of a fall mark: (key, label), in the order of the reader's number keys 1..9, 0.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("repetition", "repetition / loop"),
    ("contradiction", "self-contradiction"),
    ("drift", "off-prompt drift"),
    ("register", "genre / register switch"),
    ("incoherent", "incoherent"),
    ("factual", "factual error"),
    ("commonsense", "commonsense"),
    ("grammar", "grammar / usage"),
    ("logic", "bad math / logic"),
    ("other", "other"),
)
CATEGORY_KEYS = tuple(key for key, _ in CATEGORIES)

MARK_KINDS = ("fall", "no_fall", "skip", "undo", "prompt_fall")

#: kinds of control samples (known answer): splice and loop fall at a known token, human never falls
CONTROL_KINDS = ("splice", "loop", "human")
#: the failure category of each control kind's known fall (None: the right answer is no fall)
CONTROL_CATEGORY: dict[str, str | None] = {"splice": "drift", "loop": "repetition", "human": None}
#: annotator names of machine readers (detectors, judges) start with this, e.g. auto-repetition;
#: only they may write under such a name (see :func:`check_person`)
MACHINE_PREFIX = "auto-"

_ANNOTATOR_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string with microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def schema_version(record: Any, expected: str, where: str) -> int:
    """Check that ``record['schema']`` names ``expected``'s kind and a version this lmread knows.

    Returns the version number; raises :class:`StudyError` or :class:`SchemaVersionError`.
    """
    if not isinstance(record, dict):
        raise StudyError(f"{where}: expected a JSON object, found {type(record).__name__}")
    value = record.get("schema")
    kind, _, known = expected.rpartition("/")
    if not isinstance(value, str) or "/" not in value:
        raise StudyError(f"{where}: missing or malformed 'schema' field (expected {expected})")
    got_kind, _, got_version = value.rpartition("/")
    if got_kind != kind or not got_version.isdigit():
        raise StudyError(f"{where}: schema is {value!r}, expected {expected}")
    if int(got_version) > int(known):
        raise SchemaVersionError(
            f"{where}: written with schema {value}, newer than this lmread knows ({expected}); "
            "upgrade lmread to read it"
        )
    return int(got_version)


def check_annotator(name: str) -> str:
    """Return ``name`` if it is a safe annotator name (it becomes a file name), else raise."""
    if not isinstance(name, str) or not _ANNOTATOR_RE.match(name) or name in {".", ".."}:
        raise MarkError(
            f"annotator name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def is_machine(annotator: str) -> bool:
    """Whether ``annotator`` names a machine reader (``auto-<detector>``, ``auto-<judge>``)."""
    return annotator.startswith(MACHINE_PREFIX)


def check_person(name: str, source: str = "annotator name") -> str:
    """Return ``name`` if a person may mark under it, else raise a one-line :class:`MarkError`.

    The name must be a valid annotator name (:func:`check_annotator`) and must not start with
    :data:`MACHINE_PREFIX`: those names belong to machine readers, whose marks are compared with
    people's as a separate reader.  ``source`` says where the name came from (``--annotator``,
    ``LMREAD_ANNOTATOR``, ...) for the message.
    """
    check_annotator(name)
    if is_machine(name):
        raise MarkError(
            f"{source} {name!r} is reserved: names starting {MACHINE_PREFIX!r} belong to machine readers "
            "(lmread annotate); choose another name"
        )
    return name


def check_category(category: str | None) -> str | None:
    """Return a valid category key (accepting labels and case variants), or raise MarkError."""
    if category is None:
        return None
    key = category.strip().lower()
    for k, label in CATEGORIES:
        if key in {k, label.lower()}:
            return k
    raise MarkError(f"unknown category {category!r}: use one of {', '.join(CATEGORY_KEYS)}")


def stable_id(prefix: str, *parts: Any) -> str:
    """A short content hash of ``parts`` (JSON-encoded with sorted keys), e.g. ``s_3f2a...``."""
    blob = orjson.dumps(list(parts), option=orjson.OPT_SORT_KEYS)
    return prefix + hashlib.sha256(blob).hexdigest()[:20]


def new_mark_id() -> str:
    """A unique mark id (random, so two annotators never collide)."""
    return "m_" + uuid.uuid4().hex


# --------------------------------------------------------------------------------------------
# Tokens


@dataclass
class Tokens:
    """Parallel per-token arrays of one sample.

    ``logprob``/``rank``/``entropy``/``top_*`` are ``None`` as a whole when the source gave no
    distribution (imported text), and hold ``None`` entries for single tokens without one.
    """

    ids: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=lambda: [0])
    nbytes: list[int] = field(default_factory=list)
    logprob: list[float | None] | None = None
    rank: list[int | None] | None = None
    entropy: list[float | None] | None = None
    top_ids: list[list[int]] | None = None
    top_logprobs: list[list[float]] | None = None
    top_pieces: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ids": self.ids, "offsets": self.offsets, "bytes": self.nbytes}
        out["logprob"] = self.logprob
        out["rank"] = self.rank
        out["entropy"] = self.entropy
        out["top"] = (
            None
            if self.top_ids is None
            else {"ids": self.top_ids, "logprobs": self.top_logprobs, "pieces": self.top_pieces}
        )
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> Tokens:
        if not isinstance(data, dict):
            raise StudyError(f"{where}: 'tokens' must be an object")
        try:
            top = data.get("top")
            toks = cls(
                ids=list(data["ids"]),
                offsets=list(data["offsets"]),
                nbytes=list(data["bytes"]),
                logprob=data.get("logprob"),
                rank=data.get("rank"),
                entropy=data.get("entropy"),
                top_ids=top["ids"] if top else None,
                top_logprobs=top["logprobs"] if top else None,
                top_pieces=top["pieces"] if top else None,
            )
        except (KeyError, TypeError) as exc:
            raise StudyError(f"{where}: malformed 'tokens' ({exc})") from None
        n = len(toks.ids)
        if len(toks.offsets) != n + 1 or len(toks.nbytes) != n:
            raise StudyError(f"{where}: token arrays have inconsistent lengths")
        for name in ("logprob", "rank", "entropy", "top_ids", "top_logprobs", "top_pieces"):
            arr = getattr(toks, name)
            if arr is not None and len(arr) != n:
                raise StudyError(f"{where}: token array {name!r} has {len(arr)} entries, not {n}")
        return toks


class TokenAssembler:
    """Accumulate raw token bytes into exact text and per-token arrays, decoding incrementally.

    Feed tokens with :meth:`add`; each call returns the text that token completed (possibly empty
    when it only starts a multi-byte character).  :meth:`finish` flushes incomplete trailing bytes
    (as U+FFFD, keeping the raw bytes in ``raw``) and returns the :class:`Tokens` and the text.
    """

    def __init__(self, with_distribution: bool = True) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parts: list[str] = []
        self._raw: list[bytes] = []
        self._length = 0
        self.tokens = Tokens()
        if with_distribution:
            self.tokens.logprob = []
            self.tokens.rank = []
            self.tokens.entropy = []
            self.tokens.top_ids = []
            self.tokens.top_logprobs = []
            self.tokens.top_pieces = []
        self._finished = False

    def __len__(self) -> int:
        return len(self.tokens.ids)

    @property
    def text_length(self) -> int:
        """Characters decoded so far."""
        return self._length

    @property
    def text(self) -> str:
        """The text decoded so far (complete characters only)."""
        if len(self._parts) > 1:
            self._parts[:] = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def add(
        self,
        token_id: int,
        piece: bytes,
        logprob: float | None = None,
        rank: int | None = None,
        entropy: float | None = None,
        top_ids: list[int] | None = None,
        top_logprobs: list[float] | None = None,
        top_pieces: list[bytes] | None = None,
    ) -> str:
        """Append one token; return the characters it completed."""
        if self._finished:
            raise RuntimeError("TokenAssembler.add after finish")
        text = self._decoder.decode(piece)
        toks = self.tokens
        toks.ids.append(int(token_id))
        toks.nbytes.append(len(piece))
        self._raw.append(piece)
        if text:
            self._parts.append(text)
            self._length += len(text)
        toks.offsets.append(self._length)
        if toks.logprob is not None:
            toks.logprob.append(None if logprob is None else float(logprob))
            toks.rank.append(None if rank is None else int(rank))  # type: ignore[union-attr]
            toks.entropy.append(None if entropy is None else float(entropy))  # type: ignore[union-attr]
            toks.top_ids.append([int(x) for x in top_ids or []])  # type: ignore[union-attr]
            toks.top_logprobs.append([float(x) for x in top_logprobs or []])  # type: ignore[union-attr]
            toks.top_pieces.append(  # type: ignore[union-attr]
                [p.decode("utf-8", errors="backslashreplace") for p in top_pieces or []]
            )
        return text

    def finish(self) -> tuple[Tokens, str, bytes | None]:
        """Flush and return ``(tokens, text, raw)``; ``raw`` is the byte string when it was not
        valid UTF-8 (so no byte is ever lost), else ``None``."""
        if not self._finished:
            tail = self._decoder.decode(b"", final=True)
            if tail:
                self._parts.append(tail)
                self._length += len(tail)
                if len(self.tokens.offsets) > 1:
                    self.tokens.offsets[-1] = self._length
            self._finished = True
        raw = b"".join(self._raw)
        try:
            raw.decode("utf-8")
            keep = None
        except UnicodeDecodeError:
            keep = raw
        return self.tokens, self.text, keep


# --------------------------------------------------------------------------------------------
# Samples


@dataclass
class Sample:
    """One generation (or imported text) with everything needed to reproduce and read it."""

    id: str
    model: dict[str, Any]
    backend: str
    prompt: dict[str, Any]
    settings: dict[str, Any]
    seed: int | None
    text: str
    tokens: Tokens
    finish_reason: str
    created: str = field(default_factory=utc_now)
    times: dict[str, Any] = field(default_factory=dict)
    source: str = "generated"
    raw: bytes | None = None
    control: dict[str, Any] | None = None
    #: what a server reported about the stream (optional; see lmread.backends.openai.report)
    server: dict[str, Any] | None = None
    #: where sentences start in ``text`` (character offsets) when the import gave them (see
    #: :mod:`lmread.sentences`); None: the documented splitter decides
    sentences: list[int] | None = None

    @property
    def n_tokens(self) -> int:
        return len(self.tokens.ids)

    @property
    def model_id(self) -> str:
        return str(self.model.get("id", "?"))

    def span(self, index: int) -> tuple[int, int]:
        """Character span ``(start, end)`` of token ``index``."""
        return self.tokens.offsets[index], self.tokens.offsets[index + 1]

    def piece(self, index: int) -> str:
        """The text of token ``index`` (empty for a token that only starts a character)."""
        start, end = self.span(index)
        return self.text[start:end]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SAMPLE_SCHEMA if self.control is None else SAMPLE_SCHEMA_CONTROL,
            "id": self.id,
            "source": self.source,
            "model": self.model,
            "backend": self.backend,
            "prompt": self.prompt,
            "settings": self.settings,
            "seed": self.seed,
            "finish_reason": self.finish_reason,
            "created": self.created,
            "times": self.times,
            "text": self.text,
            "tokens": self.tokens.to_json(),
        }
        if self.raw is not None:
            out["raw_b64"] = base64.b64encode(self.raw).decode("ascii")
        if self.control is not None:
            out["control"] = self.control
        if self.server is not None:
            out["server"] = self.server
        if self.sentences is not None:
            out["sentences"] = self.sentences
        return out

    def dumps(self) -> bytes:
        """One JSONL line (with trailing newline)."""
        return orjson.dumps(self.to_json(), option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"

    @classmethod
    def from_json(cls, data: Any, where: str) -> Sample:
        version = schema_version(data, SAMPLE_SCHEMA_CONTROL, where)
        if version < 2 and "control" in data:
            raise StudyError(f"{where}: a 'control' field needs schema {SAMPLE_SCHEMA_CONTROL}, not {data['schema']}")
        try:
            sample = cls(
                id=str(data["id"]),
                model=dict(data["model"]),
                backend=str(data["backend"]),
                prompt=dict(data["prompt"]),
                settings=dict(data["settings"]),
                seed=data.get("seed"),
                text=str(data["text"]),
                tokens=Tokens.from_json(data["tokens"], where),
                finish_reason=str(data["finish_reason"]),
                created=str(data.get("created", "")),
                times=dict(data.get("times") or {}),
                source=str(data.get("source", "generated")),
                raw=base64.b64decode(data["raw_b64"]) if data.get("raw_b64") else None,
                control=data.get("control"),
                server=dict(data["server"]) if isinstance(data.get("server"), dict) else None,
                sentences=None if data.get("sentences") is None else [int(x) for x in data["sentences"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StudyError(f"{where}: malformed sample ({exc!r})") from None
        if sample.tokens.offsets[-1] != len(sample.text):
            raise StudyError(f"{where}: token offsets do not cover the text")
        if sample.control is not None:
            check_control(sample.control, sample.n_tokens, where)
        if sample.sentences:
            starts = sample.sentences
            ascending = all(a < b for a, b in zip(starts, starts[1:], strict=False))
            if not ascending or starts[0] < 0 or starts[-1] >= len(sample.text):
                raise StudyError(f"{where}: 'sentences' must be ascending character offsets inside the text")
        return sample


def without_top_k(line: bytes) -> bytes:
    """A sample's JSONL line with its ``tokens.top`` object cut out, as lmread writes it; other
    lines come back unchanged.  Parsing the result skips most of the objects.

    ``top`` is the last key of ``tokens`` and holds only arrays, so its first ``}`` outside a
    string closes it; the ``}`` of ``tokens`` follows, then ``,"raw_b64"`` / ``,"control"`` or the
    end of the line.  A ``"`` inside a string is always escaped, so neither ``,"top":{`` nor
    ``}},"`` can occur inside one.
    """
    start = line.rfind(b',"top":{')
    if start < 0:
        return line
    end = line.find(b'}},"', start)
    end = end + 1 if end >= 0 else len(line.rstrip()) - 2
    return line[:start] + line[end:]


def sample_id(model: dict[str, Any], prompt: dict[str, Any], settings: dict[str, Any], seed: Any) -> str:
    """Stable id of a generated sample: a hash of what defines it, so two machines agree."""
    identity = {
        k: model.get(k) for k in ("id", "sha256", "revision", "source", "backend") if model.get(k)
    }
    return stable_id("s_", identity, prompt.get("text", ""), settings, seed)


def check_control(control: Any, n_tokens: int, where: str) -> dict[str, Any]:
    """Raise :class:`StudyError` unless ``control`` is a valid control record for a sample of
    ``n_tokens`` tokens: ``{"kind", "onset", "category", "parts", "seed"}``."""
    if not isinstance(control, dict):
        raise StudyError(f"{where}: 'control' must be an object")
    kind = control.get("kind")
    if kind not in CONTROL_KINDS:
        raise StudyError(f"{where}: control kind {kind!r} is not one of {', '.join(CONTROL_KINDS)}")
    onset = control.get("onset")
    if kind == "human":
        if onset is not None:
            raise StudyError(f"{where}: a human control has no onset (its right answer is no fall)")
    elif not isinstance(onset, int) or isinstance(onset, bool) or not 0 <= onset < n_tokens:
        raise StudyError(f"{where}: a {kind} control needs an onset token index in 0..{n_tokens - 1}")
    if control.get("category") != CONTROL_CATEGORY[kind]:
        raise StudyError(f"{where}: a {kind} control has category {CONTROL_CATEGORY[kind]!r}")
    parts = control.get("parts")
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        raise StudyError(f"{where}: control 'parts' must be a list of sample ids")
    seed = control.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise StudyError(f"{where}: control 'seed' must be a whole number")
    return control


def human_control(seed: int = 0) -> dict[str, Any]:
    """The control record of an imported human-written text: right answer no fall."""
    return {"kind": "human", "onset": None, "category": None, "parts": [], "seed": int(seed)}


def is_control(sample: Sample) -> bool:
    """Whether ``sample`` is a control with a known answer (it never enters model curves)."""
    return sample.control is not None


def control_kind(sample: Sample) -> str | None:
    """``"splice"``, ``"loop"`` or ``"human"`` for a control, None for an ordinary sample."""
    return None if sample.control is None else str(sample.control["kind"])


def control_onset(sample: Sample) -> int | None:
    """The token index of a control's known fall; None for a human control (right answer: no
    fall) and for an ordinary sample (use :func:`is_control` to tell them apart)."""
    return None if sample.control is None else sample.control.get("onset")


def control_category(sample: Sample) -> str | None:
    """The failure category of a control's known fall (drift, repetition), else None."""
    return None if sample.control is None else sample.control.get("category")


# --------------------------------------------------------------------------------------------
# Marks


@dataclass
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
