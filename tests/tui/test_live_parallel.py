"""The live session with ``parallel`` > 1 (issue 20): the next queued samples of a model are
decoded in one batch, the one on screen streams, the others are ready when the reader gets there.

Driven with Pilot on the scripted backend that decodes like llama.cpp's continuous batching
(``tests/generate/test_parallel.py``): the samples are the ones ``lmread generate --parallel N``
draws, a mark that stops the sample on screen stops only that one, every mark is on disk, going
home ends every job, and the blind order is the order of the queue.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from lmread.backends.base import GenOptions
from lmread.study import Study

pytest.importorskip("textual")

from lmread.tui.app import LmreadApp
from lmread.tui.live import JobFeed, LiveStream, ParallelLive
from lmread.tui.live_jobs import LiveJob
from lmread.tui.messages import LiveConfig
from lmread.tui.screens.reader import ReaderScreen
from tests.generate.test_parallel import ParallelScripted
from tests.tui.test_reader import (
    SIZE,
    TEXT_A,
    TEXT_B,
    make_app,
    make_sample,
    reader,
    wait_for,
    write_scripted_card,
)


@pytest.fixture
def study(tmp_path: Path) -> Study:
    st = Study.create(tmp_path / "study", shuffle_seed=7)
    st.add_samples([make_sample(TEXT_A, "secretmodel-a", 1000, 1)])
    return st


async def read_all(pilot, app: LmreadApp, config: LiveConfig) -> list[str]:
    """Run a live session and read each sample to its end (no fall), letting the pace reveal the
    ones drawn ahead; the ids read."""
    app.begin_live(config)
    scr = reader(app)
    ids = []
    for _ in range(config.n * len(config.models)):
        await wait_for(pilot, lambda: scr.session.current is not None and scr.session.current.stream_done)
        cur = scr.session.current
        assert cur.sample is not None and scr.view.document is cur.document
        assert not cur.live or cur.document.load_count == 1  # a stream is appended, never reloaded
        app.clock.t += 600  # the pace reveals everything
        await wait_for(pilot, lambda c=cur: c.document.revealed == c.document.n_tokens)
        ids.append(cur.sample.id)
        await pilot.press("e")
        await wait_for(pilot, lambda c=cur: c.marked)
        await pilot.press("n")
    return ids


async def test_parallel_live_sample_is_the_sample_lmread_generate_parallel_draws(
        tmp_path: Path, lmread_home: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmread import backends
    from lmread.cli import main

    # the catalogue's scripted model decodes in batches, for the reader and `lmread generate` alike
    monkeypatch.setitem(backends.BACKENDS, "scripted", ("tests.generate.test_parallel", "ParallelScripted"))
    write_scripted_card(lmread_home, "scripted-live", TEXT_A * 4)
    live_path, generated_path = tmp_path / "live", tmp_path / "generated"
    Study.create(live_path, shuffle_seed=4242)
    app = make_app(live_path, offer_first_run=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        config = LiveConfig(models=["scripted-live"], n=4, options=GenOptions(max_tokens=25), prompt_set="story",
                            parallel=3)
        ids = await read_all(pilot, app, config)
        backend = app.backends["scripted-live"]
        assert isinstance(backend, ParallelScripted)
        assert max(len(step) for step in backend.steps) == 3  # three decoded together, then the fourth
    assert len(set(ids)) == 4
    code = main(["generate", "--study", str(generated_path), "--model", "scripted-live", "--prompt-set", "story",
                 "--samples", "1", "--max-tokens", "25", "--seed", "4242", "--parallel", "3"])
    assert code == 0, capsys.readouterr().err
    live, generated = Study.open(live_path).samples, Study.open(generated_path).samples
    assert set(live) == set(ids) and set(live) <= set(generated)
    for sid, sample in live.items():
        twin = generated[sid]
        assert (sample.text, sample.tokens.offsets, sample.seed, sample.prompt, sample.settings) == (
            twin.text, twin.tokens.offsets, twin.seed, twin.prompt, twin.settings)
        assert sample.finish_reason == twin.finish_reason == "length" and sample.n_tokens == 25
        assert sample.times.get("parallel") == twin.times.get("parallel") == 3


def slow_factory(delay_s: float):
    backends: dict[str, ParallelScripted] = {}

    def factory(model_id: str) -> ParallelScripted:
        text = TEXT_A if model_id == "model-a" else TEXT_B
        backends[model_id] = ParallelScripted(text=text * 3, model_id=model_id, n_params=1000 if model_id == "model-a"
                                              else 2000, delay_s=delay_s)
        return backends[model_id]

    return factory, backends


async def test_parallel_live_session_streams_the_sample_on_screen_and_fills_the_rest(study: Study) -> None:
    factory, backends = slow_factory(0.004)
    app = make_app(study.path, backend_factory=factory, offer_first_run=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        config = LiveConfig(models=["model-a", "model-b"], n=3, options=GenOptions(max_tokens=60), prompt_set="story",
                            parallel=3)
        app.begin_live(config)
        scr = reader(app)
        await wait_for(pilot, lambda: scr.session.current is not None)
        first = scr.session.current
        order = [first.item.job] + [item.job for item in scr.session.queue if item.job is not None]
        order_keys = [(job.model_id, job.prompt["text"], job.options.seed) for job in order]
        assert len(order) == 6
        # the sample on screen streams batch by batch while its model's other jobs are drawn beside it
        await wait_for(pilot, lambda: 5 <= first.document.n_tokens)
        assert first.streaming and not first.stream_done
        model = first.item.job.model_id
        same_model = [job for job in order if job.model_id == model]
        assert all(job.feed is not None for job in same_model)
        assert all(job.feed is None for job in order if job.model_id != model)
        # a no-fall mark stops the sample on screen (stored partial), not the others of its batch
        await pilot.press("e")
        await wait_for(pilot, lambda: first.marked)
        assert first.sample is not None and first.sample.finish_reason == "cancelled"
        assert first.sample.n_tokens < 60
        await wait_for(pilot, lambda: all(job.feed.ended for job in same_model), timeout=20)
        ended_on_their_own = [job for job in same_model[1:] if not job.cancel.is_set()]
        assert len(ended_on_their_own) == 2
        shown = [first]
        first_revealed = first.document.revealed
        read_ids = [first.sample.id]
        # read the rest in the queue's (blind) order: the batch's others are ready at once
        for _ in range(5):
            await pilot.press("n")
            await wait_for(pilot, lambda: scr.session.current is not None and scr.session.current is not shown[-1])
            cur = scr.session.current
            shown.append(cur)
            if not cur.live:
                # drawn to its end behind the first: stored at once, revealed at the reading pace
                assert not cur.live and cur.stream_done and cur.document.revealed == 0
                assert cur.sample is not None and cur.sample.finish_reason == "length" and cur.sample.n_tokens == 60
                assert cur.sample.id in Study.open(study.path).samples
                app.clock.t += 2.0
                await wait_for(pilot, lambda c=cur: c.document.revealed > 0)
                assert cur.document.revealed < 60  # never ahead of the pace
            else:
                assert cur.item.job.model_id != model
                await wait_for(pilot, lambda c=cur: c.stream_done, timeout=20)
            await pilot.press("e")
            await wait_for(pilot, lambda c=cur: c.marked)
            read_ids.append(cur.sample.id)
        seen = [(c.sample.model["id"], c.sample.prompt["text"], c.sample.seed) for c in shown]
        assert seen == order_keys  # the blind order of the queue
        steps = backends[model].steps
        assert max(len(s) for s in steps) == 3
        annotator = app.annotator
    marks = {m.sample: m for m in Study.open(study.path).marks(annotator)}
    assert len(set(read_ids)) == 6 and all(marks[sid].kind == "no_fall" for sid in read_ids)
    # the stopped sample is censored at what was on screen when it was marked, its tail kept unread
    assert 5 <= marks[read_ids[0]].read_to == first_revealed <= Study.open(study.path).samples[read_ids[0]].n_tokens


async def test_going_home_ends_every_job_of_a_parallel_batch(study: Study) -> None:
    factory, backends = slow_factory(0.02)
    app = make_app(study.path, backend_factory=factory, offer_first_run=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.begin_live(LiveConfig(models=["model-a"], n=3, options=GenOptions(max_tokens=400), prompt_set="story",
                                  parallel=3))
        scr = reader(app)
        await wait_for(pilot, lambda: scr.session.current is not None and scr.session.current.document.n_tokens > 2)
        jobs = [scr.session.current.item.job] + [item.job for item in scr.session.queue if item.job is not None]
        await pilot.press("escape")
        await wait_for(pilot, lambda: all(job.feed is not None and job.feed.ended for job in jobs), timeout=10)
        assert all(job.cancel.is_set() for job in jobs)
        assert all(len(step) <= 3 for step in backends["model-a"].steps)
        n_steps = len(backends["model-a"].steps)
        await pilot.pause(0.2)
        assert len(backends["model-a"].steps) == n_steps  # nothing decodes any more


class Target:
    """A message pump stand-in that records what it is posted (False once ``gone``)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.gone = False

    def post_message(self, message: Any) -> bool:
        if self.gone:
            return False
        self.messages.append(message)
        return True


