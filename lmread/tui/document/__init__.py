"""The reader's token document: token spans over a text, word-wrapped into display lines.

This is the headless model behind the token view widget (``lmread.tui.widgets.token_view``) and
the one copy of a sample's text in the reader: the reading session reveals it, a live stream
appends to it, the widget draws it.  It imports nothing outside the standard library, so it can be
tested without a terminal.  Its layers, each a module of this package:

- :mod:`~lmread.tui.document.tokens`: text and token spans (``offsets`` has ``n + 1`` entries and
  token ``i`` spans ``text[offsets[i]:offsets[i + 1]]``, as :class:`lmread.records.Tokens`; a token
  that only starts a multi-byte character has an empty span, the character belongs to the token
  holding its last byte) and the reveal count: only the first :attr:`TokenDocument.revealed`
  tokens are visible, and wrapping, lines, lookups and motions see nothing after them, so the
  reader cannot read ahead (not even from where a line breaks);
- :mod:`~lmread.tui.document.cells`: display cells of characters (wide 2, zero-width 0, tabs to the
  next stop, control characters as visible symbols, newlines as a one-cell marker);
- :mod:`~lmread.tui.document.wrap`: the greedy, incremental word wrap per width;
- :mod:`~lmread.tui.document.lookup`: the pieces of each display line and lookups between cells,
  lines and tokens;
- :mod:`~lmread.tui.document.motions`: cursor motions, which skip empty-span tokens;
- :mod:`~lmread.tui.document.units`: the word and sentence rules (shared with the space-reveal).
"""

from __future__ import annotations

from lmread.tui.document.cells import (
    KIND_CONTROL,
    KIND_NEWLINE,
    KIND_TAB,
    KIND_TEXT,
    TAB_SIZE,
    char_cells,
    display_char,
)
from lmread.tui.document.lookup import LinePiece
from lmread.tui.document.motions import MOTION_KINDS, TokenMotions

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


class TokenDocument(TokenMotions):
    """Text plus token spans, with incremental word wrap, position lookups and cursor motions.

    ``char_width`` is the function giving the cells of one character (default :func:`char_cells`;
    the widget passes rich's so that its model agrees with what the terminal renderer measures).
    ``show_newlines`` draws newline markers as ``↵`` instead of a blank cell.  Raises ``ValueError``
    for malformed offsets.
    """
