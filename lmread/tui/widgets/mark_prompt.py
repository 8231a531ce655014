"""The inline prompt of a fall mark: it shows a :class:`lmread.tui.marking.MarkEntry` under the
text of the reader.  It takes no keys itself; the reader screen feeds them to the entry in the
order they were typed and redraws this panel."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from lmread.records import CATEGORIES
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

    def show_entry(self, entry: MarkEntry | None) -> None:
        """Draw ``entry`` (None hides the panel)."""
        self.display = entry is not None
        if entry is not None:
            self.update(mark_prompt_text(entry))
