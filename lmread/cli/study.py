"""The study commands: ``import``, ``mark``, ``study info`` / ``study create`` and ``merge``."""

from __future__ import annotations

from pathlib import Path

import click

from lmread.cli.common import (
    annotator_option,
    emit_json,
    json_option,
    person_annotator,
    settings_from,
    study_option,
    study_path,
)
from lmread.errors import StudyError
from lmread.units import format_params

# --------------------------------------------------------------------------------------------
# import


@click.command("import")
@study_option
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "roft", "boundary"]), default="jsonl", show_default=True,
              help="jsonl: generations or controls (one JSON object a line); roft: RoFT's roft.csv (or JSONL with "
                   "its fields); boundary: passages with a human-to-machine boundary and reader guesses (JSONL).")
@click.option("--tokenizer", default="words", show_default=True,
              help="How to split text into tokens: words, chars, or a model id from 'lmread models' (jsonl format).")
@click.option("--control", "control", type=click.Choice(["human"]), default=None,
              help="Import the texts as human controls (right answer: no fall); 'lmread controls make' "
                   "picks them into the queue (jsonl format).")
@click.option("--n-params", "n_params", multiple=True, metavar="NAME=N",
              help="Parameter count of a generator named in the file (e.g. gpt2-xl=1.5B); repeatable. RoFT's "
                   "generators carry their public sizes; others are unsized without this (roft, boundary).")
@click.option("--models", "models", default=None, metavar="NAME,NAME",
              help="roft: import only these generators' passages (all-human and spliced ones are kept), e.g. "
                   "gpt2,gpt2-xl for one family's size ladder.")
@click.option("--groups", "groups", default=None, metavar="NAME,NAME",
              help="roft: import only the rows of readers in these groups, e.g. A,B as RoFT's notebook "
                   "does (it leaves group C, the GPT-3 study, out of its means).")
@click.option("--as", "layout", type=click.Choice(["samples", "controls"]), default=None,
              help="boundary: 'samples' (default): the human part is the prompt and the machine part a model's "
                   "sample; 'controls': each passage is a splice-like control with its boundary as the known onset.")
@json_option("Print a JSON summary.")
@click.pass_context
def import_cmd(ctx: click.Context, study: str | None, file: str, fmt: str, tokenizer: str, control: str | None,
               n_params: tuple[str, ...], models: str | None, groups: str | None, layout: str | None,
               as_json: bool) -> None:
    """Import texts and readings made elsewhere from FILE.

    jsonl: each line {"text": ..., "model": LABEL, "prompt": optional, "n_params": optional, "id": optional}.
    roft: RoFT's roft.csv; one sample per passage, one mark per row under reader roft-<annotator>.
    boundary: see the README ("Public human data").
    All lines are checked first; on any error nothing is written.
    """
    path = study_path(ctx, study)
    if fmt != "jsonl":
        if control is not None or tokenizer != "words":
            raise click.UsageError("--control and --tokenizer belong to --format jsonl")
        if (models is not None or groups is not None) and fmt != "roft":
            raise click.UsageError("--models and --groups belong to --format roft")
        if layout is not None and fmt != "boundary":
            raise click.UsageError("--as belongs to --format boundary")
        _import_passages(path, Path(file), fmt, n_params, models.split(",") if models else None,
                         groups.split(",") if groups else None, layout or "samples", as_json)
        return
    if n_params or models or groups or layout:
        raise click.UsageError("--n-params, --models, --groups and --as belong to --format roft or boundary")
    from lmread.importer import import_jsonl

    added = import_jsonl(path, Path(file), tokenizer=tokenizer, settings=settings_from(ctx), control=control)
    if as_json:
        emit_json({"study": str(path), "imported": len(added), "ids": [s.id for s in added]})
    else:
        click.echo(f"imported {len(added)} {'human controls' if control else 'samples'} into {path}")
    if control and any(not s.prompt.text for s in added):
        click.echo("lmread: warning: some human controls have no prompt; in the reader their empty prompt line "
                   "sets them apart from generated samples (give each line a 'prompt')", err=True)


