"""The survival view (Textual): curves drawn with plotext, the group table, keys u / b / escape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmread.cli import main

pytest.importorskip("textual")

from textual.app import App
from textual.widgets import DataTable, Static

from lmread.tui.screens.survival import SurvivalScreen, render_curves

TEXT = " ".join(f"word{j}" for j in range(30))


@pytest.fixture
def study(tmp_path: Path) -> Path:
    path = tmp_path / "study"
    rows = []
    for model, n_params in (("alpha", 1_000_000), ("beta", 50_000_000)):
        for i in range(4):
            rows.append({"text": TEXT, "model": model, "n_params": n_params, "id": f"{model}-{i}",
                         "prompt_set": "odd" if i % 2 else "even"})
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["import", "--study", str(path), str(src)]) == 0
    for i, at in enumerate((2, 5, 9, 14)):
        assert main(["mark", "--study", str(path), "--sample", f"alpha-{i}", "--at", str(at)]) == 0
    for i, at in enumerate((8, 16, 20)):
        assert main(["mark", "--study", str(path), "--sample", f"beta-{i}", "--at", str(at)]) == 0
    assert main(["mark", "--study", str(path), "--sample", "beta-3", "--no-fall", "--read-to", "30"]) == 0
    return path


class Host(App[None]):
    def __init__(self, study: Path) -> None:
        super().__init__()
        self.study = study

    def on_mount(self) -> None:
        self.push_screen(SurvivalScreen(self.study))


def table_rows(screen: SurvivalScreen) -> list[list[str]]:
    table = screen.query_one("#survival-table", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_keys_switch_unit_and_grouping(study: Path) -> None:
    app = Host(study)
    async with app.run_test(size=(110, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SurvivalScreen)
        rows = table_rows(screen)
        assert [r[0] for r in rows] == ["alpha", "beta"]
        assert rows[0][5] == "5" and rows[1][5] == "16"  # medians in tokens
        plot_text = str(screen.query_one("#survival-plot", Static).render())
        assert "alpha (n=4)" in plot_text and "coherent length in tokens" in plot_text

        await pilot.press("u")  # tokens -> words: one word per token here, same medians
        assert screen.unit == "words"
        assert [r[5] for r in table_rows(screen)] == ["5", "16"]
        await pilot.press("u")  # words -> chars
        assert screen.unit == "chars"
        chars_rows = table_rows(screen)
        assert [r[5] for r in chars_rows] == [str(len(" ".join(f"word{j}" for j in range(n)))) for n in (5, 16)]
        assert "coherent length in chars" in str(screen.query_one("#survival-plot", Static).render())

        await pilot.press("b")  # model -> model+decoding
        assert screen.by == "model+decoding"
        await pilot.press("b")  # -> prompt-set
        assert screen.by == "prompt-set"
        assert sorted(r[0] for r in table_rows(screen)) == ["even", "odd"]
        assert table_rows(screen) != chars_rows

        await pilot.press("escape")
        assert not isinstance(app.screen, SurvivalScreen)


async def test_study_without_marks_shows_message(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": TEXT, "model": "m", "id": "x"}) + "\n")
    assert main(["import", "--study", str(tmp_path / "s"), str(src)]) == 0
    app = Host(tmp_path / "s")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SurvivalScreen)
        assert "no fall or no-fall marks" in str(screen.query_one("#survival-status", Static).render())
        assert screen.query_one("#survival-table", DataTable).row_count == 0
        await pilot.press("q")
        assert not isinstance(app.screen, SurvivalScreen)


def test_render_curves_plain_text() -> None:
    doc = {"unit": "words", "groups": [
        {"label": "g", "n": 3, "curve": [{"t": 0, "survival": 1.0}, {"t": 4, "survival": 0.5}, {"t": 9, "survival": 0.0}]},
        {"label": "h", "n": 1, "curve": [{"t": 0, "survival": 1.0}]},
    ]}
    text = render_curves(doc, 60, 14, color=False)
    lines = text.splitlines()
    assert len(lines) >= 10 and "g (n=3)" in text and "h (n=1)" in text
    assert "\x1b[" not in text
