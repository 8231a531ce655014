"""Run a judge over a study and write its verdicts as ordinary marks.

For every chosen sample and template the judge is shown what a reader sees (the prompt and the
text as numbered sentences; never the model, its size, the sample id or whether it is a
control) and its answer becomes one mark by ``auto-judge-<model>-<template>``:

* a fall: a ``fall`` mark at the located token, with the category and severity it gave,
  censored reading ``read_to`` = the sample's length (the judge read it all);
* no fall: a ``no_fall`` mark censored at the sample's length;
* an answer that cannot be read (no JSON, a refusal, a sentence outside the text, a quote not in
  its sentence, an unknown category) or a sample too long for the judge's context: a ``skip``
  whose note says why and quotes the raw answer.

Each mark's ``detector`` record is ``{"name": "judge", "version", "params", "identity",
"answer", "tokens": {"in", "out"}, "finish_reason"}``: ``params`` (engine, model, template id and
text hash, sampling settings, localization rule) decide whether a standing mark is current, so
a re-run asks only for what is missing; ``identity`` is the judge model's full identity and
``answer`` the raw answer, exactly.  Marks are appended one locked, fsynced line at a time as
answers come in, so an interrupted run keeps every answer it got (Ctrl-C does not wait for
a server's answers in flight; closing the engine aborts them, and they are asked again next time).

A request that fails for one sample (no answer within the read timeout) leaves that sample
unmarked and counts it as failed; a server that is down or refuses ends the run.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from lmread.errors import BackendError
from lmread.judge.answer import Verdict, read_answer, skip
from lmread.judge.engines import JudgeSettings, Reply
from lmread.judge.http import AnswerTimeout, ContextTooLong
from lmread.judge.localize import defang, numbered, sample_sentences
from lmread.judge.templates import Template
from lmread.records import MACHINE_PREFIX, Mark, Sample
from lmread.storage import append_lines
from lmread.study import MARKS_DIR, Study

JUDGE_VERSION = "1"
#: how an answer is turned into a token (see lmread.judge.localize)
LOCALIZATION = "sentences+quote/1"
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


class Engine(Protocol):
    """What the runner needs from a judge engine (:mod:`lmread.judge.engines`)."""

    name: str
    max_concurrency: int
    #: whether closing the engine aborts a request in flight (so Ctrl-C need not wait for it)
    interruptible: bool

    def identity(self) -> dict[str, Any]: ...

    def chat(self, messages: list[dict[str, str]], settings: JudgeSettings) -> Reply: ...


def judge_annotator(model: str, template: str) -> str:
    """``auto-judge-<model>-<template>``, made a valid annotator name (at most 64 characters)."""
    slug = _SLUG.sub("_", model).strip("._-") or "model"
    name = f"{MACHINE_PREFIX}judge-{slug}-{template}"
    if len(name) > 64:
        digest = hashlib.sha256(model.encode("utf-8")).hexdigest()[:6]
        room = 64 - len(f"{MACHINE_PREFIX}judge--{template}") - 7
        name = f"{MACHINE_PREFIX}judge-{slug[:max(room, 1)]}~{digest}-{template}".replace("~", "_")
    return name


def model_key(identity: dict[str, Any]) -> dict[str, Any]:
    """The parts of a judge's identity that make it the same judge (for resuming)."""
    keep = ("id", "name", "sha256", "revision", "n_params", "quantization", "served_model")
    return {k: identity.get(k) for k in keep if identity.get(k) is not None}


def judge_messages(template: Template, sample: Sample) -> tuple[list[dict[str, str]], list[Any]]:
    """The chat messages for ``sample`` under ``template``, and the sentences shown."""
    sentences = sample_sentences(sample)
    prompt = sample.prompt.text or ""
    content = template.render(defang(prompt) if prompt.strip() else "(no prompt)", numbered(sentences),
                              len(sentences))
    return [{"role": "user", "content": content}], sentences


