"""The model-card schema (mirrors annotations/schema/model-card.schema.json; checked in code, no jsonschema)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lmread.errors import ModelError

REQUIRED_FIELDS = ("id", "name", "family", "backends", "source")
OPTIONAL_FIELDS = ("n_params", "quantization", "license", "architecture", "extra")
CARD_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS

#: source kind -> (required keys, optional keys)
SOURCE_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "path": (("path",), ()),
    "package": (("package", "file"), ("assemble",)),
    "hf": (("hf",), ("revision", "file")),
    "url": (("url", "model"), ("api_key_env",)),
}

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,127}$")

#: the backends a card may name.  :data:`lmread.backends.BACKENDS` registers one implementation
#: per name (a test checks that they agree); the catalogue does not import the backends, which
#: stand above it.
BACKEND_NAMES: tuple[str, ...] = ("llamacpp", "hf", "openai", "scripted")


def known_backends() -> list[str]:
    """Names of the backends a card may list."""
    return list(BACKEND_NAMES)


def _type_name(value: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def check_card(data: dict[str, Any], where: str | Path) -> None:
    """Check a card's fields (the rules of model-card.schema.json).

    Raises :class:`ModelError` naming ``where`` (the card file) and the offending field.
    """

    def bad(fld: str, why: str) -> ModelError:
        return ModelError(f"model card {where}: field '{fld}' {why}")

    for key in data:
        if key not in CARD_FIELDS:
            raise bad(key, f"is unknown (known fields: {', '.join(CARD_FIELDS)}); remove or rename it")
    for key in REQUIRED_FIELDS:
        if key not in data:
            raise bad(key, "is missing; add it")
    for key in ("id", "name", "family", "quantization", "license", "architecture"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            raise bad(key, f"must be a non-empty string (got {_type_name(data[key])})")
    if not ID_RE.match(data["id"]):
        raise bad("id", f"{data['id']!r} is not a valid id (letters, digits and . _ - : / + only, up to 128)")
    backends = data["backends"]
    if not isinstance(backends, list) or not backends or not all(isinstance(b, str) for b in backends):
        raise bad("backends", f"must be a non-empty list of backend names (got {_type_name(backends)})")
    known = known_backends()
    for b in backends:
        if b not in known:
            raise bad("backends", f"names an unknown backend {b!r} (known: {', '.join(known)})")
    if len(set(backends)) != len(backends):
        raise bad("backends", "lists a backend twice")
    if "n_params" in data:
        n = data["n_params"]
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise bad("n_params", f"must be a positive integer (got {_type_name(n)} {n!r})")
    if "extra" in data and not isinstance(data["extra"], dict):
        raise bad("extra", f"must be a table (got {_type_name(data['extra'])})")
    source = data["source"]
    if not isinstance(source, dict):
        raise bad("source", f"must be a table with one of: {', '.join(SOURCE_KINDS)} (got {_type_name(source)})")
    kinds = [k for k in SOURCE_KINDS if k in source]
    if len(kinds) != 1:
        raise bad("source", f"must have exactly one of: {', '.join(SOURCE_KINDS)} (got {', '.join(kinds) or 'none'})")
    required, optional = SOURCE_KINDS[kinds[0]]
    for key in source:
        if key not in required + optional:
            raise bad(f"source.{key}", f"is unknown for a {kinds[0]} source (allowed: {', '.join(required + optional)})")
    for key in required:
        if key not in source:
            raise bad(f"source.{key}", f"is missing (a {kinds[0]} source needs: {', '.join(required)})")
    for key, value in source.items():
        if not isinstance(value, str) or not value.strip():
            raise bad(f"source.{key}", f"must be a non-empty string (got {_type_name(value)})")
    if kinds[0] == "hf" and not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", source["hf"]):
        raise bad("source.hf", f"{source['hf']!r} is not a Hugging Face repo id like 'org/name'")
    if kinds[0] == "url" and not re.match(r"^https?://", source["url"]):
        raise bad("source.url", f"{source['url']!r} must start with http:// or https://")
