"""The shared names of the data model: schema versions, failure categories, mark and control kinds,
the identity keys, the word rule, and the checks and ids every record uses."""

from __future__ import annotations

import hashlib
import re
import uuid
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

#: the model fields that define a generated sample's id (with the prompt text, settings and seed)
ID_FIELDS = ("id", "sha256", "revision", "source", "backend")
#: the model fields that identify a model in analyses (a group's ``model``)
MODEL_IDENTITY_KEYS = ("id", "name", "n_params", "sha256", "revision", "quantization", "architecture",
                       "backend", "source", "path")

#: the word rule of every word count: a word is a maximal run of non-whitespace characters
WORD_RE = re.compile(r"\S+")

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
    known = _KNOWN_SCHEMAS.get((value, expected)) if isinstance(value, str) else None
    if known is not None:  # a schema string checked before (a study repeats a few on every line)
        return known
    kind, _, newest = expected.rpartition("/")
    if not isinstance(value, str) or "/" not in value:
        raise StudyError(f"{where}: missing or malformed 'schema' field (expected {expected})")
    got_kind, _, got_version = value.rpartition("/")
    if got_kind != kind or not got_version.isdigit():
        raise StudyError(f"{where}: schema is {value!r}, expected {expected}")
    if int(got_version) > int(newest):
        raise SchemaVersionError(
            f"{where}: written with schema {value}, newer than this lmread knows ({expected}); "
            "upgrade lmread to read it"
        )
    if len(_KNOWN_SCHEMAS) < 1024:
        _KNOWN_SCHEMAS[(value, expected)] = int(got_version)
    return int(got_version)


#: (schema string, expected schema) pairs that passed :func:`schema_version`, with their version
_KNOWN_SCHEMAS: dict[tuple[str, str], int] = {}


def check_annotator(name: str) -> str:
    """Return ``name`` if it is a safe annotator name (it becomes a file name), else raise."""
    if isinstance(name, str) and name in _GOOD_NAMES:  # a study repeats its readers' names on every mark
        return name
    if not isinstance(name, str) or not _ANNOTATOR_RE.match(name) or name in {".", ".."}:
        raise MarkError(
            f"annotator name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if len(_GOOD_NAMES) < 65_536:
        _GOOD_NAMES.add(name)
    return name


#: annotator names that passed :func:`check_annotator`
_GOOD_NAMES: set[str] = set()


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
    if not isinstance(category, str):
        raise MarkError(f"a category must be a string, not {type(category).__name__}")
    if category in _CATEGORY_OF:  # a key as lmread writes it
        return _CATEGORY_OF[category]
    key = _CATEGORY_OF.get(category.strip().lower())
    if key is None:
        raise MarkError(f"unknown category {category!r}: use one of {', '.join(CATEGORY_KEYS)}")
    return key


#: each category key and lower-case label, to its key
_CATEGORY_OF = {**{label.lower(): k for k, label in CATEGORIES}, **{k: k for k, _ in CATEGORIES}}


def stable_id(prefix: str, *parts: Any) -> str:
    """A short content hash of ``parts`` (JSON-encoded with sorted keys), e.g. ``s_3f2a...``."""
    blob = orjson.dumps(list(parts), option=orjson.OPT_SORT_KEYS)
    return prefix + hashlib.sha256(blob).hexdigest()[:20]


def new_mark_id() -> str:
    """A unique mark id (random, so two annotators never collide)."""
    return "m_" + uuid.uuid4().hex
