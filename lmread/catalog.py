"""The model catalogue: model cards (``models/*.toml``) plus discovered GGUF files and HF snapshots.

(Interface fixed here; the loader and discovery are filled in by the catalogue work.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ModelCard:
    """One model: where it comes from and what it is.

    ``source`` is one of ``{"path": FILE_OR_DIR}``, ``{"package": DIST, "file": GLOB}`` (a file
    inside an installed Python package), ``{"hf": REPO_ID, "revision": optional}`` (resolved in
    the local HF cache, offline) or ``{"url": BASE_URL, "model": NAME}`` (OpenAI-compatible).
    """

    id: str
    name: str
    family: str
    backends: list[str]
    source: dict[str, Any]
    n_params: int | None = None
    quantization: str | None = None
    license: str | None = None
    architecture: str | None = None
    card_file: Path | None = None
    discovered: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
