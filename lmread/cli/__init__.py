"""Command line: ``lmread`` (opens the reader), ``read``, ``models``, ``generate``, ``import``,
``mark``, ``study``, ``merge``, ``survival``, ``calibration``, ``agreement``, ``bench``, ``doctor``,
``controls``.

One module per command group: :mod:`lmread.cli.study` (``import``, ``mark``, ``study``,
``merge``; registered here), and, imported only when run (:data:`LAZY_COMMANDS`), ``read``,
``models``, ``generate``, ``survival``, ``annotate``, ``calibration``, ``agreement``, ``bench``, ``doctor``,
``controls``, ``probe`` (``lmread.cli.*``), so
``lmread --help`` and the annotator's commands start fast.  Shared options and helpers live in :mod:`lmread.cli.common`.
Every :class:`LmreadError` and usage error is printed as one line ``lmread: error: ...`` with a
non-zero exit, no traceback.
"""

from __future__ import annotations

import importlib
import signal

import click

from lmread import __version__
from lmread.cli.common import (
    annotator_option,
    emit_json,
    json_option,
    make_annotator_option,
    make_study_option,
    settings_from,
    study_option,
    study_path,
)
from lmread.cli.study import COMMANDS as STUDY_COMMANDS
from lmread.errors import LmreadError

#: command name -> (module, attribute, one-line help) for lazily imported commands
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "read": ("lmread.cli.read", "read", "Open the reader (the TUI) on a study."),
    "models": ("lmread.cli.models", "models", "List model cards and discovered models."),
    "generate": ("lmread.cli.generate", "generate", "Generate samples into a study (headless)."),
    "survival": ("lmread.cli.survival", "survival", "Kaplan-Meier survival of coherent length per group."),
    "annotate": ("lmread.cli.annotate", "annotate", "Mark samples with machine readers (fall detectors)."),
    "bench": ("lmread.cli.bench", "bench", "Run the speed benchmarks (ratios measured side by side)."),
    "doctor": ("lmread.cli.doctor", "doctor", "Check that every backend runs the bundled models on this machine."),
    "controls": ("lmread.cli.controls", "controls", "Mix controls with a known answer blind into the queue."),
    "probe": ("lmread.cli.probe", "probe", "Rank lens: teacher-forced rank of each list item's first token per model."),
    "calibration": ("lmread.cli.calibration", "calibration", "Per annotator: detection and delay on controls, speed."),
    "agreement": ("lmread.cli.agreement", "agreement", "Agreement between readers (kappa, distance, alpha)."),
    "plan": ("lmread.cli.plan", "plan", "Plan a study: samples, readings and reader-hours a comparison needs."),
}


class LazyGroup(click.Group):
    """A click group whose heavy commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module_name, attr, _ = LAZY_COMMANDS[cmd_name]
            module = importlib.import_module(module_name)
            return getattr(module, attr)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, cmd.get_short_help_str(80)) for name, cmd in self.commands.items()]
        rows += [(name, info[2]) for name, info in LAZY_COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=LazyGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lmread")
@study_option
@click.pass_context
def app(ctx: click.Context, study: str | None) -> None:
    """Read long LM generations blind, mark where the text falls, and measure coherent length
    with Kaplan-Meier survival curves per model size.

    With no command, opens the reader on the default study.
    """
    if ctx.invoked_subcommand is None:
        read_cmd = LazyGroup.get_command(app, ctx, "read")
        assert read_cmd is not None
        ctx.invoke(read_cmd, study=study)


for _command in STUDY_COMMANDS:
    app.add_command(_command)

__all__ = [
    "LAZY_COMMANDS",
    "LazyGroup",
    "annotator_option",
    "app",
    "emit_json",
    "json_option",
    "main",
    "make_annotator_option",
    "make_study_option",
    "settings_from",
    "study_option",
    "study_path",
]


# --------------------------------------------------------------------------------------------
# entry point


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (errors as one line on stderr, no traceback)."""
    if hasattr(signal, "SIGXFSZ"):  # a file-size limit must fail the write, not kill us
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        # with standalone_mode=False, click returns the status of ctx.exit(N) / Exit(N) instead of raising
        status = app.main(args=argv, prog_name="lmread", standalone_mode=False)
    except LmreadError as exc:
        click.echo(f"lmread: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.exceptions.Abort:
        click.echo("lmread: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("lmread: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        msg = " ".join(exc.format_message().split())
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        click.echo(f"lmread: error: {msg}{hint}", err=True)
        return exc.exit_code
    except BrokenPipeError:
        return 1
    return status if isinstance(status, int) and not isinstance(status, bool) else 0
