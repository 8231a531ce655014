"""Command line: ``lmread`` (opens the reader), ``read``, ``models``, ``generate``, ``import``,
``mark``, ``study``, ``merge``, ``survival``, ``bench``.

Commands that need heavy libraries live in their own modules and are imported only when run,
so ``lmread --help`` and the annotator's commands start fast.  Every :class:`LmreadError` and
usage error is printed as one line ``lmread: error: ...`` with a non-zero exit, no traceback.
"""

from __future__ import annotations

import importlib
import signal
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from lmread import __version__
from lmread.errors import LmreadError, StudyError

#: command name -> (module, attribute, one-line help) for lazily imported commands
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "read": ("lmread.tui.cli", "read", "Open the reader (the TUI) on a study."),
    "models": ("lmread.catalog_cli", "models", "List model cards and discovered models."),
    "generate": ("lmread.generate_cli", "generate", "Generate samples into a study (headless)."),
    "survival": ("lmread.survival_cli", "survival", "Kaplan-Meier survival of coherent length per group."),
    "bench": ("lmread.bench", "bench", "Run the speed benchmarks (ratios measured side by side)."),
    "doctor": ("lmread.doctor_cli", "doctor", "Check that every backend runs the bundled models on this machine."),
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


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")


def settings_from(ctx: click.Context) -> Any:
    from lmread.config import load_settings

    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        obj["settings"] = load_settings()
    return obj["settings"]


def study_path(ctx: click.Context, study: str | None) -> Path:
    """The ``--study`` folder, or the default study under the data folder."""
    return Path(study) if study else settings_from(ctx).default_study


study_option = click.option(
    "--study", "study", type=click.Path(file_okay=False), default=None,
    help="Study folder (default: the default study in the data folder).",
)
annotator_option = click.option(
    "--annotator", default=None, help="Annotator name (default: $LMREAD_ANNOTATOR, the settings file, or your login)."
)


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


# --------------------------------------------------------------------------------------------
# import


@app.command("import")
@study_option
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--tokenizer", default="words", show_default=True,
              help="How to split text into tokens: words, chars, or a model id from 'lmread models'.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.pass_context
def import_cmd(ctx: click.Context, study: str | None, file: str, tokenizer: str, as_json: bool) -> None:
    """Import generations made elsewhere (or human-written controls) from a JSONL FILE.

    Each line: {"text": ..., "model": LABEL, "prompt": optional, "n_params": optional, "id": optional}.
    All lines are checked first; on any error nothing is written.
    """
    from lmread.importer import import_jsonl

    path = study_path(ctx, study)
    added = import_jsonl(path, Path(file), tokenizer=tokenizer, settings=settings_from(ctx))
    if as_json:
        emit_json({"study": str(path), "imported": len(added), "ids": [s.id for s in added]})
    else:
        click.echo(f"imported {len(added)} samples into {path}")


# --------------------------------------------------------------------------------------------
# mark


@app.command("mark")
@study_option
@click.option("--sample", "sample_id", default=None, help="Sample id (or a unique prefix).")
@click.option("--at", type=int, default=None, help="Index of the first token where the text falls.")
@click.option("--no-fall", is_flag=True, help="No fall: censored at --read-to tokens read.")
@click.option("--read-to", type=int, default=None, help="How many tokens were read (for --no-fall; optional with --at).")
@click.option("--skip", is_flag=True, help="Record that the sample was skipped (contributes nothing).")
@click.option("--category", default=None, help="Failure category of a fall (repetition, contradiction, drift, ...).")
@click.option("--severity", type=click.IntRange(1, 3), default=None, help="Severity 1-3 of a fall.")
@click.option("--note", default=None, help="A free-text note.")
@click.option("--undo", is_flag=True, help="Withdraw your latest mark (on --sample if given, or --mark ID).")
@click.option("--mark", "mark_id", default=None, help="With --undo: the id of the mark to withdraw.")
@annotator_option
@click.option("--json", "as_json", is_flag=True, help="Print the saved event as JSON.")
@click.pass_context
def mark_cmd(ctx: click.Context, study: str | None, sample_id: str | None, at: int | None, no_fall: bool,
             read_to: int | None, skip: bool, category: str | None, severity: int | None, note: str | None,
             undo: bool, mark_id: str | None, annotator: str | None, as_json: bool) -> None:
    """Record a mark on a sample: a fall at a token, no fall (censored), a skip, or an undo."""
    from lmread.records import Mark
    from lmread.study import Study

    who = annotator if annotator is not None else settings_from(ctx).annotator
    st = Study.open(study_path(ctx, study))
    if undo:
        if at is not None or no_fall or skip:
            raise click.UsageError("--undo cannot be combined with --at, --no-fall or --skip")
        event = st.undo(who, mark_id=mark_id, sample=sample_id)
    else:
        chosen = [flag for flag, on in (("--at", at is not None), ("--no-fall", no_fall), ("--skip", skip)) if on]
        if len(chosen) != 1:
            raise click.UsageError("give exactly one of --at TOKEN, --no-fall --read-to TOKENS, --skip, or --undo")
        if not sample_id:
            raise click.UsageError("--sample ID is required")
        if no_fall and read_to is None:
            raise click.UsageError("--no-fall needs --read-to TOKENS (how many tokens you read)")
        kind = "fall" if at is not None else ("no_fall" if no_fall else "skip")
        event = st.append_mark(Mark(sample=sample_id, annotator=who, kind=kind, at=at, read_to=read_to,
                                    category=category, severity=severity, note=note, revealed=read_to))
    if as_json:
        emit_json(event.to_json())
    else:
        what = {"fall": f"falls at token {event.at}", "no_fall": f"no fall, read {event.read_to} tokens",
                "skip": "skipped", "undo": f"undid {event.undoes}"}[event.kind]
        click.echo(f"saved {event.id}: {event.sample} {what} ({who})")


