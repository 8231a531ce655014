"""Package sources: a model file inside an installed Python package, found through its RECORD, or
assembled once by the package into ``<data_dir>/cache/models``."""

from __future__ import annotations

import fnmatch
import importlib
import importlib.metadata
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from lmread.catalog.paths import cache_dir
from lmread.catalog.sha import remember_sha
from lmread.config import Settings
from lmread.errors import ModelError

#: (distribution, version, module) -> assembled path, so one process assembles at most once
_ASSEMBLED: dict[tuple[str, str, str], Path] = {}


def resolve_package(model_id: str, source: dict[str, Any], where: str, settings: Settings | None,
                    assemble: bool = True) -> Path:
    """The file of a package source: in the distribution's RECORD, else assembled (see :func:`assemble_model`).

    ``where`` names the card file in messages; ``settings`` (the cache folder) is needed only to assemble.
    """
    dist_name = str(source["package"])
    pattern = str(source["file"])
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(
            f"model {model_id!r} needs the Python package {dist_name!r}, which is not installed; "
            f"install it with: pip install {dist_name} (or pip install 'lmread[llamacpp]')"
        ) from None
    for f in dist.files or []:
        if fnmatch.fnmatch(f.name, pattern) or fnmatch.fnmatch(str(f), pattern):
            p = Path(str(dist.locate_file(f)))
            if p.is_file():
                return p
    module = source.get("assemble")
    if not module:
        raise ModelError(
            f"model {model_id!r}: package {dist_name!r} has no file matching {pattern!r}; "
            f"reinstall it with: pip install --force-reinstall {dist_name}"
        )
    return assemble_model(model_id, where, dist_name, dist.version, str(module), pattern, settings, run=assemble)


def assemble_model(model_id: str, where: str, dist_name: str, version: str, module_name: str, pattern: str,
                   settings: Settings | None, run: bool = True) -> Path:
    """Have ``module_name.assemble`` write the model file once into the cache; reuse it afterwards."""
    key = (dist_name, version, module_name)
    known = _ASSEMBLED.get(key)
    if known is not None and known.is_file():
        return known
    if settings is None:
        raise TypeError(f"model {model_id!r}: assembling a package source needs the settings (the cache folder)")
    folder = cache_dir(settings) / "models" / f"{dist_name}-{version}"
    existing = sorted(p for p in folder.glob(pattern) if p.is_file()) if folder.is_dir() else []
    if existing:  # only ever renamed into place complete and verified
        _ASSEMBLED[key] = existing[0]
        return existing[0]
    if not run:
        raise ModelError(f"model {model_id!r} is not assembled yet (it will be written once into {folder})")
    try:
        mod = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"model {model_id!r}: cannot import {module_name!r} from package {dist_name!r} ({exc}); "
                         f"reinstall it with: pip install --force-reinstall {dist_name}") from None
    assemble = getattr(mod, "assemble", None)
    if not callable(assemble):
        raise ModelError(f"model {model_id!r}: module {module_name!r} has no assemble(); fix 'source.assemble' in {where}")
    name = getattr(mod, "MODEL_NAME", None)
    if not isinstance(name, str) or not name:
        name = pattern if not any(ch in pattern for ch in "*?[") else f"{model_id}.gguf"
    target = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise ModelError(f"model {model_id!r}: cannot write to the cache folder {folder} ({exc.strerror}); "
                         "set LMREAD_HOME to a writable folder") from None
    tmp = Path(tmp_name)
    try:
        assemble(output_path=tmp, overwrite=True)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o644 & ~umask)  # mkstemp makes it private; it is a plain model file
        os.replace(tmp, target)
    except FileNotFoundError as exc:
        raise ModelError(f"model {model_id!r}: package {dist_name!r} is incomplete ({exc}); "
                         f"reinstall it with: pip install --force-reinstall {dist_name}") from None
    except ValueError as exc:
        raise ModelError(f"model {model_id!r}: assembling {name} from {dist_name!r} failed ({exc}); "
                         f"reinstall it with: pip install --force-reinstall {dist_name}") from None
    except OSError as exc:
        raise ModelError(f"model {model_id!r}: cannot write {target} ({exc.strerror or exc}); "
                         "free some disk space or set LMREAD_HOME to another folder") from None
    finally:
        if tmp.exists():
            try:
                tmp.unlink()
            except OSError:
                pass
    expected = getattr(mod, "EXPECTED_SHA256", None)
    if isinstance(expected, str) and re.fullmatch(r"[0-9a-f]{64}", expected):
        remember_sha(target.resolve(), expected, settings)  # assemble() verified it
    _ASSEMBLED[key] = target
    return target
