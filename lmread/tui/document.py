"""The reader's token document: token spans over a text, word-wrapped into display lines.

This is the headless model behind the token view widget (``lmread.tui.widgets.token_view``).  It
imports nothing outside the standard library, so it can be tested without a terminal.

Text and tokens.  ``offsets`` has ``n + 1`` entries and token ``i`` spans
``text[offsets[i]:offsets[i + 1]]`` (as :class:`lmread.records.Tokens`).  A token that only starts a
multi-byte character has an empty span; the character belongs to the token holding its last byte,
and that is the token every lookup by position (:meth:`TokenDocument.token_at`) returns.

Reveal.  Only the first :attr:`TokenDocument.revealed` tokens are visible: wrapping, lines, lookups
and cursor motions see ``text[:offsets[revealed]]`` and nothing after it, so the reader cannot read
ahead (not even from where a line breaks).

Display.  Each character takes display cells: East Asian wide/full-width characters 2, combining
marks and other zero-width characters 0 (they stay with the character before them), the rest 1.
A tab shows as ``→`` padded to the next tab stop (every 4 cells); other control characters show as
visible symbols (``␀``, ``␛``, ``␡``, ``<85>``...) with kind :data:`KIND_CONTROL` so a renderer can
style them; a newline ends its line and shows as a one-cell marker (a space, or ``↵`` with
``show_newlines``) so that newline tokens can carry the cursor and a colour.

Wrapping is a greedy word wrap over cells: lines break after a run of spaces (spaces that do not
fit hang past the right edge), after a tab, or before/after a wide character; a word longer than
the line is cut.  Line starts are computed per width, lazily and incrementally: appending text or
revealing more rewraps only from the start of the last line, so streaming costs O(appended).  Plain
lines (ASCII and other single-cell characters) are wrapped with string searches instead of a loop
over characters, which keeps a full wrap of 250k characters in the tens of milliseconds.

Cursor motions (:meth:`TokenDocument.move`) return token indexes and skip empty-span tokens: an
empty-span token displays nothing (its character is shown by the next token), so every motion lands
on a token that displays at least one character.  The cursor may still be *set* to an empty-span
token; :meth:`TokenDocument.display_token` names the token that shows its character.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

__all__ = [
    "KIND_CONTROL",
    "KIND_NEWLINE",
    "KIND_TAB",
    "KIND_TEXT",
    "MOTION_KINDS",
    "TAB_SIZE",
    "LinePiece",
    "TokenDocument",
    "char_cells",
    "display_char",
]

#: Piece kinds: ordinary text, a control character shown as a symbol, a tab, a newline marker.
KIND_TEXT = 0
KIND_CONTROL = 1
KIND_TAB = 2
KIND_NEWLINE = 3

#: Tab stops every this many cells.
TAB_SIZE = 4
TAB_ARROW = "→"

#: Cursor motion kinds understood by :meth:`TokenDocument.move`.
MOTION_KINDS = ("token", "word", "sentence", "line", "page", "edge")

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


class _Wrap:
    """Line starts of the visible text at one width, valid up to character ``upto``."""

    __slots__ = ("starts", "upto", "width")

    def __init__(self, width: int) -> None:
        self.width = width
        self.starts: list[int] = []
        self.upto = -1


# Runs of characters handled in bulk by the wrapper: "plain" (one cell each, nothing special) and
# "wide" (two cells each).  Built from fixed ranges, checked against the width function in use.
_PLAIN_RANGES = ((0x20, 0x7E), (0xA1, 0xAC), (0xAE, 0x2FF), (0x370, 0x377), (0x37A, 0x37F),
                 (0x384, 0x38A), (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x482), (0x48A, 0x52F),
                 (0x2010, 0x2027), (0x2030, 0x205E), (0x20A0, 0x20C0), (0x2100, 0x214F), (0x2190, 0x21FF))
_WIDE_RANGES = ((0x3041, 0x3096), (0x30A1, 0x30FA), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
                (0xF900, 0xFA6D), (0xFF01, 0xFF60), (0x3001, 0x3003), (0x3008, 0x3011), (0x1F600, 0x1F64F))
_RUN_CACHE: dict[tuple[Callable[[str], int], int], re.Pattern[str]] = {}


def _run_pattern(width_fn: Callable[[str], int], cells: int) -> re.Pattern[str]:
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


_WORD_START_RE = re.compile(r"(?<!\w)\w")
# A sentence ends at . ! ? or … (possibly followed by closing quotes/brackets) followed by
# whitespace, or at a line break; the next non-space character starts a sentence.
_SENTENCE_GAP_RE = re.compile(r"(?:[.!?…]+[\"'”’)\]»]*\s+|\n\s*)(?=\S)")
_SENTENCE_LOOKBACK = 64
_NON_SPACE_RE = re.compile(r"\S")


class TokenDocument:
    """Text plus token spans, with incremental word wrap, position lookups and cursor motions.

    ``char_width`` is the function giving the cells of one character (default :func:`char_cells`;
    the widget passes rich's so that its model agrees with what the terminal renderer measures).
    ``show_newlines`` draws newline markers as ``↵`` instead of a blank cell.  Raises ``ValueError``
    for malformed offsets.
    """

    def __init__(
        self,
        text: str = "",
        offsets: Sequence[int] | None = None,
        revealed: int | None = None,
        *,
        width: int = 80,
        char_width: Callable[[str], int] | None = None,
        show_newlines: bool = False,
        max_widths: int = 4,
    ) -> None:
        self._char_width = char_width or char_cells
        self._plain = _run_pattern(self._char_width, 1)
        self._wide = _run_pattern(self._char_width, 2)
        self.newline_marker = "↵" if show_newlines else " "
        self._info: dict[str, tuple[int, int, str]] = {}
        self._wraps: OrderedDict[int, _Wrap] = OrderedDict()
        self._max_widths = max(1, max_widths)
        self._width = max(1, int(width))
        self.version = 0
        self._text = ""
        self._offsets: list[int] = [0]
        self._revealed = 0
        if offsets is None:
            offsets = [0, len(text)] if text else [0]
        self.load(text, offsets, revealed)

    # ------------------------------------------------------------------ content

    @property
    def text(self) -> str:
        """The whole text (revealed or not)."""
        return self._text

    @property
    def offsets(self) -> list[int]:
        """The token offsets (``n + 1`` entries).  Do not modify."""
        return self._offsets

    @property
    def n_tokens(self) -> int:
        """Number of tokens held (revealed or not)."""
        return len(self._offsets) - 1

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @property
    def revealed(self) -> int:
        """Number of visible tokens; setting it is clamped to ``[0, n_tokens]``."""
        return self._revealed

    @revealed.setter
    def revealed(self, value: int) -> None:
        value = max(0, min(int(value), len(self._offsets) - 1))
        if value != self._revealed:
            self._revealed = value
            self.version += 1

    @property
    def visible_end(self) -> int:
        """Character index where the visible text ends (``offsets[revealed]``)."""
        return self._offsets[self._revealed]

    @property
    def visible_text(self) -> str:
        """The visible text."""
        return self._text[: self._offsets[self._revealed]]

    def load(self, text: str, offsets: Sequence[int], revealed: int | None = None) -> None:
        """Replace the content; ``revealed=None`` reveals every token."""
        offs = [int(v) for v in offsets] or [0]
        _check_offsets(offs, 0, len(text), "offsets")
        if offs[0] != 0:
            raise ValueError(f"offsets must start at 0, not {offs[0]}")
        self._text = text
        self._offsets = offs
        self._wraps.clear()
        n = len(offs) - 1
        self._revealed = n if revealed is None else max(0, min(int(revealed), n))
        self.version += 1

    def append(self, text_chunk: str, new_offsets: Sequence[int], reveal: bool = False) -> None:
        """Append ``text_chunk`` and tokens ending at ``new_offsets`` (absolute end offsets, one per
        new token, non-decreasing, within the new text).  If the text reaches past the last end
        offset, the last token absorbs the extra characters (this is how an incomplete trailing
        character flushed as U+FFFD is added: ``append("\\ufffd", [])``).  With ``reveal`` the new
        tokens become visible; otherwise :attr:`revealed` is unchanged.  Costs O(appended)."""
        old_end = len(self._text)
        new_end = old_end + len(text_chunk)
        offs = [int(v) for v in new_offsets]
        _check_offsets(offs, old_end, new_end, "new_offsets")
        if offs and offs[-1] < new_end:
            offs[-1] = new_end
        elif not offs and text_chunk:
            if len(self._offsets) == 1:
                raise ValueError("text appended without any token to hold it")
            self._offsets[-1] = new_end
        self._text += text_chunk
        self._offsets.extend(offs)
        if reveal:
            self._revealed = len(self._offsets) - 1
        self.version += 1

    def span(self, index: int) -> tuple[int, int]:
        """Character span of token ``index``."""
        return self._offsets[index], self._offsets[index + 1]

    def token_text(self, index: int) -> str:
        """The text of token ``index``."""
        return self._text[self._offsets[index] : self._offsets[index + 1]]

    def token_of_char(self, pos: int) -> int:
        """The token holding character ``pos`` (the one with its last byte; never an empty span)."""
        return bisect_right(self._offsets, pos) - 1

    def display_token(self, index: int) -> int | None:
        """The visible token that displays token ``index``: ``index`` itself when its span is not
        empty, else the next visible token with a non-empty span; ``None`` when there is none."""
        offs = self._offsets
        j = max(0, index)
        while j < self._revealed:
            if offs[j + 1] > offs[j]:
                return j
            j += 1
        return None

    def clamp(self, index: int) -> int:
        """``index`` clamped to the visible tokens ``[0, revealed - 1]`` (0 when none is)."""
        return max(0, min(int(index), self._revealed - 1))

    # ------------------------------------------------------------------ display cells

    def _char_info(self, ch: str) -> tuple[int, int, str]:
        """(cells, kind, display text) of one non-tab, non-newline character."""
        info = self._info.get(ch)
        if info is None:
            shown = display_char(ch)
            if shown is not None:
                info = (len(shown), KIND_CONTROL, shown)
            else:
                info = (max(0, self._char_width(ch)), KIND_TEXT, ch)
            self._info[ch] = info
        return info

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
        wrap = self._wraps.get(w)
        if wrap is None:
            wrap = _Wrap(w)
            self._wraps[w] = wrap
            while len(self._wraps) > self._max_widths:
                self._wraps.popitem(last=False)
        else:
            self._wraps.move_to_end(w)
        end = self._offsets[self._revealed]
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
            para = self._text.rfind("\n", 0, end) + 1
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
        text = self._text
        info = self._char_info
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
        text = self._text
        info = self._char_info
        plain = self._plain.match
        wide_run = self._wide.match
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

    # ------------------------------------------------------------------ cursor motions

    def _visible_nonempty(self, index: int) -> bool:
        return 0 <= index < self._revealed and self._offsets[index + 1] > self._offsets[index]

    def first_token(self) -> int:
        """The first visible token that displays something (0 when none does)."""
        j = self.display_token(0)
        return 0 if j is None else j

    def last_token(self) -> int:
        """The last visible token that displays something (``revealed - 1`` or 0 when none does)."""
        offs = self._offsets
        j = self._revealed - 1
        while j >= 0:
            if offs[j + 1] > offs[j]:
                return j
            j -= 1
        return max(0, self._revealed - 1)

    def next_token(self, index: int) -> int:
        """The next visible token after ``index`` that displays something (else ``index``)."""
        offs = self._offsets
        j = max(index + 1, 0)
        while j < self._revealed:
            if offs[j + 1] > offs[j]:
                return j
            j += 1
        return self.clamp(index)

    def prev_token(self, index: int) -> int:
        """The previous visible token before ``index`` that displays something (else ``index``)."""
        offs = self._offsets
        j = min(index, self._revealed) - 1
        while j >= 0:
            if offs[j + 1] > offs[j]:
                return j
            j -= 1
        return self.clamp(index)

    def _char_pos(self, index: int) -> int:
        """Character position of token ``index``'s first displayed character."""
        index = max(0, min(index, len(self._offsets) - 1))
        return self._offsets[index]

    def _token_end(self, index: int) -> int:
        index = max(0, min(index, len(self._offsets) - 2))
        return self._offsets[index + 1] if len(self._offsets) > 1 else 0

    def next_word(self, index: int) -> int:
        """The token holding the next word start after token ``index`` (else ``index``)."""
        end = self._offsets[self._revealed]
        pos = max(self._token_end(index), self._char_pos(index) + 1)
        m = _WORD_START_RE.search(self._text, pos, end)
        if m is None:
            return self.clamp(index)
        return self.token_of_char(m.start())

    def prev_word(self, index: int) -> int:
        """The token holding the last word start before token ``index`` (else ``index``)."""
        pos = min(self._char_pos(index), self._offsets[self._revealed])
        found = self._last_match(_WORD_START_RE, pos, lambda m: m.start())
        return self.clamp(index) if found is None else self.token_of_char(found)

    def _last_match(
        self, pattern: re.Pattern[str], pos: int, where: Callable[[re.Match[str]], int], margin: int = 0
    ) -> int | None:
        """The largest ``where(match)`` below ``pos`` over matches of ``pattern`` inside
        ``text[:pos]``, searching windows that grow backwards from ``pos``.  A value within
        ``margin`` characters of a window's start is only trusted at the start of the text (a match
        could have begun before the window)."""
        window = 256
        while True:
            lo = max(0, pos - window)
            trust = lo if lo == 0 else lo + margin
            best = None
            for m in pattern.finditer(self._text, lo, pos):
                value = where(m)
                if trust <= value < pos:
                    best = value
            if best is not None or lo == 0:
                return best
            window *= 4

    def _text_start(self) -> int | None:
        """Position of the first visible non-space character."""
        first = _NON_SPACE_RE.search(self._text, 0, self._offsets[self._revealed])
        return None if first is None else first.start()

    def next_sentence(self, index: int) -> int:
        """The token holding the next sentence start after token ``index`` (else ``index``).

        A sentence starts at the first non-space character of the text, and at the first
        non-space character after ``.``, ``!``, ``?`` or ``…`` (optionally followed by closing
        quotes or brackets) and whitespace, or after a line break."""
        end = self._offsets[self._revealed]
        pos = max(self._token_end(index), self._char_pos(index) + 1)
        start = self._text_start()
        if start is not None and start >= pos:
            return self.token_of_char(start)
        lo = max(0, pos - _SENTENCE_LOOKBACK)
        for m in _SENTENCE_GAP_RE.finditer(self._text, lo, end):
            if pos <= m.end() < end:
                return self.token_of_char(m.end())
        return self.clamp(index)

    def prev_sentence(self, index: int) -> int:
        """The token holding the last sentence start before token ``index`` (else ``index``)."""
        pos = min(self._char_pos(index), self._offsets[self._revealed])
        found = self._last_match(_SENTENCE_GAP_RE, pos, lambda m: m.end(), _SENTENCE_LOOKBACK)
        if found is None:
            start = self._text_start()
            if start is not None and start < pos:
                found = start
        return self.clamp(index) if found is None else self.token_of_char(found)

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

    def line_move(self, index: int, lines: int, goal_x: int | None = None, width: int | None = None) -> int:
        """The token ``lines`` display lines below (negative: above) token ``index``, at column
        ``goal_x`` (default: the token's own column), clamped to the first/last line.  Lines that
        hold only token ``index`` itself are passed over; returns ``index`` when nothing moves."""
        if self._revealed == 0 or lines == 0:
            return self.clamp(index)
        w = self._width if width is None else max(1, int(width))
        shown = self.display_token(index)
        if shown is None:
            shown = self.last_token()
        y, x = self.token_anchor(shown, w)
        if goal_x is not None:
            x = goal_x
        n_lines = self.line_count(w)
        step = 1 if lines > 0 else -1
        t = max(0, min(n_lines - 1, y + lines))
        if t == y:
            return self.clamp(index)
        while 0 <= t < n_lines:
            tok = self.token_near(x, t, w)
            if tok is not None and tok != shown:
                return tok
            t += step
        return self.clamp(index)

    def move(
        self,
        index: int,
        kind: str,
        direction: int,
        *,
        page_lines: int = 20,
        goal_x: int | None = None,
        width: int | None = None,
    ) -> int:
        """Apply one cursor motion (a kind of :data:`MOTION_KINDS`; ``direction`` > 0 forward,
        < 0 backward) and return the new token index, always within the visible tokens."""
        if kind not in MOTION_KINDS:
            raise ValueError(f"unknown cursor motion {kind!r}: use one of {', '.join(MOTION_KINDS)}")
        if self._revealed == 0:
            return 0
        forward = direction > 0
        if kind == "token":
            return self.next_token(index) if forward else self.prev_token(index)
        if kind == "word":
            return self.next_word(index) if forward else self.prev_word(index)
        if kind == "sentence":
            return self.next_sentence(index) if forward else self.prev_sentence(index)
        if kind == "line":
            return self.line_move(index, 1 if forward else -1, goal_x, width)
        if kind == "page":
            n = max(1, page_lines)
            return self.line_move(index, n if forward else -n, goal_x, width)
        return self.last_token() if forward else self.first_token()

    # ------------------------------------------------------------------ helpers for renderers

    def visible_lines(self, y0: int, y1: int, width: int | None = None) -> Iterable[list[LinePiece]]:
        """Pieces of lines ``y0 .. y1 - 1`` (clipped to the line count)."""
        n = self.line_count(width)
        for y in range(max(0, y0), min(y1, n)):
            yield self.line_pieces(y, width)


def _check_offsets(offs: list[int], lo: int, hi: int, what: str) -> None:
    """Raise ``ValueError`` unless ``offs`` is non-decreasing within ``[lo, hi]`` (and, for full
    offsets, ends at ``hi``)."""
    prev = lo
    for i, v in enumerate(offs):
        if v < prev or v > hi:
            raise ValueError(
                f"{what}[{i}] = {v} is out of order or outside the text ({lo}..{hi}); "
                "offsets must be non-decreasing character positions"
            )
        prev = v
    if what == "offsets" and offs and offs[-1] != hi:
        raise ValueError(f"offsets end at {offs[-1]} but the text has {hi} characters")
