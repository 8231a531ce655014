"""Survival exports: the observation CSV and plots, and writing output files.

The CSV has one row per observation (durations in every unit) and loads straight into lifelines
(``KaplanMeierFitter().fit(df.words, df.event)``) and R (``Surv(words, event)``).  Plots need
matplotlib (the optional extra ``lmread[plot]``), imported only when a plot is asked for.  The
JSON document itself is built by :mod:`lmread.analysis.report`.

Every writer renders the whole file in memory first and then writes it atomically (temporary
file, fsync, rename), so a failed write leaves nothing half-written.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from lmread.analysis.observations import Observations
from lmread.errors import LmreadError, OptionError, StudyError
from lmread.storage import write_atomic

PLOT_FORMATS = ("png", "svg", "pdf")


CSV_COLUMNS = ("group", "model", "n_params", "sample", "annotator", "n_annotators", "tokens", "words", "chars",
               "event", "category", "end")


def render_csv(obs: Observations) -> bytes:
    """The observation table as CSV bytes (header + one row per observation)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    labels = [g.label for g in obs.groups]
    models = [(g.model or {}).get("id", "") for g in obs.groups]
    params = ["" if g.n_params is None else g.n_params for g in obs.groups]
    cats = [*obs.categories, ""]  # code -1 -> ""
    writer.writerows(
        (labels[g], models[g], params[g], s, a, k, t, w, c, int(e), cats[code], end)
        for g, s, a, k, t, w, c, e, code, end in zip(
            obs.group.tolist(), obs.sample, obs.annotator, obs.n_annotators.tolist(), obs.tokens.tolist(),
            obs.words.tolist(), obs.chars.tolist(), obs.event.tolist(), obs.category_code.tolist(), obs.end,
            strict=True,
        )
    )
    return buf.getvalue().encode("utf-8")


def render_plot(doc: dict[str, Any], fmt: str, annotators: list[str] | None = None) -> bytes:
    """Step curves with CI bands and censoring ticks per group, the per-unit hazard by size and
    the severity mix by size (three panels), as ``fmt`` (png, svg or pdf) bytes; ``annotators``
    (whose marks the curves are) go into the title.  Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        from matplotlib.figure import Figure
    except ImportError:
        raise LmreadError("plotting needs matplotlib, which is not installed: pip install 'lmread[plot]'") from None
    from lmread.analysis.plots import draw_hazard, draw_severity, draw_survival

    fig = Figure(figsize=(8, 14), dpi=120)
    draw_survival(fig.add_subplot(3, 1, 1), doc, annotators)
    draw_hazard(fig.add_subplot(3, 1, 2), doc)
    draw_severity(fig.add_subplot(3, 1, 3), doc)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return buf.getvalue()


def plot_format(path: Path) -> str:
    """The plot format named by ``path``'s suffix, or :class:`OptionError`."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in PLOT_FORMATS:
        raise OptionError(f"--plot {path}: unknown image type {path.suffix or '(none)'!r}; use a .png, .svg or .pdf file")
    return fmt


def check_writable(path: Path, option: str) -> None:
    """Raise :class:`OptionError` unless ``path`` can be created or replaced."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OptionError(f"{option} {path} is a folder; give a file path")
    if not parent.is_dir():
        raise OptionError(f"{option} {path}: folder {parent} does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OptionError(f"{option} {path} is not writable; choose a writable path")


def write_file(path: Path, data: bytes, option: str) -> None:
    """Write ``data`` to ``path`` atomically; a one-line :class:`OptionError` on failure."""
    try:
        write_atomic(path, data)
    except StudyError as exc:
        raise OptionError(f"{option}: {exc}; choose a writable path") from None
