"""The bottom layer alone: :class:`TokenSpans` holds text, token spans, ranks and the reveal count,
with no wrapping or cursor (those are the layers above)."""

from __future__ import annotations

import pytest

from lmread.tui.document import TokenSpans


def test_spans_reveal_and_change_counters() -> None:
    spans = TokenSpans("one two three", [0, 3, 7, 13], revealed=1)
    assert (spans.n_tokens, spans.revealed, spans.visible_end, spans.visible_text) == (3, 1, 3, "one")
    version, loads = spans.version, spans.load_count
    spans.revealed = 99  # clamped
    assert spans.revealed == 3 and spans.version == version + 1 and spans.load_count == loads
    spans.revealed = 3  # no change, no new version
    assert spans.version == version + 1
    spans.load("ab", [0, 1, 2], revealed=None)
    assert spans.load_count == loads + 1 and spans.revealed == 2 and spans.ranks == [None, None]
    assert [spans.token_text(i) for i in range(2)] == ["a", "b"] and spans.span(1) == (1, 2)


def test_empty_spans_and_lookups() -> None:
    # the emoji split over two tokens: the first has an empty span
    text = "I 🐍 ok"
    spans = TokenSpans(text, [0, 1, 2, 2, 3, 6], revealed=5)
    assert spans.token_text(2) == "" and spans.token_text(3) == "🐍"
    assert spans.token_of_char(2) == 3  # the character belongs to the token with its last byte
    assert spans.display_token(2) == 3 and spans.display_token(0) == 0
    assert spans.clamp(-4) == 0 and spans.clamp(40) == 4
    spans.revealed = 3
    assert spans.display_token(2) is None  # its character is not revealed yet


def test_append_reveals_only_when_asked() -> None:
    spans = TokenSpans()
    spans.append("The", [3], ranks=[1])
    assert (spans.n_tokens, spans.revealed) == (1, 0)
    spans.append(" end", [7], reveal=True, ranks=[12])
    assert (spans.text, spans.offsets, spans.ranks, spans.revealed) == ("The end", [0, 3, 7], [1, 12], 2)
    spans.append("\ufffd", [])  # a flushed partial character joins the last token
    assert spans.offsets == [0, 3, 8] and spans.token_text(1) == " end\ufffd"
    with pytest.raises(ValueError, match="out of order"):
        spans.append("x", [5])
