"""Cursor motions over the visible tokens: by token, word, sentence, line, page, to the edges.

Motions return token indexes and skip empty-span tokens: an empty-span token displays nothing (its
character is shown by the next token), so every motion lands on a token that displays at least one
character.  Words and sentences follow the rules of :mod:`lmread.tui.document.units`.

A :class:`DocumentNavigator` holds the :class:`~lmread.tui.document.wrap.WrappedDocument` it moves
over (line motions need the display lines) and uses only its public API and that of its spans.
"""

from __future__ import annotations

from lmread.tui.document.units import WORD_START_RE, last_match, next_sentence_start, prev_sentence_start
from lmread.tui.document.wrap import WrappedDocument

__all__ = ["MOTION_KINDS", "DocumentNavigator"]

#: Cursor motion kinds understood by :meth:`DocumentNavigator.move`.
MOTION_KINDS = ("token", "word", "sentence", "line", "page", "edge")


class DocumentNavigator:
    """Cursor motions over the visible tokens of ``wrapped`` (its spans, and its lines)."""

    def __init__(self, wrapped: WrappedDocument) -> None:
        self.wrapped = wrapped
        self.spans = wrapped.spans

    def first_token(self) -> int:
        """The first visible token that displays something (0 when none does)."""
        j = self.spans.display_token(0)
        return 0 if j is None else j

    def last_token(self) -> int:
        """The last visible token that displays something (``revealed - 1`` or 0 when none does)."""
        offs = self.spans.offsets
        j = self.spans.revealed - 1
        while j >= 0:
            if offs[j + 1] > offs[j]:
                return j
            j -= 1
        return max(0, self.spans.revealed - 1)

    def next_token(self, index: int) -> int:
        """The next visible token after ``index`` that displays something (else ``index``)."""
        offs = self.spans.offsets
        revealed = self.spans.revealed
        j = max(index + 1, 0)
        while j < revealed:
            if offs[j + 1] > offs[j]:
                return j
            j += 1
        return self.spans.clamp(index)

    def prev_token(self, index: int) -> int:
        """The previous visible token before ``index`` that displays something (else ``index``)."""
        offs = self.spans.offsets
        j = min(index, self.spans.revealed) - 1
        while j >= 0:
            if offs[j + 1] > offs[j]:
                return j
            j -= 1
        return self.spans.clamp(index)

    def _char_pos(self, index: int) -> int:
        """Character position of token ``index``'s first displayed character."""
        offs = self.spans.offsets
        return offs[max(0, min(index, len(offs) - 1))]

    def _token_end(self, index: int) -> int:
        offs = self.spans.offsets
        return offs[max(0, min(index, len(offs) - 2)) + 1] if len(offs) > 1 else 0

    def next_word(self, index: int) -> int:
        """The token holding the next word start after token ``index`` (else ``index``)."""
        spans = self.spans
        pos = max(self._token_end(index), self._char_pos(index) + 1)
        m = WORD_START_RE.search(spans.text, pos, spans.visible_end)
        if m is None:
            return spans.clamp(index)
        return spans.token_of_char(m.start())

    def prev_word(self, index: int) -> int:
        """The token holding the last word start before token ``index`` (else ``index``)."""
        spans = self.spans
        pos = min(self._char_pos(index), spans.visible_end)
        found = last_match(spans.text, WORD_START_RE, pos, lambda m: m.start())
        return spans.clamp(index) if found is None else spans.token_of_char(found)

    def next_sentence(self, index: int) -> int:
        """The token holding the next sentence start after token ``index`` (else ``index``)."""
        spans = self.spans
        pos = max(self._token_end(index), self._char_pos(index) + 1)
        found = next_sentence_start(spans.text, pos, spans.visible_end)
        return spans.clamp(index) if found is None else spans.token_of_char(found)

    def prev_sentence(self, index: int) -> int:
        """The token holding the last sentence start before token ``index`` (else ``index``)."""
        spans = self.spans
        pos = min(self._char_pos(index), spans.visible_end)
        found = prev_sentence_start(spans.text, pos)
        return spans.clamp(index) if found is None else spans.token_of_char(found)

    def line_move(self, index: int, lines: int, goal_x: int | None = None, width: int | None = None) -> int:
        """The token ``lines`` display lines below (negative: above) token ``index``, at column
        ``goal_x`` (default: the token's own column), clamped to the first/last line.  Lines that
        hold only token ``index`` itself are passed over; returns ``index`` when nothing moves."""
        spans, wrapped = self.spans, self.wrapped
        if spans.revealed == 0 or lines == 0:
            return spans.clamp(index)
        w = wrapped.width if width is None else max(1, int(width))
        shown = spans.display_token(index)
        if shown is None:
            shown = self.last_token()
        y, x = wrapped.token_anchor(shown, w)
        if goal_x is not None:
            x = goal_x
        n_lines = wrapped.line_count(w)
        step = 1 if lines > 0 else -1
        t = max(0, min(n_lines - 1, y + lines))
        if t == y:
            return spans.clamp(index)
        while 0 <= t < n_lines:
            tok = wrapped.token_near(x, t, w)
            if tok is not None and tok != shown:
                return tok
            t += step
        return spans.clamp(index)

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
        if self.spans.revealed == 0:
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
