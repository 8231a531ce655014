"""The inline prompt of a fall mark: it holds the mark being detailed and its
:class:`lmread.tui.marking.MarkEntry`, shown under the text of the reader.  It takes no keys from
textual itself: the reader screen hands it every key in the order they were typed
(:meth:`MarkPromptPanel.take_key`)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from lmread.records import CATEGORIES, Mark
from lmread.tui.marking import SEVERITIES, MarkEntry
from lmread.tui.widgets.alternatives import visible_piece

HELP = "1-9,0 category · then 1-3 severity · n note · enter/escape save · x don't mark"


def mark_prompt_text(entry: MarkEntry) -> Text:
    """The prompt: the fall token, the categories (the picked one highlighted), the severity,
    the note, and the keys."""
    shown = visible_piece(entry.token_text) if entry.token_text else "(part of a character)"
    text = Text.assemble(("Falls at token ", "bold"), (str(entry.at), "bold"), ": ", (shown, "reverse"), "\n")
    details = entry.details
    for i, (key, label) in enumerate(CATEGORIES):
        text.append(f" {(i + 1) % 10} {label} ", style="bold reverse" if key == details.category else "")
        text.append("\n" if i % 2 else " " * max(1, 28 - len(label)))
    if entry.stage == "severity" or details.severity:
        text.append("severity: ")
        for n, label in SEVERITIES:
            text.append(f" {n} {label} ", style="bold reverse" if details.severity == n else "")
        text.append("\n")
    if entry.editing_note:
        text.append("note: ")
        text.append(entry.note_draft or "")
        text.append(" ", style="reverse")
        text.append("   (enter keeps it, escape drops it)\n", style="dim")
    elif details.note:
        text.append(f"note: {details.note}\n")
    text.append(HELP, style="dim")
    return text


class MarkPromptPanel(Static):
    """Shown under the text while a fall mark is being detailed."""

    DEFAULT_CSS = """
    MarkPromptPanel { height: auto; border: thick $accent; background: $surface; padding: 0 1; }
    """

    entry: MarkEntry | None = None
    mark: Mark | None = None

    @property
    def is_open(self) -> bool:
        """Whether a mark is being detailed."""
        return self.entry is not None

    def open(self, mark: Mark, token_text: str) -> None:
        """Detail the fall ``mark`` (at the token whose text is ``token_text``)."""
        assert mark.at is not None
        self.mark, self.entry = mark, MarkEntry(at=mark.at, token_text=token_text)
        self.display = True
        self.update(mark_prompt_text(self.entry))

    def take_key(self, key: str, character: str | None) -> tuple[str, Mark] | None:
        """Feed one key to the entry.  When it closes the prompt, returns ``("save", mark)`` with
        the category, severity and note set on the mark, or ``("abandon", mark)``; else None."""
        entry, mark = self.entry, self.mark
        assert entry is not None and mark is not None
        outcome = entry.key(key, character)
        if outcome is None:
            self.update(mark_prompt_text(entry))
            return None
        self.entry = self.mark = None
        self.display = False
        details = entry.details
        mark.category, mark.severity, mark.note = details.category, details.severity, details.note
        return outcome, mark
