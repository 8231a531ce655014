"""Word wrap of the visible text into display lines, per width, incrementally.

Wrapping is a greedy word wrap over cells: lines break after a run of spaces (spaces that do not
fit hang past the right edge), after a tab, or before/after a wide character; a word longer than
the line is cut.  Line starts are computed per width, lazily and incrementally: appending text or
revealing more rewraps only from the start of the last line, so streaming costs O(appended).  Plain
lines (ASCII and other single-cell characters) are wrapped with string searches instead of a loop
over characters, which keeps a full wrap of 250k characters in the tens of milliseconds.  Only the
revealed text is wrapped, so not even a line break shows what comes next.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Sequence

from lmread.tui.document.cells import KIND_CONTROL, KIND_TEXT, TAB_SIZE, char_cells, display_char, run_pattern
from lmread.tui.document.tokens import TokenSpans

__all__ = ["WrappedTokens"]


class _Wrap:
    """Line starts of the visible text at one width, valid up to character ``upto``."""

    __slots__ = ("starts", "upto", "width")

    def __init__(self, width: int) -> None:
        self.width = width
        self.starts: list[int] = []
        self.upto = -1



class WrappedTokens(TokenSpans):
    """Token spans word-wrapped into display lines (see the module docstring).

    ``char_width`` gives the cells of one character (default :func:`char_cells`); ``show_newlines``
    draws newline markers as ``↵`` instead of a blank cell; wraps of the ``max_widths`` most recent
    widths are kept."""

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
        self._plain = run_pattern(self._char_width, 1)
        self._wide = run_pattern(self._char_width, 2)
        self.newline_marker = "↵" if show_newlines else " "
        self._info: dict[str, tuple[int, int, str]] = {}
        self._wraps: OrderedDict[int, _Wrap] = OrderedDict()
        self._max_widths = max(1, max_widths)
        self._width = max(1, int(width))
        super().__init__(text, offsets, revealed)

    def _content_replaced(self) -> None:
        self._wraps.clear()

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
