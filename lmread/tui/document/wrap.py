"""Word wrap of the visible text into display lines, per width, incrementally.

Wrapping is a greedy word wrap over cells: lines break after a run of spaces (spaces that do not
fit hang past the right edge), after a tab, or before/after a wide character; a word longer than
the line is cut.  Line starts are computed per width, lazily and incrementally: appending text or
revealing more rewraps only from the start of the last line, so streaming costs O(appended).  Plain
lines (ASCII and other single-cell characters) are wrapped with string searches instead of a loop
over characters, which keeps a full wrap of 250k characters in the tens of milliseconds.  Only the
revealed text is wrapped, so not even a line break shows what comes next.

A :class:`WrappedDocument` holds the :class:`~lmread.tui.document.tokens.TokenSpans` it wraps and
uses only their public API (text, offsets, the reveal count and ``load_count``, which tells it
when the content was replaced).  It also answers the lookups between display cells, lines and
tokens (the pieces of a line come from :func:`lmread.tui.document.lookup.line_pieces`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable

from lmread.tui.document.cells import KIND_NEWLINE, TAB_SIZE, CellMeasure
from lmread.tui.document.lookup import LinePiece, line_pieces
from lmread.tui.document.tokens import TokenSpans

__all__ = ["WrappedDocument"]


class _Wrap:
    """Line starts of the visible text at one width, valid up to character ``upto``."""

    __slots__ = ("starts", "upto", "width")

    def __init__(self, width: int) -> None:
        self.width = width
        self.starts: list[int] = []
        self.upto = -1



class WrappedDocument:
    """The display lines of ``spans`` (see the module docstring).

    ``char_width`` gives the cells of one character (default
    :func:`~lmread.tui.document.cells.char_cells`); ``show_newlines`` draws newline markers as
    ``↵`` instead of a blank cell; wraps of the ``max_widths`` most recent widths are kept."""

    def __init__(
        self,
        spans: TokenSpans,
        *,
        width: int = 80,
        char_width: Callable[[str], int] | None = None,
        show_newlines: bool = False,
        max_widths: int = 4,
    ) -> None:
        self.spans = spans
        self.measure = CellMeasure(char_width, show_newlines)
        self._wraps: OrderedDict[int, _Wrap] = OrderedDict()
        self._max_widths = max(1, max_widths)
        self._width = max(1, int(width))
        self._load_count = spans.load_count

    # ------------------------------------------------------------------ wrapping

    @property
    def width(self) -> int:
        """The default wrap width (cells) used when a method is called without ``width``."""
        return self._width

    @width.setter
    def width(self, value: int) -> None:
        self._width = max(1, int(value))

    def _wrap(self, width: int | None) -> _Wrap:
        """The wrap state for ``width``, brought up to date with the visible text."""
        w = self._width if width is None else max(1, int(width))
        spans = self.spans
        if spans.load_count != self._load_count:  # the content was replaced: every wrap is stale
            self._load_count = spans.load_count
            self._wraps.clear()
        wrap = self._wraps.get(w)
        if wrap is None:
            wrap = _Wrap(w)
            self._wraps[w] = wrap
            while len(self._wraps) > self._max_widths:
                self._wraps.popitem(last=False)
        else:
            self._wraps.move_to_end(w)
        end = spans.visible_end
        if wrap.upto != end:
            self._rewrap(wrap, end)
        return wrap

    def _rewrap(self, wrap: _Wrap, end: int) -> None:
        starts = wrap.starts
        if not starts or wrap.upto < 0:
            starts.clear()
            s = 0
        elif end > wrap.upto:
            # Only the last line's break was decided by the end of the text: redo it.
            s = starts.pop()
        else:
            # Shrinking: lines after a newline do not depend on what came before it.
            para = self.spans.text.rfind("\n", 0, end) + 1
            k = bisect_right(starts, para) - 1
            s = starts[k]
            del starts[k:]
        self._wrap_from(starts, s, end, wrap.width)
        wrap.upto = end

    def _wrap_from(self, starts: list[int], s: int, end: int, width: int) -> None:
        """Append line starts from ``s`` (a line start) over ``text[:end]``."""
        append = starts.append
        line_end = self._line_end
        while True:
            append(s)
            if s >= end:
                return
            nxt = line_end(s, end, width)
            if nxt is None:
                return
            s = nxt if nxt > s else s + 1  # always progress

    def _hang(self, j: int, end: int) -> int | None:
        """Spaces (and zero-width characters) from ``j`` hang past the edge; return where the next
        line starts, or ``None`` if they run to ``end``."""
        text = self.spans.text
        info = self.measure.info
        while j < end:
            cj = text[j]
            if cj == " " or (cj != "\n" and cj != "\t" and info(cj)[0] == 0):
                j += 1
            else:
                break
        if j >= end:
            return None
        return j + 1 if text[j] == "\n" else j

    def _line_end(self, s: int, end: int, width: int) -> int | None:
        """Where the line starting at ``s`` ends (the start of the next line), or ``None`` when it
        runs to ``end`` undecided (it is the last line).

        Runs of plain one-cell characters are handled in bulk with string searches; other
        characters one at a time.  Break opportunities: before a non-space that follows a space, a
        tab or a wide character, and before a wide character."""
        text = self.spans.text
        info = self.measure.info
        plain = self.measure.plain.match
        wide_run = self.measure.wide.match
        rfind = text.rfind
        x = 0
        i = s
        last_opp = -1
        prev_breaks = False  # the previous visible character allows a break after it
        while i < end:
            room = width - x if x < width else 0
            lim = i + room + 1
            r = plain(text, i, lim if lim < end else end).end()
            if r > i:
                # A run of plain characters [i, r), one cell each, no newline.
                if r - i <= room:
                    t = r
                    while t > i and text[t - 1] == " ":
                        t -= 1
                    if t > i:
                        k = rfind(" ", i, t)
                        if k >= i:
                            last_opp = k + 1
                        elif i > s and prev_breaks:
                            last_opp = i
                    x += r - i
                    prev_breaks = text[r - 1] == " "
                    i = r
                    continue
                o = i + room  # first character that does not fit
                if text[o] == " ":
                    return self._hang(o + 1, end)
                if o > i:
                    k = rfind(" ", i, o)
                    if k >= i:
                        return k + 1
                    if i > s and prev_breaks and text[i] != " ":
                        return i
                elif i > s and prev_breaks:
                    return o
                if last_opp > s:
                    return last_opp
                return o
            lim = i + room // 2 + 1
            r = wide_run(text, i, lim if lim < end else end).end()
            if r > i:
                # A run of wide characters [i, r), two cells each: a break may come before any.
                if 2 * (r - i) <= room:
                    if r - 1 > s:
                        last_opp = r - 1
                    x += 2 * (r - i)
                    prev_breaks = True
                    i = r
                    continue
                o = i + room // 2  # first one that does not fit
                if o > s:
                    return o
                # o == s: a wide character on a line narrower than it; handled below.
            c = text[i]
            if c == "\n":
                return i + 1
            if c == "\t":
                w = TAB_SIZE - x % TAB_SIZE
                wide = False
            else:
                w = info(c)[0]
                if w == 0:
                    i += 1
                    continue
                wide = w >= 2
            opp = i > s and (prev_breaks or wide)
            if x + w > width:
                if opp:
                    return i
                if last_opp > s:
                    return last_opp
                if i > s:
                    return i
                # A single character wider than the whole line: it goes on this line alone.
            elif opp:
                last_opp = i
            x += w
            prev_breaks = wide or c == "\t"
            i += 1
        return None

    def line_count(self, width: int | None = None) -> int:
        """Number of display lines of the visible text at ``width`` (at least 1)."""
        return len(self._wrap(width).starts)

    def line_range(self, y: int, width: int | None = None) -> tuple[int, int]:
        """Character range ``(start, end)`` of display line ``y`` (the newline ending it included)."""
        wrap = self._wrap(width)
        starts = wrap.starts
        start = starts[y]
        end = starts[y + 1] if y + 1 < len(starts) else wrap.upto
        return start, end

    def line_of_char(self, pos: int, width: int | None = None) -> int:
        """The display line holding character ``pos`` (the last line for ``pos`` past the end)."""
        starts = self._wrap(width).starts
        return max(0, bisect_right(starts, pos) - 1)

    # ------------------------------------------------------------------ lookups

    def line_pieces(self, y: int, width: int | None = None) -> list[LinePiece]:
        """The pieces of display line ``y``, left to right (empty for an empty line).

        Cells past the wrap width belong to spaces hanging over the edge (a renderer crops them)."""
        a, b = self.line_range(y, width)
        return line_pieces(self.spans.text, self.spans.offsets, a, b, self.measure)

    def line(self, y: int, width: int | None = None) -> list[tuple[int, str, int]]:
        """Display line ``y`` as ``(token_index, display_text, cells)`` triples, left to right."""
        return [(p.token, p.text, p.cells) for p in self.line_pieces(y, width)]

    def line_text(self, y: int, width: int | None = None) -> str:
        """The display text of line ``y`` (control characters replaced, nothing cropped)."""
        return "".join(p.text for p in self.line_pieces(y, width))

    def token_at(self, x: int, y: int, width: int | None = None) -> int | None:
        """The token displaying the cell at column ``x`` of line ``y``, or ``None`` (outside text)."""
        wrap = self._wrap(width)
        if y < 0 or y >= len(wrap.starts) or x < 0:
            return None
        for p in self.line_pieces(y, width):
            if p.x <= x < p.x + p.cells:
                return p.token
        return None

    def line_of_token(self, index: int, width: int | None = None) -> int:
        """The display line where token ``index`` starts (for an empty span: where its character
        is shown; for a token not revealed: the last line)."""
        index = max(0, min(index, self.spans.n_tokens))
        return self.line_of_char(self.spans.offsets[index], width)

    def token_span_cells(self, index: int, width: int | None = None) -> list[tuple[int, int, int]]:
        """The cells token ``index`` occupies, as ``(y, x_start, x_end)`` per display line it
        touches (``x_end`` exclusive; empty for an empty-span or unrevealed token)."""
        a, b = self.spans.span(index)
        end = self.spans.visible_end
        if a >= b or a >= end:
            return []
        wrap = self._wrap(width)
        y = self.line_of_char(a, width)
        out: list[tuple[int, int, int]] = []
        n_lines = len(wrap.starts)
        while y < n_lines and wrap.starts[y] < b:
            x0 = x1 = -1
            for p in self.line_pieces(y, width):
                if p.token == index:
                    if x0 < 0:
                        x0 = p.x
                    x1 = p.x + p.cells
            if x0 >= 0:
                out.append((y, x0, x1))
            y += 1
        return out

    def token_anchor(self, index: int, width: int | None = None) -> tuple[int, int]:
        """Where token ``index`` is seen: ``(y, x)`` of its first non-blank cell inside the wrap
        width (a leading space left at the end of the previous line does not count), else of its
        first cell inside the width, else of its first cell; its line's start if it has none."""
        w = self._width if width is None else max(1, int(width))
        a, b = self.spans.span(index)
        end = self.spans.visible_end
        if a >= b or a >= end:
            return self.line_of_token(index, w), 0
        wrap = self._wrap(w)
        y = self.line_of_char(a, w)
        first: tuple[int, int] | None = None
        n_lines = len(wrap.starts)
        while y < n_lines and wrap.starts[y] < b:
            for p in self.line_pieces(y, w):
                if p.token != index or p.cells <= 0:
                    continue
                if first is None or (first[1] >= w and p.x < w):
                    first = (y, p.x)
                if p.x < w and p.text.strip():
                    return y, p.x + (len(p.text) - len(p.text.lstrip()) if p.cells == len(p.text) else 0)
            y += 1
        return first if first is not None else (self.line_of_token(index, w), 0)

    def token_near(self, x: int, y: int, width: int | None = None) -> int | None:
        """The token at column ``x`` of line ``y``, or the nearest one on that line inside the wrap
        width (the last one left of ``x``, else the first); ``None`` for a line with none."""
        w = self._width if width is None else max(1, int(width))
        best = None
        best_marker = None  # a newline marker is only chosen when the line has nothing else
        for p in self.line_pieces(y, w):
            if p.cells <= 0:
                continue
            if p.x <= x < p.x + p.cells:
                return p.token
            if p.x < w and (p.x <= x or (best is None and best_marker is None)):
                if p.kind == KIND_NEWLINE:
                    best_marker = p.token
                else:
                    best = p.token
        return best if best is not None else best_marker
