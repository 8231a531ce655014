"""The headless generation driver: backend token chunks -> :class:`~lmread.records.Sample` records.

- :mod:`lmread.generate.sample`: one sample (:func:`generate_sample`), a batch of samples of
  one prompt (:func:`generate_batch`), or samples of any prompts decoded N at a time
  (:func:`generate_parallel`);
- :mod:`lmread.generate.limits`: where a sample ends (stop strings, ``max_tokens``, cancel),
  applied by the driver for every backend (:func:`limited_stream`);
- :mod:`lmread.generate.plan`: what to draw (:class:`GenerationPlan`), each sample with a seed
  derived from (base seed, model id, prompt text, sample index) (:class:`PlannedSample`), so the
  same plan gives the same samples and ids on any machine, in ``lmread generate`` and live;
- :mod:`lmread.generate.runner`: runs a plan into a study (:func:`run_generation`), resumable,
  writing only whole samples.
"""

from lmread.backends.base import LinkedEvent
from lmread.generate.limits import SequenceLimit, StopMatcher, limited_batch, limited_parallel, limited_stream
from lmread.generate.plan import GenerationPlan, ModelJob, PlannedSample, check_count, derive_seed
from lmread.generate.runner import (
    GenerationResult,
    Opener,
    Progress,
    ProgressCallback,
    StudySink,
    run_generation,
    sigint_cancels,
)
from lmread.generate.sample import STORED_REASONS, TokenCallback, generate_batch, generate_parallel, generate_sample

__all__ = [
    "STORED_REASONS", "GenerationPlan", "GenerationResult", "LinkedEvent", "ModelJob", "Opener", "PlannedSample",
    "Progress", "ProgressCallback", "SequenceLimit", "StopMatcher", "StudySink", "TokenCallback", "check_count",
    "derive_seed", "generate_batch", "generate_parallel", "generate_sample", "limited_batch", "limited_parallel",
    "limited_stream", "run_generation",
    "sigint_cancels",
]
