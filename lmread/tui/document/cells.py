"""Display cells of characters: widths, control-character stand-ins, and the runs of characters
the wrapper handles in bulk.

Each character takes display cells: East Asian wide/full-width characters 2, combining marks and
other zero-width characters 0 (they stay with the character before them), the rest 1.  A tab shows
as ``→`` padded to the next tab stop (every :data:`TAB_SIZE` cells); other control characters show
as visible symbols (``␀``, ``␛``, ``␡``, ``<85>``...) with kind :data:`KIND_CONTROL`; a newline
ends its line and shows as a one-cell marker.  Standard library only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

__all__ = [
    "KIND_CONTROL",
    "KIND_NEWLINE",
    "KIND_TAB",
    "KIND_TEXT",
    "TAB_ARROW",
    "TAB_SIZE",
    "CellMeasure",
    "char_cells",
    "display_char",
    "run_pattern",
]

#: Piece kinds: ordinary text, a control character shown as a symbol, a tab, a newline marker.
KIND_TEXT = 0
KIND_CONTROL = 1
KIND_TAB = 2
KIND_NEWLINE = 3

#: Tab stops every this many cells.
TAB_SIZE = 4
TAB_ARROW = "→"

_ZERO_WIDTH_CATEGORIES = frozenset({"Mn", "Me", "Cf"})
_CONTROL_NAMES = {0x2028: "␤", 0x2029: "¶"}


def char_cells(ch: str) -> int:
    """Display cells of one (non-control) character: 2 for East Asian wide/full-width, 0 for
    combining marks and other zero-width characters, else 1.  Standard library only."""
    o = ord(ch)
    if 0x20 <= o < 0x7F:
        return 1
    cat = unicodedata.category(ch)
    if cat in _ZERO_WIDTH_CATEGORIES or 0x1160 <= o <= 0x11FF:
        return 0
    if cat != "Cn" and unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    return 1


def display_char(ch: str) -> str | None:
    """The visible stand-in for a control character (``None`` when ``ch`` is not one).

    C0 controls map to the Unicode control pictures (``\\x00`` → ``␀``, ESC → ``␛``), DEL to ``␡``,
    C1 controls to ``<hex>``, the line/paragraph separators to ``␤``/``¶``.  Tab and newline are
    handled by the wrapper, not here.
    """
    o = ord(ch)
    if o < 0x20:
        return chr(0x2400 + o)
    if o == 0x7F:
        return "␡"
    if 0x80 <= o < 0xA0:
        return f"<{o:02x}>"
    return _CONTROL_NAMES.get(o)



# Runs of characters handled in bulk by the wrapper: "plain" (one cell each, nothing special) and
# "wide" (two cells each).  Built from fixed ranges, checked against the width function in use.
_PLAIN_RANGES = ((0x20, 0x7E), (0xA1, 0xAC), (0xAE, 0x2FF), (0x370, 0x377), (0x37A, 0x37F),
                 (0x384, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x482), (0x48A, 0x52F),
                 (0x2010, 0x2027), (0x2030, 0x205E), (0x20A0, 0x20C0), (0x2100, 0x214F), (0x2190, 0x21FF))
_WIDE_RANGES = ((0x3041, 0x3096), (0x30A1, 0x30FA), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
                (0xF900, 0xFA6D), (0xFF01, 0xFF60), (0x3001, 0x3003), (0x3008, 0x3011), (0x1F600, 0x1F64F))
_RUN_CACHE: dict[tuple[Callable[[str], int], int], re.Pattern[str]] = {}


def run_pattern(width_fn: Callable[[str], int], cells: int) -> re.Pattern[str]:
    """A regex matching runs of characters of ``cells`` cells each that need no special handling
    (``cells`` 1: the plain ranges, every character checked; 2: the wide ranges, each range kept
    only if a sample of it is two cells wide under ``width_fn``)."""
    key = (width_fn, cells)
    pat = _RUN_CACHE.get(key)
    if pat is not None:
        return pat
    ranges: list[tuple[int, int]] = []
    if cells == 1:
        for lo, hi in _PLAIN_RANGES:
            for o in range(lo, hi + 1):
                ch = chr(o)
                if (
                    unicodedata.category(ch) in ("Mn", "Me", "Mc", "Cf", "Cc", "Cn", "Zl", "Zp")
                    or width_fn(ch) != 1
                    or char_cells(ch) != 1
                ):
                    continue
                if ranges and ranges[-1][1] == o - 1:
                    ranges[-1] = (ranges[-1][0], o)
                else:
                    ranges.append((o, o))
    else:
        for lo, hi in _WIDE_RANGES:
            sample = {lo, hi, *range(lo, hi + 1, 97)}
            if all(width_fn(chr(o)) == 2 and unicodedata.category(chr(o)) not in ("Cn", "Mn") for o in sample):
                ranges.append((lo, hi))
    body = "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges
    )
    pat = re.compile(f"[{body}]*")
    _RUN_CACHE[key] = pat
    return pat



class CellMeasure:
    """How one document's characters are drawn: ``char_width`` gives the cells of a character
    (default :func:`char_cells`; the token view passes rich's), ``show_newlines`` draws a newline
    as ``↵`` instead of a blank cell.  Caches what it measured."""

    def __init__(self, char_width: Callable[[str], int] | None = None, show_newlines: bool = False) -> None:
        self.char_width = char_width or char_cells
        #: runs of plain one-cell characters and of wide two-cell characters (see :func:`run_pattern`)
        self.plain = run_pattern(self.char_width, 1)
        self.wide = run_pattern(self.char_width, 2)
        self.newline_marker = "↵" if show_newlines else " "
        self._info: dict[str, tuple[int, int, str]] = {}

    def info(self, ch: str) -> tuple[int, int, str]:
        """(cells, kind, display text) of one character other than a tab or a newline."""
        info = self._info.get(ch)
        if info is None:
            shown = display_char(ch)
            if shown is not None:
                info = (len(shown), KIND_CONTROL, shown)
            else:
                info = (max(0, self.char_width(ch)), KIND_TEXT, ch)
            self._info[ch] = info
        return info
