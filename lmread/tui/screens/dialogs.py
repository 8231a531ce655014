"""Small modal screens: the category prompt of a fall mark, the live-session dialog, and the
"terminal too small" overlay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Key
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, SelectionList, Static

from lmread.records import CATEGORIES
from lmread.tui.messages import LiveConfig

MIN_WIDTH, MIN_HEIGHT = 60, 16


@dataclass
class MarkDetails:
    """What the category prompt returns: category key, severity 1-3, note (all optional)."""

    category: str | None = None
    severity: int | None = None
    note: str | None = None


def _digit_category(char: str) -> str | None:
    if char.isdigit():
        index = (int(char) - 1) % 10
        if index < len(CATEGORIES):
            return CATEGORIES[index][0]
    return None


class MarkPrompt(ModalScreen[MarkDetails | None]):
    """Pick the category (1-9, 0), then optionally the severity (1-3) and a note (n).

    Enter or escape finishes and returns the details (escape with nothing picked = no category);
    ``x`` returns None: no mark after all.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "finish", "save mark"),
        Binding("escape", "finish", "save"),
        Binding("x", "abandon", "don't mark"),
    ]

    AUTO_FOCUS = None

    def __init__(self, token_text: str, at: int) -> None:
        super().__init__()
        self.details = MarkDetails()
        self.token_text = token_text
        self.at = at
        self.stage = "category"  # category -> severity; note input on top

    def compose(self) -> ComposeResult:
        with Vertical(id="mark-box"):
            yield Static(id="mark-title")
            yield Static(id="mark-choices")
            yield Static("1-9,0 category · then 1-3 severity · n note · enter/escape save · x don't mark",
                         id="mark-help", markup=False)

    def on_mount(self) -> None:
        self._refresh()

    def _refresh(self) -> None:
        shown = repr(self.token_text)[1:-1] if self.token_text else "(part of a character)"
        self.query_one("#mark-title", Static).update(
            Text.assemble(("Falls at token ", "bold"), (str(self.at), "bold"), ": ", (shown, "reverse"))
        )
        text = Text()
        for i, (key, label) in enumerate(CATEGORIES):
            style = "bold reverse" if key == self.details.category else ""
            text.append(f" {(i + 1) % 10} {label} ", style=style)
            text.append("\n" if i % 2 else " " * max(1, 28 - len(label)))
        sev = self.details.severity
        text.append("\n")
        if self.stage == "severity" or sev:
            text.append("severity: ")
            for n, label in ((1, "mild"), (2, "clear"), (3, "severe")):
                text.append(f" {n} {label} ", style="bold reverse" if sev == n else "")
        if self.details.note:
            text.append(f"\nnote: {self.details.note}")
        self.query_one("#mark-choices", Static).update(text)

    def _note_input(self) -> Input | None:
        found = self.query("#mark-note")
        return found.first(Input) if found else None

    def on_key(self, event: Key) -> None:
        """Digits pick the category, then the severity; ``n`` opens the note."""
        note = self._note_input()
        if note is not None:
            if event.key == "escape":
                note.remove()
                event.stop()
                event.prevent_default()
            return
        char = event.character or ""
        if self.stage == "severity" and char and char in "123":
            self.details.severity = int(char)
        elif char.isdigit():
            category = _digit_category(char)
            if category is not None:
                self.details.category = category
                self.stage = "severity"
        elif event.key == "n":
            note = Input(self.details.note or "", placeholder="note (enter saves it, escape drops it)",
                         id="mark-note")
            self.query_one("#mark-box").mount(note, before="#mark-help")
            note.focus()
        else:
            return
        event.stop()
        event.prevent_default()
        self._refresh()

    @on(Input.Submitted, "#mark-note")
    def _note_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.details.note = event.value.strip() or None
        event.input.remove()
        self._refresh()

    def action_finish(self) -> None:
        """Save the mark with what was picked."""
        self.dismiss(self.details)

    def action_abandon(self) -> None:
        """Do not mark after all."""
        self.dismiss(None)


class LiveDialog(ModalScreen[LiveConfig | None]):
    """Generate N samples from the chosen models and read them as they stream."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, models: list[tuple[str, str]], config: LiveConfig, prompt_sets: list[str],
                 note: str = "") -> None:
        super().__init__()
        self.models = models
        self.config = config
        self.prompt_sets = prompt_sets
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(id="live-box"):
            yield Static("Live session: generate samples and read them blind as they stream",
                         id="live-title", markup=False)
            if self.note:
                yield Static(self.note, id="live-note", markup=False)
            yield Label("Models")
            yield SelectionList[str](
                *[(label, mid, mid in self.config.models) for mid, label in self.models], id="live-models"
            )
            with Horizontal(classes="live-row"):
                yield Label("samples per model")
                yield Input(str(self.config.n), id="live-n", type="integer")
            with Horizontal(classes="live-row"):
                yield Label("max tokens")
                yield Input(str(self.config.max_tokens), id="live-max", type="integer")
            with Horizontal(classes="live-row"):
                yield Label("prompt set")
                sets = self.prompt_sets or ["all"]
                yield Select([(s, s) for s in sets], value=self.config.prompt_set if self.config.prompt_set in sets
                             else sets[0], allow_blank=False, id="live-prompts")
            yield Static("", id="live-error", markup=False)
            with Horizontal(id="live-buttons"):
                yield Button("Start", variant="primary", id="live-start")
                yield Button("Cancel", id="live-cancel")

    def on_mount(self) -> None:
        self.query_one("#live-start", Button).focus()

    def read_config(self) -> LiveConfig | str:
        """The config from the form, or an error message."""
        models = list(self.query_one("#live-models", SelectionList).selected)
        if not models:
            return "pick at least one model"
        try:
            n = int(self.query_one("#live-n", Input).value)
            max_tokens = int(self.query_one("#live-max", Input).value)
        except ValueError:
            return "samples per model and max tokens must be whole numbers"
        if not 1 <= n <= 1000:
            return "samples per model must be between 1 and 1000"
        if not 1 <= max_tokens <= 32768:
            return "max tokens must be between 1 and 32768"
        prompt_set = str(self.query_one("#live-prompts", Select).value)
        return LiveConfig(models=models, n=n, max_tokens=max_tokens, prompt_set=prompt_set,
                          temperature=self.config.temperature)

    @on(Button.Pressed, "#live-start")
    def action_start(self) -> None:
        """Start the session (or say what is wrong with the form)."""
        config = self.read_config()
        if isinstance(config, str):
            self.query_one("#live-error", Static).update(config)
            return
        self.dismiss(config)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#live-cancel")
    def action_cancel(self) -> None:
        """Close without starting."""
        self.dismiss(None)


class TooSmallScreen(ModalScreen[None]):
    """Covers everything while the terminal is below the minimum size."""

    def compose(self) -> ComposeResult:
        yield Static(f"terminal too small: need at least {MIN_WIDTH}x{MIN_HEIGHT}", id="too-small", markup=False)
