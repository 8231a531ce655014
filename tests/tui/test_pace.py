"""The reading pace is a reading speed (words/s) below the "too fast" limit, and the speed of a
reading comes from what the reader did:

- text revealed by the pace alone never reads faster than the pace, on any tokenizer (word
  tokens, characters, bytes splitting multi-byte characters), at any moment;
- a reading at the default pace is never flagged, in the app or by the survival filter;
- reveals the reader forces ahead of the pace are recorded on the mark (``forced``) and can make
  a reading fast;
- the pace is read from ``reading_pace_wps``; an old ``reading_pace_tps`` still works, converted,
  and the reader is told.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import jsonschema
import orjson
import pytest

from lmread.analysis.reading_speed import (
    DEFAULT_MAX_WPS,
    DEFAULT_PACE_WPS,
    WORDS_PER_TOKEN,
    reading_speed,
    speed_verdict,
    tokens_within_words,
    word_starts,
    words_in_tokens,
)
from lmread.backends.base import GenOptions
from lmread.backends.scripted import ScriptedBackend
from lmread.cli import main
from lmread.config import load_settings
from lmread.errors import ConfigError
from lmread.generate import generate_sample
from lmread.records import Sample
from lmread.study import Study

pytest.importorskip("textual")

from lmread.tui.app import LmreadApp
from lmread.tui.screens.reader import ReaderScreen
from lmread.tui.session import ReadingSession
from tests.tui.helpers import FakeClock, make_app

SIZE = (100, 32)
SCHEMAS = Path(__file__).resolve().parents[2] / "annotations" / "schema"
TEXT = ("The harbour was quiet that morning. Gulls circled above the boats, and a man in a red coat "
        "walked along the pier.\n\nHe counted the ropes: one, two, three. 漢字 and 😀 too.  Nobody answered. ") * 4


def gen(text: str = TEXT, tokenizer: str = "words", seed: int = 1) -> Sample:
    backend = ScriptedBackend(text=text, tokenizer=tokenizer, model_id="m", n_params=1000)
    return generate_sample(backend, {"text": "p", "set": "t"}, GenOptions(max_tokens=5000, seed=seed))


def notes(app: LmreadApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def test_the_default_pace_sits_well_below_the_limit() -> None:
    assert 4.0 <= DEFAULT_PACE_WPS <= 5.0 < DEFAULT_MAX_WPS
    assert load_settings({"LMREAD_CONFIG": "/nonexistent/config.toml"}).reading_pace_wps == DEFAULT_PACE_WPS


def test_tokens_within_words_is_the_inverse_of_words_in_tokens() -> None:
    for tokenizer in ("words", "chars", "bytes"):
        sample = gen(tokenizer=tokenizer)
        starts = word_starts(sample.text)
        for words in range(len(starts) + 2):
            n = tokens_within_words(sample.tokens.offsets, starts, words)
            assert words_in_tokens(sample, n) <= words
            if n < sample.n_tokens:  # one token more would show one word too many
                assert words_in_tokens(sample, n + 1) == words + 1, (tokenizer, words, n)


@pytest.mark.parametrize("tokenizer", ["words", "chars", "bytes"])
@pytest.mark.parametrize("pace", [DEFAULT_PACE_WPS, 2.0, 7.9])
def test_the_pace_alone_never_reads_faster_than_the_pace(tmp_path: Path, tokenizer: str, pace: float) -> None:
    st = Study.create(tmp_path / "s", shuffle_seed=1)
    sample = gen(tokenizer=tokenizer)
    st.add_sample(sample)
    clock = FakeClock()
    session = ReadingSession(st, "tester", clock=clock, pace_wps=pace)
    cur = session.next()
    rng = random.Random(7)
    elapsed = 0.0
    while cur.document.revealed < cur.document.n_tokens:
        step = rng.choice([0.01, 0.05, 0.2, 0.9, 3.0])
        clock.t += step
        elapsed += step
        session.set_revealed(session.paced_revealed())
        words = words_in_tokens(sample, cur.document.revealed)
        assert words <= pace * elapsed + 1e-9, (words, elapsed)
        if rng.random() < 0.1:  # pausing and changing the pace back and forth keeps the bound
            session.toggle_pause()
            clock.t += 2.0
            elapsed += 2.0
            session.toggle_pause()
    mark = session.build_mark("no_fall")
    speed = reading_speed(mark, sample)
    assert mark.forced == 0 and speed.wps <= pace
    assert speed_verdict(speed.wps, None, DEFAULT_MAX_WPS) == "ok"


@pytest.mark.parametrize("seconds", [0.3, 1.0, 4.0, 17.0, 120.0])
async def test_a_reading_at_the_default_pace_is_never_flagged(tmp_path: Path, seconds: float) -> None:
    st = Study.create(tmp_path / "paced", shuffle_seed=1)
    st.add_sample(gen())
    app = make_app(st.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.clock.t += seconds
        await pilot.pause(0.15)
        scr = app.screen
        assert isinstance(scr, ReaderScreen) and scr.view.revealed > 0
        await pilot.press("left", "f", "2", "enter")
        await pilot.pause()
        assert not [n for n in notes(app) if "fast" in n]
    (mark,) = Study.open(st.path).marks("tester")
    speed = reading_speed(mark, st.samples[mark.sample])
    assert mark.kind == "fall" and mark.forced == 0 and speed.wps <= DEFAULT_PACE_WPS
    # and the survival filter at the default limit keeps it
    assert main(["survival", "--study", str(st.path), "--max-read-speed", str(DEFAULT_MAX_WPS), "--json",
                 str(tmp_path / "s.json")]) == 0
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["n"] == 1


async def test_reveals_forced_ahead_of_the_pace_are_recorded(tmp_path: Path) -> None:
    st = Study.create(tmp_path / "forced", shuffle_seed=1)
    st.add_sample(gen())
    app = make_app(st.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*["space"] * 6)
        scr = app.screen
        assert isinstance(scr, ReaderScreen)
        shown = scr.view.revealed
        app.clock.t += 2.0
        await pilot.pause(0.15)
        await pilot.press("e")
        await pilot.pause()
        fast = [n for n in notes(app) if n.startswith("that was fast")]
    (mark,) = Study.open(st.path).marks("tester")
    assert mark.forced == shown > 40  # all of it ahead of a pace that had shown nothing yet
    assert len(fast) == 1 and f"You revealed {shown} tokens ahead of the pace (4.5 words/s)" in fast[0]
    jsonschema.validate(orjson.loads((st.path / "marks" / "tester.jsonl").read_bytes()),
                        json.loads((SCHEMAS / "mark.schema.json").read_text()))


def test_old_and_new_pace_settings(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    env = {"LMREAD_CONFIG": str(config), "LMREAD_HOME": str(tmp_path)}
    config.write_text("reading_pace_wps = 3.5\n")
    settings = load_settings(env)
    assert settings.reading_pace_wps == 3.5 and settings.notes == []
    config.write_text("reading_pace_tps = 12\n")
    settings = load_settings(env)
    assert settings.reading_pace_wps == 12 * WORDS_PER_TOKEN == 9.0
    assert settings.notes and "reading_pace_tps = 12 tokens/s is read as reading_pace_wps = 9 words/s" in settings.notes[0]
    config.write_text("reading_pace_tps = 12\nreading_pace_wps = 4\n")
    settings = load_settings(env)
    assert settings.reading_pace_wps == 4 and "no longer used" in settings.notes[0]
    for bad in ('reading_pace_wps = "fast"', "reading_pace_wps = 0", "reading_pace_tps = true"):
        config.write_text(bad + "\n")
        with pytest.raises(ConfigError):
            load_settings(env)


async def test_the_reader_says_how_an_old_pace_setting_was_read(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("reading_pace_tps = 8\n")
    settings = load_settings({"LMREAD_CONFIG": str(config), "LMREAD_HOME": str(tmp_path)})
    st = Study.create(tmp_path / "old", shuffle_seed=1)
    st.add_sample(gen())
    app = make_app(st.path, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ReaderScreen) and app.screen.session.pace_wps == 6.0
        assert [n for n in notes(app) if "reading_pace_wps = 6 words/s" in n]


def test_read_refuses_a_pace_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["read", "--study", str(tmp_path / "s"), "--pace", "0.1"]) != 0
    err = capsys.readouterr().err
    assert err.startswith("lmread: error:") and "words/s" in err and "Traceback" not in err
