"""Every benchmark of ``lmread bench``, measuring the product's own code paths.

:mod:`~lmread.bench.runner` runs them; :mod:`~lmread.bench.llamacpp`, :mod:`~lmread.bench.native`
(against llama.cpp's own tools), :mod:`~lmread.bench.hf`,
:mod:`~lmread.bench.reader` and :mod:`~lmread.bench.survival` are the benchmarks.
"""

from lmread.bench.result import BenchResult

__all__ = ["BenchResult"]
