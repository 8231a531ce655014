"""The lmread reader: a Textual app to read generations blind, as they stream, and mark where
the text falls.

Screens: home (studies, models), reader (one sample at a time), the live-session dialog, the
category prompt, help, and the survival view (``lmread.tui.screens.survival``).  The app holds
what outlives a screen: settings, the study folder, loaded live-session backends; screens ask it
for things by posting their messages (:class:`HomeScreen.OpenStudy`,
:class:`ReaderScreen.StreamRequested`...), which the app handles here.  Live jobs come from a
:class:`lmread.generate.GenerationPlan`, so a live sample is the one ``lmread generate`` draws.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.events import Resize

from lmread.backends.base import Backend
from lmread.catalog import load_catalog
from lmread.config import Settings, load_settings
from lmread.errors import LmreadError
from lmread.generate import GenerationPlan
from lmread.prompts import builtin_set, prompt_set_names
from lmread.study import Study
from lmread.tui.live import LiveStream, LockChain, ParallelLive, one_line
from lmread.tui.live_jobs import LiveJob, live_order_seed, plan_live_jobs, shuffled_jobs
from lmread.tui.messages import BUNDLED_MODELS, LiveConfig
from lmread.tui.screens.dialogs import MIN_HEIGHT, MIN_WIDTH, LiveDialog, TooSmallScreen
from lmread.tui.screens.help import HelpScreen
from lmread.tui.screens.home import HomeScreen
from lmread.tui.screens.reader import ReaderScreen
from lmread.tui.session import ReadingSession
from lmread.tui.widgets.token_view import new_document
from lmread.units import format_params

BackendFactory = Callable[[str], Backend]

#: (title, action, help) of the command palette's lmread commands
PALETTE_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("Read the selected study", "app.read_current", "open the reader on the current study"),
    ("Live session…", "app.live", "generate samples from chosen models and read them as they stream"),
    ("Survival view", "app.survival", "Kaplan-Meier survival of coherent length for the current study"),
    ("Rank probe: presidents", "app.probe", "teacher-forced rank of each president's first token, per model"),
    ("Home screen", "app.home", "studies and models"),
    ("Help: every key", "app.help", "the key table"),
    ("Reveal the next sentence", "screen.reveal", "reader"),
    ("Mark: the text falls at the cursor", "screen.fall", "reader"),
    ("Mark: no fall (read to here)", "screen.no_fall", "reader"),
    ("Mark: skip this sample", "screen.skip", "reader"),
    ("Undo the latest mark", "screen.undo", "reader"),
    ("Next sample", "screen.next", "reader, after a mark"),
    ("Toggle rank colours", "screen.ranks", "reader; blind mode: after the mark"),
    ("Quit lmread", "app.quit", "marks are saved as you make them"),
)


class LmreadCommands(Provider):
    """The command palette's lmread actions."""

    def _commands(self) -> list[tuple[str, str, str]]:
        on_reader = isinstance(self.screen, ReaderScreen)
        return [c for c in PALETTE_COMMANDS if on_reader or not c[1].startswith("screen.")]

    def _run(self, action: str) -> None:
        self.app.call_later(self.app.run_action, action)

    async def discover(self) -> Hits:
        """Every command, for the empty palette."""
        for title, action, help_text in self._commands():
            yield DiscoveryHit(title, partial(self._run, action), help=help_text)

    async def search(self, query: str) -> Hits:
        """Commands matching ``query``."""
        matcher = self.matcher(query)
        for title, action, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self._run, action), help=help_text)


