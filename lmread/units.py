"""Quantities for people: one formatter per kind of number shown in tables and the reader."""

from __future__ import annotations


def format_params(n: int | None) -> str:
    """A parameter count for people: ``134.5M``, ``1.7B``, ``850K``; ``?`` when unknown."""
    if n is None:
        return "?"
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)
