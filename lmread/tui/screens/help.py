"""The ``?`` help screen: every key of the reader, in one table."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from lmread.records import CATEGORIES

#: (section, key, what it does): the one list the help screen shows.
KEYS: tuple[tuple[str, str, str], ...] = (
    ("Home", "enter / r", "read the selected study"),
    ("Home", "l", "start a live session (generate and read as it streams)"),
    ("Home", "v", "survival view of the selected study"),
    ("Home", "tab", "move between the studies and the models"),
    ("Reading", "space", "reveal the next sentence now (ahead of the pace)"),
    ("Reading", "+ / -", "faster / slower reading pace (words per second)"),
    ("Reading", "p", "pause / resume the reading pace"),
    ("Reading", "left / right", "cursor: previous / next token"),
    ("Reading", "ctrl+left / ctrl+right", "cursor: previous / next word"),
    ("Reading", "[ / ]", "cursor: previous / next sentence"),
    ("Reading", "up / down", "cursor: previous / next line"),
    ("Reading", "pageup / pagedown", "cursor: previous / next page"),
    ("Reading", "home / end", "cursor: first / last revealed token"),
    ("Marking", "f / enter", "the text falls at the cursor token (a prompt opens under the text)"),
    ("Marking", "e", "no fall so far (censored at what was revealed)"),
    ("Marking", "s", "skip this sample (it counts for nothing)"),
    ("Marking", "u", "undo your latest mark and go back to its sample"),
    ("Category prompt", "1-9, 0", "category: " + ", ".join(f"{(i + 1) % 10} {label}" for i, (_, label) in enumerate(CATEGORIES))),
    ("Category prompt", "1-3 (after the category)", "severity: 1 mild, 2 clear, 3 severe"),
    ("Category prompt", "n", "write a note"),
    ("Category prompt", "enter / escape", "save the mark (escape: no category)"),
    ("Category prompt", "x", "do not mark after all"),
    ("After a mark", "n / enter", "next sample"),
    ("After a mark", "g", "GLTR rank colours (blind mode: only after the mark)"),
    ("Anywhere", "v", "survival view"),
    ("Anywhere", "ctrl+p", "command palette"),
    ("Anywhere", "escape", "back (to the home screen)"),
    ("Anywhere", "?", "this help"),
    ("Anywhere", "q", "quit"),
)


def help_text() -> str:
    """The key table as plain text (the help screen shows it; tests check it)."""
    lines: list[str] = []
    section = None
    width = max(len(k) for _, k, _ in KEYS)
    for sec, key, what in KEYS:
        if sec != section:
            if section is not None:
                lines.append("")
            lines.append(sec)
            section = sec
        lines.append(f"  {key:<{width}}  {what}")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """Every key, grouped by where it works."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "close"),
        Binding("question_mark", "close", "close", show=False),
        Binding("q", "close", "close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static("lmread keys   (escape closes)", id="help-title", markup=False)
            text = Text()
            sections = {sec for sec, _, _ in KEYS}
            for line in help_text().splitlines():
                text.append(line + "\n", style="bold" if line in sections else "")
            yield Static(text, id="help-keys")

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