class LmreadApp(App[None]):
    """The reader app.  ``backend_factory(model_id)`` loads a live-session model (tests inject
    scripted backends; the default uses the catalogue and :func:`lmread.backends.open_backend`).
    ``clock`` times how long a sample is looked at (tests fix it)."""

    CSS_PATH = "app.tcss"
    TITLE = "lmread"
    COMMANDS = App.COMMANDS | {LmreadCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "help", show=False),
        Binding("q", "quit", "quit", show=False),
    ]

    def __init__(
        self,
        study_path: Path,
        *,
        settings: Settings | None = None,
        annotator: str | None = None,
        blind: bool | None = None,
        reveal_after_mark: bool | None = None,
        pace: float | None = None,
        live: bool = False,
        models: list[str] | None = None,
        backend_factory: BackendFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        offer_first_run: bool = True,
        overlap: float | None = None,
        parallel: int = 1,
    ) -> None:
        super().__init__()
        self.settings = settings or load_settings()
        self.study_path = Path(study_path)
        self.annotator = annotator or self.settings.annotator
        self.blind = self.settings.blind if blind is None else blind
        self.reveal_after_mark = self.settings.reveal_after_mark if reveal_after_mark is None else reveal_after_mark
        #: reading pace of pre-generated samples, words per second
        self.pace = float(pace if pace is not None else self.settings.reading_pace_wps)
        self.start_live = live
        self.models = list(models or [])
        self.backend_factory = backend_factory or self.default_backend_factory
        self.clock = clock
        self.offer_first_run = offer_first_run
        self.overlap = overlap
        #: live sessions: how many queued samples of a model to decode in one batch (1: one at a time)
        self.parallel = max(1, int(parallel))
        self.backends: dict[str, Backend] = {}
        self.generation_lock = threading.Lock()
        self._model_locks: dict[str, threading.Lock] = {}
        self.catalog_error = ""
        self._catalog: Any = None

    # -- start -------------------------------------------------------------------------------

    def on_mount(self) -> None:
        rows = self.model_rows()
        self.push_screen(HomeScreen(self.settings.studies_dir, self.study_path, rows, self.catalog_error))
        self._check_size()
        for note in self.settings.notes:
            self.notify(note, title="settings", timeout=12)
        try:
            study = Study.open_or_create(self.study_path)
            empty = not study.samples
        except LmreadError as exc:
            self.notify(str(exc), severity="error", timeout=15)
            return
        if self.start_live:
            self.action_live()
        elif empty and self.offer_first_run:
            self.action_live(note="This study has no samples yet. Generate some with the bundled models "
                                  "and read them as they stream:")
        elif not empty:
            self.open_reader(self.study_path)

    def on_resize(self, event: Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int | None = None, height: int | None = None) -> None:
        width = self.size.width if width is None else width
        height = self.size.height if height is None else height
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        top_is_small = isinstance(self.screen, TooSmallScreen)
        if small and not top_is_small:
            self.push_screen(TooSmallScreen())
        elif not small and top_is_small:
            self.pop_screen()

    # -- catalogue ---------------------------------------------------------------------------

    def catalog(self) -> Any:
        """The model catalogue (loaded once; errors kept for the home screen)."""
        if self._catalog is None:
            try:
                self._catalog = load_catalog(self.settings)
            except LmreadError as exc:
                self.catalog_error = f"model catalogue: {exc}"
                self._catalog = False
        return self._catalog or None

    def model_rows(self) -> list[tuple[str, str, str, str, str]]:
        """(id, name, params, quantization, backends) per catalogue card."""
        cat = self.catalog()
        if cat is None:
            return []
        rows = []
        for card in cat.cards.values():
            try:  # the size read from the file's header (as `lmread models` shows it), else the card's
                n_params = card.param_count(self.settings)[0]
            except LmreadError:
                n_params = card.n_params
            rows.append((card.id, card.name, format_params(n_params), card.quantization or "", ", ".join(card.backends)))
        return rows

    def model_choices(self) -> list[tuple[str, str]]:
        """(id, label) of every model the live dialog offers."""
        out = [(row[0], f"{row[0]}  {row[1]}") for row in self.model_rows()]
        known = {mid for mid, _ in out}
        for mid in [*self.models, *BUNDLED_MODELS]:
            if mid not in known:
                out.append((mid, mid))
                known.add(mid)
        return out

    def default_backend_factory(self, model_id: str) -> Backend:
        """Load ``model_id`` from the catalogue with its first backend."""
        from lmread.backends import open_backend

        cat = self.catalog()
        if cat is None:
            raise LmreadError(self.catalog_error or "no model catalogue")
        return open_backend(cat.get(model_id))

    # -- reading -----------------------------------------------------------------------------

    def new_session(self, path: Path) -> ReadingSession:
        """A reading session on the study at ``path`` (raises LmreadError)."""
        study = Study.open(path)
        study.refresh()
        return ReadingSession(study, self.annotator, blind=self.blind, reveal_after_mark=self.reveal_after_mark,
                              pace_wps=self.pace, clock=self.clock, new_document=new_document,
                              overlap=self.overlap, max_read_speed_wps=self.settings.max_read_speed_wps)

    def reader_title(self, session: ReadingSession, live: bool = False) -> str:
        mode = "blind" if self.blind else "not blind"
        return f"lmread · study {session.study.name} · {mode}" + (" · live" if live else "")

    def open_reader(self, path: Path) -> None:
        """Push the reader on the study at ``path``."""
        try:
            session = self.new_session(path)
        except LmreadError as exc:
            self.notify(str(exc), severity="error", timeout=15)
            return
        self.study_path = path
        self._pop_readers()
        self.push_screen(ReaderScreen(session, self.reader_title(session)))

    def _pop_readers(self) -> None:
        while len(self.screen_stack) > 1 and not isinstance(self.screen, HomeScreen):
            self.pop_screen()

    @on(HomeScreen.OpenStudy)
    def _open_study(self, message: HomeScreen.OpenStudy) -> None:
        self.open_reader(message.path)

    @on(HomeScreen.StudyHighlighted)
    def _study_highlighted(self, message: HomeScreen.StudyHighlighted) -> None:
        self.study_path = message.path

    def action_read_current(self) -> None:
        """Open the reader on the current study."""
        self.open_reader(self.study_path)

    def action_home(self) -> None:
        """Back to the home screen."""
        self._pop_readers()

    # -- live sessions -----------------------------------------------------------------------

    def action_live(self, note: str = "") -> None:
        """Ask what to generate, then read it as it streams."""
        config = LiveConfig(models=self.models or [m for m in BUNDLED_MODELS], parallel=self.parallel)
        self.push_screen(LiveDialog(self.model_choices(), config, prompt_set_names(), note=note), self._live_chosen)

    def _live_chosen(self, config: LiveConfig | None) -> None:
        if config is not None:
            self.begin_live(config)

    def begin_live(self, config: LiveConfig) -> None:
        """Load the models (in a thread), then read their samples as they stream."""
        try:
            Study.open_or_create(self.study_path)
            session = self.new_session(self.study_path)
            prompts = builtin_set(config.prompt_set)
            options = replace(config.options).validate()
        except LmreadError as exc:
            self.notify(one_line(str(exc)), severity="error", timeout=15)
            return
        seed = session.study.shuffle_seed if config.seed is None else config.seed
        if not 0 <= seed < 2**32:
            self.notify(f"invalid live-session seed {seed}: must be a whole number in [0, 2^32)", severity="error")
            return
        self.parallel = max(1, int(config.parallel))
        # samples per prompt that n samples per model, taking the prompts in turn, reach
        per_prompt = max(1, -(-config.n // max(1, len(prompts))))
        plan = GenerationPlan(models=[], prompts=prompts, samples=per_prompt, options=options, base_seed=seed)
        reader = ReaderScreen(session, self.reader_title(session, live=True), loading=True)
        self._pop_readers()
        self.push_screen(reader)
        self._load_models(config, plan, reader)

    @work(thread=True, group="load-models", exit_on_error=False)
    def _load_models(self, config: LiveConfig, plan: GenerationPlan, reader: ReaderScreen) -> None:
        """Load the live session's models, then plan their jobs (in a thread: loading and a model's
        identity, which may hash its file, take a while).  A model that fails is reported on one
        line and left out."""
        identities: dict[str, dict[str, Any]] = {}
        for model_id in config.models:
            try:
                backend = self.backends.get(model_id)
                if backend is None:
                    backend = self.backend_factory(model_id)
                    self.backends[model_id] = backend
                identities[model_id] = dict(backend.describe())
            except LmreadError as exc:
                self.call_from_thread(self.notify, one_line(f"{model_id}: {exc}"), severity="error", timeout=15)
            except Exception as exc:
                self.call_from_thread(self.notify, one_line(f"model {model_id} failed to load: {type(exc).__name__}: {exc}"),
                                      severity="error", timeout=15)
        study = reader.session.study
        jobs = plan_live_jobs(plan, config.n, identities, existing=set(study.samples))
        self.call_from_thread(self._live_ready, reader, shuffled_jobs(jobs, live_order_seed(study)), bool(identities))

    def _live_ready(self, reader: ReaderScreen, jobs: list[LiveJob], any_loaded: bool) -> None:
        if not any_loaded:
            self.notify("no model of this live session could be loaded", severity="error", timeout=15)
        reader.add_live_jobs(jobs)

    def model_lock(self, model_id: str) -> threading.Lock:
        """The lock held while a live session decodes with ``model_id``'s backend."""
        return self._model_locks.setdefault(model_id, threading.Lock())

    @on(ReaderScreen.StreamRequested)
    def _stream(self, message: ReaderScreen.StreamRequested) -> None:
        """Stream a live job to the reader that shows it, in a worker thread.  With ``parallel`` > 1
        on a backend that ``supports_parallel``, the job and the next queued jobs of its model are
        decoded in one batch (unless a batch has them already) and the reader attaches to its feed."""
        job = message.job
        backend = self.backends.get(job.model_id)
        if job.feed is None and self.parallel > 1 and backend is not None and backend.supports_parallel:
            later = [item.job for item in message.reader.session.queue
                     if item.job is not None and item.job.model_id == job.model_id and item.job.feed is None
                     and not item.job.cancel.is_set()]
            batch = ParallelLive([job, *later[: self.parallel - 1]], backend, self.parallel,
                                 self.model_lock(job.model_id))
            self.run_worker(batch.run, thread=True, group="generate", exit_on_error=False)
        if job.feed is not None:
            job.feed.attach(message.reader)
            return
        # one stream at a time; the model's own lock too, against a batch of another session on it
        stream = LiveStream(job, backend, message.reader, LockChain(self.generation_lock, self.model_lock(job.model_id)))
        self.run_worker(stream.run, thread=True, group="generate", exit_on_error=False)

    # -- other screens -----------------------------------------------------------------------

    def action_help(self) -> None:
        """Show every key."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_survival(self) -> None:
        """The survival view of the current study."""
        from lmread.tui.screens.survival import SurvivalScreen  # numpy/scipy: only when asked for

        try:
            self.push_screen(SurvivalScreen(self.study_path))
        except LmreadError as exc:
            self.notify(str(exc), severity="error", timeout=10)

    def action_probe(self) -> None:
        """The rank probe of the presidents list with the chosen (or bundled) models."""
        from lmread.tui.screens.probe import ProbeScreen, probe_runner

        self.push_screen(ProbeScreen(compute=probe_runner(self.models or list(BUNDLED_MODELS), self.backend_factory)))

    def on_unmount(self) -> None:
        for backend in self.backends.values():
            try:
                backend.close()
            except Exception:
                pass
