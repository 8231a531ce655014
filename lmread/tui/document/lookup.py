"""The pieces of a display line: runs of one token's characters, each with what to draw and where.

:func:`line_pieces` cuts a character range of the text (one display line of a
:class:`~lmread.tui.document.wrap.WrappedDocument`) into pieces; it needs only the text, the
token offsets and how characters are drawn (:class:`~lmread.tui.document.cells.CellMeasure`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import NamedTuple

from lmread.tui.document.cells import KIND_NEWLINE, KIND_TAB, KIND_TEXT, TAB_ARROW, TAB_SIZE, CellMeasure

__all__ = ["LinePiece", "line_pieces"]


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


def line_pieces(text: str, offsets: Sequence[int], a: int, b: int, measure: CellMeasure) -> list[LinePiece]:
    """The pieces of the display line holding characters ``[a, b)`` of ``text`` (token
    ``offsets`` as :class:`~lmread.tui.document.tokens.TokenSpans`), left to right from cell 0
    (empty when ``a >= b``).  Cells past the wrap width belong to spaces hanging over the edge (a
    renderer crops them)."""
    pieces: list[LinePiece] = []
    if a >= b:
        return pieces
    offs = offsets
    plain = measure.plain.match
    info = measure.info
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
                shown = measure.newline_marker
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
