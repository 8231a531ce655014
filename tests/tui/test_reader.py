"""The reader (Textual app): the whole flow driven with Pilot, and the session logic alone.

Every marking test checks the marks file on disk (``Study(...).marks()``): the right kind, the
token index under the cursor, how much was revealed.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from lmread.backends.base import GenOptions
from lmread.backends.scripted import ScriptedBackend
from lmread.errors import MarkError, ModelError
from lmread.generate import generate_sample
from lmread.records import Mark
from lmread.study import Study

pytest.importorskip("textual")

from lmread.tui.app import LmreadApp
from lmread.tui.document import DocumentNavigator, TokenSpans, WrappedDocument
from lmread.tui.document.units import sentence_end
from lmread.tui.live_jobs import plan_live_jobs
from lmread.tui.messages import LiveConfig
from lmread.tui.screens.dialogs import LiveDialog, TooSmallScreen
from lmread.tui.screens.help import KEYS, HelpScreen
from lmread.tui.screens.home import HomeScreen
from lmread.tui.screens.reader import ReaderScreen
from lmread.tui.session import ReadingSession
from tests.tui.helpers import FakeClock, reader, screen_text

SIZE = (100, 32)

TEXT_A = ("The harbour was quiet that morning. Gulls circled above the boats. "
          "A man in a red coat walked along the pier and counted the ropes. ") * 3
TEXT_B = ("Once upon a time there was a kettle. It sang every evening at six. "
          "The neighbours set their clocks by it and never missed the bus. ") * 3
#: pieces that split an emoji and a CJK character across tokens (byte-level BPE style)
MULTIBYTE_PIECES = [b"I", b" saw", b" a", b" ", b"\xf0\x9f", b"\x90\x8d", b" in", b" \xe6\x97", b"\xa5\xe6",
                    b"\x9c\xac", b".", b" It", b" was", b" green", b"."]


def make_sample(text: str | None = None, model_id: str = "model-a", n_params: int = 1000, seed: int = 1,
                pieces: list[bytes] | None = None, prompt: str = "Tell me a story."):
    backend = ScriptedBackend(text=text, pieces=pieces, model_id=model_id, n_params=n_params)
    return generate_sample(backend, {"text": prompt, "set": "test", "name": "test-01"},
                           GenOptions(max_tokens=500, seed=seed))


@pytest.fixture
def study(tmp_path: Path) -> Study:
    st = Study.create(tmp_path / "study", shuffle_seed=7)
    st.add_samples([make_sample(TEXT_A, "secretmodel-a", 1000, 1), make_sample(TEXT_B, "secretmodel-b", 5000, 2)])
    return st


def make_app(path: Path, **kw) -> LmreadApp:
    kw.setdefault("clock", FakeClock())
    return LmreadApp(path, **kw)


async def reveal(pilot, app: LmreadApp, seconds: float = 30.0) -> None:
    """Let the reading pace reveal ``seconds`` worth of tokens."""
    app.clock.t += seconds
    await pilot.pause(0.15)


async def wait_for(pilot, cond, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not reached")


# --------------------------------------------------------------------------------------------
# The session logic, without a terminal


def test_session_order_skips_marked_and_builds_marks(study: Study) -> None:
    clock = FakeClock()
    s = ReadingSession(study, "tester", clock=clock)
    assert [i.sample_id for i in s.queue] == study.reading_order()
    cur = s.next()
    assert cur is not None and cur.document.revealed == 0
    with pytest.raises(MarkError):
        s.build_mark("fall", at=0)  # nothing revealed yet
    clock.t += 2.0
    assert s.paced_revealed() == 9  # 4.5 words/s, one word a token here
    s.set_revealed(s.paced_revealed())
    mark = s.commit(s.build_mark("fall", at=5, category="drift"))
    assert (mark.at, mark.read_to, mark.revealed, mark.elapsed_s, mark.client) == (5, 9, 9, 2.0, "tui")
    s2 = ReadingSession(study, "tester", clock=clock)
    assert [i.sample_id for i in s2.queue] == [sid for sid in study.reading_order() if sid != cur.sample.id]
    event, withdrawn = s2.undo()
    assert withdrawn.id == mark.id and event.undoes == mark.id
    assert s2.queue[0].sample_id == cur.sample.id and s2.queue[0].start_revealed == 9


def test_sentence_end_reveals_whole_sentences() -> None:
    sample = make_sample(TEXT_A)
    n1 = sentence_end(sample.text, sample.tokens.offsets, 0)
    assert sample.text[: sample.tokens.offsets[n1]] == "The harbour was quiet that morning."
    n2 = sentence_end(sample.text, sample.tokens.offsets, n1)
    assert sample.text[: sample.tokens.offsets[n2]].endswith("above the boats.")


#: byte pieces with sentence ends of every kind: punctuation with closers, an ellipsis, CJK
#: full stops, a paragraph break in a token of its own, line breaks held by the next word's token
SENTENCE_PIECES = [
    [b"He", b" said", b" \"Stop", b".\"", b" Then", b" he", b" left", b"!", b" Did", b" she", b" stay", b"?",
     b" Yes", b"\xe2\x80\xa6", b" she", b" did", b".", b"\n\n", b"A", b" heading", b"\n", b"Next", b" line",
     b"\n\n\nand", b" more", b".", b" End"],
    [piece.encode() for piece in ["Tea", " is", " hot", "\u3002", " Coffee", " too", "\uff01", " OK", "?", " fine"]],
]


def _pieces_id(pieces: list[bytes]) -> str:
    return b"".join(pieces)[:12].decode("utf-8", "replace")


@pytest.mark.parametrize("pieces", [*SENTENCE_PIECES, [m.encode() for m in re.findall(r"\s*\S+|\s+", TEXT_A)]],
                         ids=_pieces_id)
def test_space_reveal_stops_where_the_sentence_motion_lands(tmp_path: Path, pieces: list[bytes]) -> None:
    """One sentence rule: each space-reveal ends where the ``]`` motion finds the next sentence
    (nothing but whitespace tokens between, or the boundary inside the last revealed token)."""
    st = Study.create(tmp_path / "sentences", shuffle_seed=5)
    sample = make_sample(pieces=pieces)
    st.add_sample(sample)
    session = ReadingSession(st, "tester", clock=FakeClock())
    cur = session.next()
    stops = []
    while cur.document.revealed < cur.document.n_tokens:
        stops.append(session.reveal_sentence())
    doc = DocumentNavigator(WrappedDocument(TokenSpans(sample.text, sample.tokens.offsets)))  # all revealed
    starts, i = [], 0
    while (j := doc.move(i, "sentence", 1)) != i:
        starts.append(j)
        i = j
    assert len(stops) == len(starts) + 1 >= 3 and stops[-1] == sample.n_tokens
    for k, j in zip(stops, starts, strict=False):
        if j >= k:  # the reveal ends with the sentence; only whitespace tokens before the next one
            assert sample.text[sample.tokens.offsets[k] - 1] in ".!?\"\u2026\u3002\uff01\uff1f\n"
            assert all(not sample.piece(t).strip() for t in range(k, j)), (k, j)
        else:  # the last revealed token holds the sentence end and the next sentence's start
            assert j == k - 1 and "\n" in sample.piece(j), (k, j)


def test_plan_live_jobs_takes_prompts_in_turn_and_passes_over_stored_samples() -> None:
    from lmread.generate import GenerationPlan, derive_seed
    from lmread.records import sample_id

    prompts = [{"text": f"Prompt {i}.", "set": "t", "name": f"t-{i}"} for i in range(3)]
    plan = GenerationPlan(models=[], prompts=prompts, samples=2, options=GenOptions(max_tokens=20), base_seed=77)
    identity = ScriptedBackend(text="x", model_id="m").describe()
    jobs = plan_live_jobs(plan, 5, {"m": identity})
    assert [(j.prompt["name"], j.index) for j in jobs] == [("t-0", 0), ("t-1", 0), ("t-2", 0), ("t-0", 1), ("t-1", 1)]
    assert all(j.options.seed == derive_seed(77, "m", j.prompt, j.index) for j in jobs)
    stored = {sample_id(identity, j.prompt, j.options.settings(), j.options.seed) for j in jobs[:2]}
    again = plan_live_jobs(plan, 2, {"m": identity}, existing=stored)
    assert [(j.prompt["name"], j.index) for j in again] == [("t-2", 0), ("t-0", 1)]


def test_screens_ask_the_app_by_messages() -> None:
    """Screens do not reach into the app: no screen module knows the app class or its state."""
    import lmread.tui.screens as screens

    for path in Path(screens.__file__).parent.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        for name in ("LmreadApp", "lmapp", "app.backends", "app.study_path", "app.settings", "call_from_thread"):
            assert name not in source, f"{path.name} uses {name}"


def test_help_lists_every_reader_binding() -> None:
    listed = " ".join(k for _, k, _ in KEYS)
    for binding in ReaderScreen.BINDINGS:
        for key in binding.key.split(","):
            name = {"question_mark": "?", "plus": "+", "equals_sign": "+", "minus": "-"}.get(key, key)
            assert name in listed, f"key {key} missing from the help screen"


# --------------------------------------------------------------------------------------------
# Reading and marking in the app


async def test_reveal_move_mark_with_category_then_undo(study: Study) -> None:
    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        scr = reader(app)
        first = scr.session.current.sample
        assert first.id == study.reading_order()[0]
        assert scr.view.revealed == 0
        await reveal(pilot, app, 2.0)  # 4.5 words/s
        assert scr.view.revealed == 9 == scr.session.current.document.revealed
        await pilot.press("space")  # next sentence
        assert scr.view.revealed > 9
        revealed = scr.view.revealed
        await pilot.press("home", "right", "right", "right")
        at = scr.view.cursor
        assert 0 < at < revealed
        await pilot.press("f")
        assert app.screen is scr and scr.marking  # the category prompt, inline
        await pilot.press("3", "2", "enter")  # category 3 (drift), severity 2
        await pilot.pause()
        marks = Study.open(study.path).marks("tester")
        assert len(marks) == 1
        m = marks[0]
        assert (m.kind, m.sample, m.at, m.category, m.severity, m.revealed, m.read_to, m.client) == (
            "fall", first.id, at, "drift", 2, revealed, revealed, "tui")
        assert "saved" in screen_text(app)
        # after the mark: the fall token in context, the top-k alternatives, the model
        panel_text = screen_text(app)
        assert "alternatives" in panel_text and first.model_id in panel_text
        await pilot.press("n")
        second = scr.session.current.sample
        assert second.id != first.id
        await pilot.press("u")
        await pilot.pause()
        marks = Study.open(study.path).marks("tester")
        assert [x.kind for x in marks] == ["fall", "undo"] and marks[1].undoes == m.id
        assert scr.session.current.sample.id == first.id  # back to the restored sample
        assert scr.view.revealed == revealed  # as far as it was read
        assert Study.open(study.path).current_marks("tester") == {}


async def test_no_fall_and_skip(study: Study) -> None:
    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        scr = reader(app)
        first = scr.session.current.sample
        await reveal(pilot, app, 1.5)
        await pilot.press("e")
        await pilot.pause()
        second = None
        await pilot.press("enter")  # next
        second = scr.session.current.sample
        await pilot.press("s")
        await pilot.pause()
        marks = Study.open(study.path).marks("tester")
        assert [(x.kind, x.sample, x.read_to, x.at) for x in marks] == [
            ("no_fall", first.id, 6, None), ("skip", second.id, None, None)]
        await pilot.press("n")
        assert scr.session.current is None
        assert "All samples" in screen_text(app)


async def test_fall_index_with_split_multibyte_characters(tmp_path: Path) -> None:
    st = Study.create(tmp_path / "mb", shuffle_seed=3)
    sample = make_sample(pieces=MULTIBYTE_PIECES, model_id="mb-model")
    st.add_sample(sample)
    assert sample.piece(4) == "" and sample.piece(5) == "🐍"
    app = make_app(st.path, pace=100.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        scr = reader(app)
        await reveal(pilot, app, 10.0)
        assert scr.view.revealed == len(MULTIBYTE_PIECES)
        targets = {}
        await pilot.press("home")
        for _ in range(len(MULTIBYTE_PIECES)):
            targets.setdefault(sample.piece(scr.view.cursor), scr.view.cursor)
            await pilot.press("right")
        assert "🐍" in targets and "本" in targets
        # walk back to the CJK token and mark it
        await pilot.press("home")
        while scr.view.cursor != targets["本"]:
            await pilot.press("right")
        await pilot.press("f", "escape")  # escape: no category
        await pilot.pause()
        m = Study.open(st.path).marks("tester")[0]
        assert m.at == targets["本"] and sample.piece(m.at) == "本" and m.category is None
        await pilot.press("u", "home")
        await pilot.pause()
        while scr.view.cursor != targets["🐍"]:
            await pilot.press("right")
        await pilot.press("enter", "0", "enter")  # enter = falls here; 0 = other
        await pilot.pause()
        m = Study.open(st.path).current_marks("tester")[("tester", sample.id)]
        assert m.at == targets["🐍"] and sample.piece(m.at) == "🐍" and m.category == "other"


async def test_fall_prompt_note_and_abandon(study: Study) -> None:
    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await reveal(pilot, app, 1.0)
        await pilot.press("f", "x")  # x: do not mark after all
        await pilot.pause()
        assert Study.open(study.path).marks() == []
        await pilot.press("f", "1", "n")
        await pilot.press(*"loops back")
        await pilot.press("enter", "enter")
        await pilot.pause()
        m = Study.open(study.path).marks("tester")[0]
        assert (m.category, m.severity, m.note) == ("repetition", None, "loops back")


async def test_blind_model_hidden_until_marked(study: Study) -> None:
    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await reveal(pilot, app, 5.0)
        await pilot.press("g")  # rank colours are refused in blind mode before the mark
        scr = reader(app)
        assert scr.view.show_ranks is False
        text = screen_text(app)
        assert "secretmodel" not in text
        await pilot.press("end", "f", "enter")
        await pilot.pause()
        assert "secretmodel" in screen_text(app)
        await pilot.press("g")
        assert scr.view.show_ranks is True


async def test_reveal_off_keeps_model_hidden(study: Study) -> None:
    app = make_app(study.path, reveal_after_mark=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await reveal(pilot, app, 2.0)
        await pilot.press("e")
        await pilot.pause()
        assert Study.open(study.path).marks("tester")[0].kind == "no_fall"
        assert "secretmodel" not in screen_text(app)


async def test_not_blind_shows_model_while_reading(study: Study) -> None:
    app = make_app(study.path, blind=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await reveal(pilot, app, 2.0)
        await pilot.press("g")
        assert reader(app).view.show_ranks is True


async def test_already_marked_samples_are_skipped(study: Study) -> None:
    from lmread.records import Mark

    first = study.reading_order()[0]
    study.append_mark(Mark(sample=first, annotator="tester", kind="skip"))
    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert reader(app).session.current.sample.id == study.reading_order()[1]
        assert reader(app).session.samples_left == 1


# --------------------------------------------------------------------------------------------
# Live sessions


def scripted_factory(delay_s: float = 0.01, broken: tuple[str, ...] = ()):
    loaded: list[str] = []

    def factory(model_id: str) -> ScriptedBackend:
        if model_id in broken:
            raise ModelError(f"model file for {model_id} does not exist; check the path")
        loaded.append(model_id)
        return ScriptedBackend(text=TEXT_A * 12, model_id=model_id, n_params=100, delay_s=delay_s)

    factory.loaded = loaded  # type: ignore[attr-defined]
    return factory


async def test_live_session_streams_and_fall_stops_generation(tmp_path: Path) -> None:
    path = tmp_path / "live"
    factory = scripted_factory()
    app = make_app(path, backend_factory=factory, live=True, models=["live-one", "live-two"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, LiveDialog)
        dialog = app.screen
        dialog.query_one("#live-n").value = "1"
        dialog.query_one("#live-max").value = "2000"
        await pilot.click("#live-start")
        await pilot.pause()
        scr = reader(app)
        await wait_for(pilot, lambda: scr.session.current is not None and scr.session.current.document.revealed >= 10)
        cur = scr.session.current
        assert cur.live and cur.streaming and cur.sample is None
        assert scr.view.revealed == cur.document.revealed
        assert "live-one" not in screen_text(app) and "live-two" not in screen_text(app)
        await pilot.press("left", "left")
        at = scr.view.cursor
        await pilot.press("f")
        await pilot.press("5", "enter")
        await wait_for(pilot, lambda: cur.marked)
        st = Study.open(path)
        (m,) = st.marks("tester")
        sample = st.sample(m.sample)
        assert sample.finish_reason == "cancelled"
        assert sample.n_tokens < 12 * len(TEXT_A.split())  # stopped early
        assert (m.kind, m.at, m.category) == ("fall", at, "incoherent")
        assert m.revealed is not None and m.at < m.revealed <= sample.n_tokens
        assert sample.model_id in screen_text(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: scr.session.current is not None and scr.session.current.document.revealed >= 5)
        second = scr.session.current
        await pilot.press("s")
        await wait_for(pilot, lambda: second.marked)
        st = Study.open(path)
        assert {s.model_id for s in st.samples.values()} == {"live-one", "live-two"}
        assert [x.kind for x in st.marks("tester")] == ["fall", "skip"]


async def test_live_model_failing_to_load_does_not_stop_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "live2"
    factory = scripted_factory(delay_s=0.0, broken=("broken-model",))
    app = make_app(path, backend_factory=factory, offer_first_run=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.begin_live(LiveConfig(models=["broken-model", "good-model"], n=2, options=GenOptions(max_tokens=30), prompt_set="story"))
        scr = reader(app)
        await wait_for(pilot, lambda: scr.session.current is not None and scr.session.current.stream_done)
        assert factory.loaded == ["good-model"]
        assert any("broken-model" in str(n.message) for n in app._notifications)
        assert scr.session.samples_left == 2
        await pilot.press("e")
        await wait_for(pilot, lambda: scr.session.current.marked)
        st = Study.open(path)
        (m,) = st.marks("tester")
        sample = st.sample(m.sample)
        assert sample.finish_reason == "length" and sample.n_tokens == 30
        assert m.kind == "no_fall" and m.read_to == 30


class Collector:
    """A message target for the live worker outside an app: keeps what is posted."""

    def __init__(self, accept: bool = True) -> None:
        self.messages: list = []
        self.accept = accept

    def post_message(self, message) -> bool:
        self.messages.append(message)
        return self.accept


class TickingClock:
    """A clock that moves 10 ms every time it is read."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.01
        return self.t


