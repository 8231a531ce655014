"""Text units the reader moves and reveals by: word starts and sentences, one rule each.

The sentence rule is shared by the space-reveal of the reading session
(:func:`sentence_end`) and the ``[``/``]`` cursor motions of the token document
(:func:`next_sentence_start`, :func:`prev_sentence_start`), so a reveal stops exactly where the
motion finds the next sentence.

A sentence ends at a run of ``.``, ``!``, ``?``, ``…`` or the full-width ``。！？`` (optionally
followed by closing quotes or brackets) that is followed by whitespace, or at a line break.  The
next sentence starts at the first non-space character after that; the first non-space character
of the text starts the first sentence.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Sequence

__all__ = [
    "SENTENCE_GAP_RE",
    "WORD_START_RE",
    "last_match",
    "next_sentence_start",
    "prev_sentence_start",
    "sentence_end",
]

#: A word starts at a word character that does not follow one.
WORD_START_RE = re.compile(r"(?<!\w)\w")
#: The gap between two sentences: group ``end`` is what ends the first one (its terminal
#: punctuation and closers, or the line break), the match ends where the next one starts.
SENTENCE_GAP_RE = re.compile(
    r"(?P<end>[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\]\u00bb]*(?=\s)|\n)\s*(?=\S)"
)
#: How far before a position a sentence gap that reaches past it may begin.
SENTENCE_LOOKBACK = 64
_NON_SPACE_RE = re.compile(r"\S")


def last_match(
    text: str, pattern: re.Pattern[str], pos: int, where: Callable[[re.Match[str]], int], margin: int = 0
) -> int | None:
    """The largest ``where(match)`` below ``pos`` over matches of ``pattern`` inside
    ``text[:pos]``, searching windows that grow backwards from ``pos``.  A value within
    ``margin`` characters of a window's start is only trusted at the start of the text (a match
    could have begun before the window)."""
    window = 256
    while True:
        lo = max(0, pos - window)
        trust = lo if lo == 0 else lo + margin
        best = None
        for m in pattern.finditer(text, lo, pos):
            value = where(m)
            if trust <= value < pos:
                best = value
        if best is not None or lo == 0:
            return best
        window *= 4


def next_sentence_start(text: str, pos: int, end: int) -> int | None:
    """The first sentence start at or after ``pos`` inside ``text[:end]``, or ``None``."""
    first = _NON_SPACE_RE.search(text, 0, end)
    if first is None:
        return None
    if first.start() >= pos:
        return first.start()
    for m in SENTENCE_GAP_RE.finditer(text, max(0, pos - SENTENCE_LOOKBACK), end):
        if pos <= m.end() < end:
            return m.end()
    return None


def prev_sentence_start(text: str, pos: int) -> int | None:
    """The last sentence start before ``pos``, or ``None``."""
    found = last_match(text, SENTENCE_GAP_RE, pos, lambda m: m.end(), SENTENCE_LOOKBACK)
    if found is None:
        first = _NON_SPACE_RE.search(text, 0, pos)
        if first is not None:
            found = first.start()
    return found


def sentence_end(text: str, offsets: Sequence[int], revealed: int) -> int:
    """The token count that reveals through the end of the sentence that the first unread
    non-space character belongs to (``revealed`` tokens are read; every token when no sentence
    end follows).  The token holding the sentence's last character is the last one revealed."""
    n = len(offsets) - 1
    if revealed >= n:
        return n
    first = _NON_SPACE_RE.search(text, offsets[revealed])
    if first is None:
        return n
    for m in SENTENCE_GAP_RE.finditer(text, first.start()):
        end_char = m.end("end")
        if end_char > first.start():
            return max(bisect_left(offsets, end_char, revealed + 1, n), revealed + 1)
    return n
