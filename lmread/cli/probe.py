"""``lmread probe``: the rank lens, a teacher-forced probe of a list over one or more models.

Every option, the list and the output paths are checked before any model is loaded; models are
loaded through the catalogue and :func:`lmread.backends.open_backend` exactly as ``lmread
generate`` does (the same declared backend flags), one at a time.  Progress goes to stderr, the table to
stdout (unless ``--json -`` puts the document there).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from lmread.backends import backend_names
from lmread.cli.generate import backend_options, resolve_job
from lmread.cli.options import backend_flags
from lmread.errors import OptionError


def read_list(list_name: str | None, file: str | None) -> tuple[str, dict[str, Any], str]:
    """``(text, source, label)`` of ``--list NAME`` or ``--file FILE``; one-line errors otherwise."""
    from lmread.probe.lists import builtin_list

    if (list_name is None) == (file is None):
        raise OptionError("give exactly one of --list NAME (presidents, elements, months, planets) or --file FILE")
    if list_name is not None:
        return builtin_list(list_name), {"list": list_name}, f"list {list_name!r}"
    path = Path(file or "")
    if path.is_dir():
        raise OptionError(f"--file {path} is a folder; give a text file with one item per line")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OptionError(f"--file {path} does not exist; give a text file with one item per line") from None
    except UnicodeDecodeError:
        raise OptionError(f"--file {path} is not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise OptionError(f"--file {path} cannot be read: {exc.strerror or exc}") from None
    return text, {"file": str(path)}, f"file {path}"


@click.command("probe")
@click.option("--model", "models", multiple=True, required=True,
              help="Model id from 'lmread models' (or a .gguf path); repeat for several models.")
@click.option("--list", "list_name", default=None, help="A built-in list: presidents, elements, months, planets.")
@click.option("--file", "file", type=click.Path(), default=None,
              help="A text file: one item per line, or any text with --item-regex.")
@click.option("--item-regex", default=None,
              help="Regular expression (multi-line: ^ is a line start) whose matches mark where items start.")
@click.option("--backend", type=click.Choice(backend_names()), default=None,
              help="Backend (default: the model card's first); openai needs a server that echoes prompt logprobs.")
@backend_flags
@click.option("--json", "json_path", default=None, help="Write the lmread.probe/1 JSON to PATH ('-' for stdout).")
@click.option("--csv", "csv_path", default=None, help="Write one row per (model, item) as CSV to PATH.")
@click.option("--plot", "plot_path", default=None, help="Write rank by item position (log scale) to PATH.png / .svg / .pdf.")
@click.option("--tui", is_flag=True, help="Show the result in the terminal view (plot and table) afterwards.")
@click.pass_context
def probe(ctx: click.Context, /, models: tuple[str, ...], list_name: str | None, file: str | None,
          item_regex: str | None, backend: str | None, json_path: str | None, csv_path: str | None,
          plot_path: str | None, tui: bool, **backend_values: Any) -> None:
    """Score a list teacher-forced with each --model and read the right answer's rank where
    every item after the first starts (top-1 and top-10 rates, median rank).

    Small models put little probability on the right next item, yet often hold it in their top
    10: the rank shows what the probability hides.  The item's first token is the first token
    holding a byte of the item's first character (a leading space or line break merged into it
    is reported as its lead); the joint logprob of the item's whole first word is read too.
    """
    from lmread.analysis.export import check_writable, plot_format, write_file
    from lmread.backends import open_backend
    from lmread.catalog import load_catalog
    from lmread.cli.common import settings_from
    from lmread.probe.core import run_probe
    from lmread.probe.document import build_document, format_table, render_csv, render_plot
    from lmread.probe.items import compile_item_regex, split_items

    targets: list[tuple[Path, str]] = []
    for path, option in ((json_path, "--json"), (csv_path, "--csv"), (plot_path, "--plot")):
        if path == "-" and option != "--json":
            raise OptionError(f"{option} needs a file path ('-' is only for --json)")
        if path is not None and path != "-":
            targets.append((Path(path), option))
    if plot_path is not None:
        plot_format(Path(plot_path))
    for target, option in targets:
        check_writable(target, option)
    if item_regex is not None:
        compile_item_regex(item_regex)
    text, source, label = read_list(list_name, file)
    items = split_items(text, item_regex, source=label)

    options = backend_options(backend_values)
    catalog = load_catalog(settings_from(ctx))
    jobs = {mid: resolve_job(catalog, mid, backend, options) for mid in dict.fromkeys(models)}

    def open_model(model_id: str) -> Any:
        job = jobs[model_id]
        return open_backend(job.card, job.backend, **job.options)

    probes = run_probe(list(jobs), open_model, text, items, source=label,
                       progress=lambda line: click.echo(line, err=True),
                       record_model_path=settings_from(ctx).record_model_path)
    doc = build_document(source, text, items, probes, item_regex=item_regex)

    outputs: list[tuple[Path, bytes, str]] = []
    if json_path is not None:
        blob = orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
        if json_path == "-":
            sys.stdout.write(blob.decode("utf-8"))
        else:
            outputs.append((Path(json_path), blob, "--json"))
    if csv_path is not None:
        outputs.append((Path(csv_path), render_csv(doc), "--csv"))
    if plot_path is not None:
        outputs.append((Path(plot_path), render_plot(doc, plot_format(Path(plot_path))), "--plot"))
    for target, data, option in outputs:
        write_file(target, data, option)
        click.echo(f"wrote {target}", err=True)
    if json_path != "-":
        click.echo(format_table(doc))
    if tui:
        from lmread.cli.read import show_probe

        show_probe(doc)
