"""Small value types shared by the reader's screens and the app.  (Messages are nested in the
screen or worker that posts them: ``HomeScreen.OpenStudy``, ``ReaderScreen.StreamRequested``,
``LiveStream.TokenBatch``...)"""

from __future__ import annotations

from dataclasses import dataclass, field

from lmread.backends.options import GenOptions

#: The bundled models a first live session offers.
BUNDLED_MODELS = ("smollm2-135m", "gemma3-270m")


@dataclass
class LiveConfig:
    """What a live session generates: ``n`` samples of each model, continuing prompts of a set,
    drawn with the sampling ``options``.

    The samples are those of a generation plan with base seed ``seed`` (None: the study's seed),
    so ``lmread generate`` with the same prompts, settings and ``--seed`` draws the same ones.
    ``parallel`` > 1: a backend that ``supports_parallel`` decodes the next ``parallel`` queued
    samples of a model in one batch (``lmread generate --parallel``); 1 draws one at a time."""

    models: list[str] = field(default_factory=lambda: list(BUNDLED_MODELS))
    n: int = 3
    prompt_set: str = "all"
    seed: int | None = None
    options: GenOptions = field(default_factory=GenOptions)
    parallel: int = 1