def test_live_worker_posts_batches_that_add_up_to_the_stored_sample() -> None:
    from lmread.tui.live import LiveStream
    from lmread.tui.live_jobs import LiveJob

    pieces = MULTIBYTE_PIECES * 3 + [b" \xf0\x9f"]  # ends inside a character: U+FFFD at the end
    backend = ScriptedBackend(pieces=pieces, model_id="m")
    job = LiveJob(model_id="m", prompt={"text": "p", "set": "t", "name": "t-1"},
                  options=GenOptions(max_tokens=100, seed=3), index=0)
    target = Collector()
    LiveStream(job, backend, target, interval_s=0.03, clock=TickingClock()).run()
    *batches, end = target.messages
    assert all(isinstance(b, LiveStream.TokenBatch) and b.job is job for b in batches)
    assert isinstance(end, LiveStream.Ended) and end.error is None and end.sample.n_tokens == len(pieces)
    assert 3 < len(batches) < len(pieces)  # batched, not one message a token
    sample = end.sample
    doc = TokenSpans()
    for b in batches:
        doc.append(b.text, b.offsets, reveal=True, ranks=b.ranks)
    assert doc.extend_to(sample.text, sample.tokens.offsets, sample.tokens.rank, reveal=True)
    assert (doc.text, doc.offsets, doc.ranks, doc.revealed) == (
        sample.text, sample.tokens.offsets, sample.tokens.rank, sample.n_tokens)
    assert sample.text.endswith("\ufffd")
    # errors end the stream on one line; a target that is gone cancels the generation
    failing = Collector()
    LiveStream(LiveJob(model_id="m", prompt=job.prompt, options=job.options, index=0),
               StreamFailsBackend(text=TEXT_A, model_id="m"), failing).run()
    error = failing.messages[-1].error
    assert failing.messages[-1].sample is None and "rebuild-llama" in error and "\n" not in error
    gone = Collector(accept=False)
    job3 = LiveJob(model_id="m", prompt=job.prompt, options=job.options, index=0)
    LiveStream(job3, ScriptedBackend(text=TEXT_A, model_id="m"), gone).run()
    assert job3.cancel.is_set() and gone.messages[-1].sample.finish_reason == "cancelled"


