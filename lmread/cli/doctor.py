"""``lmread doctor``: check, in child processes, that every installed backend runs every bundled
model on this machine (load, prefill a prompt, generate a few tokens, score a short text)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
import threading
import time
from typing import Any

import click

from lmread.cli.common import emit_json, settings_from

#: backend -> the modules it needs (all must be importable for it to count as installed)
BACKEND_MODULES: dict[str, tuple[str, ...]] = {
    "llamacpp": ("llama_cpp",),
    "hf": ("torch", "transformers", "gguf"),
    "openai": ("httpx",),
}
#: distributions whose versions the report names
VERSIONS = ("llama-cpp-python", "torch", "transformers", "httpx")


def installed_backends() -> dict[str, bool]:
    """Which backends have their libraries installed (found without importing them)."""
    return {name: all(importlib.util.find_spec(m) is not None for m in mods) for name, mods in BACKEND_MODULES.items()}


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in VERSIONS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _summary(steps: dict[str, Any]) -> str:
    parts = []
    if "load_s" in steps:
        parts.append(f"load {steps['load_s']:.1f} s")
    if "tokens" in steps:
        parts.append(f"{steps['tokens']} tokens in {steps.get('generate_s', 0):.1f} s")
    if "scored_tokens" in steps:
        parts.append(f"scored {steps['scored_tokens']} tokens")
    return ", ".join(parts)


def _run_with_progress(label: str, fn: Any, quiet: bool) -> Any:
    """Run ``fn()`` in a thread, showing ``label`` and the seconds elapsed while it runs."""
    box: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: box.setdefault("result", fn()), daemon=True)
    start = time.monotonic()
    worker.start()
    tty = sys.stderr.isatty() and not quiet
    if not quiet and not tty:
        click.echo(f"  {label} ...", err=True)
    while worker.is_alive():
        worker.join(0.5)
        if tty:
            click.echo(f"\r  {label} ... {time.monotonic() - start:4.0f} s", err=True, nl=False)
    if tty:
        click.echo("\r" + " " * (len(label) + 20) + "\r", err=True, nl=False)
    return box["result"]


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report instead of the table.")
@click.option("--backend", "only_backends", multiple=True, help="Check only this backend (repeatable).")
@click.option("--model", "only_models", multiple=True, help="Check only this bundled model id (repeatable).")
@click.option("--timeout", type=click.FloatRange(min=1), default=900.0, show_default=True,
              help="Seconds one check may take (the first transformers load of a GGUF converts it: minutes).")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, only_backends: tuple[str, ...], only_models: tuple[str, ...],
           timeout: float) -> None:
    """Check every installed backend on every bundled model, each in a child process.

    A check loads the model, prefills a prompt of several tokens, generates a few tokens and
    scores a short text.  A child killed by a signal (a native library built for instructions
    this CPU cannot run) is named, with the fix.  Exits non-zero when a model's default backend
    fails.
    """
    from lmread.backends import backend_class
    from lmread.backends.buildcheck import probe, record_llama_verdict
    from lmread.catalog import bundled_model_dirs, load_catalog

    settings = settings_from(ctx)
    catalog = load_catalog(settings)
    bundled = {d.resolve() for d in bundled_model_dirs()}
    cards = [c for c in catalog.all(discover=False) if c.card_file is not None and c.card_file.resolve().parent in bundled]
    if only_models:
        unknown = sorted(set(only_models) - {c.id for c in cards})
        if unknown:
            raise click.UsageError(f"no bundled model {', '.join(unknown)} (bundled: {', '.join(c.id for c in cards)})")
        cards = [c for c in cards if c.id in only_models]
    installed = installed_backends()
    if only_backends:
        unknown = sorted(set(only_backends) - set(installed))
        if unknown:
            raise click.UsageError(f"unknown backend {', '.join(unknown)} (known: {', '.join(installed)})")
    versions = _versions()
    if not as_json:
        names = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
        click.echo(f"lmread doctor: {names or 'no backend libraries'}")
    checks: list[dict[str, Any]] = []
    for backend, present in installed.items():
        if only_backends and backend not in only_backends:
            continue
        if not present:
            checks.append({"backend": backend, "model": None, "status": "not installed", "ok": None,
                           "default": False, "message": f"install it with: pip install 'lmread[{backend}]'"})
            continue
        if not backend_class(backend).needs_local_model:  # a client of a server elsewhere: nothing to load
            checks.append({"backend": backend, "model": None, "status": "ok", "ok": True, "default": False,
                           "message": "client installed; point it at a server with --base-url"})
            continue
        for card in cards:
            if backend not in card.backends:
                continue
            label = f"{backend:<9} {card.id:<16}"
            result = _run_with_progress(label, lambda b=backend, c=card.id: probe(b, model=c, timeout=timeout),
                                        quiet=as_json)
            record_llama_verdict(result)  # a llama.cpp check's verdict on the build is cached
            entry = result.to_json() | {"status": "ok" if result.ok else "failed",
                                        "default": card.backends[0] == backend}
            checks.append(entry)
            if not as_json:
                click.echo(f"  {label} " + (f"ok ({_summary(result.steps)})" if result.ok else
                                            f"FAILED: {result.message}"))
    failed_default = [c for c in checks if c.get("ok") is False and c.get("default")]
    if as_json:
        emit_json({"versions": versions, "checks": checks, "ok": not failed_default})
    else:
        for c in checks:
            if c["model"] is None:
                click.echo(f"  {c['backend']:<9} {'-':<16} {c['status']}: {c['message']}")
        failed = [c for c in checks if c.get("ok") is False]
        click.echo("all checks passed" if not failed else f"{len(failed)} check(s) failed")
    if failed_default:
        first = failed_default[0]
        click.echo(f"lmread: error: {first['backend']} on {first['model']}: {first['message']}", err=True)
        ctx.exit(1)
