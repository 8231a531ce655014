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
import math
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
    #: the reader's speed limit in words per second (None: the study's, else the built-in default)
    max_read_speed_wps: float | None = None
    #: settings this lmread does not know, as the file has them
    extra: dict[str, Any] = field(default_factory=dict)
    #: what the user should know about their settings file (e.g. an old setting read a new way)
    notes: list[str] = field(default_factory=list)

    @property
    def studies_dir(self) -> Path:
        """Where studies live by default."""
        return self.data_dir / "studies"

    @property
    def default_study(self) -> Path:
        """The study used when none is named."""
        return self.studies_dir / "default"


#: the settings file's plain fields: (name, accepted types, must be > 0); the reading pace, with its
#: older spelling, is read on its own
FILE_FIELDS: tuple[tuple[str, type | tuple[type, ...], bool], ...] = (
    ("blind", bool, False),
    ("reveal_after_mark", bool, False),
    ("record_model_path", bool, False),
    ("max_read_speed_wps", (int, float), True),
)
PACE_FIELDS = ("reading_pace_wps", "reading_pace_tps")


def _default_annotator() -> str:
    try:
        name = getpass.getuser()
    except Exception:
        name = "reader"
    safe = "".join(ch for ch in name if ch.isalnum() or ch in "._-").lstrip("._-")
    return safe[:64] or "reader"


def _file_value(value: Any, kind: type | tuple[type, ...], positive: bool, where: str) -> Any:
    """A settings file's value checked against its field: a bool, or a number (as a float)."""
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"{where} has the wrong type")
    if kind is bool:
        return value
    number = float(value) if isinstance(value, (int, float)) else math.nan
    if positive and not number > 0:
        raise ConfigError(f"{where} must be > 0")
    return number


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
        extra={k: v for k, v in data.items() if k not in {"data_dir", "model_dirs", "annotator", *PACE_FIELDS}
               | {name for name, _, _ in FILE_FIELDS}},
    )
    for key, kind, positive in FILE_FIELDS:
        if key in data:
            setattr(settings, key, _file_value(data[key], kind, positive, f"settings file {config_file}: '{key}'"))
    for key in PACE_FIELDS:
        if key in data and (not isinstance(data[key], (int, float)) or isinstance(data[key], bool)):
            raise ConfigError(f"settings file {config_file}: '{key}' has the wrong type")
    if "reading_pace_wps" in data:
        settings.reading_pace_wps = data["reading_pace_wps"]
    for key in PACE_FIELDS:
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
