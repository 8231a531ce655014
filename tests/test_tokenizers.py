"""Tokenizers for text without a model: the pieces always join back to the exact text."""

from __future__ import annotations

import pytest

from lmread.errors import OptionError
from lmread.tokenizers import TOKENIZERS, split_text

TEXT = "  Héllo wörld 😀\n\tend  "


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
def test_pieces_join_to_the_exact_text(tokenizer: str) -> None:
    assert b"".join(split_text(TEXT, tokenizer)) == TEXT.encode()


def test_words_carry_their_leading_whitespace() -> None:
    assert split_text(TEXT) == [b"  H\xc3\xa9llo", b" w\xc3\xb6rld", " 😀".encode(), b"\n\tend", b"  "]
    assert len(split_text(TEXT, "chars")) == len(TEXT) and len(split_text(TEXT, "bytes")) == len(TEXT.encode())


def test_unknown_tokenizer() -> None:
    with pytest.raises(OptionError, match="unknown tokenizer 'bpe': use words, chars or bytes"):
        split_text("x", "bpe")
