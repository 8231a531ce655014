"""``lmread models``: list the model cards and the models discovered on disk."""

from __future__ import annotations

import click

from lmread.catalog import load_catalog
from lmread.cli.common import emit_json, json_option, settings_from
from lmread.units import format_params


@click.command("models")
@json_option("Print a JSON list (one object per model).")
@click.option("--no-discover", is_flag=True, help="Only the model cards; do not scan model folders and the HF cache.")
@click.pass_context
def models(ctx: click.Context, as_json: bool, no_discover: bool) -> None:
    """List model cards and discovered models: id, size (read from the file), quantization, source, availability.

    Cards come from the bundled models/ folder and <data dir>/models/*.toml; GGUF files are
    discovered under LMREAD_MODEL_DIRS (and model_dirs in the settings file), HF models in the
    local Hugging Face cache.  Nothing is downloaded.
    """
    settings = settings_from(ctx)
    catalog = load_catalog(settings)
    rows = [card.to_json(settings) for card in catalog.all(discover=not no_discover)]
    for warning in catalog.discovery_errors:
        click.echo(f"lmread: warning: skipped {warning}", err=True)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no models (add a card to <data dir>/models or set LMREAD_MODEL_DIRS)")
        return
    header = ("id", "name", "family", "backends", "params", "quant", "ok", "source")
    table = [header]
    for r in rows:
        src = r["source"]
        source = next((f"{k}:{v}" for k, v in src.items() if k in ("package", "hf", "url", "path")), "?")
        if "revision" in src:
            source += f"@{str(src['revision'])[:12]}"
        table.append((
            r["id"] + (" *" if r["discovered"] else ""), r["name"], r["family"], ",".join(r["backends"]),
            format_params(r["n_params"]) + ("" if r["n_params_source"] != "card" else " (card)"),
            r["quantization"] or "?", "yes" if r["available"] else "no", source,
        ))
    widths = [min(max(len(str(row[i])) for row in table), 40) for i in range(len(header) - 1)]
    for row in table:
        cells = [str(c)[:40].ljust(w) for c, w in zip(row[:-1], widths, strict=True)]
        click.echo("  ".join([*cells, str(row[-1])]).rstrip())
    missing = [r for r in rows if not r["available"] and r["error"]]
    if any(r["discovered"] for r in rows):
        click.echo("(* discovered on disk, no card)")
    for r in missing:
        click.echo(f"{r['id']}: {r['error']}", err=True)
