"""Helpers shared by the reader's Pilot tests: a hand-moved clock, the app, its screen and text."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from lmread.tui.app import LmreadApp
from lmread.tui.screens.reader import ReaderScreen


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make_app(path: Path, **kw: Any) -> LmreadApp:
    """The app on the study ``path`` with a :class:`FakeClock` and annotator ``tester`` unless given."""
    kw.setdefault("clock", FakeClock())
    kw.setdefault("annotator", "tester")
    return LmreadApp(path, **kw)


def reader(app: LmreadApp) -> ReaderScreen:
    """The reader screen (the test fails when another screen is on top)."""
    assert isinstance(app.screen, ReaderScreen), type(app.screen)
    return app.screen


def screen_text(app: LmreadApp) -> str:
    """Every character on screen (from the SVG screenshot, with its spaces restored)."""
    svg = app.export_screenshot()
    return html.unescape("".join(re.findall(r">([^<]*)</text>", svg))).replace("\xa0", " ")
