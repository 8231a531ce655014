"""The token view: a scrolling, word-wrapped view of one sample's tokens, built on Textual's line API.

All text logic lives in :mod:`lmread.tui.document`: the widget draws a
:class:`~lmread.tui.document.TokenSpans` (:attr:`TokenView.document`), wraps it in a
:class:`~lmread.tui.document.WrappedDocument` measured as rich draws (:attr:`TokenView.wrapped`) and
moves its cursor with a :class:`~lmread.tui.document.DocumentNavigator` (:attr:`TokenView.navigator`);
it turns display lines into :class:`~textual.strip.Strip` objects, caches them, and handles keys,
clicks and scrolling.  It draws spans it is given (:meth:`TokenView.show`; the reader's session owns
the spans of its samples) or ones it loads itself (:meth:`TokenView.load`); after they changed,
:meth:`TokenView.sync` redraws what changed.

Rendering.  ``render_line(y)`` renders display line ``scroll_y + y`` from an LRU cache keyed by
the line index, its character range, the wrap width, the cursor token when it is on that line, the
colouring mode, the fall mark and a style generation, so a cursor move re-renders two lines and an
append only the lines that changed.  Pieces are styled by :mod:`lmread.tui.widgets.token_styles`
(cursor, GLTR rank tints with :attr:`TokenView.show_ranks`, the fall mark
:attr:`TokenView.fall_index`); an empty-span cursor token highlights the token showing its character.

Keys (not shown in the footer): left/right token, ctrl+left/ctrl+right word, ``[``/``]``
sentence, up/down line (keeping the column), pageup/pagedown page, home/end first/last token.
A click moves the cursor to the token under the mouse and posts :class:`TokenView.TokenClicked`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.cells import get_character_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from lmread.tui.document import (
    KIND_TEXT,
    MOTION_KINDS,
    DocumentNavigator,
    TokenSpans,
    WrappedDocument,
)
from lmread.tui.widgets.token_styles import piece_style, rank_bucket

__all__ = ["TokenView", "new_document"]

def new_document() -> TokenSpans:
    """An empty document for a token view to show (the view wraps it as it draws)."""
    return TokenSpans()


class _TokenMessage(Message):
    """A message about one token of a :class:`TokenView`."""

    def __init__(self, token_view: TokenView, index: int) -> None:
        super().__init__()
        self.token_view = token_view
        self.index = index

    @property
    def control(self) -> TokenView:
        return self.token_view


class TokenView(ScrollView, can_focus=True):
    """A word-wrapped, scrollable view of a token sequence with a token cursor.

    Use :meth:`load` for a whole sample and :meth:`append_tokens` while it streams.  Only the
    first :attr:`revealed` tokens are shown.  Posts :class:`CursorMoved` whenever the cursor
    changes and :class:`TokenClicked` when a token is clicked.
    """

    DEFAULT_CSS = """
    TokenView {
        background: $surface;
        color: $foreground;
        overflow-y: scroll;
        overflow-x: hidden;
    }
    TokenView:focus {
        background-tint: $foreground 3%;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "cursor('token', -1)", "Previous token", show=False),
        Binding("right", "cursor('token', 1)", "Next token", show=False),
        Binding("ctrl+left", "cursor('word', -1)", "Previous word", show=False),
        Binding("ctrl+right", "cursor('word', 1)", "Next word", show=False),
        Binding("left_square_bracket", "cursor('sentence', -1)", "Previous sentence", show=False),
        Binding("right_square_bracket", "cursor('sentence', 1)", "Next sentence", show=False),
        Binding("up", "cursor('line', -1)", "Line up", show=False),
        Binding("down", "cursor('line', 1)", "Line down", show=False),
        Binding("pageup", "cursor('page', -1)", "Page up", show=False),
        Binding("pagedown", "cursor('page', 1)", "Page down", show=False),
        Binding("home", "cursor('edge', -1)", "First token", show=False),
        Binding("end", "cursor('edge', 1)", "Last token", show=False),
    ]

    cursor: reactive[int] = reactive(0, repaint=False, init=False)
    """Index of the token under the cursor (clamped to ``[0, revealed - 1]``)."""

    show_ranks: reactive[bool] = reactive(False, repaint=False, init=False)
    """Tint tokens by their rank under the model (GLTR colours)."""

    fall_index: reactive[int | None] = reactive(None, repaint=False, init=False)
    """The marked fall token (highlighted; the text after it is dimmed), or ``None``."""

    class CursorMoved(_TokenMessage):
        """The cursor moved to token ``index``."""

    class TokenClicked(_TokenMessage):
        """Token ``index`` was clicked (the cursor is already on it)."""

    def __init__(
        self,
        text: str = "",
        offsets: Sequence[int] | None = None,
        *,
        revealed: int | None = None,
        ranks: Sequence[int | None] | None = None,
        show_newlines: bool = False,
        follow: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """``follow``: while streaming, keep the view scrolled to the end if it was at the end."""
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.show_newlines = show_newlines
        self.document: TokenSpans = new_document()
        self.wrapped = WrappedDocument(self.document, char_width=get_character_cell_size, show_newlines=show_newlines)
        self.navigator = DocumentNavigator(self.wrapped)
        self.follow = follow
        self._drawn = (0, 0, 0)  # the document's (load_count, visible_end, line count) last drawn
        self._cache: LRUCache[tuple, Strip] = LRUCache(1024)
        self._styles: dict[tuple[int, int, int, bool], Style] = {}
        self._style_gen = 0
        self._goal_x: int | None = None
        self._vertical_move = False
        if text or offsets is not None:
            self._load_document(text, offsets if offsets is not None else [0, len(text)], revealed, ranks)

    # ------------------------------------------------------------------ content

    def load(
        self,
        text: str,
        offsets: Sequence[int],
        revealed: int | None = None,
        ranks: Sequence[int | None] | None = None,
    ) -> None:
        """Show a new sample: ``offsets`` as :class:`lmread.records.Tokens` (``n + 1`` entries),
        ``revealed`` tokens visible (all when ``None``), optional per-token ranks.  Resets the
        cursor to 0, the fall mark to ``None`` and scrolls to the top.  Text past the last offset
        belongs to no token and is dropped."""
        self._load_document(text, offsets, revealed, ranks)
        self._reset()

    def show(self, document: TokenSpans) -> None:
        """Draw ``document`` from now on (it is not copied: call :meth:`sync` after changing it).
        Resets the cursor, the fall mark and the scroll as :meth:`load` does."""
        self._use_document(document)
        self._reset()

    def _use_document(self, document: TokenSpans) -> None:
        """Wrap and navigate ``document`` (measured with rich's cell widths)."""
        self.document = document
        self.wrapped = WrappedDocument(document, width=self.wrapped.width, char_width=get_character_cell_size,
                                       show_newlines=self.show_newlines)
        self.navigator = DocumentNavigator(self.wrapped)

    def _reset(self) -> None:
        self.set_reactive(TokenView.cursor, 0)
        self.set_reactive(TokenView.fall_index, None)
        self._goal_x = None
        self._cache.clear()
        self._update_virtual_size()
        if self.is_mounted:
            self.scroll_to(0, 0, animate=False)
            self.refresh()
            self.post_message(self.CursorMoved(self, 0))

    def _load_document(
        self,
        text: str,
        offsets: Sequence[int],
        revealed: int | None,
        ranks: Sequence[int | None] | None,
    ) -> None:
        offs = list(offsets) or [0]
        if offs[-1] < len(text):
            text = text[: max(0, offs[-1])]
        self.document.load(text, offs, revealed, ranks)

    def sync(self) -> None:
        """Redraw after the document changed: tokens appended or revealed are drawn from the old
        last line on (and the view follows the end if it was there); anything else (a reload,
        fewer tokens revealed) redraws everything.  The cursor is kept inside the visible tokens."""
        doc = self.document
        loads, drawn_end, old_lines = self._drawn
        same = doc.load_count == loads
        end = doc.visible_end
        if same and end > drawn_end:
            width = self._width()
            was_at_end = self.follow and self.is_mounted and self.is_vertical_scroll_end
            self._after_reveal(old_lines, was_at_end, width)
        elif not same or end < drawn_end:
            if not same:
                self._cache.clear()
            self._update_virtual_size()
            self.refresh()
        if self.cursor > doc.clamp(self.cursor):
            self.cursor = doc.clamp(self.cursor)

    def append_tokens(
        self,
        text_chunk: str,
        new_offsets: Sequence[int],
        ranks: Sequence[int | None] | None = None,
        reveal: bool = True,
    ) -> None:
        """Append streamed tokens: ``text_chunk`` and the absolute end offsets of the new tokens
        (one per token, as ``Tokens.offsets[n_old + 1:]``), with their ranks if known.  With
        ``reveal`` they become visible at once.  Only the lines that change are re-rendered."""
        if not new_offsets and not text_chunk:
            return
        self.document.append(text_chunk, new_offsets, reveal=reveal, ranks=ranks)
        self.sync()

    def set_ranks(self, ranks: Sequence[int | None] | None) -> None:
        """Replace the per-token ranks (``None`` entries or ``None`` for none)."""
        self.document.set_ranks(ranks)
        self._style_gen += 1
        self._cache.clear()
        self.refresh()

    @property
    def revealed(self) -> int:
        """Number of visible tokens; setting it reveals (or hides) tokens up to that count."""
        return self.document.revealed

    @revealed.setter
    def revealed(self, value: int) -> None:
        self.document.revealed = value
        self.sync()

    def reveal_more(self, n_tokens: int) -> None:
        """Reveal ``n_tokens`` more tokens (as far as there are)."""
        self.revealed = self.document.revealed + max(0, int(n_tokens))

    def _after_reveal(self, old_lines: int, was_at_end: bool, width: int) -> None:
        """Refresh the lines from the old last line on, grow the virtual size, follow the end."""
        new_lines = self.wrapped.line_count(width)
        self._update_virtual_size(width)
        if not self.is_mounted:
            return
        first = max(0, old_lines - 1)
        self.refresh_lines(first, new_lines - first)
        if was_at_end and new_lines > old_lines:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    # ------------------------------------------------------------------ geometry

    def _width(self) -> int:
        """The wrap width: the scrollable content width (80 before the widget has a size)."""
        width = self.scrollable_content_region.width if self.is_mounted else 0
        return width if width > 0 else self.wrapped.width

    def _update_virtual_size(self, width: int | None = None) -> None:
        doc = self.document
        width = self._width() if width is None else width
        self.wrapped.width = width
        lines = self.wrapped.line_count(width)
        self._drawn = (doc.load_count, doc.visible_end, lines)
        self.virtual_size = Size(width, lines)

    def on_resize(self, event: events.Resize) -> None:
        """Rewrap at the new width and keep the cursor in view."""
        self._cache.clear()
        self._update_virtual_size()
        self._scroll_cursor_into_view()

    def notify_style_update(self) -> None:
        """Styles changed (theme, focus): drop cached strips and styles."""
        super().notify_style_update()
        self._styles.clear()
        self._style_gen += 1
        self._cache.clear()

    def token_at_offset(self, x: int, y: int) -> int | None:
        """The token shown at content cell ``(x, y)`` of the widget (scroll included), or ``None``."""
        scroll_x, scroll_y = self.scroll_offset
        return self.wrapped.token_at(x + scroll_x, y + scroll_y, self._width())

    # ------------------------------------------------------------------ cursor

    def validate_cursor(self, value: int) -> int:
        return self.document.clamp(value)

    def watch_cursor(self, old: int, new: int) -> None:
        if not self._vertical_move:
            self._goal_x = None
        self._refresh_token_lines(old)
        self._refresh_token_lines(new)
        self._scroll_cursor_into_view()
        self.post_message(self.CursorMoved(self, new))

    def watch_show_ranks(self, value: bool) -> None:
        self._cache.clear()
        self.refresh()

    def watch_fall_index(self, value: int | None) -> None:
        self._cache.clear()
        self.refresh()

    def move_cursor(self, kind: str, direction: int) -> int:
        """Move the cursor by one motion of ``kind`` ("token", "word", "sentence", "line",
        "page", "edge") forward (``direction`` > 0) or backward; returns the new index.  Vertical
        motions keep the column of the first vertical move."""
        if kind not in MOTION_KINDS:
            raise ValueError(f"unknown cursor motion {kind!r}: use one of {', '.join(MOTION_KINDS)}")
        doc = self.document
        width = self._width()
        vertical = kind in ("line", "page")
        if vertical and self._goal_x is None:
            shown = doc.display_token(self.cursor)
            if shown is not None:
                self._goal_x = self.wrapped.token_anchor(shown, width)[1]
        page = max(1, self.scrollable_content_region.height - 1) if self.is_mounted else 20
        new = self.navigator.move(self.cursor, kind, direction, page_lines=page, goal_x=self._goal_x if vertical else None,
                       width=width)
        self._vertical_move = vertical
        try:
            self.cursor = new
        finally:
            self._vertical_move = False
        if not vertical:
            self._goal_x = None
        return self.cursor

    def action_cursor(self, kind: str, direction: int) -> None:
        """Key binding action: :meth:`move_cursor`."""
        self.move_cursor(kind, direction)

    def _refresh_token_lines(self, index: int) -> None:
        if not self.is_mounted:
            return
        doc = self.document
        shown = doc.display_token(index)
        if shown is None:
            return
        width = self._width()
        a, b = doc.span(shown)
        y0 = self.wrapped.line_of_char(a, width)
        y1 = self.wrapped.line_of_char(max(a, b - 1), width)
        self.refresh_lines(y0, y1 - y0 + 1)

    def _scroll_cursor_into_view(self) -> None:
        if not self.is_mounted:
            return
        doc = self.document
        shown = doc.display_token(self.cursor)
        if shown is None:
            return
        width = self._width()
        a, b = doc.span(shown)
        y0 = self.wrapped.line_of_char(a, width)
        y1 = self.wrapped.line_of_char(max(a, b - 1), width)
        height = self.scrollable_content_region.height
        if height <= 0:
            return
        top = int(self.scroll_offset.y)
        if y0 < top:
            self.scroll_to(y=y0, animate=False)
        elif y1 >= top + height:
            self.scroll_to(y=max(y0 - height + 1, y1 - height + 1) if y1 - y0 < height else y0, animate=False)

    # ------------------------------------------------------------------ mouse

    def on_click(self, event: events.Click) -> None:
        """Select the token under the mouse."""
        offset = event.get_content_offset(self)
        if offset is None:
            return
        token = self.token_at_offset(offset.x, offset.y)
        if token is None:
            return
        event.stop()
        self.focus()
        self.cursor = token
        self.post_message(self.TokenClicked(self, token))

    # ------------------------------------------------------------------ rendering

    def _style(self, kind: int, bucket: int, fall_state: int, is_cursor: bool) -> Style:
        """The style of one piece (see :func:`piece_style`), cached per widget style."""
        key = (kind, bucket, fall_state, is_cursor)
        style = self._styles.get(key)
        if style is None:
            style = self._styles[key] = piece_style(self.rich_style, kind, bucket, fall_state, is_cursor)
        return style

    def render_line(self, y: int) -> Strip:
        """Render display line ``scroll_y + y``."""
        scroll_y = int(self.scroll_offset.y)
        width = self._width()
        return self._render_line(scroll_y + y, width)

    def _render_line(self, line: int, width: int) -> Strip:
        doc, wrapped = self.document, self.wrapped
        if line < 0 or line >= wrapped.line_count(width):
            return Strip.blank(width, self.rich_style)
        start, end = wrapped.line_range(line, width)
        shown = doc.display_token(self.cursor)
        cursor_here = -1
        if shown is not None:
            a, b = doc.span(shown)
            if a < end and b > start:
                cursor_here = shown
        fall = self.fall_index
        key = (line, start, end, width, cursor_here, self.show_ranks, fall, self._style_gen)
        strip = self._cache.get(key)
        if strip is not None:
            return strip
        ranks = doc.ranks if self.show_ranks else None
        segments: list[Segment] = []
        style_of = self._style
        for piece in wrapped.line_pieces(line, width):
            if piece.x >= width:
                break
            tok = piece.token
            bucket = rank_bucket(ranks[tok]) if ranks is not None and tok < len(ranks) else 0
            fall_state = 0 if fall is None or tok < fall else (1 if tok == fall else 2)
            text = piece.text
            if piece.x + piece.cells > width and piece.kind == KIND_TEXT and piece.cells == len(text):
                text = text[: width - piece.x]
            segments.append(Segment(text, style_of(piece.kind, bucket, fall_state, tok == cursor_here)))
        strip = Strip(segments).crop_extend(0, width, self.rich_style)
        self._cache[key] = strip
        return strip
