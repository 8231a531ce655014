"""Settings (TOML file + environment) and the folders where lmread keeps user data.

Precedence: environment variables over the settings file over defaults.

- ``LMREAD_HOME``: the data folder (studies live in ``$LMREAD_HOME/studies``); default is the
  platform's user data folder (e.g. ``~/.local/share/lmread``).
- ``LMREAD_CONFIG``: the settings file; default ``<user config dir>/lmread/config.toml``.
- ``LMREAD_MODEL_DIRS``: extra folders searched for GGUF files (``os.pathsep``-separated).
- ``LMREAD_ANNOTATOR``: the default annotator name.
- ``reading_pace_wps`` (settings file): the reader's reading pace in words per second (default
  4.5).  An older ``reading_pace_tps`` (tokens/s) is still read, as ``0.75`` words a token, and
  :attr:`Settings.notes` says so.
- ``LMREAD_RECORD_MODEL_PATH``: ``1`` records the full path of each model file in the samples it
  generates (setting ``record_model_path``; off by default: only the file name is recorded).
"""

from __future__ import annotations

import getpass
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from lmread.errors import ConfigError

APP = "lmread"


@dataclass
class Settings:
    """Resolved settings.  Build with :func:`load_settings`."""

    data_dir: Path
    config_file: Path
    model_dirs: list[Path] = field(default_factory=list)
    annotator: str = "reader"
    blind: bool = True
    reveal_after_mark: bool = True
    reading_pace_wps: float = 4.5
    record_model_path: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    #: what the user should know about their settings file (e.g. an old setting read a new way)
    notes: list[str] = field(default_factory=list)

    @property
    def studies_dir(self) -> Path:
        return self.data_dir / "studies"

    @property
    def default_study(self) -> Path:
        return self.studies_dir / "default"


def _default_annotator() -> str:
    try:
        name = getpass.getuser()
    except Exception:
        name = "reader"
    safe = "".join(ch for ch in name if ch.isalnum() or ch in "._-").lstrip("._-")
    return safe[:64] or "reader"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the settings file (if any) and the environment into a :class:`Settings`."""
    env = os.environ if environ is None else environ
    config_file = Path(env.get("LMREAD_CONFIG") or Path(platformdirs.user_config_dir(APP)) / "config.toml")
    data: dict[str, Any] = {}
    if config_file.exists():
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"settings file {config_file} is not valid TOML ({exc}); fix or remove it") from None
        except OSError as exc:
            raise ConfigError(f"cannot read settings file {config_file}: {exc.strerror}") from None
    home = env.get("LMREAD_HOME") or data.get("data_dir") or platformdirs.user_data_dir(APP)
    model_dirs = [Path(p).expanduser() for p in data.get("model_dirs", [])]
    if env.get("LMREAD_MODEL_DIRS"):
        model_dirs = [Path(p).expanduser() for p in env["LMREAD_MODEL_DIRS"].split(os.pathsep) if p] + model_dirs
    settings = Settings(
        data_dir=Path(home).expanduser(),
        config_file=config_file,
        model_dirs=model_dirs,
        annotator=env.get("LMREAD_ANNOTATOR") or data.get("annotator") or _default_annotator(),
        extra={k: v for k, v in data.items() if k not in {"data_dir", "model_dirs", "annotator"}},
    )
    for key, kind in (("blind", bool), ("reveal_after_mark", bool), ("reading_pace_wps", (int, float)),
                      ("reading_pace_tps", (int, float)), ("record_model_path", bool)):
        if key in data:
            if not isinstance(data[key], kind) or (kind is not bool and isinstance(data[key], bool)):
                raise ConfigError(f"settings file {config_file}: '{key}' has the wrong type")
            if key == "reading_pace_tps":
                continue
            setattr(settings, key, data[key])
    for key in ("reading_pace_wps", "reading_pace_tps"):
        if key in data and not data[key] > 0:
            raise ConfigError(f"settings file {config_file}: '{key}' must be a reading pace > 0")
    if "reading_pace_tps" in data:
        if "reading_pace_wps" in data:
            settings.notes.append(f"settings file {config_file}: 'reading_pace_tps' is no longer used; "
                                  "'reading_pace_wps' sets the pace")
        else:
            settings.reading_pace_wps = round(float(data["reading_pace_tps"]) * _WORDS_PER_TOKEN, 2)
            settings.notes.append(
                f"settings file {config_file}: reading_pace_tps = {data['reading_pace_tps']:g} tokens/s is read "
                f"as reading_pace_wps = {settings.reading_pace_wps:g} words/s; set reading_pace_wps instead")
    flag = env.get("LMREAD_RECORD_MODEL_PATH")
    if flag:
        if flag.strip().lower() not in _TRUE | _FALSE:
            raise ConfigError(f"LMREAD_RECORD_MODEL_PATH={flag!r}: use 1 (record the full model path) or 0")
        settings.record_model_path = flag.strip().lower() in _TRUE
    return settings


#: words per token of English prose (lmread.analysis.reading_speed.WORDS_PER_TOKEN), to read an
#: old ``reading_pace_tps``
_WORDS_PER_TOKEN = 0.75

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