def in_share(sample_id: str, share: float, seed: int) -> bool:
    """Whether ``sample_id`` is in a seeded random share of the study (stable as it grows)."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def choose(samples: list[Sample], limit: int | None, share: float | None, seed: int) -> list[Sample]:
    """The samples to judge: a seeded share, then the first ``limit`` in a seeded order."""
    chosen = [s for s in samples if share is None or in_share(s.id, share, seed)]
    if limit is not None:
        chosen.sort(key=lambda s: hashlib.sha256(f"order:{seed}:{s.id}".encode()).digest())
        chosen = chosen[:limit]
    return chosen


@dataclass
class TemplateReport:
    """Counts for one template (one annotator)."""

    template: str
    annotator: str
    sha256: str
    falls: int = 0
    no_falls: int = 0
    skips: int = 0
    too_long: int = 0
    failed: int = 0
    unchanged: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"template": self.template, "annotator": self.annotator, "template_sha256": self.sha256,
                "added": self.falls + self.no_falls + self.skips, "falls": self.falls, "no_falls": self.no_falls,
                "skips": self.skips, "too_long": self.too_long, "failed": self.failed, "unchanged": self.unchanged}


@dataclass
class JudgeReport:
    """What a run did: per template counts, tokens in and out, time, errors."""

    study: str
    engine: str
    model: str
    samples: int
    templates: list[TemplateReport] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"study": self.study, "engine": self.engine, "model": self.model, "samples": self.samples,
                "templates": [t.to_json() for t in self.templates], "tokens_in": self.tokens_in,
                "tokens_out": self.tokens_out, "seconds": round(self.seconds, 3), "errors": self.errors,
                "interrupted": self.interrupted}


@dataclass
class JudgeProgress:
    """Progress of a run: answers done of total, tokens so far."""

    done: int
    total: int
    tokens_in: int
    tokens_out: int
    seconds: float


def _mark(sample: Sample, who: str, verdict: Verdict, reply: Reply | None, meta: dict[str, Any]) -> Mark:
    n = sample.n_tokens
    if verdict.kind == "fall":
        mark = Mark(sample=sample.id, annotator=who, kind="fall", at=verdict.at, read_to=n,
                    category=verdict.category, severity=verdict.severity, note=verdict.note)
    elif verdict.kind == "no_fall":
        mark = Mark(sample=sample.id, annotator=who, kind="no_fall", read_to=n, note=verdict.note)
    else:
        mark = Mark(sample=sample.id, annotator=who, kind="skip", note=verdict.note)
    mark.revealed = n
    mark.client = "judge"
    mark.elapsed_s = None if reply is None else round(reply.seconds, 3)
    mark.detector = {
        **meta,
        "answer": None if reply is None else reply.text,
        "tokens": {"in": 0 if reply is None else reply.tokens_in, "out": 0 if reply is None else reply.tokens_out},
        "finish_reason": None if reply is None else reply.finish_reason,
    }
    return mark


def run_judge(study: Study, engine: Engine, templates: list[Template], settings: JudgeSettings, *,
              limit: int | None = None, share: float | None = None, seed: int = 0, retry_skips: bool = False,
              progress: Callable[[JudgeProgress], None] | None = None,
              cancel: threading.Event | None = None) -> JudgeReport:
    """Judge the chosen samples of ``study`` with every template; append a mark per answer."""
    study.refresh()
    identity = engine.identity()
    model = str(identity.get("id") or identity.get("served_model") or "judge")
    samples = choose(list(study.samples.values()), limit, share, seed)
    report = JudgeReport(str(study.path), engine.name, model, len(samples))
    current = study.current_marks()
    work: list[tuple[Sample, Template, str, dict[str, Any], TemplateReport]] = []
    for template in templates:
        who = judge_annotator(model, template.id)
        params = {"engine": engine.name, "model": model_key(identity), "template": template.id,
                  "template_sha256": template.sha256, "sampling": settings.to_json(), "localization": LOCALIZATION}
        meta = {"name": "judge", "version": JUDGE_VERSION, "params": params, "identity": identity}
        rep = TemplateReport(template.id, who, template.sha256)
        report.templates.append(rep)
        for sample in samples:
            old = current.get((who, sample.id))
            if (old is not None and isinstance(old.detector, dict) and old.detector.get("params") == params
                    and old.detector.get("version") == JUDGE_VERSION and not (retry_skips and old.kind == "skip")):
                rep.unchanged += 1
                continue
            work.append((sample, template, who, meta, rep))

    write_lock = threading.Lock()
    started = time.perf_counter()
    done = 0
    marks_dir = study.path / MARKS_DIR

    def judge_one(item: tuple[Sample, Template, str, dict[str, Any], TemplateReport]) -> None:
        sample, template, who, meta, rep = item
        reply: Reply | None = None
        if sample.n_tokens == 0 or not sample.text.strip():
            verdict = skip("the sample has no text to judge", None)
        else:
            messages, sentences = judge_messages(template, sample)
            try:
                reply = engine.chat(messages, settings)
            except ContextTooLong as exc:
                verdict = skip(f"sample too long for the judge: {exc}", None)
                with write_lock:
                    rep.too_long += 1
            else:
                verdict = read_answer(reply.text, sample, sentences)
        mark = study.check_mark(_mark(sample, who, verdict, reply, meta))
        with write_lock:
            marks_dir.mkdir(exist_ok=True)
            append_lines(marks_dir / f"{who}.jsonl", mark.dumps())
            if verdict.kind == "fall":
                rep.falls += 1
            elif verdict.kind == "no_fall":
                rep.no_falls += 1
            else:
                rep.skips += 1
            if reply is not None:
                report.tokens_in += reply.tokens_in
                report.tokens_out += reply.tokens_out

    def tick() -> None:
        if progress is not None:
            progress(JudgeProgress(done, len(work), report.tokens_in, report.tokens_out,
                                   time.perf_counter() - started))

    tick()
    pool = ThreadPoolExecutor(max_workers=max(1, engine.max_concurrency), thread_name_prefix="lmread-judge")
    pending: dict[Future[None], tuple[Sample, Template, str, dict[str, Any], TemplateReport]] = {}
    queue = list(reversed(work))
    fatal: BackendError | None = None
    interrupted = False
    try:
        while queue or pending:
            while queue and len(pending) < max(1, engine.max_concurrency) and fatal is None \
                    and not (cancel is not None and cancel.is_set()):
                item = queue.pop()
                pending[pool.submit(judge_one, item)] = item
            if not pending:
                break
            finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in finished:
                item = pending.pop(fut)
                exc = fut.exception()
                if isinstance(exc, AnswerTimeout):
                    item[4].failed += 1
                    report.errors.append(f"{item[2]}: {exc}")
                elif isinstance(exc, BackendError):
                    item[4].failed += 1
                    fatal = fatal or exc
                elif exc is not None:
                    raise exc
                else:
                    done += 1
                tick()
            if fatal is not None or (cancel is not None and cancel.is_set()):
                queue.clear()
    except KeyboardInterrupt:
        report.interrupted = interrupted = True
        queue.clear()
        raise
    finally:
        # Ctrl-C: a server request in flight is not waited for (closing the engine aborts it);
        # an in-process answer finishes first (its model cannot be closed under it)
        pool.shutdown(wait=not (interrupted and engine.interruptible), cancel_futures=True)
        report.seconds = time.perf_counter() - started
        study.refresh()
    if cancel is not None and cancel.is_set():
        report.interrupted = True
    if fatal is not None:
        report.errors.insert(0, str(fatal))
    return report
