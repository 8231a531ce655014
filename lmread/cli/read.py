"""``lmread read``: open the reader (the Textual app) on a study.

Everything that can go wrong before the app starts (a study folder that cannot be read, a
corrupt sample, a bad annotator name or pace) is reported as one ``lmread: error:`` line, before
Textual takes over the terminal.  Textual itself is imported only when the app starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from lmread.analysis.reading_speed import PACE_MAX_WPS as PACE_MAX
from lmread.analysis.reading_speed import PACE_MIN_WPS as PACE_MIN
from lmread.cli.common import make_annotator_option, make_study_option, person_annotator
from lmread.errors import OptionError, StudyError


def _split_models(values: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for value in values:
        for part in value.replace(",", " ").split():
            if part not in out:
                out.append(part)
    return out


def preflight(study: Path, annotator: str, pace: float | None) -> None:
    """Check what the reader needs before the terminal is taken over; raise LmreadError."""
    from lmread.records import check_person
    from lmread.study import META_FILE, Study

    check_person(annotator)
    if pace is not None and not PACE_MIN <= pace <= PACE_MAX:
        raise OptionError(f"invalid option --pace {pace:g}: give a reading pace in words/s between "
                          f"{PACE_MIN:g} and {PACE_MAX:g}")
    if study.exists() and not study.is_dir():
        raise StudyError(f"study {study} is a file, not a folder; give a study folder with --study")
    if study.is_dir() and not (study / META_FILE).exists() and any(study.iterdir()):
        raise StudyError(f"{study} is not a study folder (no {META_FILE}) and is not empty; "
                         "give a study folder or a new path with --study")
    st = Study.create(study) if not (study / META_FILE).exists() else Study.open(study)
    st.refresh()  # every sample and mark line is parsed here: a bad one is reported now
    for warning in st.warnings:
        click.echo(f"lmread: warning: {warning}", err=True)


@click.command("read")
@make_study_option("Study folder (default: the default study in the data folder; created if missing).", file_okay=True)
@make_annotator_option()
@click.option("--no-blind", is_flag=True, help="Show the model of each sample while reading.")
@click.option("--no-reveal", is_flag=True, help="Do not reveal the model after a sample is marked.")
@click.option("--pace", type=float, default=None, help="Reading pace of pre-generated samples, words/s (default: the setting reading_pace_wps, else 4.5).")
@click.option("--overlap", type=float, default=None,
              help="Share of samples every annotator reads, interleaved in the same places of each queue "
                   "(default: the study's 'overlap' setting; unset: one order for everyone).")
@click.option("--live", is_flag=True, help="Open the live-session dialog (generate and read as it streams).")
@click.option("--models", "models", multiple=True,
              help="Models of the live session (ids from 'lmread models'; repeat or comma-separate).")
@click.option("--parallel", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Live session: decode the next N queued samples of a model in one batch (backends that "
                   "support it, as 'lmread generate --parallel'); the sample on screen streams, the others "
                   "are ready when you get to them.")
@click.pass_context
def read(ctx: click.Context, study: str | None, annotator: str | None = None, no_blind: bool = False,
         no_reveal: bool = False, pace: float | None = None, overlap: float | None = None, live: bool = False,
         models: tuple[str, ...] = (), parallel: int = 1) -> None:
    """Open the reader on a study: read samples blind, mark where the text falls."""
    from lmread.config import load_settings

    obj = ctx.ensure_object(dict) if ctx is not None else {}
    settings: Any = obj.get("settings") or load_settings()
    path = Path(study).expanduser() if study else settings.default_study
    who = person_annotator(settings, annotator or None)
    preflight(path, who, pace)
    if overlap is not None:
        from lmread.study.order import check_overlap

        check_overlap(overlap)

    from lmread.tui.app import LmreadApp

    app = LmreadApp(
        path,
        settings=settings,
        annotator=who,
        blind=False if no_blind else None,
        reveal_after_mark=False if no_reveal else None,
        pace=pace,
        live=live or bool(models),
        models=_split_models(models),
        overlap=overlap,
        parallel=parallel,
    )
    app.run()


def show_probe(doc: dict[str, Any]) -> None:
    """Open the rank-probe view on a finished ``lmread.probe/1`` document (``lmread probe --tui``)."""
    from lmread.tui.probe_app import ProbeApp

    ProbeApp(doc).run()
