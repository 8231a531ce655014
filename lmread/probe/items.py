"""Splitting a list text into items, with exact character offsets.

Two ways to say where items are:

- **one item per line** (the default): every line holding something other than white space is
  an item; blank lines are skipped.
- **``--item-regex R``**: every match of ``R`` (Python ``re``, multi-line mode, so ``^`` is the
  start of a line) marks where an item starts; the item runs to the next match.  Text before the
  first match is a preamble: it is scored as context but is not an item.

In both modes an item *starts at its first non-space character* (leading white space and the
line break before an item are the separator, not the item) and ends before its trailing white
space.  ``start``/``end`` are character offsets into the text, so ``text[start:end]`` is the
item.  The item's **first word** is the run of word characters at its start (letters, digits,
``_``, joined by inner apostrophes or hyphens: "O'Brien", "Jean-Luc"), or, when the item starts
with something else, the run of non-space characters there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lmread.errors import OptionError

_FIRST_WORD = re.compile(r"\w+(?:['’\-]\w+)*|\S+")
_NON_SPACE = re.compile(r"\S")


@dataclass(frozen=True, slots=True)
class Item:
    """One item of a list text: ``text[start:end]``, its first word ``text[start:word_end]``."""

    index: int
    start: int
    end: int
    word_end: int
    text: str

    @property
    def first_word(self) -> str:
        """The item's first word (see the module docstring)."""
        return self.text[: self.word_end - self.start]

    def to_json(self) -> dict[str, object]:
        return {"index": self.index, "start": self.start, "end": self.end, "text": self.text,
                "first_word": self.first_word, "word_end": self.word_end}


def _item(text: str, index: int, start: int, end: int) -> Item | None:
    """The item in ``text[start:end]`` with white space trimmed at both ends, or None if blank."""
    m = _NON_SPACE.search(text, start, end)
    if m is None:
        return None
    begin = m.start()
    stop = begin + len(text[begin:end].rstrip())
    word = _FIRST_WORD.match(text, begin, stop)
    assert word is not None  # text[begin] is not white space
    return Item(index=index, start=begin, end=stop, word_end=word.end(), text=text[begin:stop])


def split_lines(text: str) -> list[Item]:
    """One item per non-blank line of ``text``."""
    items: list[Item] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        item = _item(text, len(items), pos, pos + len(line))
        if item is not None:
            items.append(item)
        pos += len(line)
    return items


def compile_item_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled in multi-line mode; :class:`OptionError` when it is not a valid regex."""
    try:
        return re.compile(pattern, re.MULTILINE)
    except re.error as exc:
        raise OptionError(f"invalid option --item-regex {pattern!r}: {exc}; give a Python regular expression") from None


def split_regex(text: str, pattern: str) -> list[Item]:
    """Items starting at each match of ``pattern`` (see the module docstring)."""
    regex = compile_item_regex(pattern)
    starts: list[int] = []
    for m in regex.finditer(text):
        if not starts or m.start() > starts[-1]:
            starts.append(m.start())
    items: list[Item] = []
    for i, begin in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else len(text)
        item = _item(text, len(items), begin, stop)
        if item is not None:
            items.append(item)
    return items


def split_items(text: str, item_regex: str | None = None, source: str = "the list") -> list[Item]:
    """The items of ``text`` (one per line, or starting at each match of ``item_regex``).

    Raises :class:`OptionError` when the text is empty or there are fewer than two items (the
    first item is context only, so a probe needs at least two).  ``source`` names the text in
    the message.
    """
    if not text.strip():
        raise OptionError(f"{source} is empty: give a text with one item per line")
    items = split_regex(text, item_regex) if item_regex is not None else split_lines(text)
    if len(items) < 2:
        how = f"--item-regex {item_regex!r} matches" if item_regex is not None else "it has"
        fix = ("change the regex so that it matches where each item starts" if item_regex is not None
               else "put one item per line, or mark item starts with --item-regex")
        raise OptionError(f"{source}: {how} {len(items)} item{'s' if len(items) != 1 else ''}, "
                          f"a probe needs at least 2; {fix}")
    return items
