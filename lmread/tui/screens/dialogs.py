"""Small modal screens: the live-session dialog and the "terminal too small" overlay.  (The
details of a fall mark are typed inline in the reader: :mod:`lmread.tui.marking`.)"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, SelectionList, Static

from lmread.tui.messages import LiveConfig

MIN_WIDTH, MIN_HEIGHT = 60, 16


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
                yield Input(str(self.config.options.max_tokens), id="live-max", type="integer")
                yield Label("decode together")
                yield Input(str(self.config.parallel), id="live-parallel", type="integer",
                            tooltip="samples of a model decoded in one batch (1: one at a time)")
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
            parallel = int(self.query_one("#live-parallel", Input).value)
        except ValueError:
            return "samples per model, max tokens and decode together must be whole numbers"
        if not 1 <= n <= 1000:
            return "samples per model must be between 1 and 1000"
        if not 1 <= max_tokens <= 32768:
            return "max tokens must be between 1 and 32768"
        if not 1 <= parallel <= 256:
            return "decode together must be between 1 and 256 samples"
        prompt_set = str(self.query_one("#live-prompts", Select).value)
        return LiveConfig(models=models, n=n, prompt_set=prompt_set,
                          options=replace(self.config.options, max_tokens=max_tokens), parallel=parallel)

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
