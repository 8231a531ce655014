"""Discovery and the catalogue: model cards by id, plus GGUF files and HF snapshots found on disk."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from lmread.catalog.card import ModelCard, load_card
from lmread.catalog.headers import SHARD_RE, model_file_info
from lmread.catalog.hfcache import discover_hf
from lmread.catalog.paths import bundled_model_dirs, user_model_dir
from lmread.config import Settings
from lmread.errors import ModelError


def discover_gguf(dirs: Iterable[Path]) -> list[Path]:
    """Every ``*.gguf`` file under ``dirs`` (recursive; of split files only the first shard), sorted."""
    found: set[Path] = set()
    for d in dirs:
        d = Path(d).expanduser()
        if not d.is_dir():
            continue
        for root, subdirs, files in os.walk(d):
            subdirs[:] = sorted(s for s in subdirs if not s.startswith("."))
            for name in files:
                if not name.lower().endswith(".gguf") or name.startswith("."):
                    continue
                shard = SHARD_RE.search(name)
                if shard and int(shard.group(1)) != 1:
                    continue
                found.add(Path(root) / name)
    return sorted(found)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-").lower() or "model"


def card_for_path(path: str | Path, settings: Settings, model_id: str | None = None) -> ModelCard:
    """An ad-hoc card for a local ``.gguf`` file or Hugging Face model folder (details read from its header)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(f"model file {p} does not exist; check the path")
    info = model_file_info(p)
    if info["format"] == "gguf":
        family = info.get("architecture") or "gguf"
        name = info.get("name") or p.stem
        backends = ["llamacpp", "hf"]
    else:
        family = info.get("architecture") or "hf"
        name = p.parent.parent.name[len("models--"):].replace("--", "/") if info.get("revision") else p.name
        backends = ["hf"]
    card = ModelCard(
        id=model_id or _slug(p.stem if p.is_file() else name), name=str(name), family=str(family),
        backends=backends, source={"path": str(p.resolve())}, quantization=info.get("quantization"),
        architecture=info.get("architecture"), discovered=True, settings=settings,
    )
    card._info = info
    return card



class Catalog:
    """Model cards by id, plus models discovered on disk (found on first use)."""

    def __init__(self, cards: dict[str, ModelCard], settings: Settings) -> None:
        self.cards = cards
        self.settings = settings
        self._discovered: dict[str, ModelCard] | None = None
        self.discovery_errors: list[str] = []

    def ids(self) -> list[str]:
        """Ids of the cards (not discovered models)."""
        return list(self.cards)

    def discovered(self) -> dict[str, ModelCard]:
        """Models found in the model folders and the HF cache that no card already covers."""
        if self._discovered is not None:
            return self._discovered
        settings = self.settings
        covered: set[str] = set()
        for card in self.cards.values():
            kind = card.source_kind
            if kind == "hf":
                covered.add(f"hf:{card.source['hf']}")
            elif kind != "url":
                try:  # never assembles: discovery must stay cheap
                    covered.add(str(card.resolve_path(settings, assemble=False).resolve()))
                except ModelError:
                    pass
        found: dict[str, ModelCard] = {}
        for f in discover_gguf(settings.model_dirs):
            if str(f.resolve()) in covered:
                continue
            mid = _slug(f.stem)
            if mid in self.cards or mid in found:
                mid = _slug(f"{f.parent.name}-{f.stem}")
            try:
                found[mid] = card_for_path(f, settings, model_id=mid)
            except ModelError as exc:
                self.discovery_errors.append(str(exc))
        for repo, snap in discover_hf():
            if f"hf:{repo}" in covered or repo in self.cards:
                continue
            try:
                card = card_for_path(snap, settings, model_id=repo)
            except ModelError as exc:
                self.discovery_errors.append(str(exc))
                continue
            card.source = {"hf": repo, "revision": snap.name}
            card.name = repo
            found[repo] = card
        self._discovered = found
        return found

    def all(self, discover: bool = True) -> list[ModelCard]:
        """The cards, then (with ``discover``) the discovered models."""
        cards = list(self.cards.values())
        if discover:
            cards += list(self.discovered().values())
        return cards

    def get(self, id_or_path: str | Path) -> ModelCard:
        """A card by id, a discovered model by id, or an ad-hoc card for a ``.gguf`` file / HF folder path.

        Raises :class:`ModelError` listing the known ids when nothing matches.
        """
        key = str(id_or_path)
        if key in self.cards:
            return self.cards[key]
        p = Path(key).expanduser()
        looks_like_path = (isinstance(id_or_path, Path) or key.lower().endswith(".gguf")
                           or key.startswith((".", "~", "/"))
                           or (os.sep in key and not re.fullmatch(r"[\w.-]+/[\w.-]+", key)))
        if p.exists():
            return card_for_path(p, self.settings)
        if looks_like_path:
            raise ModelError(f"model file {p} does not exist; check the path (or give a model id from 'lmread models')")
        discovered = self.discovered()
        if key in discovered:
            return discovered[key]
        known = self.ids() + list(discovered)
        raise ModelError(f"unknown model {key!r}; known models: {', '.join(known) or 'none'} "
                         "(or give a path to a .gguf file or a Hugging Face model folder)")


def load_catalog(settings: Settings, extra_dirs: Iterable[Path] = ()) -> Catalog:
    """Load the bundled cards, then the user's (``<data_dir>/models``), then ``extra_dirs``.

    A user card with a bundled card's id replaces it.  Two cards with the same id in the same
    place, or any bad card, raise :class:`ModelError` naming the file.
    """
    cards: dict[str, ModelCard] = {}
    bundled_ids: set[str] = set()
    for d in bundled_model_dirs():
        for f in sorted(d.glob("*.toml")):
            card = load_card(f, settings)
            if card.id in bundled_ids:
                continue  # the installed copy and the checkout's copy of the same card
            bundled_ids.add(card.id)
            cards[card.id] = card
    for d in [user_model_dir(settings), *extra_dirs]:
        if not Path(d).is_dir():
            continue
        seen: dict[str, Path] = {}
        for f in sorted(Path(d).glob("*.toml")):
            card = load_card(f, settings)
            if card.id in seen:
                raise ModelError(f"model card {f}: field 'id' {card.id!r} is also used by {seen[card.id]}; give each card its own id")
            seen[card.id] = f
            cards[card.id] = card
    return Catalog(cards, settings)
