"""The survival view: Kaplan–Meier curves of coherent length drawn in the terminal (plotext),
and the group table.  ``u`` cycles the unit, ``b`` the grouping, ``p`` the plot (curves, hazard
by size, severity mix by size), ``escape`` / ``q`` closes.

A thin client of :mod:`lmread.analysis.report`: it computes the same
survival document that ``lmread survival --json`` writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from lmread.analysis.observations import GROUPINGS, UNITS
from lmread.errors import LmreadError
from lmread.tui.widgets.survival_plots import extra_status_lines, render_hazard, render_severity
from lmread.units import format_params

#: bootstrap replicates in the interactive view (the CLI default is larger)
VIEW_BOOTSTRAP = 200
#: what the plot area shows, cycled with ``p``
PLOTS = ("curves", "hazard", "severity")


def render_curves(doc: dict[str, Any], width: int, height: int, color: bool = True) -> str:
    """The groups' step curves as terminal text (plotext), ``width`` x ``height`` characters."""
    import plotext as plt

    plt.terminal.limit(False, False)  # we draw into a widget, not to the terminal's own size
    fig = plt.figure
    fig.clear()
    width, height = max(width, 30), max(height, 8)
    fig._set_size(width, height)
    for group in doc["groups"]:
        xs: list[float] = []
        ys: list[float] = []
        prev = 1.0
        for point in group["curve"]:
            if xs:
                xs.append(point["t"])
                ys.append(prev)
            xs.append(point["t"])
            ys.append(point["survival"])
            prev = point["survival"]
        if len(xs) == 1:
            xs.append(xs[0] + 1)
            ys.append(ys[0])
        signal = fig.signal(xs, ys)
        signal.lines(True)
        signal.label(f"{group['label']} (n={group['n']})")
        fig.draw(signal)
    fig.ruler(axis=1).lim(0, 1)
    # top right, where the curves have fallen least (plotext drops a legend that would not fit)
    box = max((len(f"{g['label']} (n={g['n']})") for g in doc["groups"]), default=0) + 8
    fig.legend(x=max(0, width - 8 - box), y=0)
    fig.title(f"S(t) - coherent length in {doc['unit']}")
    return fig.build().string(colorless=not color)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return f"{int(value):,}"


class SurvivalScreen(Screen[None]):
    """Kaplan–Meier survival of the study at ``study_path``; keys switch unit and grouping."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("u", "cycle_unit", "unit"),
        Binding("b", "cycle_grouping", "grouping"),
        Binding("p", "cycle_plot", "plot"),
        Binding("escape", "close", "back"),
        Binding("q", "close", "back", show=False),
    ]

    DEFAULT_CSS = """
    SurvivalScreen #survival-status { height: auto; padding: 0 1; }
    SurvivalScreen #survival-plot { height: auto; }
    SurvivalScreen #survival-table { height: 1fr; }
    """

    def __init__(self, study_path: Path, unit: str = "tokens", by: str = "model") -> None:
        super().__init__()
        self.study_path = Path(study_path)
        self.unit = unit
        self.by = by
        self.doc: dict[str, Any] | None = None
        self.error: str | None = None
        self.plot = PLOTS[0]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="survival-status")
            yield Static(id="survival-plot")
            yield DataTable(id="survival-table", zebra_stripes=True, cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view()

    def compute(self) -> None:
        """Recompute the survival document for the current unit and grouping."""
        from lmread.analysis.report import compute

        try:
            self.doc, _ = compute(self.study_path, unit=self.unit, by=self.by, n_boot=VIEW_BOOTSTRAP)
            self.error = None
        except LmreadError as exc:
            self.doc = None
            self.error = str(exc)

    def refresh_view(self) -> None:
        """Recompute and redraw the status line, the curves and the table."""
        self.compute()
        status = self.query_one("#survival-status", Static)
        plot = self.query_one("#survival-plot", Static)
        table = self.query_one("#survival-table", DataTable)
        table.clear(columns=True)
        head = (f"unit [b]{self.unit}[/b] (u)   grouping [b]{self.by}[/b] (b)   plot [b]{self.plot}[/b] (p)   "
                f"study {self.study_path}")
        if self.doc is None:
            status.update(Text.from_markup(head + f"\n[red]{self.error}[/red]"))
            plot.update("")
            return
        doc = self.doc
        lines = [head]
        comp = doc["comparisons"]
        if comp["overall"]:
            lines.append(f"log-rank all groups: chi2 {comp['overall']['statistic']:.3g}, p {comp['overall']['p_value']:.3g}")
        if comp["trend"]:
            lines[-1] += f"   trend across sizes: p {comp['trend']['p_value']:.3g} ({comp['trend']['direction']})"
        sc = doc["scaling"]
        if sc["slope"] is not None:
            ci = f" [{sc['slope_ci_low']:.3g}, {sc['slope_ci_high']:.3g}]" if sc["slope_ci_low"] is not None else ""
            lines.append(f"scaling: log {sc['statistic']} ~ {sc['slope']:.3g}{ci} x log n_params")
        lines.extend(extra_status_lines(doc))
        status.update(Text.from_markup("\n".join(lines)))
        width = max(40, self.app.size.width - 2)
        height = max(10, self.app.size.height // 2 - 2)
        render = {"curves": render_curves, "hazard": render_hazard, "severity": render_severity}[self.plot]
        plot.update(Text.from_ansi(render(doc, width, height)))
        table.add_columns("group", "params", "n", "falls", "censored", "median", "95% CI",
                          f"RMST@{_fmt(doc['horizon'])}")
        for g in doc["groups"]:
            m = g["median"]
            ci = f"[{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]" if m["ci_low"] is not None else "-"
            table.add_row(g["label"], format_params(g["n_params"]), str(g["n"]), str(g["events"]),
                          str(g["censored"]), _fmt(m["value"]), ci, _fmt(g["rmst"]["value"]))

    def action_cycle_unit(self) -> None:
        """Next unit: tokens -> words -> chars."""
        self.unit = UNITS[(UNITS.index(self.unit) + 1) % len(UNITS)]
        self.refresh_view()

    def action_cycle_grouping(self) -> None:
        """Next grouping: model -> model+decoding -> prompt-set."""
        self.by = GROUPINGS[(GROUPINGS.index(self.by) + 1) % len(GROUPINGS)]
        self.refresh_view()

    def action_cycle_plot(self) -> None:
        """Next plot: curves -> hazard by size -> severity mix by size."""
        self.plot = PLOTS[(PLOTS.index(self.plot) + 1) % len(PLOTS)]
        self.refresh_view()

    def action_close(self) -> None:
        """Back to the previous screen."""
        self.app.pop_screen()
