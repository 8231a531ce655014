"""Where the catalogue keeps and finds things: bundled cards, user cards, the cache folder."""

from __future__ import annotations

from pathlib import Path

from lmread.config import Settings

#: where bundled cards live inside an installed wheel (see pyproject force-include)
PACKAGE_MODELS_DIR = Path(__file__).resolve().parent.parent / "_bundled" / "models"
#: where bundled cards live in a checkout / editable install
REPO_MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"


def bundled_model_dirs() -> list[Path]:
    """Folders holding the bundled cards: the installed wheel's copy first, then the repository's."""
    return [d for d in (PACKAGE_MODELS_DIR, REPO_MODELS_DIR) if d.is_dir()]



def user_model_dir(settings: Settings) -> Path:
    """Where users put their own cards: ``<data_dir>/models``."""
    return Path(settings.data_dir) / "models"


def cache_dir(settings: Settings) -> Path:
    """lmread's cache folder: ``<data_dir>/cache``."""
    return Path(settings.data_dir) / "cache"
