"""How the reader names things on screen: time on a sample, a category, a model."""

from __future__ import annotations

from typing import Any

from lmread.records import CATEGORIES
from lmread.units import format_params

__all__ = ["category_label", "format_elapsed", "model_label"]


def format_elapsed(seconds: float) -> str:
    """``m:ss`` for the status line."""
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def category_label(key: str | None) -> str:
    """The human label of a category key."""
    for k, label in CATEGORIES:
        if k == key:
            return label
    return key or "-"


def model_label(model: dict[str, Any]) -> str:
    """The model identity shown after a mark: id, parameter count, quantization."""
    parts = [str(model.get("name") or model.get("id") or "?")]
    if model.get("id") and model.get("name") and model.get("id") != model.get("name"):
        parts.append(f"({model['id']})")
    n = model.get("n_params")
    if isinstance(n, int) and n > 0:
        parts.append(f"{format_params(n)} params")
    if model.get("quantization"):
        parts.append(str(model["quantization"]))
    return " ".join(parts)
