"""The rank-probe view: the rank of the right first token by item position per model (plotext,
log scale), the per-model top-1 / top-10 rates and median rank, and a table of ranks per item.

Shown by ``lmread probe --tui`` (:class:`lmread.tui.probe_app.ProbeApp`, on a finished
``lmread.probe/1`` document)
and from the reader's command palette (the bundled or chosen models on the presidents list,
scored in a worker thread).  ``escape`` / ``q`` closes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from lmread.errors import LmreadError

#: (progress callback) -> probe document
Compute = Callable[[Callable[[str], None]], dict[str, Any]]


def render_ranks(doc: dict[str, Any], width: int, height: int, color: bool = True) -> str:
    """Rank by item position per model as terminal text (plotext), log-scaled: the axis shows
    log10 of the rank (0 = rank 1, 1 = rank 10, ...)."""
    import plotext as plt

    plt.terminal.limit(False, False)
    fig = plt.figure
    fig.clear()
    width, height = max(width, 30), max(height, 8)
    fig._set_size(width, height)
    for m in doc["models"]:
        xs = [r["item"] for r in m["readings"]]
        ys = [math.log10(r["rank"]) for r in m["readings"]]
        if not xs:
            continue
        signal = fig.signal(xs, ys)
        signal.lines(True)
        signal.label(f"{m['model']} ({m['backend']})")
        fig.draw(signal)
    fig.ruler(axis=1).lim(0, None)
    fig.title("log10 rank of the right first token by item (0 = top-1, 1 = rank 10)")
    return fig.build().string(colorless=not color)


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """One line per model: top-1 and top-10 rates and the median rank."""
    out = []
    for m in doc["models"]:
        s = m["summary"]
        if not s["n"]:
            out.append(f"{m['model']} ({m['backend']}): no items read")
            continue
        out.append(f"[b]{m['model']}[/b] ({m['backend']}): top-1 {100 * s['top1_rate']:.1f}%   "
                   f"top-10 {100 * s['top10_rate']:.1f}%   median rank {s['median_rank']:g}   "
                   f"({s['n']} items, {m['n_tokens']} tokens)")
    return out


def probe_runner(models: Sequence[str], open_model: Callable[[str], Any], list_name: str = "presidents") -> Compute:
    """A :data:`Compute` that probes the built-in list ``list_name`` with ``models``."""

    def compute(progress: Callable[[str], None]) -> dict[str, Any]:
        from lmread.probe.core import run_probe
        from lmread.probe.document import build_document
        from lmread.probe.items import split_items
        from lmread.probe.lists import builtin_list

        text = builtin_list(list_name)
        items = split_items(text)
        probes = run_probe(list(models), open_model, text, items, source=f"list {list_name!r}", progress=progress)
        return build_document({"list": list_name}, text, items, probes)

    return compute


class ProbeScreen(Screen[None]):
    """A probe document drawn and tabulated; with ``compute`` it is first computed in a thread."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "back"),
        Binding("q", "close", "back", show=False),
    ]

    DEFAULT_CSS = """
    ProbeScreen #probe-status { height: auto; padding: 0 1; }
    ProbeScreen #probe-plot { height: auto; }
    ProbeScreen #probe-table { height: 1fr; }
    """

    def __init__(self, doc: dict[str, Any] | None = None, compute: Compute | None = None) -> None:
        super().__init__()
        if doc is None and compute is None:
            raise ValueError("ProbeScreen needs a document or a way to compute one")
        self.doc = doc
        self.compute = compute
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="probe-status")
            yield Static(id="probe-plot")
            yield DataTable(id="probe-table", zebra_stripes=True, cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        if self.doc is not None:
            self.refresh_view()
            return
        self.query_one("#probe-status", Static).update("scoring the list teacher-forced ...")
        self.run_worker(self._compute, thread=True, exclusive=True)

    class Progress(Message):
        """A progress line from the probe worker."""

        def __init__(self, line: str) -> None:
            super().__init__()
            self.line = line

    class Computed(Message):
        """The worker's finished document (``doc``) or its one-line error (``error``)."""

        def __init__(self, doc: dict[str, Any] | None, error: str | None = None) -> None:
            super().__init__()
            self.doc = doc
            self.error = error

    def _compute(self) -> None:
        """The worker (a thread): it only posts messages, which is thread-safe."""
        assert self.compute is not None
        try:
            doc = self.compute(lambda line: self.post_message(self.Progress(line)))
        except LmreadError as exc:
            self.post_message(self.Computed(None, str(exc)))
            return
        self.post_message(self.Computed(doc))

    def on_probe_screen_progress(self, message: Progress) -> None:
        self.query_one("#probe-status", Static).update(message.line)

    def on_probe_screen_computed(self, message: Computed) -> None:
        if message.doc is None:
            self.error = message.error
            self.query_one("#probe-status", Static).update(Text(f"the probe failed: {message.error}", style="red"))
            return
        self.doc = message.doc
        self.refresh_view()

    def refresh_view(self) -> None:
        """Draw the summary, the rank plot and the table of ranks per item."""
        doc = self.doc
        assert doc is not None
        src = doc["source"]
        head = f"rank probe of {src.get('list') or src.get('file')}: {len(doc['items'])} items"
        self.query_one("#probe-status", Static).update(Text.from_markup("\n".join([head, *summary_lines(doc)])))
        width = max(40, self.app.size.width - 2)
        height = max(10, self.app.size.height // 2 - 2)
        self.query_one("#probe-plot", Static).update(Text.from_ansi(render_ranks(doc, width, height)))
        table = self.query_one("#probe-table", DataTable)
        table.clear(columns=True)
        table.add_columns("item", "first word", *(f"rank {m['model']}" for m in doc["models"]), "split")
        ranks = {(m["model"], r["item"]): r["rank"] for m in doc["models"] for r in m["readings"]}
        for row in doc["items"][1:]:
            cells = [str(ranks.get((m["model"], row["index"]), "-")) for m in doc["models"]]
            split = "same" if row.get("same_split", True) else "differs"
            table.add_row(str(row["index"]), row["first_word"], *cells, split)

    def action_close(self) -> None:
        """Back to the previous screen (or quit when this view is the whole app)."""
        if len(self.app.screen_stack) <= 1:  # the default screen of ``lmread probe --tui``
            self.app.exit()
        else:
            self.app.pop_screen()
