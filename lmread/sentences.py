"""Sentences: where they start in a sample's text, and how many lie before a token.

A sample's sentence starts come from the import when the source gives them (RoFT's ``_SEP_``
marks, a boundary file's sentence list): they are stored in the sample record as
``sentences`` (character offsets into ``text``, ascending).  Otherwise one splitter decides,
the same everywhere (survival, calibration, agreement and the reader's status line):

    A sentence ends at a run of ``.``, ``!``, ``?`` or ``…`` (optionally followed by closing
    quotes or brackets: ``"' ” ’ ) ]``) that is followed by whitespace; the next sentence starts
    at the first non-whitespace character after it.  The first sentence starts at the text's
    first non-whitespace character.  A blank line (two line breaks) also ends a sentence.

The splitter is deliberately simple (no abbreviation list): "Dr. Smith" counts as two
sentences.  Sources with their own sentence marks should give them at import.

Counting follows the ``words`` unit: the sentences before a cut at character ``c`` are those
that *start* before ``c``, so a sentence the cut falls inside counts as begun.  A fall marked at
the first token of sentence ``k`` (0-based) therefore has ``k`` sentences before it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lmread.records import Sample

_SENTENCE_START = re.compile(r"""(?:(?<=[.!?…])|(?<=[.!?…]["'”’)\]])|(?<=[.!?…]["'”’)\]]["'”’)\]]))\s+(?=\S)"""
                             r"""|\n\s*\n\s*(?=\S)""")
_FIRST = re.compile(r"\S")


def split_sentences(text: str) -> list[int]:
    """Character offsets where sentences of ``text`` start, by the module's splitter."""
    first = _FIRST.search(text)
    if first is None:
        return []
    starts = [first.start()]
    for m in _SENTENCE_START.finditer(text, first.start()):
        if m.end() > starts[-1]:
            starts.append(m.end())
    return starts


def join_sentences(sentences: list[str], lead: str = "") -> tuple[str, list[int]]:
    """Join ``sentences`` with single spaces after ``lead``; return the text and where each
    sentence starts in it."""
    parts = [lead]
    starts: list[int] = []
    pos = len(lead)
    for i, sentence in enumerate(sentences):
        if i:
            parts.append(" ")
            pos += 1
        starts.append(pos)
        parts.append(sentence)
        pos += len(sentence)
    return "".join(parts), starts


def sentences_in_text(text: str, end: int | None = None) -> int:
    """Sentences of ``text`` (by the splitter) begun before character ``end`` (default: all), for
    text that is no sample yet, such as a live stream's text so far."""
    starts = split_sentences(text)
    return len(starts) if end is None else int(np.searchsorted(np.asarray(starts, dtype=np.int64), end, side="left"))


def sentence_starts(sample: Sample) -> np.ndarray:
    """Where the sentences of ``sample.text`` start: the import's marks, else the splitter."""
    given = sample.sentences
    if given is not None:
        return np.asarray(given, dtype=np.int64)
    return np.asarray(split_sentences(sample.text), dtype=np.int64)


def sentences_before_char(starts: np.ndarray, cut: int) -> int:
    """Sentences that start before character ``cut``."""
    return int(np.searchsorted(starts, cut, side="left"))


def sentences_before(sample: Sample, token: int) -> int:
    """Sentences of ``text[:offsets[token]]`` (``token`` clipped to the sample): the number the
    reader's status line shows for "read so far" and the survival unit counts."""
    token = max(0, min(int(token), sample.n_tokens))
    return sentences_before_char(sentence_starts(sample), sample.tokens.offsets[token])


def sentence_count(sample: Sample) -> int:
    """Sentences in the whole text."""
    return int(sentence_starts(sample).size)


def token_of_char(sample: Sample, char: int) -> int:
    """The token holding character ``char`` (the first token whose span ends after it)."""
    return int(np.searchsorted(np.asarray(sample.tokens.offsets[1:], dtype=np.int64), char, side="right"))
