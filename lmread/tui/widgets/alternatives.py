"""Token pieces drawn so that different tokens look different: the model's top alternatives after
a mark, and the fall token in the mark prompt.

White space and invisible characters are drawn as symbols (a space ``␣``, a line break ``⏎``, a
tab ``⇥``, an empty piece ``∅``) and every other control, format or separator character as its
escape (``\\x0b``, ``\\u200b``), so `` m`` and ``m`` no longer look alike.  Where two alternatives
still draw the same (a token split differently, bytes that are not UTF-8), each of them shows its
token id.  Headless apart from the rich ``Text`` it returns.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Sequence

from rich.text import Text

__all__ = ["SYMBOLS", "alternatives_text", "visible_piece"]

#: characters drawn as a symbol
SYMBOLS = {" ": "␣", "\n": "⏎", "\t": "⇥"}


def _visible_char(ch: str) -> str:
    if ch in SYMBOLS:
        return SYMBOLS[ch]
    if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"):
        code = ord(ch)
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return ch


def visible_piece(piece: str) -> str:
    """``piece`` with white space and invisible characters drawn visibly (``∅`` when empty)."""
    return "".join(_visible_char(ch) for ch in piece) or "∅"


def alternatives_text(pieces: Sequence[str], logprobs: Sequence[float],
                      ids: Sequence[int] | None = None) -> Text:
    """The alternatives as ``piece probability`` pairs, pieces drawn visibly; a piece that draws
    like another one gets its token id (``#id``) when the ids are known."""
    shown = [visible_piece(p) for p in pieces]
    counts = Counter(shown)
    out = Text()
    for i, (label, lp) in enumerate(zip(shown, logprobs, strict=False)):
        if i:
            out.append("  ")
        out.append(label, style="bold")
        if counts[label] > 1 and ids is not None and i < len(ids):
            out.append(f"#{ids[i]}", style="dim")
        out.append(f" {math.exp(lp):.2f}")
    return out