def write_scripted_card(home: Path, model_id: str, text: str) -> None:
    """A scripted model card in the user's model folder (the catalogue finds it, for the reader's
    default backend factory and for ``lmread generate`` alike)."""
    models = home / "models"
    models.mkdir(exist_ok=True)
    script = home / f"{model_id}.txt"
    script.write_text(text, encoding="utf-8")
    (models / f"{model_id}.toml").write_text(
        f'id = "{model_id}"\nname = "Scripted {model_id}"\nfamily = "scripted"\nbackends = ["scripted"]\n'
        f"n_params = 1000\nsource = {{ path = {orjson.dumps(str(script)).decode()} }}\n", encoding="utf-8")


async def read_live_samples(pilot, app: LmreadApp, config: LiveConfig) -> list[str]:
    """Run a live session and read each sample to its end (no fall); the ids read."""
    app.begin_live(config)
    scr = reader(app)
    ids = []
    for _ in range(config.n * len(config.models)):
        await wait_for(pilot, lambda: scr.session.current is not None and scr.session.current.stream_done)
        cur = scr.session.current
        assert cur.sample is not None and scr.view.document is cur.document
        assert cur.document.load_count == 1  # appended batch by batch, never reloaded
        ids.append(cur.sample.id)
        await pilot.press("e")
        await wait_for(pilot, lambda c=cur: c.marked)
        await pilot.press("n")
    return ids


