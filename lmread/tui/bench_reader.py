"""Reader benchmarks: streaming ingest into the token view, first paint of a long sample, and the
cost of one cursor keypress at the end of a long sample.  All run in a headless Textual app
(``App.run_test``).

Methods.
- ``reader_ingest_tokens_per_s``: a worker thread draws scripted tokens (with fake distributions,
  so ranks flow too) from :class:`ScriptedBackend.stream`, assembles them with
  :class:`TokenAssembler`, and hands a batch to ``TokenView.append_tokens`` every ~30 ms through
  ``app.call_from_thread`` (as the live session does).  Tokens per second from the first token
  drawn to the last token inside the widget.
- ``reader_first_paint_s``: a 50,000-token sample; the time from ``load()`` until the first screen
  has been painted (``await pilot.pause()``, which lets Textual run its refresh).  The details also
  give the time of ``load()`` plus rendering every visible line through ``render_line``.
- ``reader_cursor_move_s``: the same sample with the cursor at its end; the mean time from sending
  one key event through the app's driver (alternating right/left, so the cursor moves every time)
  until the cursor has moved, plus re-rendering the cursor's line.  ``pilot.press`` itself waits
  for the process to go idle several times per key (tens of milliseconds whatever the widget does),
  so its time is reported in the details next to the same measurement on a two-token document.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from lmread.bench import BenchResult

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


async def _ingest(n_tokens: int, interval_s: float = 0.03) -> dict[str, Any]:
    from lmread.backends.base import GenOptions, TokenChunk
    from lmread.backends.scripted import ScriptedBackend
    from lmread.records import TokenAssembler
    from lmread.tui.widgets.token_view import TokenView

    # Fake distributions cost the scripted backend ~0.2 ms a token (a numpy generator per token),
    # which would measure the backend, not the reader: ranks are made up cheaply instead.
    backend = ScriptedBackend(text=_script(n_tokens), fake_logprobs=False)
    app = _app()
    done = threading.Event()
    batches = [0]
    times: dict[str, float] = {}
    async with app.run_test(size=(100, 40)) as pilot:
        view = app.query_one(TokenView)
        view.focus()
        await pilot.pause()

        def produce() -> None:
            asm = TokenAssembler()
            sent_tokens = sent_chars = 0
            last = time.perf_counter()
            times["start"] = last

            def flush() -> None:
                nonlocal sent_tokens, sent_chars, last
                n = len(asm)
                if n <= sent_tokens:
                    return
                offs = asm.tokens.offsets[sent_tokens + 1 : n + 1]
                chunk = asm.text[sent_chars : offs[-1]]
                ranks = list(asm.tokens.rank[sent_tokens:n])  # type: ignore[index]
                sent_tokens, sent_chars, last = n, offs[-1], time.perf_counter()
                app.call_from_thread(view.append_tokens, chunk, list(offs), ranks, True)
                batches[0] += 1

            for item in backend.stream("", GenOptions(max_tokens=n_tokens + 1)):
                if isinstance(item, TokenChunk):
                    rank = (len(asm) * 7919) % 1500 + 1
                    asm.add(item.id, item.piece, item.logprob, rank, item.entropy,
                            item.top_ids, item.top_logprobs, item.top_pieces)
                    if time.perf_counter() - last >= interval_s:
                        flush()
            flush()
            times["end"] = time.perf_counter()
            done.set()

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        while not done.is_set():
            await asyncio.sleep(0.005)
        thread.join()
        await pilot.pause()
        got = view.n_tokens
    elapsed = times["end"] - times["start"]
    return {"tokens": got, "elapsed_s": elapsed, "batches": batches[0], "rate": got / elapsed}


async def _paint_and_cursor(n_tokens: int, presses: int) -> dict[str, Any]:
    from textual import events

    from lmread.tui.widgets.token_view import TokenView

    text, offsets, ranks = _sample(n_tokens)
    app = _app()
    out: dict[str, Any] = {"tokens": len(offsets) - 1, "chars": len(text)}
    async with app.run_test(size=(100, 40)) as pilot:
        view = app.query_one(TokenView)
        view.focus()
        await pilot.pause()
        height = view.scrollable_content_region.height
        # (a) explicit: load + render every visible line
        t0 = time.perf_counter()
        view.load(text, offsets, ranks=ranks)
        for y in range(height):
            view.render_line(y)
        out["load_and_render_lines_s"] = time.perf_counter() - t0
        # (b) load + let Textual paint the screen (the reported value); a fresh load of the same
        # sample drops every cached line and wrap
        view.load("", [0])
        await pilot.pause()
        t0 = time.perf_counter()
        view.load(text, offsets, ranks=ranks)
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
            row = view.document.line_of_token(view.cursor, width) - int(view.scroll_offset.y)
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


def run(quick: bool = False) -> list[BenchResult]:
    """Run the reader benchmarks; ``quick`` shortens the keypress series."""
    ingest = asyncio.run(_ingest(20_000))
    paint = asyncio.run(_paint_and_cursor(50_000, 60 if quick else 200))
    return [
        BenchResult(
            name="reader_ingest_tokens_per_s",
            value=ingest["rate"],
            unit="tokens/s",
            target=10_000.0,
            comparison=">=",
            details={k: v for k, v in ingest.items() if k != "rate"},
        ),
        BenchResult(
            name="reader_first_paint_s",
            value=paint["first_paint_s"],
            unit="s",
            target=0.5,
            comparison="<=",
            details={"tokens": paint["tokens"], "chars": paint["chars"], "lines": paint["lines"],
                     "load_and_render_lines_s": paint["load_and_render_lines_s"],
                     "method": "load() then await pilot.pause() in App.run_test(size=(100, 40))"},
        ),
        BenchResult(
            name="reader_cursor_move_s",
            value=paint["cursor_move_s"],
            unit="s",
            target=0.020,
            comparison="<=",
            details={"tokens": paint["tokens"], "presses": 60 if quick else 200,
                     "method": "key event sent through the app's driver (as Pilot does) at the end of the "
                               "sample, timed until the cursor moved, plus render_line of the cursor row",
                     "pilot_press_s": paint["pilot_press_s"],
                     "pilot_press_baseline_2_tokens_s": paint["pilot_press_baseline_2_tokens_s"]},
        ),
    ]


if __name__ == "__main__":  # pragma: no cover
    for result in run(quick=False):
        print(result.to_json())
