"""Sizes other than the log-rank's: samples for a target median CI width, and the readings and
reader-hours a number of samples takes (see :mod:`lmread.analysis.plan`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lmread.analysis.distributions import norm_ppf
from lmread.errors import OptionError

# --------------------------------------------------------------------------------------------
# Median CI width and reader time


def n_for_width(n_now: float, width_now: float | None, target: float) -> int | None:
    """Samples for a CI of width ``target`` when it is ``width_now`` at ``n_now`` (1/sqrt(n))."""
    if width_now is None or not width_now > 0 or not target > 0:
        return None
    return int(math.ceil(n_now * (width_now / target) ** 2 - 1e-9))


def events_for_median_width(median: float, target: float, alpha: float = 0.05) -> int:
    """Events for a median CI of width ``target`` under an exponential curve with ``median``."""
    z = float(norm_ppf(1 - alpha / 2))
    return int(math.ceil((z / math.asinh(target / (2 * median))) ** 2 - 1e-9))


@dataclass
class ReaderTime:
    """Readings and reader-hours for ``samples`` model samples."""

    samples: int
    samples_with_controls: int
    readings: int
    words_per_reading: float
    words_per_reading_source: str
    reading_wps: float
    reading_wps_source: str
    controls_rate: float
    overlap: float
    readers: int
    hours: float
    hours_per_reader: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def reader_time(samples: int, words_per_reading: float, words_source: str, wps: float, wps_source: str,
                controls_rate: float, overlap: float, readers: int) -> ReaderTime:
    """Readings and reader-hours (see the module notes)."""
    if not 0 <= controls_rate < 1:
        raise OptionError(f"--controls-rate {controls_rate} must be at least 0 and below 1")
    if not 0 <= overlap <= 1:
        raise OptionError(f"--overlap {overlap} must lie between 0 and 1")
    if readers < 1:
        raise OptionError(f"--readers {readers} must be at least 1")
    if not wps > 0:
        raise OptionError(f"--reading-speed {wps} must be a number of words per second above 0")
    total = int(math.ceil(samples / (1 - controls_rate) - 1e-9))
    per_reader = total / (overlap + readers * (1 - overlap))
    readings = int(math.ceil(readers * per_reader - 1e-9))
    hours = readings * words_per_reading / wps / 3600.0
    return ReaderTime(samples, total, readings, words_per_reading, words_source, wps, wps_source, controls_rate,
                      overlap, readers, hours, hours / readers)