async def test_live_sample_is_the_sample_lmread_generate_draws(tmp_path: Path, lmread_home: Path, capsys) -> None:
    from lmread.cli import main

    write_scripted_card(lmread_home, "scripted-live", TEXT_A * 4)
    live_path, generated_path = tmp_path / "live", tmp_path / "generated"
    Study.create(live_path, shuffle_seed=4242)
    app = make_app(live_path, offer_first_run=False)  # the catalogue's backends, as `lmread generate`
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        config = LiveConfig(models=["scripted-live"], n=2, options=GenOptions(max_tokens=25), prompt_set="story")
        first = await read_live_samples(pilot, app, config)
        again = await read_live_samples(pilot, app, LiveConfig(models=["scripted-live"], n=1, options=GenOptions(max_tokens=25),
                                                               prompt_set="story"))
    assert len(set(first + again)) == 3  # a second session draws the plan's next sample
    code = main(["generate", "--study", str(generated_path), "--model", "scripted-live", "--prompt-set", "story",
                 "--samples", "1", "--max-tokens", "25", "--seed", "4242"])
    assert code == 0, capsys.readouterr().err
    live, generated = Study.open(live_path).samples, Study.open(generated_path).samples
    assert set(live) <= set(generated)
    for sid, sample in live.items():
        twin = generated[sid]
        assert (sample.text, sample.tokens.offsets, sample.seed, sample.prompt, sample.settings) == (
            twin.text, twin.tokens.offsets, twin.seed, twin.prompt, twin.settings)
        assert sample.finish_reason == twin.finish_reason == "length" and sample.n_tokens == 25


