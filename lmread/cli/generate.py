"""``lmread generate``: draw samples from one or more models into a study, headless.

Every option is checked before any model is loaded or the study is created.  Re-running the
same command resumes it (samples already saved are skipped).  Ctrl-C stops cleanly: samples in
flight are discarded, saved ones stay, and the command exits 130.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

import click

from lmread.backends import backend_class, backend_names, check_backend_options, option_table
from lmread.cli.common import emit_json, settings_from, study_path
from lmread.cli.options import backend_flags, gen_options_from, sampling_flags
from lmread.errors import ModelError, OptionError
from lmread.generate import GenerationPlan, ModelJob, Progress, StudySink, run_generation, sigint_cancels

if TYPE_CHECKING:
    from lmread.catalog import Catalog


def unescape(text: str) -> str:
    r"""Turn ``\n``, ``\t`` and ``\\`` in a command-line stop string into the characters."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "nt\\":
            out.append({"n": "\n", "t": "\t", "\\": "\\"}[text[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def collect_prompts(prompt_file: str | None, prompt_sets: tuple[str, ...], texts: tuple[str, ...]) -> list[dict[str, Any]]:
    """The prompts of ``--prompts``, ``--prompt-set`` and ``--prompt`` (in that order), one per text."""
    from lmread.prompts import builtin_set, check_prompts, load_prompt_file, single_prompt

    prompts: list[dict[str, Any]] = []
    if prompt_file is not None:
        prompts += load_prompt_file(prompt_file)
    for name in prompt_sets:
        prompts += builtin_set(name)
    for i, text in enumerate(texts, start=1):
        prompts.append(single_prompt(text, name=f"prompt-{i:02d}"))
    if not prompts:
        raise OptionError("no prompts given: use --prompt TEXT, --prompts FILE or --prompt-set NAME")
    seen: set[str] = set()
    unique = []
    for p in prompts:  # the same text twice would give the same samples: keep the first
        if p["text"] not in seen:
            seen.add(p["text"])
            unique.append(p)
    return check_prompts(unique, "prompts")


def backend_options(values: dict[str, Any]) -> dict[str, Any]:
    """The backend options the user set (each checked by its declaration), by their
    ``open_backend`` names; flags that are off and options left out are dropped."""
    declared = {opt.name: opt for opt, _ in option_table()}
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or value is False:
            continue
        out[name] = declared[name].check(value)
    return out


def resolve_job(catalog: Catalog, model_id: str, backend: str | None, options: dict[str, Any]) -> ModelJob:
    """A :class:`ModelJob` for ``model_id``: its card (or an ad-hoc remote card with
    ``--backend openai --base-url``: a backend that needs no local model, given a server URL), the
    backend checked to be installed and to take ``options``."""
    from lmread.catalog import ModelCard

    try:
        card = catalog.get(model_id)
    except ModelError:
        if backend is not None and not backend_class(backend).needs_local_model and options.get("base_url"):
            card = ModelCard(id=model_id, name=model_id, family="remote", backends=[backend],
                             source={"url": options["base_url"], "model": model_id})
        else:
            raise
    name = backend or card.backends[0]
    if name not in card.backends:
        raise ModelError(f"model {card.id!r} has no backend {name!r} (it has: {', '.join(card.backends)}); "
                         "choose one with --backend")
    checked = check_backend_options(name, options, card.id)
    return ModelJob(card=card, backend=name, options=checked)


def format_eta(seconds: float) -> str:
    """``seconds`` as ``M:SS`` or ``H:MM:SS``."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """A one-line progress bar on a terminal (redrawn with ``\\r``, at most 10 times a second);
    silent when the stream is not a terminal."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None, width: int = 24) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.width = width
        self._last = 0.0
        self._drawn = 0
        self._lock = threading.Lock()

    def update(self, p: Progress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        final = p.phase in {"done", "interrupted"}
        with self._lock:
            if not final and now - self._last < 0.1 and p.phase == "generating":
                return
            self._last = now
            frac = p.done / p.total if p.total else 1.0
            fill = round(frac * self.width)
            bar = "#" * fill + "-" * (self.width - fill)
            eta = p.eta_s if p.phase == "generating" else None
            line = (f"[{bar}] {p.done}/{p.total} samples  {p.tokens_per_s:6.1f} tok/s"
                    + (f"  ETA {format_eta(eta)}" if eta is not None else "")
                    + f"  {p.model} ({p.phase})"
                    + (f"  {p.failed} failed" if p.failed else ""))
            pad = " " * max(0, self._drawn - len(line))
            self.stream.write("\r" + line + pad)
            self._drawn = len(line)
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0


@click.command("generate")
@click.option("--study", "study", type=click.Path(file_okay=False), default=None,
              help="Study folder (created if missing; default: the default study).")
@click.option("--model", "models", multiple=True, required=True,
              help="Model id from 'lmread models' (or a .gguf path); repeat for several models.")
@click.option("--prompts", "prompt_file", type=click.Path(dir_okay=False), default=None,
              help="File of prompts: one per line, or JSONL {\"text\", \"name\"?, \"set\"?} (.jsonl).")
@click.option("--prompt-set", "prompt_sets", multiple=True,
              help="A built-in prompt set: encyclopedia, news, story, list, letter, dialogue, howto, all.")
@click.option("--prompt", "prompt_texts", multiple=True, help="A single prompt text (repeatable).")
@click.option("--samples", type=int, default=1, show_default=True, help="Samples per prompt and model.")
@sampling_flags
@click.option("--seed", type=int, default=0, show_default=True,
              help="Base seed; each sample's seed is derived from it, the model, the prompt and the sample index.")
@click.option("--backend", type=click.Choice(backend_names()), default=None,
              help="Backend (default: the model card's first).")
@click.option("--shard", default=None,
              help="Generate only shard I of N of the plan (e.g. 2/4), so N machines fill one study; join with lmread merge.")
@backend_flags
@click.option("--batch-size", type=int, default=None, help="Samples of one prompt drawn per batch (hf).")
@click.option("--parallel", type=int, default=1, show_default=True,
              help="Samples decoded together, one batch per step (llamacpp: as one ends the next enters; "
                   "hf: left-padded batches). Each sample's context is its prompt plus --max-tokens; "
                   "N of them must fit in memory.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.pass_context
def generate(ctx: click.Context, /, study: str | None, models: tuple[str, ...], prompt_file: str | None,
             prompt_sets: tuple[str, ...], prompt_texts: tuple[str, ...], samples: int, seed: int,
             backend: str | None, batch_size: int | None, parallel: int,
             as_json: bool, shard: str | None, **values: Any) -> None:
    """Generate --samples samples per prompt from each --model into a study, headless.

    Samples get seeds derived from --seed, so the same command gives the same samples;
    re-running it resumes (samples already saved are skipped).  Ctrl-C discards the samples in
    flight, keeps the saved ones, and exits 130.
    """
    from lmread.catalog import load_catalog
    from lmread.generate.shard import parse_shard

    settings = settings_from(ctx)
    shard_spec = parse_shard(shard)
    path = study_path(ctx, study)
    options = gen_options_from(values, unescape)  # the sampling flags; the rest are the backend's
    GenerationPlan.check_settings(samples, seed, batch_size, parallel)
    prompts = collect_prompts(prompt_file, prompt_sets, prompt_texts)
    bopts = backend_options(values)
    catalog = load_catalog(settings)
    jobs: list[ModelJob] = []
    for model_id in dict.fromkeys(models):
        jobs.append(resolve_job(catalog, model_id, backend, bopts))
    plan = GenerationPlan(models=jobs, prompts=prompts, samples=samples, options=options, base_seed=seed,
                          batch_size=batch_size, parallel=parallel, record_model_path=settings.record_model_path,
                          shard=shard_spec).validate()
    sink = StudySink(path)

    bar = ProgressBar()
    cancel = threading.Event()
    try:
        with sigint_cancels(cancel):
            result = run_generation(sink, plan, progress=bar.update, cancel=cancel)
    finally:
        bar.close()

    if as_json:
        emit_json(result.to_json())
    elif result.generated or result.skipped or result.failed or not result.errors:  # else the error says it all
        rate = f" ({result.tokens / result.seconds:.1f} tok/s)" if result.seconds > 0 and result.tokens else ""
        click.echo(f"generated {result.generated} samples into {path} (skipped {result.skipped} already there, "
                   f"{result.failed} failed): {result.tokens} tokens in {result.seconds:.1f} s{rate}")
    if result.interrupted:
        click.echo(f"lmread: interrupted: {result.generated} samples saved to {path}; "
                   "run the same command again to resume", err=True)
        raise click.exceptions.Exit(130)
    if result.errors:
        for line in result.errors:
            click.echo(f"lmread: error: {' '.join(line.split())}", err=True)
        raise click.exceptions.Exit(2)

