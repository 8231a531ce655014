"""The token view widget, driven through Textual's Pilot in a minimal app."""

from __future__ import annotations

import re

import pytest
from textual.app import App, ComposeResult

from lmread.backends.scripted import split_text
from lmread.records import TokenAssembler
from lmread.tui.widgets.token_styles import rank_bucket
from lmread.tui.widgets.token_view import TokenView

TEXT = (
    "The lighthouse stood on the northern cape for two hundred years. Its keepers kept a log "
    "of every storm, every wreck and every ship that passed safely.\nThe last keeper left in "
    "the spring! Nobody came after him."
)
WIDE = "Tea 茶は熱い。 Emoji 😀 and 👍🏽 ok. 漢字かな交じり文 end."


def assemble(pieces: list[bytes]) -> tuple[str, list[int]]:
    asm = TokenAssembler(with_distribution=False)
    for i, piece in enumerate(pieces):
        asm.add(i, piece)
    tokens, text, _ = asm.finish()
    return text, tokens.offsets


class ViewApp(App):
    """A bare app hosting one TokenView and recording its messages."""

    def __init__(self) -> None:
        super().__init__()
        self.clicked: list[int] = []
        self.moved: list[int] = []

    def compose(self) -> ComposeResult:
        yield TokenView(id="view")

    def on_token_view_token_clicked(self, message: TokenView.TokenClicked) -> None:
        self.clicked.append(message.index)

    def on_token_view_cursor_moved(self, message: TokenView.CursorMoved) -> None:
        self.moved.append(message.index)


def screen_text(view: TokenView) -> list[str]:
    """The visible rows as rendered strips (trailing blanks stripped)."""
    return [view.render_line(y).text.rstrip() for y in range(view.scrollable_content_region.height)]


def cursor_cells(view: TokenView) -> list[tuple[int, str]]:
    """(row, text) of reverse-video segments on screen."""
    out = []
    for y in range(view.scrollable_content_region.height):
        for seg in view.render_line(y):
            if seg.style is not None and seg.style.reverse:
                out.append((y, seg.text))
    return out


async def test_keys_move_the_cursor_by_token_word_line_sentence() -> None:
    app = ViewApp()
    async with app.run_test(size=(42, 12)) as pilot:
        view = app.query_one(TokenView)
        text, offsets = assemble(split_text(TEXT, "words"))
        view.load(text, offsets)
        view.focus()
        await pilot.pause()
        assert view.virtual_size.height == view.wrapped.line_count(view.scrollable_content_region.width)
        assert screen_text(view)[0].startswith("The lighthouse stood on the northern")
        assert cursor_cells(view) == [(0, "The")]
        await pilot.press("right", "right")
        assert view.cursor == 2 and view.document.token_text(2) == " stood"
        await pilot.press("left")
        assert view.cursor == 1
        await pilot.press("ctrl+right")
        assert view.cursor == 2
        await pilot.press("ctrl+left", "ctrl+left")
        assert view.cursor == 0
        await pilot.press("down")
        width = view.scrollable_content_region.width
        assert view.wrapped.token_anchor(view.cursor, width)[0] == 1  # shown on the second line
        await pilot.press("up")
        assert view.cursor == 0
        await pilot.press("right_square_bracket")
        assert view.document.token_text(view.cursor) == " Its"
        await pilot.press("right_square_bracket")
        assert view.document.token_text(view.cursor) == "\nThe"
        await pilot.press("left_square_bracket")
        assert view.document.token_text(view.cursor) == " Its"
        await pilot.press("end")
        assert view.cursor == len(offsets) - 2
        await pilot.pause()
        # the cursor is scrolled into view and drawn in reverse video
        row = view.wrapped.token_anchor(view.cursor, width)[0] - view.scroll_offset.y
        assert cursor_cells(view) == [(row, " him.")]
        await pilot.press("home")
        assert view.cursor == 0 and view.scroll_offset.y == 0
        await pilot.press("pagedown")
        assert view.cursor > 0
        await pilot.pause()
        assert app.moved and app.moved[-1] == view.cursor
        view.move_cursor("word", 1)
        with pytest.raises(ValueError):
            view.move_cursor("paragraph", 1)


@pytest.mark.parametrize("sample", ["words", "bytes"])
async def test_click_selects_the_token_under_the_mouse(sample: str) -> None:
    app = ViewApp()
    async with app.run_test(size=(30, 10)) as pilot:
        view = app.query_one(TokenView)
        text, offsets = assemble(split_text(WIDE, sample))
        view.load(text, offsets)
        await pilot.pause()
        doc = view.wrapped
        width = view.scrollable_content_region.width
        # click every cell of every visible piece, including both cells of wide characters
        expected_clicks = []
        for y in range(min(doc.line_count(width), 3)):
            for piece in doc.line_pieces(y, width):
                for x in range(piece.x, min(piece.x + piece.cells, width)):
                    await pilot.click(TokenView, offset=(x, y))
                    assert view.cursor == piece.token, (x, y, piece)
                    expected_clicks.append(piece.token)
        assert app.clicked == expected_clicks
        # the emoji: both of its cells give the token that holds its last byte
        y = next(y for y in range(doc.line_count(width)) if "😀" in doc.line_text(y, width))
        emoji = next(p for p in doc.line_pieces(y, width) if "😀" in p.text)
        assert view.document.token_text(emoji.token).endswith("😀")
        app.clicked.clear()
        await pilot.click(TokenView, offset=(emoji.x + 1, y))
        assert app.clicked == [emoji.token]
        # a click past the end of the text selects nothing
        app.clicked.clear()
        await pilot.click(TokenView, offset=(width - 1, doc.line_count(width) + 1))
        assert app.clicked == []


