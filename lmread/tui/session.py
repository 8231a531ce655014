"""The state of one reading session, without any user interface.

A :class:`ReadingSession` holds the queue of samples an annotator still has to read (stored
samples in the study's shuffled reading order, plus live generation jobs), the sample on screen
with how much of it is revealed and for how long it has been looked at, and it builds and records
the marks.  The Textual screens are thin clients of it, so the logic is testable without a
terminal.  The text of the sample on screen is held once, in its :class:`TokenSpans`, which the
session reveals, a live stream appends to, and the token view draws.

Rules it keeps:

- The reader never sees beyond ``revealed``; a fall mark can only point at a revealed token, and a
  no-fall mark is censored at ``revealed`` (the furthest token actually shown).
- A mark always refers to a stored sample: a live sample still streaming is stored (with what was
  generated so far) before its mark is written.
- Undo appends an undo event and puts the sample it restores back at the front of the queue.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lmread.analysis.reading_speed import (
    DEFAULT_MAX_WPS,
    DEFAULT_PACE_WPS,
    PACE_MAX_WPS,
    PACE_MIN_WPS,
    reading_speed,
    tokens_within_words,
    word_starts,
    words_before,
)
from lmread.errors import LmreadError, MarkError
from lmread.records import Mark, Sample
from lmread.study import Study
from lmread.tui.document import TokenSpans
from lmread.tui.document.units import sentence_end
from lmread.tui.live_jobs import LiveJob

#: Default reading pace of pre-generated samples, words per second.
DEFAULT_PACE = DEFAULT_PACE_WPS
#: Bounds of the pace keys, words per second.
PACE_MIN, PACE_MAX = PACE_MIN_WPS, PACE_MAX_WPS

__all__ = ["Current", "Item", "ReadingSession"]


@dataclass
class Item:
    """An entry of the reading queue: a stored sample or a live job.  A sample that comes back
    (after an undo) starts as far as it was revealed, with the time already spent on it and the
    tokens already forced."""

    sample_id: str | None = None
    job: LiveJob | None = None
    start_revealed: int = 0
    start_elapsed: float = 0.0
    start_forced: int = 0


@dataclass
class Current:
    """The sample on screen; its text, tokens, ranks and reveal count are held by ``document``."""

    item: Item
    sample: Sample | None
    document: TokenSpans = field(default_factory=TokenSpans)
    started: float = 0.0
    stopped: float | None = None
    streaming: bool = False
    stream_done: bool = False
    failed: str | None = None
    mark: Mark | None = None
    #: tokens the reader revealed ahead of the pace (space)
    forced: int = 0
    _word_starts: list[int] | None = field(default=None, repr=False)

    def words_shown(self, n_tokens: int | None = None) -> int:
        """Words (the reading-speed rule) that start within the first ``n_tokens`` tokens
        (default: the revealed ones)."""
        doc = self.document
        n = doc.revealed if n_tokens is None else max(0, min(n_tokens, doc.n_tokens))
        return words_before(self.word_starts, doc.offsets[n])

    @property
    def word_starts(self) -> list[int]:
        """Where the words of the text start (computed once the text is complete)."""
        if self._word_starts is None or not self.stream_done:
            starts = word_starts(self.document.text)
            if not self.stream_done:
                return starts
            self._word_starts = starts
        return self._word_starts

    @property
    def has_ranks(self) -> bool:
        """Whether any token has a recorded rank."""
        return any(r is not None for r in self.document.ranks)

    @property
    def live(self) -> bool:
        return self.item.job is not None

    @property
    def marked(self) -> bool:
        return self.mark is not None

    @property
    def prompt_text(self) -> str:
        if self.sample is not None:
            return str(self.sample.prompt.get("text", ""))
        return self.item.job.prompt_text if self.item.job else ""


class ReadingSession:
    """Reading-queue, reveal and mark logic for one annotator on one study."""

    def __init__(
        self,
        study: Study,
        annotator: str,
        *,
        blind: bool = True,
        reveal_after_mark: bool = True,
        pace_wps: float = DEFAULT_PACE,
        clock: Callable[[], float] = time.monotonic,
        new_document: Callable[[], TokenSpans] = TokenSpans,
        overlap: float | None = None,
        max_read_speed_wps: float | None = None,
    ) -> None:
        """``new_document()`` makes the token spans a sample is held and shown in (the token view
        wraps them as it draws).  ``overlap``: the share every annotator reads (default: the
        study's setting); ``max_read_speed_wps``: the user's limit of a careful reading;
        ``pace_wps``: the reading pace of pre-generated samples, words per second."""
        self.study = study
        self.overlap = overlap
        #: readings faster than this (words/s) get a gentle note: the study's setting, else the user's, else 8
        self.max_read_speed_wps = float(study.settings.max_read_speed_wps or max_read_speed_wps or DEFAULT_MAX_WPS)
        self.new_document = new_document
        self.annotator = annotator
        self.blind = blind
        self.reveal_after_mark = reveal_after_mark
        self.pace_wps = float(pace_wps)
        self.paused = False
        self.clock = clock
        self.queue: deque[Item] = deque()
        self.current: Current | None = None
        self._pace_anchor: tuple[float, int] = (0.0, 0)  # (time, words shown) when the pace last restarted
        self.rebuild_queue()

    # -- the queue ---------------------------------------------------------------------------

    def rebuild_queue(self) -> None:
        """Stored samples not yet marked by this annotator, in the study's reading order
        (live jobs already queued stay in front)."""
        self.study.refresh()
        done = {sid for (_, sid) in self.study.current_marks(self.annotator)}
        live = [item for item in self.queue if item.job is not None]
        current_id = self.current.sample.id if self.current and self.current.sample else None
        stored = [
            Item(sample_id=sid) for sid in self.study.reading_order(self.annotator, overlap=self.overlap)
            if sid not in done and sid != current_id
        ]
        self.queue = deque(live + stored)

    def add_live_jobs(self, jobs: list[LiveJob]) -> None:
        """Put live jobs at the front of the queue (read them now, in the given order)."""
        for job in reversed(jobs):
            self.queue.appendleft(Item(job=job))

    @property
    def samples_left(self) -> int:
        """Samples still to read, counting the one on screen while it is unmarked."""
        on_screen = 1 if self.current is not None and not self.current.marked else 0
        return len(self.queue) + on_screen

    def next(self) -> Current | None:
        """Move to the next sample of the queue (None when there is none)."""
        while self.queue:
            item = self.queue.popleft()
            if item.job is not None:
                drawn = item.job.feed.drawn if item.job.feed is not None else None
                if drawn is not None:  # drawn to its end in a parallel batch: read it at the pace
                    try:
                        return self._take_drawn(drawn)
                    except LmreadError:
                        pass  # not stored: shown as it streamed, whose end stores it or says why not
                self.current = Current(item=item, sample=None, document=self.new_document(), streaming=True,
                                       started=self.clock())
                self._pace_anchor = (self.current.started, 0)
                return self.current
            assert item.sample_id is not None
            sample = self.study.samples.get(item.sample_id)
            if sample is None:
                continue
            self.current = self._current_for(sample, item)
            return self.current
        self.current = None
        return None

    def _current_for(self, sample: Sample, item: Item) -> Current:
        revealed = min(item.start_revealed, sample.n_tokens)
        document = self.new_document()
        document.load(sample.text, sample.tokens.offsets, revealed, sample.tokens.rank)
        now = self.clock()
        cur = Current(item=item, sample=sample, document=document, started=now - max(0.0, item.start_elapsed),
                      stream_done=True, forced=item.start_forced)
        self._pace_anchor = (now, cur.words_shown())
        return cur

    def _take_drawn(self, sample: Sample) -> Current:
        """A live job drawn to its end before the reader reached it (a parallel batch, see
        :meth:`lmread.tui.live.JobFeed.drawn`): store ``sample`` and read it as a stored sample,
        revealed at the reading pace from its start, so a sample drawn ahead is never shown ahead
        of the pace."""
        self.study.add_sample(sample)
        stored = self.study.samples.get(sample.id, sample)
        self.current = self._current_for(stored, Item(sample_id=stored.id))
        return self.current

    # -- revealing ---------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds the current sample has been on screen (frozen once marked)."""
        cur = self.current
        if cur is None:
            return 0.0
        end = cur.stopped if cur.stopped is not None else self.clock()
        return max(0.0, end - cur.started)

    def paced_revealed(self) -> int:
        """How many tokens the reading pace has revealed by now (pre-generated samples): every
        token up to the one that starts the next word, ``pace_wps`` words a second since the pace
        last (re)started, so text shown by the pace never reads faster than the pace."""
        cur = self.current
        if cur is None:
            return 0
        if cur.live or cur.marked or self.paused:
            return cur.document.revealed
        t0, w0 = self._pace_anchor
        words = w0 + int(self.pace_wps * max(0.0, self.clock() - t0) + 1e-9)
        target = tokens_within_words(cur.document.offsets, cur.word_starts, words)
        return max(cur.document.revealed, min(target, cur.document.n_tokens))

    def _restart_pace(self) -> None:
        cur = self.current
        self._pace_anchor = (self.clock(), cur.words_shown() if cur is not None else 0)

    def set_revealed(self, revealed: int) -> int:
        """Reveal up to ``revealed`` tokens (never fewer than already shown); returns the count."""
        cur = self.current
        if cur is None:
            return 0
        cur.document.revealed = max(cur.document.revealed, min(int(revealed), cur.document.n_tokens))
        return cur.document.revealed

    def reveal_sentence(self) -> int:
        """Reveal through the end of the next sentence (the rule of the ``]`` motion, see
        :mod:`lmread.tui.document.units`); restarts the pace from there.  The tokens shown beyond
        what the pace would show now count as forced (:attr:`Current.forced`)."""
        cur = self.current
        if cur is None:
            return 0
        paced = self.paced_revealed()
        self.set_revealed(sentence_end(cur.document.text, cur.document.offsets, cur.document.revealed))
        if not cur.live and not cur.marked:
            cur.forced += max(0, cur.document.revealed - paced)
        self._restart_pace()
        return cur.document.revealed

    def change_pace(self, factor: float) -> float:
        """Multiply the reading pace by ``factor`` (bounded); the reveal continues from here."""
        if self.current is not None:
            self.set_revealed(self.paced_revealed())
            self._restart_pace()
        self.pace_wps = min(PACE_MAX, max(PACE_MIN, round(self.pace_wps * factor, 2)))
        return self.pace_wps

    def toggle_pause(self) -> bool:
        """Pause or resume the paced reveal; returns whether it is now paused."""
        if self.paused:
            self._restart_pace()
        self.paused = not self.paused
        return self.paused

    # -- live streaming ----------------------------------------------------------------------

    def feed(self, text_chunk: str, new_offsets: Sequence[int], ranks: Sequence[int | None] | None) -> None:
        """Append streamed tokens to the live sample on screen (all of them are revealed)."""
        cur = self.current
        if cur is None:
            return
        cur.document.append(text_chunk, new_offsets, reveal=True, ranks=ranks)

    def stream_finished(self, sample: Sample | None, error: str | None = None,
                        reveal_all: bool = True) -> Sample | None:
        """The driver returned the (possibly partial) sample: store it, and append to the document
        what the stream had not shown yet (the last batch; a split character flushed at the end).
        With ``reveal_all`` (the stream ended by itself, so the reader watched
        it to its end) every token is revealed; otherwise (stopped by a mark) the revealed count
        stays what it was.  Returns the stored sample, or None when generation failed."""
        cur = self.current
        if cur is None:
            return None
        cur.streaming = False
        cur.stream_done = True
        if sample is None:
            cur.failed = error or "generation failed"
            return None
        self.study.add_sample(sample)
        cur.sample = self.study.samples.get(sample.id, sample)
        cur.item.sample_id = cur.sample.id
        cur.document.extend_to(cur.sample.text, cur.sample.tokens.offsets, cur.sample.tokens.rank, reveal=reveal_all)
        return cur.sample

    # -- marks -------------------------------------------------------------------------------

    def build_mark(self, kind: str, at: int | None = None, category: str | None = None,
                   severity: int | None = None, note: str | None = None) -> Mark:
        """A mark on the current sample (not yet recorded).  A fall must be at a revealed token; a
        no-fall needs a word revealed (a reading of nothing is refused, not saved as censored at 0)."""
        cur = self.current
        if cur is None:
            raise MarkError("no sample on screen to mark")
        if cur.marked:
            raise MarkError("this sample is already marked; press u to undo the mark")
        revealed = cur.document.revealed
        if kind == "fall":
            if at is None or not 0 <= at < revealed:
                raise MarkError("move the cursor onto a revealed token to mark where the text falls")
        if kind == "no_fall" and cur.words_shown() == 0:
            raise MarkError("nothing is revealed yet: read some of the text first (space reveals a sentence), "
                            "then e for no fall, or s to skip")
        note = note.strip() if note else None
        own = cur.sample.id if cur.sample else None
        read_before = {sid for (_, sid) in self.study.current_marks(self.annotator) if sid != own}
        return Mark(
            sample=cur.sample.id if cur.sample else "",
            annotator=self.annotator,
            kind=kind,
            at=at if kind == "fall" else None,
            read_to=revealed if kind in ("fall", "no_fall") else None,
            revealed=revealed,
            elapsed_s=round(self.elapsed(), 3),
            client="tui",
            category=category if kind == "fall" else None,
            severity=severity if kind == "fall" else None,
            note=note or None,
            queue_pos=len(read_before),
            forced=cur.forced if kind in ("fall", "no_fall") and not cur.live else None,
        )

    def fast_reading_note(self, mark: Mark) -> str | None:
        """A gentle note when a fall / no-fall reading of the current sample was faster than
        ``max_read_speed_wps`` (e.g. "that was fast: 20 words/s"), else None."""
        cur = self.current
        if cur is None or cur.sample is None:
            return None
        speed = reading_speed(mark, cur.sample)
        if speed is None or speed.wps <= self.max_read_speed_wps:
            return None
        forced = (f" You revealed {speed.forced} tokens ahead of the pace ({self.pace_wps:g} words/s)."
                  if speed.forced else "")
        return (f"that was fast: {speed.wps:.3g} words/s (a careful reading takes at most "
                f"{self.max_read_speed_wps:g}).{forced} "
                "Take your time: readings this fast may be left out of the curves.")

    def commit(self, mark: Mark) -> Mark:
        """Write ``mark`` (fsynced by the study) and mark the current sample as done.

        The current sample must be stored; the caller waits for a live stream to end first.
        """
        cur = self.current
        if cur is None or cur.sample is None:
            raise MarkError("the sample is not stored yet; wait for the generation to stop")
        mark.sample = cur.sample.id
        mark.elapsed_s = round(self.elapsed(), 3) if mark.elapsed_s is None else mark.elapsed_s
        saved = self.study.append_mark(mark)
        cur.mark = saved
        cur.stopped = cur.started + (saved.elapsed_s if saved.elapsed_s is not None else self.elapsed())
        return saved

    def undo(self) -> tuple[Mark, Mark]:
        """Withdraw the annotator's latest standing mark; its sample goes back to the front of
        the queue, revealed as far as it was and with the time already spent on it (and the tokens
        forced), so the time of a reading accumulates across undo and re-marking.  Returns ``(undo_event, withdrawn_mark)``."""
        event = self.study.undo(self.annotator)
        standing = next(m for m in self.study.marks(self.annotator) if m.id == event.undoes)
        cur = self.current
        if cur is not None and not cur.marked and not cur.streaming and cur.sample is not None:
            # the unmarked sample on screen goes back right after the restored one, with its time
            self.queue.appendleft(Item(sample_id=cur.sample.id, start_revealed=cur.document.revealed,
                                       start_elapsed=self.elapsed(), start_forced=cur.forced))
        self.queue = deque(i for i in self.queue if i.sample_id != standing.sample or i.job is not None)
        # the time on a sample accumulates across undo and re-marking
        self.queue.appendleft(Item(sample_id=standing.sample, start_revealed=standing.revealed or 0,
                                   start_elapsed=float(standing.elapsed_s or 0.0),
                                   start_forced=int(standing.forced or 0)))
        self.current = None
        return event, standing

    def model_visible(self) -> bool:
        """Whether the model identity of the current sample may be shown."""
        cur = self.current
        if cur is None:
            return False
        if not self.blind:
            return True
        return cur.marked and self.reveal_after_mark

    def ranks_allowed(self) -> bool:
        """GLTR rank colours: in blind mode only once the sample is marked."""
        cur = self.current
        return cur is not None and (not self.blind or cur.marked)
