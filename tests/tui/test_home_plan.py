"""The home screen shows a study's progress against the plan stored by ``lmread plan``."""

from __future__ import annotations

from pathlib import Path

from lmread.cli import main
from lmread.study import Study
from lmread.tui.screens.home import HomeScreen, plan_line
from tests.analysis.plan.test_plan import pilot_study
from tests.tui.test_reader import make_app, screen_text


def test_plan_line_is_empty_without_a_plan(tmp_path: Path) -> None:
    st = pilot_study(tmp_path / "st", n=10)
    assert plan_line(st) == ""


async def test_home_screen_shows_readings_against_the_plan(lmread_home: Path) -> None:
    st = pilot_study(lmread_home / "studies" / "pilot", n=40)
    assert main(["plan", "--study", str(st), "--unit", "words", "--replicates", "0"]) == 0
    planned = Study.open(st).meta["plan"]["samples_per_group"]
    line = plan_line(st)
    assert line.startswith("plan (words): 80/") and f"small 40/{planned[0]}" in line
    assert f"large 40/{planned[1]}" in line and "median CI width" in line
    app = make_app(st)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)
        text = screen_text(app)
        assert f"small 40/{planned[0]}" in text and "plan (words)" in text
