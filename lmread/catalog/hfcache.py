"""The local Hugging Face hub cache (offline, without huggingface_hub): where it is, snapshots, discovery."""

from __future__ import annotations

import os
from pathlib import Path

from lmread.errors import ModelError


def hf_hub_cache(environ: dict[str, str] | None = None) -> Path:
    """The local Hugging Face hub cache folder (``HF_HUB_CACHE``, ``$HF_HOME/hub``, or ``~/.cache/huggingface/hub``)."""
    env = os.environ if environ is None else environ
    explicit = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def _hf_repo_dir(repo: str, cache: Path) -> Path:
    return cache / ("models--" + repo.replace("/", "--"))


def hf_snapshot(repo: str, revision: str | None = None, cache: Path | None = None) -> Path:
    """The snapshot folder of ``repo`` at ``revision`` (default ``main``) in the local HF cache.

    Raises :class:`ModelError` with a download hint when it is not there (lmread never downloads).
    """
    cache = hf_hub_cache() if cache is None else cache
    repo_dir = _hf_repo_dir(repo, cache)
    rev = revision or "main"
    snapshots = repo_dir / "snapshots"
    commit: str | None = None
    ref = repo_dir / "refs" / rev
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
    elif (snapshots / rev).is_dir():
        commit = rev
    elif revision is None and snapshots.is_dir():
        # no refs/main (downloaded by commit): take the newest snapshot
        found = sorted((d for d in snapshots.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)
        if found:
            commit = found[-1].name
    if commit and (snapshots / commit).is_dir():
        return snapshots / commit
    rev_arg = f" --revision {revision}" if revision else ""
    raise ModelError(
        f"{repo} (revision {rev}) is not in the local Hugging Face cache ({cache}); download it first with: "
        f"huggingface-cli download {repo}{rev_arg} (lmread never downloads)"
    )


def discover_hf(cache: Path | None = None) -> list[tuple[str, Path]]:
    """``(repo_id, snapshot)`` for each model in the local HF cache whose snapshot has config.json and safetensors."""
    cache = hf_hub_cache() if cache is None else cache
    out: list[tuple[str, Path]] = []
    if not cache.is_dir():
        return out
    for repo_dir in sorted(cache.glob("models--*")):
        repo = repo_dir.name[len("models--"):].replace("--", "/")
        try:
            snap = hf_snapshot(repo, None, cache)
        except ModelError:
            continue
        if (snap / "config.json").is_file() and any(snap.glob("*.safetensors")):
            out.append((repo, snap))
    return out
