"""The home screen: studies with their counts, the model catalogue, and what to do next.

It shows what it is given (the studies folder, the current study, the catalogue's rows) and the
studies' counts read from disk; choosing a study posts :class:`HomeScreen.OpenStudy` and moving
over one posts :class:`HomeScreen.StudyHighlighted`, for the app to act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from lmread.errors import LmreadError
from lmread.study import META_FILE, Study

#: the hint under the tables when the catalogue loaded fine
HINT = "press l to generate samples with the bundled models and read them as they stream"


def display_path(path: Path) -> str:
    """A study folder as shown on the home screen (the home folder shortened to ~)."""
    try:
        return "~/" + str(path.resolve().relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)


def study_rows(paths: list[Path]) -> list[tuple[Path, str, str, str, str]]:
    """(path, name, samples, marks, note) per study folder; unreadable ones say why."""
    rows = []
    for path in paths:
        try:
            info = Study.open(path).info()
        except LmreadError as exc:
            rows.append((path, path.name, "?", "?", str(exc)))
            continue
        marks = sum(a["marked"] for a in info["annotators"])
        models = len(info["models"])
        rows.append((path, info["name"], str(info["samples"]), str(marks), f"{models} models"))
    return rows


def plan_line(path: Path) -> str:
    """One line of progress against the plan stored in the study (``lmread plan``), or ""."""
    from lmread.analysis.plan import progress

    try:
        prog = progress(Study.open(path))
    except LmreadError as exc:
        return f"plan: cannot read ({exc})"
    if prog.plan is None:
        return ""
    parts = []
    for g in prog.groups:
        width = "" if g.median_ci_width is None else f", median CI width {g.median_ci_width:.3g}"
        parts.append(f"{g.label} {g.read}/{g.planned}{width}")
    unit = prog.plan.get("unit", "tokens")
    done = "complete" if prog.complete else f"{prog.readings_done}/{prog.readings_planned} readings"
    return f"plan ({unit}): {done}, falls {prog.events_done}/{prog.events_planned} · " + " · ".join(parts)


def find_studies(studies_dir: Path, extra: list[Path]) -> list[Path]:
    """The given studies first, then every study folder under ``studies_dir``."""
    out: list[Path] = []
    for p in extra:
        if p not in out:
            out.append(p)
    if studies_dir.is_dir():
        for child in sorted(studies_dir.iterdir()):
            if child.is_dir() and (child / META_FILE).exists() and child not in out:
                out.append(child)
    return out


class HomeScreen(Screen[None]):
    """Pick a study to read, start a live session, or open the survival view."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "read", "read study"),
        Binding("l", "app.live", "live session"),
        Binding("v", "app.survival", "survival"),
        Binding("question_mark", "app.help", "help"),
        Binding("q", "app.quit", "quit"),
    ]

    class _StudyMessage(Message):
        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    class OpenStudy(_StudyMessage):
        """Open the reader on the study folder ``path``."""

    class StudyHighlighted(_StudyMessage):
        """The study folder ``path`` is under the cursor (the current study from now on)."""

    def __init__(self, studies_dir: Path, current: Path, model_rows: Sequence[Sequence[str]] = (),
                 note: str = "") -> None:
        """``studies_dir``: where studies are found; ``current``: the study listed first and
        selected; ``model_rows``: the catalogue's (id, name, params, quantization, backends);
        ``note``: shown instead of the hint (a catalogue error)."""
        super().__init__()
        self.studies_dir = studies_dir
        self.current = current
        self.model_rows = [tuple(row) for row in model_rows]
        self.note = note
        self._paths: list[Path] = []

    def compose(self) -> ComposeResult:
        yield Static("lmread: read long generations blind, mark where the text falls", id="home-title",
                     markup=False)
        yield Static("Studies  (enter: read · l: live session · v: survival view)", classes="home-label",
                     markup=False)
        yield DataTable(id="studies", cursor_type="row", zebra_stripes=True)
        yield Static("", id="home-plan", markup=False)
        yield Static("Models", classes="home-label", markup=False)
        yield DataTable(id="models", cursor_type="row", zebra_stripes=True)
        yield Static("", id="home-hint", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        studies = self.query_one("#studies", DataTable)
        studies.add_columns("study", "samples", "marks", "", "folder")
        models = self.query_one("#models", DataTable)
        models.add_columns("id", "name", "params", "quant", "backends")
        self.refresh_tables()
        studies.focus()

    def on_screen_resume(self) -> None:
        self.refresh_tables()

    def refresh_tables(self) -> None:
        """Re-read the studies' counts; show the catalogue."""
        current = self.current
        studies = self.query_one("#studies", DataTable)
        studies.clear()
        self._paths = find_studies(self.studies_dir, [current])
        for path, name, n_samples, n_marks, note in study_rows(self._paths):
            studies.add_row(name, n_samples, n_marks, note, display_path(path))
        if self._paths and current in self._paths:
            studies.move_cursor(row=self._paths.index(current))
        self.show_plan(current)
        models = self.query_one("#models", DataTable)
        models.clear()
        for row in self.model_rows:
            models.add_row(*row)
        self.query_one("#home-hint", Static).update(self.note or HINT)

    def show_plan(self, path: Path) -> None:
        """Show the progress of ``path`` against its stored plan (nothing without a plan)."""
        line = plan_line(path) if (path / META_FILE).exists() else ""
        widget = self.query_one("#home-plan", Static)
        widget.update(line)
        widget.display = bool(line)

    def selected_study(self) -> Path | None:
        """The study folder under the cursor."""
        table = self.query_one("#studies", DataTable)
        if not self._paths:
            return None
        return self._paths[min(max(table.cursor_row, 0), len(self._paths) - 1)]

    @on(DataTable.RowSelected, "#studies")
    def _row_selected(self, event: Any) -> None:
        self.action_read()

    @on(DataTable.RowHighlighted, "#studies")
    def _row_highlighted(self, event: Any) -> None:
        path = self.selected_study()
        if path is not None:
            self.current = path
            self.show_plan(path)
            self.post_message(self.StudyHighlighted(path))

    def action_read(self) -> None:
        """Read the selected study."""
        path = self.selected_study()
        if path is not None:
            self.post_message(self.OpenStudy(path))
