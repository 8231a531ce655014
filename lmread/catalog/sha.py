"""The sha256 of model files, computed once per (path, size, mtime) and cached in ``<data_dir>/cache/sha256.json``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lmread.catalog.paths import cache_dir
from lmread.config import Settings
from lmread.errors import LmreadError, ModelError
from lmread.storage import write_atomic

#: (absolute path, size, mtime_ns) -> sha256 of files hashed or verified in this process
_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def _sha_cache_file(settings: Settings) -> Path:
    return cache_dir(settings) / "sha256.json"


def _read_sha_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember_sha(path: Path, digest: str, settings: Settings) -> None:
    """Record ``digest`` as the sha256 of ``path`` (as it is now) in this process and in the cache file."""
    st = path.stat()
    _SHA_MEMO[(str(path), st.st_size, st.st_mtime_ns)] = digest
    cache_file = _sha_cache_file(settings)
    cache = _read_sha_cache(cache_file)
    cache[str(path)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache_file, json.dumps(cache, indent=1, sort_keys=True).encode("utf-8"))
    except (OSError, LmreadError):
        pass  # a cache that cannot be written only costs time


def file_sha256(path: str | Path, settings: Settings) -> str:
    """The sha256 (hex) of a model file, computed once per (absolute path, size, mtime_ns).

    Results are cached in ``<data_dir>/cache/sha256.json`` (written atomically).
    """
    p = Path(path).expanduser().resolve()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ModelError(f"model file {p} does not exist; check the path") from None
    if not p.is_file():
        raise ModelError(f"{p} is not a file; a sha256 is taken of a single model file")
    entry = _read_sha_cache(_sha_cache_file(settings)).get(str(p))
    if (isinstance(entry, dict) and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns
            and isinstance(entry.get("sha256"), str)):
        return str(entry["sha256"])
    memo = _SHA_MEMO.get((str(p), st.st_size, st.st_mtime_ns))
    if memo is not None:  # hashed in this process under another data folder
        remember_sha(p, memo, settings)
        return memo
    digest = hashlib.sha256()
    try:
        with p.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    except PermissionError:
        raise ModelError(f"cannot read {p} (permission denied); fix its permissions") from None
    hexdigest = digest.hexdigest()
    remember_sha(p, hexdigest, settings)
    return hexdigest
