"""The analysis layer: from a study's marks to survival statistics and their exports.

:mod:`~lmread.analysis.observations` (a study -> an observation table), :mod:`~lmread.analysis.survival`
(a package: event tables and one product-limit kernel; Kaplan–Meier, cumulative incidence with its bands,
log-rank and trend tests, scaling fits; pure numpy/scipy), :mod:`~lmread.analysis.report` (the
survival document), :mod:`~lmread.analysis.export` (CSV, plots, writing files);
:mod:`~lmread.analysis.severity` ("do they fall just as hard?"), :mod:`~lmread.analysis.parametric`
(AFT fits, the scaling exponent, the proportional-hazards check), :mod:`~lmread.analysis.summary_text` and :mod:`~lmread.analysis.plots`
(their table lines and plot panels); the reader checks
:mod:`~lmread.analysis.readings` (one standing mark per annotator and sample),
:mod:`~lmread.analysis.calibration` (controls, reading speed, order effects),
:mod:`~lmread.analysis.agreement` (between readers) and :mod:`~lmread.analysis.reader_checks`
(their blocks in the survival document).
"""
