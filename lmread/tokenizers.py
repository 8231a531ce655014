"""Tokenizers for text that comes without a model: imported texts, the scripted test backend.

Each splits a text into byte pieces whose concatenation is exactly the text's UTF-8 bytes, so a
:class:`~lmread.records.TokenAssembler` fed with them reproduces the text.
"""

from __future__ import annotations

import re

from lmread.errors import OptionError

#: the tokenizers :func:`split_text` knows
TOKENIZERS = ("words", "chars", "bytes")

#: a word with the whitespace before it, or trailing whitespace
_WORD_PIECE = re.compile(r"\s*\S+|\s+", re.UNICODE)


def word_pieces(text: str) -> list[str]:
    """The ``words`` tokenizer's pieces as text: each word with the whitespace before it, and any
    trailing whitespace; they join to exactly ``text``."""
    return [m.group(0) for m in _WORD_PIECE.finditer(text)]


def split_text(text: str, tokenizer: str = "words") -> list[bytes]:
    """Split ``text`` into byte pieces whose concatenation is exactly ``text.encode()``: words
    with their leading whitespace, single characters, or single bytes."""
    if tokenizer == "words":
        return [piece.encode("utf-8") for piece in word_pieces(text)]
    if tokenizer == "chars":
        return [ch.encode("utf-8") for ch in text]
    if tokenizer == "bytes":
        data = text.encode("utf-8")
        return [data[i : i + 1] for i in range(len(data))]
    raise OptionError(f"unknown tokenizer {tokenizer!r}: use {', '.join(TOKENIZERS[:-1])} or {TOKENIZERS[-1]}")
