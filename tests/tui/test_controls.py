"""The reader with controls, reading speed and queue positions, driven with Pilot.

- a control and an ordinary sample with the same text and prompt look the same before the mark
  (the whole screen, compared as SVG), and only after the mark does the control say what it was;
- a reader who answers in a second is told gently that it was fast; a reader at a normal pace is not;
- every mark the reader writes records its position in the annotator's queue;
- ``overlap`` reaches the reading queue.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import orjson
import pytest

from lmread.backends.base import GenOptions
from lmread.backends.scripted import ScriptedBackend
from lmread.controls import build_splice
from lmread.generate import generate_sample
from lmread.records import Sample
from lmread.study import Study

pytest.importorskip("textual")

from lmread.tui.app import LmreadApp
from tests.tui.helpers import make_app, reader, screen_text

SIZE = (100, 32)
SCHEMAS = Path(__file__).resolve().parents[2] / "annotations" / "schema"
HARBOUR = ("The harbour was quiet that morning. Gulls circled above the boats. "
           "A man in a red coat walked along the pier and counted the ropes. ") * 3
KETTLE = ("Once upon a time there was a kettle. It sang every evening at six. "
          "The neighbours set their clocks by it and never missed the bus. ") * 3
PROMPT = {"text": "Describe a harbour in the morning.", "set": "test", "name": "test-01"}


def gen(text: str | None = None, prompt: dict | None = None, model: str = "model-a", seed: int = 1,
        pieces: list[bytes] | None = None) -> Sample:
    backend = ScriptedBackend(text=text, pieces=pieces, model_id=model, n_params=1000)
    return generate_sample(backend, prompt or PROMPT, GenOptions(max_tokens=500, seed=seed))


def normalized_svg(app: LmreadApp) -> str:
    """The screenshot with its per-export unique ids removed."""
    return re.sub(r"terminal-\d+", "terminal", app.export_screenshot())


def notes(app: LmreadApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


@pytest.fixture
def twin_studies(tmp_path: Path) -> tuple[Study, Study, Sample]:
    """Two studies of one sample each, in folders of the same name: an ordinary sample, and a
    splice control with exactly its text and prompt (built from a harbour and a kettle text)."""
    a = gen(HARBOUR, PROMPT, seed=1)
    b = gen(KETTLE, {"text": "Tell me a story.", "set": "test", "name": "test-02"}, seed=2)
    control = build_splice(a, b, 17, seed=3)
    pieces = [control.text[control.tokens.offsets[i]:control.tokens.offsets[i + 1]].encode()
              for i in range(control.n_tokens)]
    ordinary = gen(pieces=pieces, prompt=PROMPT, model="secretmodel", seed=4)
    assert ordinary.text == control.text and ordinary.tokens.offsets == control.tokens.offsets
    plain = Study.create(tmp_path / "one" / "harbour", shuffle_seed=5)
    plain.add_sample(ordinary)
    mixed = Study.create(tmp_path / "two" / "harbour", shuffle_seed=5)
    mixed.add_sample(control)
    return plain, mixed, control


async def _screen_before_mark(path: Path) -> str:
    app = make_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("space", "space", "left", "left")
        await pilot.pause()
        return normalized_svg(app)


async def test_control_looks_like_a_sample_before_the_mark(twin_studies) -> None:
    plain, mixed, _ = twin_studies
    assert await _screen_before_mark(plain.path) == await _screen_before_mark(mixed.path)


async def test_after_the_mark_the_control_says_what_it_was(twin_studies) -> None:
    _, mixed, control = twin_studies
    app = make_app(mixed.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        scr = reader(app)
        assert "control" not in screen_text(app)
        app.clock.t += 10.0
        await pilot.pause(0.15)
        await pilot.press("end")
        while scr.view.cursor > 20:
            await pilot.press("left")
        await pilot.press("f", "3", "enter")
        await pilot.pause()
        text = screen_text(app)
        assert "control: spliced at token 17 (another text from there); you marked 20" in text
        mark = Study.open(mixed.path).marks("tester")[0]
        assert (mark.kind, mark.at, mark.category) == ("fall", 20, "drift")
        assert control.control["onset"] == 17


async def test_a_reading_in_a_second_is_flagged(tmp_path: Path) -> None:
    st = Study.create(tmp_path / "fast", shuffle_seed=1)
    st.add_sample(gen(HARBOUR * 2))
    app = make_app(st.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*["space"] * 8)
        app.clock.t += 1.0
        await pilot.pause(0.1)
        await pilot.press("e")
        await pilot.pause()
        mark = Study.open(st.path).marks("tester")[0]
        assert mark.kind == "no_fall" and mark.elapsed_s == 1.0
        fast = [n for n in notes(app) if n.startswith("that was fast")]
        assert len(fast) == 1
        words = len(st.samples[mark.sample].text.split()[: mark.read_to])  # one word per token here
        assert words > 60 and fast[0].startswith(f"that was fast: {words:.3g} words/s")


async def test_a_reading_at_a_normal_pace_is_not_flagged(tmp_path: Path) -> None:
    st = Study.create(tmp_path / "slow", shuffle_seed=1)
    st.add_sample(gen(HARBOUR))
    app = make_app(st.path)  # the pace reveals 4.5 words/s; read for 30 s
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.clock.t += 30.0
        await pilot.pause(0.15)
        await pilot.press("e")
        await pilot.pause()
        assert Study.open(st.path).marks("tester")[0].elapsed_s == 30.0
        assert not [n for n in notes(app) if "fast" in n]


async def test_the_study_setting_moves_the_limit(tmp_path: Path) -> None:
    st = Study.create(tmp_path / "strict", shuffle_seed=1)
    st.add_sample(gen(HARBOUR))
    st.update_meta(max_read_speed_wps=2)
    app = make_app(st.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.clock.t += 30.0  # all 75 words in 30 s: 2.5 words/s, over the study's strict limit of 2
        await pilot.pause(0.15)
        assert reader(app).session.max_read_speed_wps == 2.0
        await pilot.press("e")
        await pilot.pause()
        assert [n for n in notes(app) if n.startswith("that was fast: 2.5 words/s")]


async def test_marks_record_their_queue_position(tmp_path: Path) -> None:
    st = Study.create(tmp_path / "queue", shuffle_seed=2)
    st.add_samples([gen(HARBOUR, seed=i) for i in range(3)])
    mark_schema = json.loads((SCHEMAS / "mark.schema.json").read_text())
    app = make_app(st.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for key in ("e", "s", "e"):
            app.clock.t += 5.0
            await pilot.pause(0.1)
            await pilot.press(key)
            await pilot.pause()
            await pilot.press("n")
        await pilot.press("u")  # back to the third sample; marking it again keeps its place
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
    marks = Study.open(st.path).marks("tester")
    assert [(m.kind, m.queue_pos) for m in marks] == [
        ("no_fall", 0), ("skip", 1), ("no_fall", 2), ("undo", None), ("no_fall", 2)]
    order = st.reading_order("tester")
    assert [m.sample for m in marks if m.kind != "undo"][:3] == order
    lines = (st.path / "marks" / "tester.jsonl").read_bytes().splitlines()
    for line in lines:
        jsonschema.validate(orjson.loads(line), mark_schema)


async def test_overlap_reaches_the_reading_queue(tmp_path: Path) -> None:
    st = Study.create(tmp_path / "overlap", shuffle_seed=4)
    st.add_samples([gen(f"Sample {i}. " + HARBOUR, seed=i) for i in range(10)])
    app = make_app(st.path, overlap=0.3, annotator="bob")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        scr = reader(app)
        queued = [scr.session.current.sample.id] + [i.sample_id for i in scr.session.queue]
        assert queued == st.reading_order("bob", overlap=0.3)
        assert queued != st.reading_order("bob")
