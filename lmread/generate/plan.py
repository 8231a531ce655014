"""Plans: which samples to draw, each with a seed derived from what defines it.

A :class:`GenerationPlan` is models x prompts x ``samples`` per prompt with shared options and
a base seed.  Each planned sample (:class:`PlannedSample`) gets its seed from (base seed, model
id, prompt text, sample index), so the same plan gives the same samples and sample ids on any
machine, whether ``lmread generate`` runs it or the reader draws one of its samples live.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson

from lmread.backends.base import GenOptions, ModelIdentity, check_seed
from lmread.errors import OptionError
from lmread.records import sample_id

if TYPE_CHECKING:
    from lmread.catalog import ModelCard


def derive_seed(base_seed: int, model_id: str, prompt: dict[str, Any], index: int) -> int:
    """The seed of sample ``index`` of ``prompt`` for ``model_id``: a hash of all four, in [0, 2^32).

    The prompt enters by its text (its identity), so renaming a prompt keeps its seeds.
    """
    blob = orjson.dumps([int(base_seed), str(model_id), str(prompt.get("text", "")), int(index)])
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big")


def check_count(value: Any, flag: str) -> None:
    """:class:`OptionError` unless ``value`` is a whole number >= 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise OptionError(f"invalid option {flag} {value!r}: must be a whole number >= 1")


@dataclass
class ModelJob:
    """One model to generate with: its catalogue card, the backend name (None: the card's first)
    and the backend options the user set (``n_threads``, ``n_ctx``, ``base_url``...)."""

    card: ModelCard
    backend: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return str(self.card.id)


@dataclass(frozen=True)
class PlannedSample:
    """One sample of a plan: the model, the prompt, its index among that prompt's samples and
    its options (with the derived seed)."""

    model_id: str
    prompt: dict[str, Any]
    index: int
    options: GenOptions

    def sample_id(self, identity: ModelIdentity) -> str:
        """The id the sample gets when ``identity``'s model draws it (known before drawing)."""
        return sample_id(identity.id_fields(), self.prompt, self.options.settings(), self.options.seed)


@dataclass
class GenerationPlan:
    """Models x prompts x ``samples`` per prompt, with shared options and a base seed.

    ``record_model_path`` records the full path of each model file in its samples (off: only the
    file name).  ``batch_size`` is how many samples of one prompt a batching backend draws at once;
    ``parallel`` how many samples (of any prompts) a backend that ``supports_parallel`` decodes
    together, one batch per step (1: one sample at a time).
    """

    models: list[ModelJob]
    prompts: list[dict[str, Any]]
    samples: int
    options: GenOptions
    base_seed: int = 0
    batch_size: int | None = None
    record_model_path: bool = False
    parallel: int = 1
    #: ``(I, N)``: only the samples of shard I of N (see :mod:`lmread.generate.shard`)
    shard: tuple[int, int] | None = None

    @staticmethod
    def check_settings(samples: Any, base_seed: Any, batch_size: Any = None, parallel: Any = 1) -> None:
        """:class:`OptionError` for invalid ``--samples``, ``--seed``, ``--batch-size`` or ``--parallel``."""
        check_count(samples, "--samples")
        if base_seed is None:
            raise OptionError("invalid option --seed None: must be a whole number in [0, 2^32)")
        check_seed(base_seed)
        if batch_size is not None:
            check_count(batch_size, "--batch-size")
        check_count(parallel, "--parallel")

    def validate(self) -> GenerationPlan:
        """Raise :class:`OptionError` for an invalid plan (before anything is loaded); return self."""
        self.options.validate()
        self.check_settings(self.samples, self.base_seed, self.batch_size, self.parallel)
        if not self.models:
            raise OptionError("no model given: add --model ID (see 'lmread models')")
        if not self.prompts:
            raise OptionError("no prompts given: use --prompt TEXT, --prompts FILE or --prompt-set NAME")
        return self

    @property
    def total(self) -> int:
        """Number of samples the plan asks for (in its shard, when it has one)."""
        if self.shard is None:
            return len(self.models) * len(self.prompts) * self.samples
        return sum(1 for job in self.models for _ in self.samples_of(job.model_id))

    def includes(self, model_id: str, prompt: dict[str, Any], index: int) -> bool:
        """Whether sample ``index`` of ``prompt`` for ``model_id`` is this plan's to generate."""
        from lmread.generate.shard import in_shard

        return in_shard(self.shard, model_id, prompt, index)

    def sample_options(self, model_id: str, prompt: dict[str, Any], index: int) -> GenOptions:
        """The options of one sample: the shared ones with its derived seed."""
        return replace(self.options, seed=derive_seed(self.base_seed, model_id, prompt, index),
                       stop=list(self.options.stop))

    def planned(self, model_id: str, prompt: dict[str, Any], index: int = 0) -> PlannedSample:
        """Sample ``index`` of ``prompt`` for ``model_id`` (a prompt outside the plan is fine:
        the reader plans one live sample at a time)."""
        return PlannedSample(model_id, prompt, index, self.sample_options(model_id, prompt, index))

    def samples_of(self, model_id: str) -> Iterator[PlannedSample]:
        """Every sample of the plan for ``model_id``, prompt by prompt (the order they are drawn in);
        with a shard, only that shard's."""
        for prompt in self.prompts:
            for index in range(self.samples):
                if self.includes(model_id, prompt, index):
                    yield self.planned(model_id, prompt, index)