class StreamFailsBackend(ScriptedBackend):
    """A scripted backend whose stream raises a (multi-line) ModelError after three tokens."""

    def stream(self, *args, **kwargs):
        for i, item in enumerate(super().stream(*args, **kwargs)):
            if i == 3:
                raise ModelError("llama.cpp stopped:\nthe build does not run on this CPU; run make rebuild-llama")
            yield item


async def test_live_backend_errors_are_one_line_and_stored_samples_stay_readable(study: Study) -> None:
    def factory(model_id: str) -> ScriptedBackend:
        if model_id == "unloadable":
            raise ModelError("llama.cpp was built for another CPU:\nrun make rebuild-llama, then start again")
        return StreamFailsBackend(text=TEXT_B, model_id=model_id)

    app = make_app(study.path, backend_factory=factory, offer_first_run=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.begin_live(LiveConfig(models=["unloadable"], n=1, options=GenOptions(max_tokens=30), prompt_set="story"))
        scr = reader(app)
        await wait_for(pilot, lambda: scr.session.current is not None)
        messages = [str(n.message) for n in app._notifications]
        assert any("unloadable" in m and "make rebuild-llama" in m and "\n" not in m for m in messages), messages
        # the app is up and the stored samples can be read and marked
        assert isinstance(app.screen, ReaderScreen) and scr.session.current.sample.id in study.samples
        await reveal(pilot, app, 2.0)
        await pilot.press("e")
        await pilot.pause()
        assert [m.kind for m in Study.open(study.path).marks("tester")] == ["no_fall"]
        # a stream that fails: one line, the sample is not stored, the next stored sample reads
        app.begin_live(LiveConfig(models=["breaks-midway"], n=1, options=GenOptions(max_tokens=30), prompt_set="story"))
        scr = reader(app)
        await wait_for(pilot, lambda: scr.session.current is not None and scr.session.current.stream_done)
        assert scr.session.current.failed and "\n" not in scr.session.current.failed
        assert any("rebuild-llama" in str(n.message) and "\n" not in str(n.message) for n in app._notifications)
        await pilot.press("n")
        assert scr.session.current.sample.id in study.samples and not scr.session.current.marked
        await reveal(pilot, app, 2.0)
        await pilot.press("s")
        await pilot.pause()
        st = Study.open(study.path)
        assert [m.kind for m in st.marks("tester")] == ["no_fall", "skip"] and set(st.samples) == set(study.samples)


# --------------------------------------------------------------------------------------------
# Screens, errors, sizes


async def test_home_screen_lists_studies_and_models(study: Study, lmread_home: Path) -> None:
    other = Study.create(lmread_home / "studies" / "second", shuffle_seed=1)
    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)
        text = screen_text(app)
        assert "study" in text and "second" in text and "smollm2-135m" in text
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "falls at the cursor" in screen_text(app)
        await pilot.press("escape")
        # pick the second study: it is empty, the reader says so
        home = app.screen
        home.query_one("#studies").move_cursor(row=1)
        await pilot.press("r")
        await pilot.pause()
        assert reader(app).session.study.path == other.path
        assert "All samples" in screen_text(app)


