"""A study's settings, parsed and checked from its study.toml.

study.toml holds the study's name, creation time, the seed of its reading order and the settings
a study can carry: ``overlap`` (the share of samples every annotator reads, see
:mod:`lmread.study.order`), ``min_read_speed_wps`` / ``max_read_speed_wps`` (readings faster or
slower than that many words per second are left out of the analyses), and the ``[controls]``
table (``human``: the imported human controls picked into the reading queue).
"""

from __future__ import annotations

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


def _read_speed(meta: dict[str, Any], key: str, where: str) -> float | None:
    value = meta.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise StudyError(f"{where}: {key} must be a number of words per second > 0")
    return None if value is None else float(value)


@dataclass(frozen=True)
class StudySettings:
    """What study.toml sets for reading and analysing a study (``None``: not set)."""

    name: str | None = None
    shuffle_seed: int = 0
    overlap: float | None = None
    human_controls: tuple[str, ...] = ()
    min_read_speed_wps: float | None = None
    max_read_speed_wps: float | None = None

    @classmethod
    def parse(cls, meta: dict[str, Any], where: str = "study.toml") -> StudySettings:
        """The settings of a study.toml's table; a one-line :class:`StudyError` naming ``where``
        and the setting when one is malformed."""
        seed = meta.get("shuffle_seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise StudyError(f"{where}: shuffle_seed must be a whole number")
        overlap = meta.get("overlap")
        if overlap is not None:
            try:
                overlap = check_overlap(overlap, f"{where}: overlap")
            except OptionError as exc:
                raise StudyError(str(exc)) from None
        name = meta.get("name")
        return cls(
            name=None if name is None else str(name),
            shuffle_seed=seed,
            overlap=overlap,
            human_controls=tuple(picked_human_ids(meta)),
            min_read_speed_wps=_read_speed(meta, "min_read_speed_wps", where),
            max_read_speed_wps=_read_speed(meta, "max_read_speed_wps", where),
        )
