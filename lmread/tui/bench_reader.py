"""Reader measurements for the benchmarks of :mod:`lmread.bench.reader`: streaming ingest into the
token view, first paint of a long sample, and the cost of one cursor keypress at the end of a long
sample.  All run in a headless Textual app (``App.run_test``).

Methods.  Each drives the product's own code.
- ``reader_ingest_tokens_per_s``: the reader app (:class:`lmread.tui.app.LmreadApp`) runs a live
  session on a scripted backend whose tokens carry made-up ranks (so ranks flow too): the plan
  gives the job, the live worker (:class:`lmread.tui.live.LiveStream`) runs the generation driver
  and posts token batches, the reader appends them to the sample's token document and draws it.
  Tokens per second from the first token drawn to the last token inside the reader's document.
- ``reader_first_paint_s``: a 50,000-token sample loaded into a document made as the reader makes
  them (:func:`lmread.tui.widgets.token_view.new_document`) and shown with ``TokenView.show``; the
  time until the first screen has been painted (``await pilot.pause()``, which lets Textual run its
  refresh).  The details also give the time of that plus rendering every visible line through
  ``render_line``.
- ``reader_cursor_move_s``: the same sample with the cursor at its end; the mean time from sending
  one key event through the app's driver (alternating right/left, so the cursor moves every time)
  until the cursor has moved, plus re-rendering the cursor's line.  ``pilot.press`` itself waits
  for the process to go idle several times per key (tens of milliseconds whatever the widget does),
  so its time is reported in the details next to the same measurement on a two-token document.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

_WORDS = (
    "the keeper wrote in the log that the storm came early this year and the boats stayed in the "
    "harbour while the gulls circled over the cape; nobody could remember a colder spring, "
    "and the old charts were of no use. 漢字 and an emoji 😀 now and then keep the wrapper honest."
).split(" ")


def _script(n_tokens: int) -> str:
    """A text of ``n_tokens`` word tokens (the scripted ``words`` tokenizer), with paragraphs."""
    out = []
    for i in range(n_tokens):
        word = _WORDS[i % len(_WORDS)]
        out.append(word if i == 0 else ("\n\n" if i % 400 == 0 else " ") + word)
    return "".join(out)


def _sample(n_tokens: int) -> tuple[str, list[int], list[int | None]]:
    from lmread.backends.scripted import split_text
    from lmread.records import TokenAssembler

    asm = TokenAssembler(with_distribution=False)
    for i, piece in enumerate(split_text(_script(n_tokens), "words")):
        asm.add(i, piece)
    tokens, text, _ = asm.finish()
    ranks: list[int | None] = [(i * 7919) % 1500 + 1 for i in range(len(tokens))]
    return text, tokens.offsets, ranks


def _app() -> Any:
    from textual.app import App, ComposeResult

    from lmread.tui.widgets.token_view import TokenView

    class BenchApp(App):
        def compose(self) -> ComposeResult:
            yield TokenView(id="view")

    return BenchApp()


class _RankedScript:
    """Makes the bench's scripted backend: its tokens carry a made-up rank and logprob (a real
    model's fake distributions cost the scripted backend ~0.2 ms a token, which would measure the
    backend, not the reader) and it notes when its first token was drawn."""

    def __init__(self, n_tokens: int) -> None:
        from lmread.backends.base import TokenChunk
        from lmread.backends.scripted import ScriptedBackend

        owner = self

        class Backend(ScriptedBackend):
            def stream(self, *args: Any, **kwargs: Any) -> Any:
                for i, item in enumerate(super().stream(*args, **kwargs)):
                    if isinstance(item, TokenChunk):
                        if owner.first_token_at is None:
                            owner.first_token_at = time.perf_counter()
                        item.rank = (i * 7919) % 1500 + 1
                        item.logprob = -1.0
                    yield item

        self.first_token_at: float | None = None
        self.backend = Backend(text=_script(n_tokens), fake_logprobs=False, model_id="bench-reader", n_params=1000)


async def _ingest(n_tokens: int) -> dict[str, Any]:
    from lmread.backends.options import GenOptions
    from lmread.config import Settings
    from lmread.tui.app import LmreadApp
    from lmread.tui.messages import LiveConfig
    from lmread.tui.screens.reader import ReaderScreen

    script = _RankedScript(n_tokens)
    with tempfile.TemporaryDirectory(prefix="lmread-bench-") as tmp:
        home = Path(tmp)
        settings = Settings(data_dir=home, config_file=home / "config.toml", annotator="bench")
        app = LmreadApp(home / "studies" / "bench", settings=settings, backend_factory=lambda _id: script.backend,
                        offer_first_run=False)
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause()
            app.begin_live(LiveConfig(models=["bench-reader"], n=1, options=GenOptions(max_tokens=n_tokens + 1),
                                      prompt_set="story", seed=0))
            end = None
            while end is None:
                await asyncio.sleep(0.002)
                screen = app.screen
                cur = screen.session.current if isinstance(screen, ReaderScreen) else None
                if cur is not None and cur.document.n_tokens >= n_tokens:
                    end = time.perf_counter()
            while not cur.stream_done:  # the sample is stored before the app closes
                await asyncio.sleep(0.01)
            got = cur.document.n_tokens
            ranked = sum(r is not None for r in cur.document.ranks)
            await pilot.pause()
    assert script.first_token_at is not None
    elapsed = end - script.first_token_at
    return {"tokens": got, "ranked_tokens": ranked, "elapsed_s": elapsed, "rate": got / elapsed,
            "method": "a live session of LmreadApp on a scripted backend: plan, LiveStream worker, "
                      "token batches appended to the reader's document; first token drawn to last token shown"}


async def _paint_and_cursor(n_tokens: int, presses: int) -> dict[str, Any]:
    from textual import events

    from lmread.tui.widgets.token_view import TokenView, new_document

    text, offsets, ranks = _sample(n_tokens)
    app = _app()
    out: dict[str, Any] = {"tokens": len(offsets) - 1, "chars": len(text)}
    async with app.run_test(size=(100, 40)) as pilot:
        view = app.query_one(TokenView)
        view.focus()
        await pilot.pause()
        height = view.scrollable_content_region.height
        # (a) explicit: load + show + render every visible line
        t0 = time.perf_counter()
        document = new_document()
        document.load(text, offsets, None, ranks)
        view.show(document)
        for y in range(height):
            view.render_line(y)
        out["load_and_render_lines_s"] = time.perf_counter() - t0
        # (b) load + show + let Textual paint the screen (the reported value); a fresh document
        # of the same sample has no wrap, and showing it drops every cached line
        view.show(new_document())
        await pilot.pause()
        t0 = time.perf_counter()
        document = new_document()
        document.load(text, offsets, None, ranks)
        view.show(document)
        await pilot.pause()
        out["first_paint_s"] = time.perf_counter() - t0
        out["lines"] = view.virtual_size.height
        # cursor moves at the end: keys sent as the driver sends them, timed until the cursor has
        # moved and its line is rendered again
        await pilot.press("end")
        await pilot.pause()
        width = view.scrollable_content_region.width
        keys = ["left", "right"]
        driver = app._driver
        total = 0.0
        for i in range(presses):
            old = view.cursor
            t0 = time.perf_counter()
            event = events.Key(keys[i % 2], None)
            event.set_sender(app)
            driver.send_message(event)
            while view.cursor == old:
                await asyncio.sleep(0)
            row = view.wrapped.line_of_token(view.cursor, width) - int(view.scroll_offset.y)
            view.render_line(row)
            total += time.perf_counter() - t0
            await asyncio.sleep(0)
        out["cursor_move_s"] = total / presses
        # the same through pilot.press, whose own idle waits dominate (see the baseline)
        n_pilot = max(10, presses // 10)
        t0 = time.perf_counter()
        for i in range(n_pilot):
            await pilot.press(keys[i % 2])
        out["pilot_press_s"] = (time.perf_counter() - t0) / n_pilot
        out["cursor_at"] = view.cursor
        view.load("one two", [0, 3, 7])
        await pilot.pause()
        t0 = time.perf_counter()
        for i in range(n_pilot):
            await pilot.press(keys[i % 2])
        out["pilot_press_baseline_2_tokens_s"] = (time.perf_counter() - t0) / n_pilot
    return out


def measure(quick: bool = False) -> dict[str, dict[str, Any]]:
    """Run the reader measurements; ``quick`` shortens the keypress series.  Returns
    ``{"ingest": ..., "paint": ...}``, the raw numbers and methods (the benchmark results are made
    by :mod:`lmread.bench.reader`, which imports this module, never the other way)."""
    presses = 60 if quick else 200
    ingest = asyncio.run(_ingest(20_000))
    paint = asyncio.run(_paint_and_cursor(50_000, presses))
    paint["presses"] = presses
    return {"ingest": ingest, "paint": paint}
