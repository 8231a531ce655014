"""The reader's token document: token spans over a text, word-wrapped into display lines, and a
cursor that moves over them.

This is the headless model behind the token view widget (``lmread.tui.widgets.token_view``).  It
imports nothing outside the standard library, so it can be tested without a terminal.  Three
layers, each holding the one below and using only its public API (as textual composes
``Document``, ``WrappedDocument(document)`` and ``DocumentNavigator(wrapped_document)``):

- :class:`TokenSpans` (:mod:`~lmread.tui.document.tokens`): text and token spans (``offsets`` has
  ``n + 1`` entries and token ``i`` spans ``text[offsets[i]:offsets[i + 1]]``, as
  :class:`lmread.records.Tokens`; a token that only starts a multi-byte character has an empty
  span, the character belongs to the token holding its last byte) and the reveal count: only the
  first :attr:`TokenSpans.revealed` tokens are visible, and the layers above see nothing after
  them, so the reader cannot read ahead (not even from where a line breaks).  This is the one copy
  of a sample's text in the reader: the reading session reveals it, a live stream appends to it;
- :class:`WrappedDocument` (:mod:`~lmread.tui.document.wrap`): the greedy, incremental word wrap of
  the visible text per width, the pieces of each display line
  (:mod:`~lmread.tui.document.lookup`) and the lookups between cells, lines and tokens; display
  cells of characters come from :mod:`~lmread.tui.document.cells` (wide 2, zero-width 0, tabs to
  the next stop, control characters as visible symbols, newlines as a one-cell marker);
- :class:`DocumentNavigator` (:mod:`~lmread.tui.document.motions`): cursor motions, which skip
  empty-span tokens; words and sentences follow :mod:`~lmread.tui.document.units` (shared with
  the space-reveal).

The token view wraps and navigates the spans it is shown: ``WrappedDocument(spans)``,
``DocumentNavigator(wrapped)``.
"""

from __future__ import annotations

from lmread.tui.document.cells import (
    KIND_CONTROL,
    KIND_NEWLINE,
    KIND_TAB,
    KIND_TEXT,
    TAB_SIZE,
    CellMeasure,
    char_cells,
    display_char,
)
from lmread.tui.document.lookup import LinePiece
from lmread.tui.document.motions import MOTION_KINDS, DocumentNavigator
from lmread.tui.document.tokens import TokenSpans
from lmread.tui.document.wrap import WrappedDocument

__all__ = [
    "KIND_CONTROL",
    "KIND_NEWLINE",
    "KIND_TAB",
    "KIND_TEXT",
    "MOTION_KINDS",
    "TAB_SIZE",
    "CellMeasure",
    "DocumentNavigator",
    "LinePiece",
    "TokenSpans",
    "WrappedDocument",
    "char_cells",
    "display_char",
]
