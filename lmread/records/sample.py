"""The :class:`Sample` record (one generation or imported text), its JSONL codec and id, and the
control records mixed blind into a study."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from lmread.errors import StudyError
from lmread.records.names import (
    CONTROL_CATEGORY,
    CONTROL_KINDS,
    ID_FIELDS,
    SAMPLE_SCHEMA,
    SAMPLE_SCHEMA_CONTROL,
    schema_version,
    stable_id,
    utc_now,
)
from lmread.records.prompt import Prompt
from lmread.records.tokens import Tokens
from lmread.records.words import word_starts

# --------------------------------------------------------------------------------------------
# Samples


@dataclass(slots=True)
class Sample:
    """One generation (or imported text) with everything needed to reproduce and read it."""

    id: str
    model: dict[str, Any]
    backend: str
    prompt: Prompt
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
    #: where the words of ``text`` start, found on first use (see :attr:`word_starts`)
    _word_starts: list[int] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.prompt = Prompt.of(self.prompt)  # a plain JSON object is read as a Prompt

    @property
    def n_tokens(self) -> int:
        return len(self.tokens.ids)

    @property
    def word_starts(self) -> list[int]:
        """Where the words of ``text`` start (:func:`~lmread.records.words.word_starts`), found
        once per sample: every analysis that counts words asks for them."""
        if self._word_starts is None:
            self._word_starts = word_starts(self.text).tolist()
        return self._word_starts

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
            "prompt": self.prompt.to_json(),
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
                prompt=Prompt.of(data["prompt"]),
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


def sample_id(model: dict[str, Any], prompt: Mapping[str, Any], settings: dict[str, Any], seed: Any) -> str:
    """Stable id of a generated sample: a hash of what defines it, so two machines agree."""
    identity = {k: model.get(k) for k in ID_FIELDS if model.get(k)}
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
