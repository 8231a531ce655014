"""A study's settings, parsed and checked from its study.toml.

study.toml holds the study's name, creation time, the seed of its reading order and the settings
a study can carry: ``overlap`` (the share of samples every annotator reads, see
:mod:`lmread.study.order`), ``min_read_speed_wps`` / ``max_read_speed_wps`` (readings faster or
slower than that many words per second are left out of the analyses), and the ``[controls]``
table (``human``: the imported human controls picked into the reading queue).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lmread.errors import OptionError, StudyError


def check_overlap(value: Any, where: str = "--overlap") -> float:
    """Return ``value`` as a share in [0, 1], else raise :class:`OptionError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise OptionError(f"{where} {value!r} must be a share between 0 and 1 (e.g. 0.2)")
    return float(value)


def picked_human_ids(meta: dict[str, Any]) -> list[str]:
    """Ids of the human controls picked into the reading queue (``[controls] human`` in study.toml)."""
    table = meta.get("controls")
    ids = table.get("human") if isinstance(table, dict) else None
    return [str(i) for i in ids] if isinstance(ids, list) else []


def _read_speed(value: Any, key: str, where: str) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise StudyError(f"{where}: {key} must be a number of words per second > 0")
    return None if value is None else float(value)


def _overlap(value: Any, where: str) -> float | None:
    if value is None:
        return None
    try:
        return check_overlap(value, f"{where}: overlap")
    except OptionError as exc:
        raise StudyError(str(exc)) from None


def _seed(value: Any, where: str) -> int:
    try:
        return int(value)  # as lmread has always read it (a hand-edited "7" or 7.0 still works)
    except (TypeError, ValueError):
        raise StudyError(f"{where}: shuffle_seed must be a whole number") from None


@dataclass(frozen=True)
class StudySettings:
    """What study.toml sets for reading and analysing a study (``None``: not set).

    Build with :meth:`parse`.  Each checked setting is checked once, there; a malformed one raises
    its one-line :class:`StudyError` when it is read, so what does not need it (``lmread study
    info`` on a study with a bad ``overlap``, say) still works.
    """

    name: str | None = None
    human_controls: tuple[str, ...] = ()
    #: the checked settings by key: their value, or the error of a malformed one
    checked: tuple[tuple[str, float | int | StudyError | None], ...] = (("shuffle_seed", 0),)

    @classmethod
    def parse(cls, meta: dict[str, Any], where: str = "study.toml") -> StudySettings:
        """The settings of a study.toml's table (``where`` names the file in errors)."""
        checks: dict[str, Callable[[], float | int | None]] = {
            "shuffle_seed": lambda: _seed(meta.get("shuffle_seed", 0), where),
            "overlap": lambda: _overlap(meta.get("overlap"), where),
            "min_read_speed_wps": lambda: _read_speed(meta.get("min_read_speed_wps"), "min_read_speed_wps", where),
            "max_read_speed_wps": lambda: _read_speed(meta.get("max_read_speed_wps"), "max_read_speed_wps", where),
        }
        checked: list[tuple[str, float | int | StudyError | None]] = []
        for key, check in checks.items():
            try:
                checked.append((key, check()))
            except StudyError as exc:
                checked.append((key, exc))
        name = meta.get("name")
        return cls(name=None if name is None else str(name), human_controls=tuple(picked_human_ids(meta)),
                   checked=tuple((k, v) for k, v in checked if v is not None))

    def _get(self, key: str) -> float | int | None:
        value = dict(self.checked).get(key)
        if isinstance(value, StudyError):
            raise value
        return value

    @property
    def shuffle_seed(self) -> int:
        """The seed of the reading order."""
        return int(self._get("shuffle_seed") or 0)

    @property
    def overlap(self) -> float | None:
        """The share of samples every annotator reads (see :mod:`lmread.study.order`)."""
        value = self._get("overlap")
        return None if value is None else float(value)

    @property
    def min_read_speed_wps(self) -> float | None:
        """Readings slower than this many words per second are left out of the analyses."""
        value = self._get("min_read_speed_wps")
        return None if value is None else float(value)

    @property
    def max_read_speed_wps(self) -> float | None:
        """Readings faster than this many words per second are left out of the analyses."""
        value = self._get("max_read_speed_wps")
        return None if value is None else float(value)
