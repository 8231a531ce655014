"""``lmread judge``: a language model reads every sample like a person and marks where it falls.

Every option is checked (templates included) before a model loads or a server is asked.
Re-running the same command asks only for what is missing; Ctrl-C keeps every answer received.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

import click

from lmread.backends.openai.backend import (
    API_KEY_ENV,
    BASE_URL,
    CONCURRENCY,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    RETRIES_OPTION,
)
from lmread.backends.openai.http import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, RETRIES
from lmread.cli.common import emit_json, json_option, make_study_option, settings_from, study_path
from lmread.cli.options import click_option
from lmread.errors import ModelError, OptionError

BACKENDS = ("llamacpp", "openai")
#: the server options, declared once by the openai backend (flags built from them)
SERVER_OPTIONS = (BASE_URL, API_KEY_ENV, CONCURRENCY, CONNECT_TIMEOUT, READ_TIMEOUT, RETRIES_OPTION)
#: defaults of the server options (the backend's own; --read-timeout bounds a whole answer here)
SERVER_DEFAULTS: dict[str, Any] = {"concurrency": 4, "connect_timeout_s": CONNECT_TIMEOUT_S,
                                   "read_timeout_s": READ_TIMEOUT_S, "retries": RETRIES}


def server_flags(command: Any) -> Any:
    """Add the server options (:data:`SERVER_OPTIONS`) to ``command`` as flags."""
    for opt in reversed(SERVER_OPTIONS):
        default = SERVER_DEFAULTS.get(opt.name)
        said = default is None or "default" in opt.help
        suffix = " (openai)" if said else f" (openai; default {default:g})"
        command = click_option(opt, opt.help + suffix + ".")(command)
    return command


class JudgeProgressBar:
    """A one-line progress bar with tokens in/out on a terminal; silent otherwise."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._last = 0.0
        self._drawn = 0

    def update(self, p: Any) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if p.done < p.total and now - self._last < 0.1:
            return
        self._last = now
        frac = p.done / p.total if p.total else 1.0
        fill = round(frac * 24)
        rate = f"  {p.seconds / p.done:.1f} s/answer" if p.done else ""
        line = (f"[{'#' * fill}{'-' * (24 - fill)}] {p.done}/{p.total} answers  "
                f"tokens in {p.tokens_in}, out {p.tokens_out}{rate}")
        self.stream.write("\r" + line + " " * max(0, self._drawn - len(line)))
        self._drawn = len(line)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


@click.command("judge")
@make_study_option()
@click.option("--model", "model", required=True,
              help="Judge model: a catalogue id or .gguf path (llamacpp), or the served model name (openai).")
@click.option("--backend", type=click.Choice(BACKENDS), default="llamacpp", show_default=True,
              help="llamacpp: in this process; openai: an OpenAI-compatible chat endpoint (--base-url).")
@click.option("--template", "templates", multiple=True,
              help="Shipped template(s): first-wrong, editor, strict, or all (repeatable, comma-separated).")
@click.option("--template-file", "template_files", multiple=True,
              help="A template of your own, [NAME=]PATH (repeatable); needs {prompt} and {sentences}.")
@click.option("--limit", type=int, default=None, help="Judge at most N samples (a seeded random choice).")
@click.option("--share", type=float, default=None, help="Judge a seeded random share of the samples (0-1].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --limit/--share and of sampling.")
@click.option("--retry-skips", is_flag=True, help="Ask again where the judge's standing mark is a skip.")
@click.option("--temperature", type=float, default=0.0, show_default=True, help="Judge sampling temperature.")
@click.option("--max-tokens", type=int, default=200, show_default=True, help="Longest answer in tokens.")
@server_flags
@click.option("--no-constrain", is_flag=True, help="Do not send a JSON schema (servers that reject response_format).")
@click.option("--threads", type=int, default=None, help="CPU threads (llamacpp; default: all cores).")
@click.option("--judge-context", type=int, default=4096, show_default=True,
              help="Context size of the judge model in tokens (llamacpp).")