async def test_append_tokens_grows_the_view() -> None:
    app = ViewApp()
    async with app.run_test(size=(40, 8)) as pilot:
        view = app.query_one(TokenView)
        view.load("", [0])
        await pilot.pause()
        pieces = split_text(TEXT * 3, "words")
        asm = TokenAssembler(with_distribution=False)
        sent_tokens = sent_chars = 0
        heights = []
        for start in range(0, len(pieces), 7):
            for i, piece in enumerate(pieces[start : start + 7], start):
                asm.add(i, piece)
            offs = asm.tokens.offsets[sent_tokens + 1 :]
            view.append_tokens(asm.text[sent_chars : offs[-1]], offs, ranks=[1] * len(offs))
            sent_tokens, sent_chars = len(asm), offs[-1]
            heights.append(view.virtual_size.height)
            await pilot.pause()
        assert view.document.n_tokens == len(pieces) == view.revealed
        assert heights == sorted(heights) and heights[-1] > 8
        assert view.document.text == TEXT * 3
        # following the stream: the last line is on screen
        assert screen_text(view)[-1].endswith("him.")
        assert len(view.document.ranks) == view.document.n_tokens
        # appending without reveal changes nothing visible
        before = view.virtual_size
        view.append_tokens(" more", [sent_chars + 5], reveal=False)
        assert view.virtual_size == before and view.revealed == view.document.n_tokens - 1


async def test_reveal_bounds_the_view_and_the_cursor() -> None:
    app = ViewApp()
    async with app.run_test(size=(40, 8)) as pilot:
        view = app.query_one(TokenView)
        text, offsets = assemble(split_text(TEXT, "words"))
        view.load(text, offsets, revealed=3)
        view.focus()
        await pilot.pause()
        assert screen_text(view)[0] == "The lighthouse stood"
        assert all(row == "" for row in screen_text(view)[1:])
        await pilot.press("end", "right", "right", "down", "pagedown")
        assert view.cursor == 2
        view.cursor = 50
        assert view.cursor == 2
        view.reveal_more(2)
        await pilot.pause()
        assert view.revealed == 5 and screen_text(view)[0] == "The lighthouse stood on the"
        await pilot.press("end")
        assert view.cursor == 4
        view.revealed = 1
        await pilot.pause()
        assert view.cursor == 0 and screen_text(view)[0] == "The"
        view.revealed = 10**6
        assert view.revealed == view.document.n_tokens


async def test_rank_colours_and_fall_mark_change_the_strip() -> None:
    app = ViewApp()
    async with app.run_test(size=(60, 6)) as pilot:
        view = app.query_one(TokenView)
        text, offsets = assemble(split_text(TEXT, "words"))
        n = len(offsets) - 1
        ranks = [[1, 20, 300, 5000, None][i % 5] for i in range(n)]
        view.load(text, offsets, ranks=ranks)
        await pilot.pause()
        plain = view.render_line(0)
        view.show_ranks = True
        await pilot.pause()
        tinted = view.render_line(0)
        assert tinted.text == plain.text
        assert list(plain) != list(tinted)
        backgrounds = {}
        for seg in tinted:
            token = view.document.token_of_char(text.index(seg.text)) if seg.text.strip() else None
            if token is not None and token < 5:
                backgrounds[rank_bucket(ranks[token])] = seg.style.bgcolor
        assert len(set(backgrounds.values())) == 5  # four tints and the plain background
        view.show_ranks = False
        await pilot.pause()
        assert list(view.render_line(0)) == list(plain)
        view.set_ranks(None)
        assert view.document.ranks == [None] * n
        # the fall token is underlined and the text after it dimmed
        view.fall_index = 2
        await pilot.pause()
        segs = list(view.render_line(0))
        styles = {seg.text: seg.style for seg in segs}
        assert styles[" stood"].underline and styles[" stood"].bold
        assert styles[" on"].dim and not styles["The"].dim


def test_rank_buckets() -> None:
    assert [rank_bucket(r) for r in (None, 1, 10, 11, 100, 101, 1000, 1001)] == [0, 1, 1, 2, 2, 3, 3, 4]


async def test_large_sample_renders_and_moves() -> None:
    app = ViewApp()
    async with app.run_test(size=(80, 20)) as pilot:
        view = app.query_one(TokenView)
        body = " ".join(f"word{i}" for i in range(50_000))
        pieces = [m.group(0).encode() for m in re.finditer(r"\s*\S+", body)]
        text, offsets = assemble(pieces)
        view.load(text, offsets)
        view.focus()
        await pilot.pause()
        assert screen_text(view)[0].startswith("word0 word1 word2")
        await pilot.press("end")
        await pilot.pause()
        assert view.cursor == 49_999
        assert any("word49999" in row for row in screen_text(view))
        await pilot.press("left")
        assert view.cursor == 49_998


async def test_cursor_on_an_empty_span_token_highlights_the_character() -> None:
    app = ViewApp()
    async with app.run_test(size=(30, 5)) as pilot:
        view = app.query_one(TokenView)
        text, offsets = assemble(split_text("a😀b", "bytes"))  # a, 3 empty-span tokens, 😀, b
        view.load(text, offsets)
        view.cursor = 2
        await pilot.pause()
        assert view.cursor == 2
        assert cursor_cells(view) == [(0, "😀")]
        view.focus()
        await pilot.press("right")
        assert view.cursor == 4  # motions skip empty spans
        await pilot.press("right")
        assert view.cursor == 5 and cursor_cells(view) == [(0, "b")]
