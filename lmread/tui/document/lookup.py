"""Display lines as pieces, and lookups between cells, lines and tokens."""

from __future__ import annotations

from bisect import bisect_right
from typing import NamedTuple

from lmread.tui.document.cells import KIND_NEWLINE, KIND_TAB, KIND_TEXT, TAB_ARROW, TAB_SIZE
from lmread.tui.document.wrap import WrappedTokens

__all__ = ["LinePiece", "TokenLookups"]


class LinePiece(NamedTuple):
    """A run of one token's characters on one display line.

    ``text`` is what to draw (control characters already replaced), starting at cell ``x`` and
    ``cells`` wide; ``kind`` is one of the ``KIND_*`` constants; ``start``/``end`` is the character
    range of the text it shows.
    """

    token: int
    text: str
    x: int
    cells: int
    kind: int
    start: int
    end: int


class TokenLookups(WrappedTokens):
    """Wrapped token spans with the pieces of each display line and position lookups."""

    def line_pieces(self, y: int, width: int | None = None) -> list[LinePiece]:
        """The pieces of display line ``y``, left to right (empty for an empty line).

        Cells past the wrap width belong to spaces hanging over the edge (a renderer crops them)."""
        a, b = self.line_range(y, width)
        pieces: list[LinePiece] = []
        if a >= b:
            return pieces
        text = self._text
        offs = self._offsets
        plain = self._plain.match
        info = self._char_info
        tok = bisect_right(offs, a) - 1
        pos = a
        x = 0
        while pos < b:
            while offs[tok + 1] <= pos:
                tok += 1
            tend = offs[tok + 1]
            if tend > b:
                tend = b
            m = plain(text, pos, tend).end()
            if m == tend:
                pieces.append(LinePiece(tok, text[pos:tend], x, tend - pos, KIND_TEXT, pos, tend))
                x += tend - pos
                pos = tend
                continue
            run_start = pos
            run_x = x
            i = pos
            while i < tend:
                c = text[i]
                if c == "\n" or c == "\t":
                    kind = KIND_NEWLINE if c == "\n" else KIND_TAB
                    shown = self.newline_marker
                    if kind == KIND_TAB:
                        pad = TAB_SIZE - x % TAB_SIZE
                        shown = TAB_ARROW + " " * (pad - 1)
                    cells = len(shown)
                else:
                    cells, kind, shown = info(c)
                    if kind == KIND_TEXT:
                        x += cells
                        i += 1
                        continue
                if i > run_start:
                    pieces.append(
                        LinePiece(tok, text[run_start:i], run_x, x - run_x, KIND_TEXT, run_start, i)
                    )
                pieces.append(LinePiece(tok, shown, x, cells, kind, i, i + 1))
                x += cells
                i += 1
                run_start = i
                run_x = x
            if tend > run_start:
                pieces.append(LinePiece(tok, text[run_start:tend], run_x, x - run_x, KIND_TEXT, run_start, tend))
            pos = tend
        return pieces

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
        index = max(0, min(index, len(self._offsets) - 1))
        return self.line_of_char(self._offsets[index], width)

    def token_span_cells(self, index: int, width: int | None = None) -> list[tuple[int, int, int]]:
        """The cells token ``index`` occupies, as ``(y, x_start, x_end)`` per display line it
        touches (``x_end`` exclusive; empty for an empty-span or unrevealed token)."""
        a, b = self._offsets[index], self._offsets[index + 1]
        end = self._offsets[self._revealed]
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
        a, b = self._offsets[index], self._offsets[index + 1]
        end = self._offsets[self._revealed]
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