def _jobs(n: int) -> list[LiveJob]:
    prompts = [{"text": f"Prompt number {i}.", "set": "t", "name": f"p{i}"} for i in range(n)]
    return [LiveJob(model_id="model-a", prompt=p, options=GenOptions(max_tokens=8, seed=10 + i), index=0)
            for i, p in enumerate(prompts)]


def test_a_feed_posts_what_was_drawn_once_the_reader_attaches_and_the_rest_as_it_comes() -> None:
    jobs = _jobs(3)
    batch = ParallelLive(jobs, ParallelScripted(text=TEXT_A), 3, interval_s=0.0)
    batch.run()
    assert all(job.feed.ended for job in jobs)
    target = Target()
    jobs[1].feed.attach(target)  # already complete: its tokens, then the sample, at once
    *batches, end = target.messages
    assert isinstance(end, LiveStream.Ended) and end.error is None and end.sample is not None
    assert all(isinstance(b, LiveStream.TokenBatch) and b.job is jobs[1] for b in batches)
    assert "".join(b.text for b in batches) == end.sample.text
    assert [o for b in batches for o in b.offsets] == end.sample.tokens.offsets[1:]
    assert (end.sample.prompt["text"], end.sample.seed) == (jobs[1].prompt["text"], jobs[1].options.seed)
    assert end.sample.n_tokens == 8 and end.sample.times.get("parallel") == 3


