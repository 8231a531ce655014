"""The middle layer alone: :class:`WrappedDocument` wraps the spans it holds using only their
public API (proved with a stand-in that has nothing else), and redoes its wraps when they change."""

from __future__ import annotations

from lmread.tui.document import KIND_TEXT, LinePiece, TokenSpans, WrappedDocument


class PublicSpans:
    """Only the public API of :class:`TokenSpans` (no private fields to read)."""

    __slots__ = ("_inner",)

    def __init__(self, inner: TokenSpans) -> None:
        object.__setattr__(self, "_inner", inner)

    def __getattr__(self, name: str):
        assert not name.startswith("_"), f"the wrapped layer read a private field: {name}"
        return getattr(object.__getattribute__(self, "_inner"), name)


def test_wraps_through_the_public_api_only() -> None:
    spans = TokenSpans("The keeper wrote in the log.", [0, 3, 10, 16, 19, 23, 28])
    wrapped = WrappedDocument(PublicSpans(spans), width=11)  # type: ignore[arg-type]
    assert [wrapped.line_text(y) for y in range(wrapped.line_count())] == ["The keeper ", "wrote in ", "the log."]
    assert wrapped.line_pieces(1)[0] == LinePiece(2, "wrote", 0, 5, KIND_TEXT, 11, 16)  # its space hangs on line 0
    assert wrapped.token_at(0, 1) == 2 and wrapped.line_of_token(5) == 2
    assert wrapped.token_anchor(5) == (2, 4) and wrapped.token_near(40, 0) == 2  # the space of " wrote" ends line 0
    assert wrapped.token_span_cells(1) == [(0, 3, 10)]


def test_follows_reveals_appends_and_reloads_of_its_spans() -> None:
    spans = TokenSpans()
    wrapped = WrappedDocument(spans, width=8)
    assert wrapped.line_count() == 1 and wrapped.line_pieces(0) == []
    spans.append("alpha beta", [5, 10])
    assert wrapped.line_count() == 1 and wrapped.line_text(0) == ""  # nothing revealed, nothing wrapped
    spans.revealed = 2
    assert [wrapped.line_text(y) for y in range(wrapped.line_count())] == ["alpha ", "beta"]
    spans.append(" gamma", [16], reveal=True)
    assert [wrapped.line_text(y) for y in range(wrapped.line_count())] == ["alpha ", "beta ", "gamma"]
    spans.load("x\ny", [0, 1, 2, 3])
    assert [wrapped.line_text(y) for y in range(wrapped.line_count())] == ["x ", "y"]
    spans.revealed = 1  # shrinking the reveal unwraps what is hidden again
    assert [wrapped.line_text(y) for y in range(wrapped.line_count())] == ["x"]


def test_widths_are_wrapped_independently() -> None:
    spans = TokenSpans("aa bb cc dd", [0, 2, 5, 8, 11])
    wrapped = WrappedDocument(spans, width=80)
    assert wrapped.line_count(5) == 2 and wrapped.line_count(80) == 1 and wrapped.line_count() == 1
    wrapped.width = 6
    assert wrapped.line_count() == 2