async def test_command_palette_lists_lmread_commands(study: Study) -> None:
    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.press(*"undo")
        await pilot.pause(0.3)
        assert "Undo the latest mark" in screen_text(app)


async def test_survival_key_without_crash(study: Study) -> None:
    from lmread.tui.screens.survival import SurvivalScreen

    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("v")
        await pilot.pause()
        # nothing marked yet: the survival view opens and says so in one line
        assert isinstance(app.screen, SurvivalScreen)
        assert app.screen.doc is None and "no fall or no-fall marks" in (app.screen.error or "")
        assert "'lmread mark'" in screen_text(app)  # the end of that line, wrapped on screen
    first, second = list(study.samples)
    study.append_mark(Mark(sample=first, annotator="tester", kind="fall", at=3, category="repetition"))
    study.append_mark(Mark(sample=second, annotator="tester", kind="no_fall", read_to=5))
    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("v")
        await pilot.pause()
        # with marks: the curves of both models, one fall and one censored reading
        assert isinstance(app.screen, SurvivalScreen) and app.screen.error is None
        doc = app.screen.doc
        assert doc is not None and doc["n"] == 2
        assert sorted((g["label"], g["events"], g["censored"]) for g in doc["groups"]) == [
            ("secretmodel-a", 1, 0), ("secretmodel-b", 0, 1)]


