"""``lmread probe --tui``: a one-screen app showing a finished ``lmread.probe/1`` document."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.screen import Screen

from lmread.tui.screens.probe import ProbeScreen


class ProbeApp(App[None]):
    """The rank-probe view of one document; ``escape`` / ``q`` quits."""

    TITLE = "lmread probe"

    def __init__(self, doc: dict[str, Any]) -> None:
        super().__init__()
        self.doc = doc

    def get_default_screen(self) -> Screen[Any]:
        return ProbeScreen(self.doc)