def _import_passages(path: Path, file: Path, fmt: str, n_params: tuple[str, ...], models: list[str] | None,
                     groups: list[str] | None, layout: str, as_json: bool) -> None:
    from lmread.importer.roft import parse_n_params

    sizes = parse_n_params(n_params)

    def progress(text: str) -> None:
        if not as_json:
            click.echo(f"  {text}", err=True)

    if fmt == "roft":
        from lmread.importer.roft import import_roft

        summary = import_roft(path, file, n_params=sizes, progress=progress, models=models, groups=groups)
    else:
        from lmread.importer.boundary import import_boundary

        summary = import_boundary(path, file, n_params=sizes, progress=progress, layout=layout)
    if as_json:
        emit_json(summary)
        return
    p = summary["passages"]
    kinds = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in summary["mark_kinds"].items())
    click.echo(f"imported {summary['rows']} readings by {summary['readers']} readers into {path}: "
               f"{p['machine']} machine passages, {p['human']} all-human, {p['splice']} spliced "
               f"({summary['samples_written']} new samples); marks: {kinds}")
    if summary["unsized_models"]:
        click.echo(f"lmread: warning: no parameter count for {', '.join(summary['unsized_models'])} "
                   "(give --n-params NAME=N)", err=True)
    bad = summary.get("points_disagree")
    if bad and bad["n"]:
        click.echo(f"lmread: warning: {bad['n']} rows' points differ from RoFT's rule (lines "
                   f"{', '.join(map(str, bad['lines'][:10]))}{', ...' if bad['n'] > 10 else ''})", err=True)
    if summary.get("readers_with_differing_answers"):
        click.echo(f"lmread: warning: {len(summary['readers_with_differing_answers'])} readers' group or survey answers "
                   "differ between rows; the first row's were kept", err=True)
    if summary.get("short_passages"):
        click.echo(f"lmread: warning: {summary['short_passages']} passages have fewer than 10 sentences; an 'all human' "
                   "answer there is censored (and scored) at the sentences present", err=True)
    if summary.get("repeated_readings"):
        click.echo(f"lmread: warning: {summary['repeated_readings']} rows repeat a reader's reading of a passage; the "
                   "later one stands (one reading per reader and sample), so those readers' scores can differ from "
                   "the file's points", err=True)
    if summary.get("unparsed_dates"):
        click.echo(f"lmread: warning: {summary['unparsed_dates']} dates could not be read; those marks carry the "
                   "import time", err=True)


# --------------------------------------------------------------------------------------------
# mark


@click.command("mark")
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
@json_option("Print the saved event as JSON.")
@click.pass_context
def mark_cmd(ctx: click.Context, study: str | None, sample_id: str | None, at: int | None, no_fall: bool,
             read_to: int | None, skip: bool, category: str | None, severity: int | None, note: str | None,
             undo: bool, mark_id: str | None, annotator: str | None, as_json: bool) -> None:
    """Record a mark on a sample: a fall at a token, no fall (censored), a skip, or an undo."""
    from lmread.records import Mark
    from lmread.study import Study

    who = person_annotator(settings_from(ctx), annotator)
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


@click.group("study")
def study_group() -> None:
    """Inspect and create study folders."""


@study_group.command("info")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@json_option("Print JSON.")
@click.pass_context
def study_info(ctx: click.Context, directory: str | None, as_json: bool) -> None:
    """Samples per model, how many are marked, fallen or censored, per annotator."""
    from lmread.analysis.agreement import agreement_summary
    from lmread.analysis.plan import progress
    from lmread.study import Study
    from lmread.study.report import summarize_study

    st = Study.open(study_path(ctx, directory))
    info = summarize_study(st)
    info["agreement"] = agreement_summary(st)
    info["plan"] = progress(st).to_json()
    for warning in info["warnings"]:
        click.echo(f"lmread: warning: {warning}", err=True)
    if as_json:
        emit_json(info)
        return
    click.echo(f"study {info['name']} at {info['study']}: {info['samples']} samples, {info['marked_samples']} marked")
    click.echo(f"  {'model':<32} {'params':>12} {'samples':>8} {'marked':>7} {'tokens':>9}")
    for m in info["models"]:
        click.echo(f"  {m['model']:<32} {format_params(m['n_params']):>12} {m['samples']:>8} {m['marked']:>7} {m['tokens']:>9}")
    if info.get("controls"):
        click.echo("  controls: " + ", ".join(f"{n} {kind}" for kind, n in info["controls"].items()))
    if info["annotators"]:
        click.echo(f"  {'annotator':<20} {'marked':>7} {'fallen':>7} {'censored':>9} {'skipped':>8} {'events':>7}")
        for a in info["annotators"]:
            click.echo(f"  {a['annotator']:<20} {a['marked']:>7} {a['fallen']:>7} {a['censored']:>9} "
                       f"{a['skipped']:>8} {a['events']:>7}")
    ag = info["agreement"]
    if ag["samples"]:
        def num(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}"

        click.echo(f"  agreement: {ag['samples']} samples read by 2+ annotators; Fleiss' kappa {num(ag['fleiss_kappa'])} "
                   f"on falling within {ag['horizon_tokens']} tokens ({ag['readings_left_out']} readings left out), "
                   f"alpha {num(ag['alpha'])}, mean distance {num(ag['mean_abs_distance_tokens'])} tokens, "
                   f"severity weighted kappa {num(ag['severity_weighted_kappa'])} (see 'lmread agreement')")
    from lmread.cli.plan import progress_lines

    for line in progress_lines(info["plan"]):
        click.echo(line)


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


@click.command("merge")
@click.argument("sources", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--into", "dest", required=True, type=click.Path(file_okay=False), help="Destination study folder.")
@click.option("--dry-run", is_flag=True, help="Only report what would be merged and any conflicts.")
@json_option("Print a JSON report.")
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


#: the commands this module adds to ``lmread``
COMMANDS = (import_cmd, mark_cmd, study_group, merge_cmd)