async def test_terminal_too_small_message(study: Study) -> None:
    app = make_app(study.path)
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)
        assert "terminal too small: need at least 60x16" in screen_text(app)
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert not isinstance(app.screen, TooSmallScreen)


async def test_first_run_offers_bundled_models(tmp_path: Path) -> None:
    app = make_app(tmp_path / "empty")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, LiveDialog)
        selected = app.screen.query_one("#live-models").selected
        assert sorted(selected) == ["gemma3-270m", "smollm2-135m"]
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)


def test_read_command_unreadable_study_is_one_line_error(tmp_path: Path, capsys) -> None:
    from lmread.cli import main

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "study.toml").write_text("this is = = not toml")
    assert main(["read", "--study", str(bad)]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("lmread: error:") and "study.toml" in err and "\n" not in err
    notastudy = tmp_path / "full"
    notastudy.mkdir()
    (notastudy / "x.txt").write_text("x")
    assert main(["read", "--study", str(notastudy)]) != 0
    assert "not a study folder" in capsys.readouterr().err


def test_read_command_bad_sample_schema_is_clear(study: Study, capsys) -> None:
    from lmread.cli import main

    record = make_sample("Some text here.", seed=9).to_json()
    record["schema"] = "lmread.sample/99"
    with open(study.path / "samples.jsonl", "ab") as fh:
        fh.write(orjson.dumps(record) + b"\n")
    assert main(["read", "--study", str(study.path)]) != 0
    err = capsys.readouterr().err.strip()
    assert "line 3" in err and "lmread.sample/99" in err and "upgrade" in err and "\n" not in err


def test_read_command_bad_options(study: Study, capsys) -> None:
    from lmread.cli import main

    assert main(["read", "--study", str(study.path), "--annotator", "../x"]) != 0
    assert "annotator name" in capsys.readouterr().err
    assert main(["read", "--study", str(study.path), "--pace", "0"]) != 0
    assert "--pace" in capsys.readouterr().err


async def test_bad_sample_in_study_opened_from_home_is_notified(study: Study, lmread_home: Path) -> None:
    bad = Study.create(lmread_home / "studies" / "broken", shuffle_seed=1)
    with open(bad.path / "samples.jsonl", "wb") as fh:
        fh.write(b'{"schema": "lmread.sample/1", "id": 3}\n')
    app = make_app(study.path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        app.open_reader(bad.path)
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        assert any("malformed sample" in str(n.message) for n in app._notifications)

