"""llama.cpp's own programs (``llama-server``, ``llama-bench``), found on this machine.

Used by the server benchmark and by the tests that start a real llama-server; lmread itself
never starts one.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def find_llama_binary(name: str = "llama-server") -> Path | None:
    """The ``llama-server`` (or ``llama-bench``) binary of this machine, or ``None``.

    Looked for in ``$LMREAD_LLAMA_SERVER`` (the binary, or the folder scripts/build-llama-server.sh
    printed), the folder named in ``llama-server.path`` in the running venv (``make setup-dev``
    writes it), then on ``PATH``.
    """
    candidates: list[Path] = []
    env = os.environ.get("LMREAD_LLAMA_SERVER")
    if env:
        p = Path(env)
        candidates += [p.parent / name, p / "bin" / name, p / name] if p.is_file() else [p / "bin" / name, p / name]
    marker = Path(sys.prefix) / "llama-server.path"
    if marker.is_file():
        candidates.append(Path(marker.read_text(encoding="utf-8").strip()) / "bin" / name)
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)
