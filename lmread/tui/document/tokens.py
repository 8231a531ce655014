"""Text and token spans with a reveal count: the content of a token document.

``offsets`` has ``n + 1`` entries and token ``i`` spans ``text[offsets[i]:offsets[i + 1]]`` (as
:class:`lmread.records.Tokens`).  A token that only starts a multi-byte character has an empty
span; the character belongs to the token holding its last byte, and that is the token every lookup
by position (:meth:`TokenSpans.token_of_char`) returns.  Only the first :attr:`TokenSpans.revealed`
tokens are visible.  Each token may carry its rank under the model (``None`` where unknown).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

__all__ = ["TokenSpans"]


class TokenSpans:
    """Text plus token spans and how many tokens are revealed.  Raises ``ValueError`` for
    malformed offsets.  ``version`` grows with every change, ``load_count`` with every :meth:`load`
(the layers above, and a renderer, tell from them what they have to redo)."""

    def __init__(self, text: str = "", offsets: Sequence[int] | None = None, revealed: int | None = None) -> None:
        self.version = 0
        self.load_count = 0
        self._text = ""
        self._offsets: list[int] = [0]
        self._ranks: list[int | None] = []
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
    def ranks(self) -> list[int | None]:
        """Per-token ranks (``n`` entries, ``None`` where unknown).  Do not modify; use
        :meth:`set_ranks`."""
        return self._ranks

    def set_ranks(self, ranks: Sequence[int | None] | None) -> None:
        """Replace the per-token ranks (cut or padded with ``None`` to the token count)."""
        self._ranks = _fit(ranks, len(self._offsets) - 1)
        self.version += 1

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

    def load(self, text: str, offsets: Sequence[int], revealed: int | None = None,
             ranks: Sequence[int | None] | None = None) -> None:
        """Replace the content; ``revealed=None`` reveals every token."""
        offs = [int(v) for v in offsets] or [0]
        _check_offsets(offs, 0, len(text), "offsets")
        if offs[0] != 0:
            raise ValueError(f"offsets must start at 0, not {offs[0]}")
        self._text = text
        self._offsets = offs
        self._ranks = _fit(ranks, len(offs) - 1)
        self.load_count += 1
        n = len(offs) - 1
        self._revealed = n if revealed is None else max(0, min(int(revealed), n))
        self.version += 1

    def append(self, text_chunk: str, new_offsets: Sequence[int], reveal: bool = False,
               ranks: Sequence[int | None] | None = None) -> None:
        """Append ``text_chunk`` and tokens ending at ``new_offsets`` (absolute end offsets, one per
        new token, non-decreasing, within the new text), with their ranks if known.  If the text
        reaches past the last end offset, the last token absorbs the extra characters (this is how
        an incomplete trailing character flushed as U+FFFD is added: ``append("\\ufffd", [])``).
        With ``reveal`` the new tokens become visible; otherwise :attr:`revealed` is unchanged.
        Costs O(appended)."""
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
        self._ranks.extend(_fit(ranks, len(offs)))
        if reveal:
            self._revealed = len(self._offsets) - 1
        self.version += 1

    def extend_to(self, text: str, offsets: Sequence[int], ranks: Sequence[int | None] | None = None,
                  reveal: bool = False) -> bool:
        """Bring the document up to ``text``/``offsets`` when it holds their beginning (the stored
        version of a stream it showed): the missing tokens are appended with their ranks (revealed
        with ``reveal``), the tokens held stay as they are.  Otherwise everything is loaded,
        keeping the reveal count (all tokens with ``reveal``), and False is returned."""
        n = len(self._offsets) - 1
        if (
            len(offsets) > n
            and (offsets[n] == self._offsets[n] or (len(offsets) == n + 1 and offsets[n] > self._offsets[n]))
            and list(offsets[:n]) == self._offsets[:n]
            and text.startswith(self._text)
        ):
            tail = list(ranks[n:]) if ranks is not None else None
            self.append(text[len(self._text) :], list(offsets[n + 1 :]), reveal=reveal, ranks=tail)
            return True
        self.load(text, offsets, None if reveal else self._revealed, ranks)
        return False

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


def _fit(ranks: Sequence[int | None] | None, n: int) -> list[int | None]:
    """``ranks`` as a list of exactly ``n`` entries (cut, or padded with ``None``)."""
    out: list[int | None] = list(ranks or [])[:n]
    if len(out) < n:
        out.extend([None] * (n - len(out)))
    return out


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
