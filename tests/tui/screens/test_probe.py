"""The rank-probe view (Textual): ``lmread probe --tui``'s app and the command palette's probe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("textual")

from textual.widgets import DataTable, Static

from lmread.backends.scripted import ScriptedBackend
from lmread.probe.core import run_probe
from lmread.probe.document import build_document
from lmread.probe.items import split_items
from lmread.probe.lists import builtin_list
from lmread.tui.app import LmreadApp
from lmread.tui.probe_app import ProbeApp
from lmread.tui.screens.probe import ProbeScreen, render_ranks

SIZE = (120, 44)


def months_doc() -> dict[str, Any]:
    text = builtin_list("months")
    items = split_items(text)
    probes = run_probe(["alpha", "beta"], lambda m: ScriptedBackend(text=text, model_id=m), text, items)
    return build_document({"list": "months"}, text, items, probes)


def rows(screen: ProbeScreen) -> list[list[str]]:
    table = screen.query_one("#probe-table", DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_render_ranks_draws_every_model() -> None:
    text = render_ranks(months_doc(), 80, 20, color=False)
    lines = text.splitlines()
    assert len(lines) == 20 and "alpha (scripted)" in text and "beta (scripted)" in text


async def test_probe_app_shows_summary_plot_and_ranks() -> None:
    doc = months_doc()
    app = ProbeApp(doc)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProbeScreen)
        status = str(screen.query_one("#probe-status", Static).render())
        s = doc["models"][0]["summary"]
        assert f"top-1 {100 * s['top1_rate']:.1f}%" in status and f"median rank {s['median_rank']:g}" in status
        table = rows(screen)
        assert len(table) == 11 and table[0][:2] == ["1", "February"]
        assert table[0][2] == str(doc["models"][0]["readings"][0]["rank"])
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_code == 0


async def test_palette_probe_scores_in_a_worker(tmp_path: Path) -> None:
    text = builtin_list("presidents")
    loaded: list[str] = []

    def factory(model_id: str) -> Any:
        loaded.append(model_id)
        return ScriptedBackend(text=text, model_id=model_id, tokenizer="chars")

    app = LmreadApp(tmp_path / "study", backend_factory=factory, models=["one", "two"], offer_first_run=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await app.run_action("probe")
        screen = app.screen
        assert isinstance(screen, ProbeScreen)
        for _ in range(500):
            if screen.doc is not None:
                break
            await pilot.pause(0.02)
        assert screen.doc is not None and loaded == ["one", "two"]
        await pilot.pause()
        table = rows(screen)
        assert len(table) == 46 and table[0][1] == "John"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ProbeScreen)
