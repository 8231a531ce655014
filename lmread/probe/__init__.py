"""The rank lens: a teacher-forced probe of what a model "knows" about a list.

A list text (the US presidents with their term dates, the chemical elements, ...) is scored with
one teacher-forced pass per model; at the start of every item after the first, the probe reads
the rank and log-probability of the right first token, whether it is top-1 / top-10, the model's
top-k there and how many items came before (the "shots").

- :mod:`lmread.probe.lists`: the built-in lists, written for lmread from public facts.
- :mod:`lmread.probe.items`: splitting a text into items with exact character offsets.
- :mod:`lmread.probe.core`: scoring with a backend and reading the item positions.
- :mod:`lmread.probe.document`: the ``lmread.probe/1`` JSON document, CSV, table and plot.
"""
