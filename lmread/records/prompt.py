"""The frozen :class:`Prompt` a sample was generated from, read and written as its JSON object."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

# --------------------------------------------------------------------------------------------
# Prompts

#: the fields of a prompt, in the order lmread writes them
PROMPT_FIELDS = ("text", "set", "name")


#: (layout, extra keys) pairs that passed the check of :meth:`Prompt.__post_init__`
_GOOD_LAYOUTS: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()


@dataclass(frozen=True, eq=False, slots=True)
class Prompt(Mapping[str, Any]):
    """The prompt a sample was generated from (or imported with): its ``text``, the prompt set
    it belongs to and its name in that set.

    A prompt reads like the JSON object it is stored as (``prompt["text"]``, ``prompt.get("set")``,
    ``dict(prompt)``) and writes that object back byte for byte: ``layout`` keeps the keys the
    record had, in its order (lmread writes ``text``, ``set``, ``name``; an imported text has no
    ``name``), and ``extra`` the fields this lmread does not know.  Two prompts, or a prompt and
    a mapping, are equal when their JSON objects are.
    """

    text: str = ""
    set: str | None = None
    name: str | None = None
    layout: tuple[str, ...] = PROMPT_FIELDS
    extra: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"a prompt's text must be a string, not {type(self.text).__name__}")
        for key in ("set", "name"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"a prompt's {key} must be a string or null, not {type(value).__name__}")
        extra = tuple(key for key, _ in self.extra)
        if (self.layout, extra) in _GOOD_LAYOUTS:  # a study's prompts share a few layouts
            return
        if (len(set(self.layout)) != len(self.layout) or any(k in PROMPT_FIELDS for k in extra)
                or set(self.layout) - set(PROMPT_FIELDS) != set(extra)):
            raise ValueError(f"a prompt's layout {list(self.layout)} does not match its fields")
        if len(_GOOD_LAYOUTS) < 4096:
            _GOOD_LAYOUTS.add((self.layout, extra))

    @classmethod
    def of(cls, data: Prompt | Mapping[str, Any]) -> Prompt:
        """A prompt from its JSON object (or a prompt, returned as it is)."""
        if isinstance(data, Prompt):
            return data
        if not isinstance(data, Mapping):
            raise TypeError(f"a prompt must be an object, not {type(data).__name__}")
        return cls(text=data.get("text", ""), set=data.get("set"), name=data.get("name"), layout=tuple(data),
                   extra=tuple((k, v) for k, v in data.items() if k not in PROMPT_FIELDS))

    def to_json(self) -> dict[str, Any]:
        """The JSON object, with the keys the prompt was read with, in their order."""
        return {key: self[key] for key in self.layout}

    def __getitem__(self, key: str) -> Any:
        if key in self.layout:
            return getattr(self, key) if key in PROMPT_FIELDS else dict(self.extra)[key]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.layout)

    def __len__(self) -> int:
        return len(self.layout)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return list(self.items()) == list(other.items()) if isinstance(other, Prompt) else dict(self) == dict(other)

    def __hash__(self) -> int:
        return hash(orjson.dumps(self.to_json()))