@click.option("--gpu-layers", type=int, default=0, show_default=True, help="Layers on the GPU, -1 = all (llamacpp).")
@json_option("Print a JSON summary.")
@click.pass_context
def judge(ctx: click.Context, study: str | None, model: str, backend: str, templates: tuple[str, ...],
          template_files: tuple[str, ...], limit: int | None, share: float | None, seed: int, retry_skips: bool,
          temperature: float, max_tokens: int, base_url: str | None, api_key_env: str | None,
          concurrency: int | None, connect_timeout_s: float | None, read_timeout_s: float | None, retries: int | None,
          no_constrain: bool, threads: int | None, judge_context: int, gpu_layers: int, as_json: bool) -> None:
    """Let a language model read each sample blind and mark where it falls, as auto-judge-MODEL-TEMPLATE.

    The judge sees the prompt and the text (as numbered sentences), never the model, size, sample
    id or control status; it answers in JSON with a sentence, the first wrong words, a category
    and a severity, or no fall.  Unreadable answers are skips with the raw answer in the note.
    """
    from lmread.judge.engines import JudgeSettings
    from lmread.judge.runner import run_judge
    from lmread.judge.templates import resolve_templates
    from lmread.study import Study

    chosen = resolve_templates(list(templates), list(template_files))
    if limit is not None and limit < 1:
        raise OptionError(f"invalid option --limit {limit}: must be a whole number >= 1")
    if share is not None and not 0.0 < share <= 1.0:
        raise OptionError(f"invalid option --share {share}: must be in (0, 1]")
    given = {"base_url": base_url, "api_key_env": api_key_env, "concurrency": concurrency,
             "connect_timeout_s": connect_timeout_s, "read_timeout_s": read_timeout_s, "retries": retries}
    for opt in SERVER_OPTIONS:
        opt.check(given[opt.name])
    server = {name: SERVER_DEFAULTS.get(name) if value is None else value for name, value in given.items()}
    if judge_context < 256:
        raise OptionError(f"invalid option --judge-context {judge_context}: must be at least 256")
    settings = JudgeSettings(temperature=temperature, max_tokens=max_tokens, seed=seed).check()
    if backend == "llamacpp" and any(value is not None for value in given.values()):
        flags = ", ".join(opt.flag for opt in SERVER_OPTIONS if given[opt.name] is not None)
        raise OptionError(f"{flags} belong to --backend openai")
    if backend == "openai" and not base_url:
        raise OptionError("--backend openai needs --base-url http://HOST:PORT")
    st = Study.open(study_path(ctx, study), top_k=False)
    engine = _engine(ctx, backend, model, server, not no_constrain, threads, judge_context, gpu_layers)
    bar = JudgeProgressBar()
    cancel = threading.Event()
    try:
        report = run_judge(st, engine, chosen, settings, limit=limit, share=share, seed=seed,
                           retry_skips=retry_skips, progress=bar.update, cancel=cancel)
    except KeyboardInterrupt:
        bar.close()
        click.echo(f"lmread: interrupted: the answers received are saved in {st.path}; "
                   "run the same command again to resume", err=True)
        raise click.exceptions.Exit(130) from None
    finally:
        bar.close()
        engine.close()
    if as_json:
        emit_json(report.to_json())
    else:
        click.echo(f"judged {report.samples} samples of {report.study} with {report.model} ({report.engine}): "
                   f"tokens in {report.tokens_in}, out {report.tokens_out}, {report.seconds:.1f} s")
        for t in report.templates:
            extra = f", {t.too_long} too long" if t.too_long else ""
            extra += f", {t.failed} without answer" if t.failed else ""
            click.echo(f"  {t.annotator:<40} falls {t.falls}, no fall {t.no_falls}, skipped {t.skips}{extra}; "
                       f"unchanged {t.unchanged}")
    if report.errors:
        for line in report.errors[:5]:
            click.echo(f"lmread: error: {' '.join(line.split())}", err=True)
        if len(report.errors) > 5:
            click.echo(f"lmread: error: ... and {len(report.errors) - 5} more", err=True)
        raise click.exceptions.Exit(2)


def _engine(ctx: click.Context, backend: str, model: str, server: dict[str, Any], constrain: bool,
            threads: int | None, judge_context: int, gpu_layers: int) -> Any:
    """The judge engine for the options (a model is loaded or a server is asked here)."""
    if backend == "openai":
        from lmread.backends.openai import OpenAIBackend
        from lmread.judge.engines import ChatServerJudge
        from lmread.judge.http import ChatClient

        url, key_env = str(server["base_url"]), server["api_key_env"]
        connect_s, read_s = float(server["connect_timeout_s"]), float(server["read_timeout_s"])
        retries = int(server["retries"])
        client = ChatClient(url, api_key_env=key_env, concurrency=int(server["concurrency"]),
                            connect_timeout_s=connect_s, read_timeout_s=read_s, retries=retries)
        ident = OpenAIBackend(url, model, api_key_env=key_env, concurrency=1, connect_timeout_s=connect_s,
                              read_timeout_s=min(read_s, 60.0), retries=retries)
        return ChatServerJudge(client, ident, model, concurrency=int(server["concurrency"]), constrain=constrain)
    from lmread.backends.llamacpp import LlamaCppBackend
    from lmread.catalog import load_catalog
    from lmread.judge.engines import LlamaCppJudge

    if model.endswith(".gguf"):
        loaded = LlamaCppBackend(model, n_threads=threads, n_ctx=judge_context, n_gpu_layers=gpu_layers)
    else:
        card = load_catalog(settings_from(ctx)).get(model)
        if "llamacpp" not in card.backends:
            raise ModelError(f"model {card.id!r} has no GGUF file for the in-process judge "
                             f"(its backends: {', '.join(card.backends)}); use --backend openai for a served model")
        loaded = LlamaCppBackend.from_card(card, n_threads=threads, n_ctx=judge_context, n_gpu_layers=gpu_layers)
    return LlamaCppJudge(loaded, owns=True)