def test_a_feed_attached_while_drawing_streams_and_a_cancelled_job_ends_alone() -> None:
    jobs = _jobs(3)
    backend = ParallelScripted(text=TEXT_A, delay_s=0.01)
    batch = ParallelLive(jobs, backend, 3, interval_s=0.0)
    target = Target()
    jobs[0].feed.attach(target)
    worker = threading.Thread(target=batch.run)
    worker.start()
    for _ in range(500):
        if len(target.messages) >= 2:
            break
        threading.Event().wait(0.01)
    jobs[0].cancel.set()  # the reader's mark
    worker.join(10)
    assert not worker.is_alive()
    end = target.messages[-1]
    assert isinstance(end, LiveStream.Ended) and end.sample is not None
    assert end.sample.finish_reason == "cancelled" and 2 <= end.sample.n_tokens < 8
    assert "".join(m.text for m in target.messages[:-1]) == end.sample.text
    for job in jobs[1:]:
        other = Target()
        job.feed.attach(other)
        assert other.messages[-1].sample.finish_reason == "length" and other.messages[-1].sample.n_tokens == 8


def test_a_batch_that_fails_ends_every_feed_with_one_line_and_a_refused_prompt_alone() -> None:
    jobs = _jobs(2)
    jobs[1].prompt = {"text": "x" * 50, "set": "t", "name": "long"}
    batch = ParallelLive(jobs, ParallelScripted(text=TEXT_A, limit=40), 2, interval_s=0.0)
    batch.run()
    refused, fine = Target(), Target()
    jobs[1].feed.attach(refused)
    jobs[0].feed.attach(fine)
    assert refused.messages[-1].sample is None and "context holds 40" in refused.messages[-1].error
    assert fine.messages[-1].sample is not None and fine.messages[-1].sample.n_tokens == 8
    gone = _jobs(2)
    ParallelLive(gone, None, 2).run()
    for job in gone:
        t = Target()
        job.feed.attach(t)
        assert t.messages == [t.messages[-1]] and "not loaded" in t.messages[-1].error
    assert isinstance(gone[0].feed, JobFeed)


def test_parallel_1_is_todays_one_at_a_time(study: Study) -> None:
    app = LmreadApp(study.path, parallel=1)
    assert app.parallel == 1 and LiveConfig().parallel == 1


