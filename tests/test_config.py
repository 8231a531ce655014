"""Settings: the file's fields are real, typed and checked; unknown ones stay in ``extra``."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmread.config import Settings, load_settings
from lmread.errors import ConfigError


def _settings(tmp_path: Path, text: str) -> Settings:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    return load_settings({"LMREAD_CONFIG": str(config), "LMREAD_HOME": str(tmp_path / "home")})


def test_defaults_without_a_file(tmp_path: Path) -> None:
    settings = load_settings({"LMREAD_CONFIG": str(tmp_path / "none.toml"), "LMREAD_HOME": str(tmp_path)})
    assert settings.max_read_speed_wps is None and settings.reading_pace_wps == 4.5 and settings.blind is True
    assert settings.extra == {}


def test_file_fields_are_typed_and_unknown_ones_kept(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "max_read_speed_wps = 6\nreading_pace_wps = 5\nblind = false\ntheme = 'dark'\n")
    assert settings.max_read_speed_wps == 6.0 and isinstance(settings.max_read_speed_wps, float)
    assert settings.reading_pace_wps == 5 and settings.blind is False
    assert settings.extra == {"theme": "dark"}


@pytest.mark.parametrize(("line", "message"), [
    ("max_read_speed_wps = 'fast'", "'max_read_speed_wps' has the wrong type"),
    ("max_read_speed_wps = true", "'max_read_speed_wps' has the wrong type"),
    ("max_read_speed_wps = 0", "'max_read_speed_wps' must be > 0"),
    ("reading_pace_wps = -1", "'reading_pace_wps' must be a reading pace > 0"),
    ("reading_pace_tps = 'x'", "'reading_pace_tps' has the wrong type"),
    ("blind = 1", "'blind' has the wrong type"),
])
def test_bad_values_are_one_line_errors(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _settings(tmp_path, line + "\n")
