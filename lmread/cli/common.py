"""What every command shares: the ``--study``, ``--annotator`` and ``--json`` options (declared
here once), the settings of a run, the study folder, and JSON output."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

F = TypeVar("F", bound=Callable[..., Any])

STUDY_HELP = "Study folder (default: the default study in the data folder)."
ANNOTATOR_HELP = "Annotator name (default: $LMREAD_ANNOTATOR, the settings file, or your login)."


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")


def settings_from(ctx: click.Context) -> Any:
    """The settings of this run, loaded once per command line and kept on the click context."""
    from lmread.config import load_settings

    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        obj["settings"] = load_settings()
    return obj["settings"]


def person_annotator(settings: Any, annotator: str | None) -> str:
    """The name a person marks under: ``--annotator``, else the ``annotator`` setting
    (``$LMREAD_ANNOTATOR``, the settings file, or the login name).

    Raises a one-line :class:`~lmread.errors.MarkError` naming where the name came from when it
    is not a valid name or is a machine reader's (``auto-...``: only ``lmread annotate`` and
    judges write under those).
    """
    from lmread.records import check_person

    if annotator is not None:
        return check_person(annotator, "--annotator")
    name = str(settings.annotator)
    if os.environ.get("LMREAD_ANNOTATOR") == name:
        source = "LMREAD_ANNOTATOR"
    elif Path(settings.config_file).exists():
        source = f"the annotator setting (settings file {settings.config_file})"
    else:
        source = "the default annotator name (your login)"
    return check_person(name, source)


def study_path(ctx: click.Context, study: str | None) -> Path:
    """The ``--study`` folder, or the default study under the data folder."""
    return Path(study) if study else settings_from(ctx).default_study


def make_study_option(help_text: str = STUDY_HELP, file_okay: bool = False) -> Callable[[F], F]:
    """The ``--study DIR`` option (``file_okay``: let the command itself report a file given as a study)."""
    return click.option("--study", "study", type=click.Path(file_okay=file_okay), default=None, help=help_text)


def make_annotator_option(help_text: str = ANNOTATOR_HELP, default: str | None = None,
                          show_default: bool = False) -> Callable[[F], F]:
    """The ``--annotator NAME`` option."""
    return click.option("--annotator", default=default, show_default=show_default, help=help_text)


def json_option(help_text: str = "Print JSON.") -> Callable[[F], F]:
    """The ``--json`` flag (parameter ``as_json``): print the result as JSON instead of text."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


#: ``--study DIR`` as most commands take it
study_option = make_study_option()
#: ``--annotator NAME`` as most commands take it
annotator_option = make_annotator_option()
