"""The first run of the reader as a new user meets it (issue 8's done-when): the live dialog
offers both bundled models, Start streams real llama.cpp samples from each, blind."""

from __future__ import annotations

import time
from pathlib import Path

from lmread.study import Study
from lmread.tui.app import LmreadApp
from lmread.tui.screens.reader import ReaderScreen

SIZE = (120, 40)


async def test_first_run_live_session_streams_from_both_bundled_models(tmp_path: Path) -> None:
    study_path = tmp_path / "default"
    app = LmreadApp(study_path, annotator="tester")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        samples_input = app.screen.query_one("#live-n")
        samples_input.value = "1"
        app.screen.query_one("#live-max").value = "8"
        await pilot.click("#live-start")
        seen: set[str] = set()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(seen) < 2:
            await pilot.pause(0.5)
            scr = app.screen
            if not isinstance(scr, ReaderScreen):
                continue
            cur = scr.session.current
            if cur is None or not cur.stream_done or cur.sample is None:
                continue
            assert len(cur.document.text) > 0 and scr.view.document is cur.document
            # blind: the model's name is nowhere on screen before the mark
            assert cur.sample.model_id not in app.export_screenshot()
            seen.add(cur.sample.model_id)
            await pilot.press("e")
            await pilot.pause(0.3)
            await pilot.press("n")
        assert seen == {"smollm2-135m", "gemma3-270m"}
    stored = Study.open(study_path).samples.values()
    assert {s.model_id for s in stored} == {"smollm2-135m", "gemma3-270m"}
    assert all(s.backend == "llamacpp" and 1 <= s.n_tokens <= 8 for s in stored)
