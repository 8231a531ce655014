"""Marking in the reader as a person does it, driven with Pilot and checked in the marks file:

- keys typed in one burst (``f``, a category digit, a severity digit, Enter) all reach the mark,
  also when the key events arrive before the app has handled any of them (a terminal's burst);
- the inline prompt's key rules, one key at a time (:class:`lmread.tui.marking.MarkEntry`);
- ``e`` before anything is revealed is refused and says so, nothing is written;
- the time on a sample accumulates across undo and re-marking.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lmread.backends.base import GenOptions
from lmread.backends.scripted import ScriptedBackend
from lmread.errors import MarkError
from lmread.generate import generate_sample
from lmread.records import Sample
from lmread.study import Study

pytest.importorskip("textual")

from textual import events

from lmread.tui.app import LmreadApp
from lmread.tui.marking import MarkEntry
from lmread.tui.session import ReadingSession
from tests.tui.helpers import FakeClock, make_app, reader, screen_text

SIZE = (100, 32)
TEXT = ("The harbour was quiet that morning. Gulls circled above the boats. "
        "A man in a red coat walked along the pier and counted the ropes. ") * 3


def gen(text: str = TEXT, seed: int = 1, model: str = "model-a") -> Sample:
    backend = ScriptedBackend(text=text, model_id=model, n_params=1000)
    return generate_sample(backend, {"text": "Describe a harbour.", "set": "test", "name": "t-01"},
                           GenOptions(max_tokens=500, seed=seed))


@pytest.fixture
def study(tmp_path: Path) -> Study:
    st = Study.create(tmp_path / "study", shuffle_seed=3)
    st.add_samples([gen(seed=1), gen(TEXT.upper(), seed=2, model="model-b")])
    return st


def notes(app: LmreadApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def burst(app: LmreadApp, keys: list[str]) -> None:
    """Post key events to the app at once, as a terminal's driver does with keys typed fast:
    none of them is handled before the last one is queued."""
    chars = {"enter": "\r", "space": " ", "escape": "\x1b"}
    for key in keys:
        app.post_message(events.Key(key, chars.get(key, key if len(key) == 1 else None)))


# --------------------------------------------------------------------------------------------
# Keys typed fast


async def test_fall_category_severity_typed_without_pause_reach_the_mark(study: Study) -> None:
    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.clock.t += 5.0
        await pilot.pause(0.15)
        scr = reader(app)
        at = scr.view.cursor
        await pilot.press("f", "5", "2", "enter")
        await pilot.pause()
        marks = Study.open(study.path).marks("tester")
        assert [(m.kind, m.at, m.category, m.severity) for m in marks] == [("fall", at, "incoherent", 2)]


async def test_a_terminal_burst_keeps_every_key(study: Study) -> None:
    """The events of a whole burst are queued before the app handles the first: cursor moves,
    the fall, its details with a note, the next sample and its no-fall, all in typing order."""
    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.clock.t += 6.0
        await pilot.pause(0.15)
        scr = reader(app)
        first = scr.session.current.sample.id
        end = scr.view.cursor
        assert end > 5
        burst(app, ["left", "left", "left", "f", "3", "1", "n", *"loops", "backspace", "enter", "2",
                    "enter", "n"])
        await pilot.pause(0.3)
        app.clock.t += 5.0
        await pilot.pause(0.15)
        burst(app, ["e"])
        await pilot.pause(0.3)
        marks = Study.open(study.path).marks("tester")
        assert [(m.kind, m.sample) for m in marks] == [("fall", first), ("no_fall", marks[1].sample)]
        fall = marks[0]
        assert (fall.at, fall.category, fall.severity, fall.note) == (end - 3, "drift", 2, "loop")
        assert marks[1].sample != first


async def test_the_prompt_is_inline_and_holds_other_keys(study: Study) -> None:
    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.clock.t += 5.0
        await pilot.pause(0.15)
        scr = reader(app)
        await pilot.press("f")
        assert app.screen is scr and scr.marking
        assert "1 Repetition" in screen_text(app) or "1 repetition" in screen_text(app).lower()
        await pilot.press("e", "s", "u", "space")  # not actions while the prompt is open
        assert scr.marking and Study.open(study.path).marks("tester") == []
        await pilot.press("x")
        assert not scr.marking and Study.open(study.path).marks("tester") == []
        assert scr.state == "not marked"


def test_mark_entry_key_rules() -> None:
    entry = MarkEntry(at=4, token_text=" m")
    for key in ["7", "9", "2"]:  # 7 then 9 are categories; 2 is then the severity
        assert entry.key(key, key) is None
    assert (entry.details.category, entry.details.severity, entry.stage) == ("logic", 2, "severity")
    assert entry.key("4", "4") is None and entry.details.category == "register"  # 4 is no severity
    assert entry.key("n", "n") is None and entry.editing_note
    for ch in "x enter":
        entry.key("space" if ch == " " else ch, ch)
    assert entry.note_draft == "x enter" and entry.key("escape", None) is None and not entry.editing_note
    assert entry.details.note is None  # escape drops the draft
    entry.key("n", "n")
    for ch in "ok ":
        entry.key("space" if ch == " " else ch, ch)
    assert entry.key("enter", "\r") is None and entry.details.note == "ok"
    assert entry.key("0", "0") is None and entry.details.category == "other"
    assert entry.key("enter", "\r") == "save"
    assert MarkEntry(at=0, token_text="a").key("x", "x") == "abandon"
    assert MarkEntry(at=0, token_text="a").key("escape", None) == "save"


# --------------------------------------------------------------------------------------------
# A reading of nothing


async def test_no_fall_before_anything_is_revealed_is_refused(study: Study) -> None:
    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        scr = reader(app)
        assert scr.view.revealed == 0
        await pilot.press("e")
        await pilot.pause()
        assert Study.open(study.path).marks("tester") == []
        assert scr.state == "nothing read yet"
        assert any(n.startswith("nothing is revealed yet") for n in notes(app))
        app.clock.t += 2.0
        await pilot.pause(0.15)
        await pilot.press("e")
        await pilot.pause()
        (mark,) = Study.open(study.path).marks("tester")
        assert mark.kind == "no_fall" and mark.read_to == scr.view.revealed > 0


def test_session_refuses_a_no_fall_on_white_space_only(tmp_path: Path) -> None:
    st = Study.create(tmp_path / "ws", shuffle_seed=1)
    backend = ScriptedBackend(pieces=[b"\n\n", b"The", b" harbour", b" was", b" quiet."], model_id="m")
    st.add_sample(generate_sample(backend, {"text": "p", "set": "t"}, GenOptions(max_tokens=50, seed=1)))
    clock = FakeClock()
    session = ReadingSession(st, "tester", clock=clock)
    cur = session.next()
    session.set_revealed(1)  # only the line break is shown
    assert cur.document.text[: cur.document.offsets[1]].strip() == ""
    with pytest.raises(MarkError, match="nothing is revealed yet"):
        session.build_mark("no_fall")
    session.set_revealed(2)
    assert session.build_mark("no_fall").read_to == 2


# --------------------------------------------------------------------------------------------
# The clock across undo


def test_time_on_a_sample_accumulates_across_undo(study: Study) -> None:
    clock = FakeClock()
    session = ReadingSession(study, "tester", clock=clock)
    cur = session.next()
    clock.t += 8.0
    session.set_revealed(session.paced_revealed())
    first = session.commit(session.build_mark("fall", at=3))
    assert first.elapsed_s == 8.0
    clock.t += 30.0  # looking at the result: not reading time
    session.undo()
    again = session.next()
    assert again.sample.id == cur.sample.id
    assert session.elapsed() == 8.0
    clock.t += 1.5
    second = session.commit(session.build_mark("fall", at=2))
    assert second.elapsed_s == 9.5
    # a new session (the reader closed and came back) undoes with the recorded time too
    later = ReadingSession(study, "tester", clock=clock)
    later.undo()
    assert later.next().sample.id == cur.sample.id and later.elapsed() == 9.5


async def test_undo_in_the_app_keeps_the_clock(study: Study) -> None:
    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.clock.t += 8.0
        await pilot.pause(0.15)
        await pilot.press("f", "1", "enter")
        await pilot.pause()
        app.clock.t += 20.0
        await pilot.press("u")
        await pilot.pause()
        app.clock.t += 1.3
        await pilot.pause(0.1)
        await pilot.press("f", "1", "enter")
        await pilot.pause()
        marks = Study.open(study.path).marks("tester")
        assert [(m.kind, m.elapsed_s) for m in marks] == [("fall", 8.0), ("undo", None), ("fall", 9.3)]
