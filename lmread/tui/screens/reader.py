"""The reading screen: one sample at a time, blind, revealed progressively, marked with keys.

Everything that decides something (queue, reveal, marks) lives in
:class:`lmread.tui.session.ReadingSession`; this screen wires keys, the token view and the status
line to it.  For a live sample it posts :class:`ReaderScreen.StreamRequested`; the app runs the
live worker (:class:`lmread.tui.live.LiveStream`), whose token batches this screen appends to the
sample's document.

Keys are taken in the order typed (:mod:`lmread.tui.keys`): this screen runs its own bindings and
the token view's from :meth:`ReaderScreen.on_key`, and while a fall is being detailed every key
goes to the inline prompt, which has no screen or focus of its own to wait for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from lmread.errors import LmreadError
from lmread.records import Mark
from lmread.tui.keys import key_table
from lmread.tui.labels import format_elapsed
from lmread.tui.live import LiveStream
from lmread.tui.live_jobs import LiveJob
from lmread.tui.session import Current, ReadingSession
from lmread.tui.widgets.mark_prompt import MarkPromptPanel
from lmread.tui.widgets.panels import AfterMarkPanel, StatusLine, after_mark_text
from lmread.tui.widgets.token_view import TokenView, new_document


class ReaderScreen(Screen[None]):
    """Read and mark the samples of a :class:`ReadingSession`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "fall", "falls here"),
        Binding("enter", "fall_or_next", "falls / next", show=False),
        Binding("e", "no_fall", "no fall"),
        Binding("space", "reveal", "reveal"),
        Binding("s", "skip", "skip"),
        Binding("u", "undo", "undo"),
        Binding("n", "next", "next"),
        Binding("g", "ranks", "ranks"),
        Binding("plus,equals_sign", "pace(1.25)", "faster", show=False),
        Binding("minus", "pace(0.8)", "slower", show=False),
        Binding("p", "pause", "pause", show=False),
        Binding("v", "app.survival", "survival"),
        Binding("escape", "home", "home", show=False),
        Binding("question_mark", "app.help", "help"),
        Binding("q", "app.quit", "quit"),
    ]

    class StreamRequested(Message):
        """A live sample is on screen: stream ``job`` to ``reader`` (with :class:`LiveStream`)."""

        def __init__(self, reader: ReaderScreen, job: LiveJob) -> None:
            super().__init__()
            self.reader = reader
            self.job = job

    def __init__(self, session: ReadingSession, title: str, *, loading: bool = False) -> None:
        """``loading``: a live session's models are still loading; reading starts with
        :meth:`add_live_jobs`."""
        super().__init__()
        self.session = session
        self.title_text = title
        self.state = ""  # "saved", "saving…", errors
        self.state_style = ""
        self._pending: Mark | None = None
        self._loading = loading
        self._finished_all = False

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(self.title_text, id="reader-title", markup=False)
        yield Static("", id="reader-prompt", markup=False)
        yield TokenView(id="reader-text")
        yield Static("", id="reader-message", markup=False)
        yield MarkPromptPanel("", id="mark-prompt")
        yield AfterMarkPanel("", id="after-mark")
        yield StatusLine("", id="reader-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#after-mark", AfterMarkPanel).display = False
        self.prompt.display = False
        self.set_interval(1 / 15, self._tick)
        if self._loading:
            self._message("Loading the models of the live session…")
            self._set_state("loading models…")
            self._update_status()
        else:
            self.show_next()

    def add_live_jobs(self, jobs: list[LiveJob]) -> None:
        """The live session's models are loaded (or failed): read ``jobs`` first, then the rest."""
        self.session.add_live_jobs(jobs)
        self._loading = False
        if self.is_mounted:
            self.show_next()

    @property
    def view(self) -> TokenView:
        return self.query_one("#reader-text", TokenView)

    # -- showing samples ---------------------------------------------------------------------

    def show_next(self) -> None:
        """Load the next sample of the queue (or say that there is none)."""
        cur = self.session.next()
        self._pending = None
        self._finished_all = cur is None
        panel = self.query_one("#after-mark", AfterMarkPanel)
        panel.display = False
        view = self.view
        view.show_ranks = False
        view.fall_index = None
        if cur is None:
            self.query_one("#reader-prompt", Static).update("")
            view.show(new_document())
            self._message("All samples of this study are read. Press escape for the home screen "
                          "(l there starts a live session), v for the survival view, u to undo the last mark.")
            self._set_state("")
            self._update_status()
            return
        self._message(None)
        self.query_one("#reader-prompt", Static).update("prompt: " + " ".join(cur.prompt_text.split()))
        view.show(cur.document)
        view.cursor = max(0, cur.document.revealed - 1)
        self._set_state("generating…" if cur.live else "")
        if cur.live and cur.item.job is not None:
            self.post_message(self.StreamRequested(self, cur.item.job))
        self._update_status()
        view.focus()

    def _message(self, text: str | None) -> None:
        """Show ``text`` instead of the sample (None: show the sample)."""
        box = self.query_one("#reader-message", Static)
        box.update(text or "")
        box.display = text is not None
        self.view.display = text is None

    def _set_state(self, text: str, style: str = "") -> None:
        self.state, self.state_style = text, style

    def _update_status(self) -> None:
        cur = self.session.current
        pace = ""
        if cur is not None and not cur.live and not cur.marked:
            pace = f"pace {self.session.pace_wps:g} words/s" + (" (paused)" if self.session.paused else "")
        self.query_one("#reader-status", StatusLine).show(
            revealed=cur.document.revealed if cur else 0,
            complete=bool(cur and cur.stream_done and cur.document.revealed >= cur.document.n_tokens),
            elapsed=format_elapsed(self.session.elapsed()),
            left=self.session.samples_left,
            annotator=self.session.annotator,
            pace=pace,
            state=self.state,
            state_style=self.state_style,
        )

    def _tick(self) -> None:
        cur = self.session.current
        if cur is not None and not cur.live and not cur.marked and not self.marking:
            target = self.session.paced_revealed()
            if target > self.view.revealed:
                self._show_revealed(cur, lambda: self.session.set_revealed(target))
        self._update_status()

    def _show_revealed(self, cur: Current, reveal: Callable[[], int]) -> None:
        """Reveal more with the session's ``reveal()`` and draw it; a cursor at the reveal front
        stays at the front."""
        view = self.view
        at_front = view.cursor >= cur.document.revealed - 1
        reveal()
        view.sync()
        if at_front and cur.document.revealed:
            view.cursor = cur.document.revealed - 1

    # -- live generation ---------------------------------------------------------------------

    def _is_current_job(self, job: LiveJob) -> bool:
        cur = self.session.current
        return cur is not None and cur.item.job is job

    def on_live_stream_token_batch(self, message: LiveStream.TokenBatch) -> None:
        """Append a batch of the live sample on screen to its document (and draw it)."""
        job = message.job
        if not self._is_current_job(job) or job.cancel.is_set():
            return  # stopped by a mark: the rest comes, unrevealed, with the stored sample
        cur = self.session.current
        assert cur is not None
        at_end = self.view.cursor >= cur.document.revealed - 1
        self.session.feed(message.text, message.offsets, message.ranks)
        self.view.sync()
        if at_end and not self.marking and not cur.marked and self._pending is None:
            self.view.cursor = max(0, cur.document.revealed - 1)

    def on_live_stream_ended(self, message: LiveStream.Ended) -> None:
        """The live sample's driver returned: store the sample, then save a mark waiting for it."""
        if not self._is_current_job(message.job):
            return
        cur = self.session.current
        assert cur is not None
        error = message.error
        try:
            stored = self.session.stream_finished(message.sample, error,
                                                  reveal_all=self._pending is None and not cur.marked)
        except LmreadError as exc:
            stored = None
            error = " ".join(str(exc).split())
            cur.failed = error
        if stored is None:
            self.notify(error or "generation failed", severity="error", timeout=8)
            self._set_state("generation failed: n for the next sample", "bold red")
            self._pending = None
            self._update_status()
            return
        self.view.sync()
        if self._pending is not None:
            mark, self._pending = self._pending, None
            self._commit(mark)
        else:
            self._set_state("")
        self._update_status()

    # -- marking -----------------------------------------------------------------------------

    def _can_mark(self) -> Current | None:
        cur = self.session.current
        if cur is None:
            return None
        if cur.marked:
            self.notify("already marked: n for the next sample, u to undo")
            return None
        if self._pending is not None or self.marking:
            return None
        if cur.failed:
            self.notify("this sample failed to generate: n for the next one")
            return None
        return cur

    def _stop_stream(self, cur: Current) -> None:
        if cur.live and cur.streaming and cur.item.job is not None:
            cur.item.job.cancel.set()

    # -- keys --------------------------------------------------------------------------------

    async def on_key(self, event: events.Key) -> None:
        """Every key of the reader, in the order typed: to the inline fall prompt while it is
        open, else to the binding it names (see the module's docstring)."""
        if self.app.screen is not self:
            return  # typed after another screen opened: that screen's keys
        if self.marking:
            event.stop()
            event.prevent_default()
            closed = self.prompt.take_key(event.key, event.character)
            if closed is not None and closed[0] == "save":
                self._write(closed[1])
            elif closed is not None:
                self._set_state("not marked")
                self._update_status()
            return
        found = key_table((self.view, TokenView.BINDINGS), (self, self.BINDINGS)).get(event.key)
        if found is None:
            return
        event.stop()
        event.prevent_default()
        node, action = found
        await self.app.run_action(action, node)

    @property
    def prompt(self) -> MarkPromptPanel:
        return self.query_one("#mark-prompt", MarkPromptPanel)

    @property
    def marking(self) -> bool:
        """Whether a fall is being detailed in the inline prompt."""
        return self.prompt.is_open

    # -- marking (continued) -----------------------------------------------------------------

    def action_fall(self) -> None:
        """The text falls at the cursor token: the inline prompt takes the category, severity and
        note, then saves the mark."""
        cur = self._can_mark()
        if cur is None:
            return
        at = self.view.cursor
        try:
            mark = self.session.build_mark("fall", at=at)
        except LmreadError as exc:
            self.notify(str(exc), severity="warning")
            return
        self._stop_stream(cur)
        self.prompt.open(mark, cur.document.token_text(at))

    def action_fall_or_next(self) -> None:
        """Enter: the fall mark, or (after a mark) the next sample."""
        cur = self.session.current
        if cur is None or cur.marked or cur.failed:
            self.action_next()
        else:
            self.action_fall()

    def action_no_fall(self) -> None:
        """Read to here without a fall: censored at the furthest revealed token."""
        cur = self._can_mark()
        if cur is None:
            return
        try:
            mark = self.session.build_mark("no_fall")
        except LmreadError as exc:
            self._set_state("nothing read yet", "bold yellow")
            self.notify(str(exc), severity="warning")
            self._update_status()
            return
        self._stop_stream(cur)
        self._write(mark)

    def action_skip(self) -> None:
        """Skip this sample (a skip mark; it contributes nothing)."""
        cur = self._can_mark()
        if cur is None:
            return
        self._stop_stream(cur)
        self._write(self.session.build_mark("skip"))

    def _write(self, mark: Mark) -> None:
        cur = self.session.current
        if cur is None:
            return
        if cur.sample is None:  # live: wait for the driver to hand back the (partial) sample
            self._pending = mark
            self._set_state("stopping the generation…")
            self._update_status()
            return
        self._commit(mark)

    def _commit(self, mark: Mark) -> None:
        cur = self.session.current
        try:
            saved = self.session.commit(mark)
        except LmreadError as exc:
            self._set_state(f"NOT saved: {exc}", "bold red")
            self.notify(f"mark not saved: {exc}", severity="error", timeout=10)
            self._update_status()
            return
        self._set_state("saved", "bold green")
        assert cur is not None and cur.sample is not None
        fast = self.session.fast_reading_note(saved)
        if fast:
            self.notify(fast, title="reading speed", timeout=8)
        if saved.kind == "fall":
            self.view.fall_index = saved.at
        panel = self.query_one("#after-mark", AfterMarkPanel)
        panel.update(after_mark_text(cur.sample, saved, show_model=self.session.model_visible()))
        panel.display = True
        if self.session.model_visible():
            self.query_one("#reader-title", Static).update(
                f"{self.title_text} · sample {cur.sample.id[:12]} · model {cur.sample.model_id}"
            )
        self._update_status()

    def action_next(self) -> None:
        """Move on to the next sample once this one is marked."""
        cur = self.session.current
        if cur is not None and not cur.marked and not cur.failed:
            self.notify("mark this sample first: f falls, e no fall, s skip")
            return
        self.query_one("#reader-title", Static).update(self.title_text)
        self.show_next()

    def action_undo(self) -> None:
        """Withdraw the latest mark and go back to its sample."""
        cur = self.session.current
        if self.marking:
            self.notify("finish the mark first: enter saves it, x drops it")
            return
        if cur is not None and (cur.streaming or self._pending is not None):
            self.notify("wait until this sample has stopped generating, or mark it first")
            return
        try:
            _event, withdrawn = self.session.undo()
        except LmreadError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.query_one("#reader-title", Static).update(self.title_text)
        self.notify(f"undid the {withdrawn.kind.replace('_', '-')} mark on sample {withdrawn.sample[:12]}; "
                        "back to it")
        self.show_next()
        self._set_state("undone", "bold yellow")
        self._update_status()

    # -- reveal and view ---------------------------------------------------------------------

    def action_reveal(self) -> None:
        """Reveal the next sentence (pre-generated samples)."""
        cur = self.session.current
        if cur is None or cur.marked or cur.live:
            return
        self._show_revealed(cur, self.session.reveal_sentence)
        self._update_status()

    def action_pace(self, factor: float) -> None:
        """Change the reading pace."""
        pace = self.session.change_pace(float(factor))
        self.notify(f"reading pace {pace:g} words/s", timeout=1.5)
        self._update_status()

    def action_pause(self) -> None:
        """Pause or resume the paced reveal."""
        self.session.toggle_pause()
        self._update_status()

    def action_ranks(self) -> None:
        """Toggle GLTR rank colours (blind mode: only once the sample is marked)."""
        if not self.session.ranks_allowed():
            self.notify("rank colours show once the sample is marked (blind mode)")
            return
        cur = self.session.current
        if cur is not None and not cur.has_ranks:
            self.notify("this sample has no token ranks recorded")
            return
        self.view.show_ranks = not self.view.show_ranks

    def action_home(self) -> None:
        """Back to the home screen (a sample still generating is stopped and stored)."""
        self.stop_all()
        self.app.pop_screen()

    def stop_all(self) -> None:
        """Cancel the live stream on screen and every live job still queued."""
        cur = self.session.current
        if cur is not None:
            self._stop_stream(cur)
        for item in self.session.queue:
            if item.job is not None:
                item.job.cancel.set()

    def on_unmount(self) -> None:
        self.stop_all()

