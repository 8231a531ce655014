"""The analysis layer: from a study's marks to survival statistics and their exports.

:mod:`~lmread.analysis.observations` (a study -> an observation table), :mod:`~lmread.analysis.survival`
(Kaplan–Meier, log-rank, scaling fits; pure numpy/scipy), :mod:`~lmread.analysis.report` (the
survival document), :mod:`~lmread.analysis.export` (CSV, plots, writing files).
"""