@pytest.mark.slow
def test_parallel_live_batch_on_smollm2_is_the_batch_lmread_generate_draws(llama_smollm2: Any) -> None:
    from lmread.generate import generate_parallel

    def jobs() -> list[LiveJob]:
        out = _jobs(3)
        for job in out:
            job.options = GenOptions(max_tokens=10, seed=job.options.seed)
        return out

    twins = {s.seed: s for s in generate_parallel(llama_smollm2, [(j.prompt, j.options) for j in jobs()], 3)}
    whole = jobs()
    ParallelLive(whole, llama_smollm2, 3, interval_s=0.0).run()
    for job in whole:  # the same seeds and N: the same tokens as `lmread generate --parallel 3`
        drawn, twin = job.feed.drawn, twins[job.options.seed]
        assert drawn is not None and drawn.times["parallel"] == 3
        assert (drawn.id, drawn.text, drawn.tokens.ids, drawn.tokens.offsets) == (
            twin.id, twin.text, twin.tokens.ids, twin.tokens.offsets)

    marked = jobs()
    batch = ParallelLive(marked, llama_smollm2, 3, interval_s=0.0)

    class MarkAfterThree(Target):
        def post_message(self, message: Any) -> bool:
            ok = super().post_message(message)
            if sum(len(m.offsets) for m in self.messages if isinstance(m, LiveStream.TokenBatch)) >= 3:
                marked[0].cancel.set()  # the reader marks the sample on screen
            return ok

    target = MarkAfterThree()
    marked[0].feed.attach(target)
    batch.run()
    stopped = target.messages[-1].sample
    assert stopped is not None and stopped.finish_reason == "cancelled" and 3 <= stopped.n_tokens < 10
    assert "".join(m.text for m in target.messages[:-1]) == stopped.text
    assert stopped.id == twins[marked[0].options.seed].id
    assert stopped.tokens.ids == twins[marked[0].options.seed].tokens.ids[:stopped.n_tokens]
    for job in marked[1:]:  # the others of the batch go on to their end
        drawn = job.feed.drawn
        assert drawn is not None and drawn.finish_reason in ("length", "eos") and drawn.id == twins[job.options.seed].id


def test_read_command_parallel_flag(study: Study, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmread.cli import main

    assert main(["read", "--study", str(study.path), "--live", "--parallel", "0"]) != 0
    err = capsys.readouterr().err.strip()
    assert "--parallel" in err and "\n" not in err
    opened: list[LmreadApp] = []
    monkeypatch.setattr(LmreadApp, "run", lambda self, *a, **k: opened.append(self))
    assert main(["read", "--study", str(study.path), "--live", "--parallel", "4"]) == 0
    assert main(["read", "--study", str(study.path), "--live"]) == 0
    assert [app.parallel for app in opened] == [4, 1] and opened[0].start_live


async def test_live_dialog_sets_decode_together(tmp_path: Path) -> None:
    from lmread.tui.screens.dialogs import LiveDialog

    factory, backends = slow_factory(0.0)
    app = make_app(tmp_path / "live", backend_factory=factory, live=True, models=["model-a"], parallel=2)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, LiveDialog) and dialog.query_one("#live-parallel").value == "2"
        dialog.query_one("#live-n").value = "3"
        dialog.query_one("#live-parallel").value = "0"
        await pilot.click("#live-start")
        await pilot.pause()
        assert app.screen is dialog and "decode together" in str(dialog.query_one("#live-error").render())
        dialog.query_one("#live-parallel").value = "3"
        dialog.action_start()
        await wait_for(pilot, lambda: isinstance(app.screen, ReaderScreen))
        scr = reader(app)
        await wait_for(pilot, lambda: scr.session.current is not None and scr.session.current.stream_done)
        assert app.parallel == 3 and max(len(step) for step in backends["model-a"].steps) == 3


def test_a_lock_chain_holds_every_lock_in_order() -> None:
    from lmread.tui.live import LockChain

    generation, model = threading.Lock(), threading.Lock()
    with LockChain(generation, model):
        assert generation.locked() and model.locked()
    assert not generation.locked() and not model.locked()
    model.acquire()  # a batch of another session decodes with this model
    entered = threading.Event()

    def stream() -> None:
        with LockChain(generation, model):
            entered.set()

    worker = threading.Thread(target=stream)
    worker.start()
    assert not entered.wait(0.2)  # the one-at-a-time stream waits for the model
    model.release()
    assert entered.wait(5)
    worker.join(5)
    assert not generation.locked() and not model.locked()
