"""The details of a fall mark as the reader types them: category, severity, note.

:class:`MarkEntry` is the state of the inline prompt shown under the text after ``f`` (or Enter);
it takes one key at a time, in the order the keys were typed, and says when the mark is to be
saved or dropped.  It imports nothing from textual, so every key sequence is testable without a
terminal.  Keys: ``1``-``9``, ``0`` pick the category (in the order of
:data:`lmread.records.CATEGORIES`), then ``1``-``3`` the severity (another digit picks another
category); ``n`` starts a note (typed characters, backspace; Enter keeps it, escape drops the
edit); Enter or escape saves the mark with what was picked; ``x`` drops the mark.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lmread.records import CATEGORIES

__all__ = ["SEVERITIES", "MarkDetails", "MarkEntry", "digit_category"]

#: severity keys and labels
SEVERITIES: tuple[tuple[int, str], ...] = ((1, "mild"), (2, "clear"), (3, "severe"))


@dataclass
class MarkDetails:
    """What the prompt returns: category key, severity 1-3, note (all optional)."""

    category: str | None = None
    severity: int | None = None
    note: str | None = None


def digit_category(char: str) -> str | None:
    """The category of digit key ``char`` (``1`` the first, ``0`` the tenth), else None."""
    if len(char) == 1 and char.isdigit():
        index = (int(char) - 1) % 10
        if index < len(CATEGORIES):
            return CATEGORIES[index][0]
    return None


@dataclass
class MarkEntry:
    """The inline prompt of a fall at token ``at`` (whose text is ``token_text``)."""

    at: int
    token_text: str
    details: MarkDetails = field(default_factory=MarkDetails)
    #: "category" until one is picked, then "severity"
    stage: str = "category"
    #: the note being typed (None: not typing a note)
    note_draft: str | None = None

    @property
    def editing_note(self) -> bool:
        """Whether keys are going into the note."""
        return self.note_draft is not None

    def key(self, key: str, character: str | None = None) -> str | None:
        """Apply one key (textual's key name and the character it types, if any).  Returns
        ``"save"`` (save the mark with :attr:`details`), ``"abandon"`` (no mark after all) or None
        (the prompt stays open; a key that means nothing here changes nothing)."""
        if self.note_draft is not None:
            return self._note_key(key, character)
        char = character or ""
        if key in ("enter", "escape"):
            return "save"
        if key == "x":
            return "abandon"
        if key == "n":
            self.note_draft = self.details.note or ""
            return None
        if self.stage == "severity" and len(char) == 1 and char in "123":
            self.details.severity = int(char)
        elif (category := digit_category(char)) is not None:
            self.details.category = category
            self.stage = "severity"
        return None

    def _note_key(self, key: str, character: str | None) -> None:
        draft = self.note_draft or ""
        if key == "enter":
            self.details.note = " ".join(draft.split()) or None
            self.note_draft = None
        elif key == "escape":
            self.note_draft = None
        elif key in ("backspace", "ctrl+h"):
            self.note_draft = draft[:-1]
        elif character and len(character) == 1 and character.isprintable():
            self.note_draft = draft + character
        return None
