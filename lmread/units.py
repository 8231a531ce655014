"""Numbers for people, shown the same way in every table and view."""

from __future__ import annotations


def format_params(n: int | float | None) -> str:
    """A parameter count for people, to three significant digits: ``135M``, ``1.7B``, ``850K``, ``12``;
    ``?`` when unknown (None or not positive)."""
    if n is None or n <= 0:
        return "?"
    rounded = float(f"{n:.3g}")  # pick the unit after rounding: 999_999 is 1M, not 1e+03K
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if rounded >= div:
            return f"{rounded / div:.3g}{unit}"
    return f"{rounded:.3g}"