# --------------------------------------------------------------------------------------------
# study


@app.group("study")
def study_group() -> None:
    """Inspect and create study folders."""


@study_group.command("info")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def study_info(ctx: click.Context, directory: str | None, as_json: bool) -> None:
    """Samples per model, how many are marked, fallen or censored, per annotator."""
    from lmread.study import Study

    st = Study.open(study_path(ctx, directory))
    info = st.info()
    for warning in info["warnings"]:
        click.echo(f"lmread: warning: {warning}", err=True)
    if as_json:
        emit_json(info)
        return
    click.echo(f"study {info['name']} at {info['study']}: {info['samples']} samples, {info['marked_samples']} marked")
    click.echo(f"  {'model':<32} {'params':>12} {'samples':>8} {'marked':>7} {'tokens':>9}")
    for m in info["models"]:
        params = f"{m['n_params']:,}" if m["n_params"] else "?"
        click.echo(f"  {m['model']:<32} {params:>12} {m['samples']:>8} {m['marked']:>7} {m['tokens']:>9}")
    if info["annotators"]:
        click.echo(f"  {'annotator':<20} {'marked':>7} {'fallen':>7} {'censored':>9} {'skipped':>8} {'events':>7}")
        for a in info["annotators"]:
            click.echo(f"  {a['annotator']:<20} {a['marked']:>7} {a['fallen']:>7} {a['censored']:>9} "
                       f"{a['skipped']:>8} {a['events']:>7}")


@study_group.command("create")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--name", default=None, help="Display name (default: the folder name).")
@click.option("--seed", type=int, default=None, help="Seed of the shuffled reading order (default: random, recorded).")
def study_create(directory: str, name: str | None, seed: int | None) -> None:
    """Create an empty study folder."""
    from lmread.study import Study

    st = Study.create(Path(directory), name=name, shuffle_seed=seed)
    click.echo(f"study {st.name} at {st.path} (reading-order seed {st.shuffle_seed})")


# --------------------------------------------------------------------------------------------
# merge


@app.command("merge")
@click.argument("sources", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--into", "dest", required=True, type=click.Path(file_okay=False), help="Destination study folder.")
@click.option("--dry-run", is_flag=True, help="Only report what would be merged and any conflicts.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def merge_cmd(sources: tuple[str, ...], dest: str, dry_run: bool, as_json: bool) -> None:
    """Union samples and marks of SOURCES (annotators' study folders) into --into by id.

    Conflicts (the same id with different content) are reported and nothing is written.
    """
    from lmread.study import merge_studies

    report = merge_studies([Path(s) for s in sources], Path(dest), dry_run=dry_run)
    if as_json:
        emit_json(report.to_json())
    if report.conflicts:
        if not as_json:
            for line in report.conflicts:
                click.echo(f"conflict: {line}", err=True)
        raise StudyError(f"{len(report.conflicts)} conflicts; nothing was merged into {dest}")
    if not as_json:
        click.echo(f"merged into {dest}: {report.samples_added} samples, {report.marks_added} mark events"
                   + (" (dry run)" if dry_run else ""))


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


if __name__ == "__main__":
    sys.exit(main())
