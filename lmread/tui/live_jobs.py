"""The jobs of a live session: which samples to generate, from which plan, in which order.

A live job is one sample of the generation plan (model, prompt, sample index, options with the
seed ``lmread generate`` derives), so a live sample is the sample ``lmread generate`` draws; jobs
of all models are read interleaved in an order seeded from the study's recorded seed.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Any

from lmread.generate import GenerationPlan
from lmread.records import sample_id
from lmread.study import Study

__all__ = ["LiveJob", "live_order_seed", "plan_live_jobs", "shuffled_jobs"]


@dataclass
class LiveJob:
    """One sample to generate in a live session: sample ``index`` of ``prompt`` in the generation
    plan, with that sample's options (its seed derived as ``lmread generate`` derives it)."""

    model_id: str
    prompt: Any
    options: Any
    index: int
    prompt_text: str = ""
    cancel: threading.Event = field(default_factory=threading.Event)
    #: where a parallel batch holds what it drew of this job until the reader shows it
    #: (:class:`lmread.tui.live.JobFeed`); None while no batch has taken the job
    feed: Any = field(default=None, repr=False, compare=False)


def live_order_seed(study: Study) -> int:
    """Seed of a live session's shuffled job order: derived from the study's recorded seed."""
    return (study.shuffle_seed * 1_000_003 + len(study.samples)) % (2**31)


def shuffled_jobs(jobs: list[LiveJob], seed: int) -> list[LiveJob]:
    """Interleave jobs of all models in a seeded random order."""
    out = list(jobs)
    random.Random(seed).shuffle(out)
    return out


def plan_live_jobs(
    plan: GenerationPlan,
    per_model: int,
    models: Mapping[str, dict[str, Any]],
    existing: Container[str] = (),
) -> list[LiveJob]:
    """The live jobs of ``plan`` for each model of ``models`` (id -> its backend's identity,
    ``describe()``): the next ``per_model`` samples, taking the prompts in turn (sample ``j`` is
    sample index ``j // len(prompts)`` of prompt ``j % len(prompts)``) and passing over samples
    whose id is in ``existing`` (already in the study).  Options and seeds are the plan's, so a
    live sample is the sample ``lmread generate`` draws with the same model, prompt, index and
    ``--seed`` (the same id and, from a deterministic backend, the same text)."""
    prompts = plan.prompts
    jobs: list[LiveJob] = []
    if not prompts or per_model < 1:
        return jobs
    for model_id, identity in models.items():
        found = 0
        j = 0
        while found < per_model:
            prompt, index = prompts[j % len(prompts)], j // len(prompts)
            options = plan.sample_options(model_id, prompt, index)
            j += 1
            if sample_id(identity, prompt, options.settings(), options.seed) in existing:
                continue
            jobs.append(LiveJob(model_id=model_id, prompt=prompt, options=options, index=index,
                                prompt_text=str(prompt.get("text", ""))))
            found += 1
    return jobs
