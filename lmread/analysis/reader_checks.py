"""The reader checks of a survival document: the ``calibration`` and ``agreement`` blocks."""

from __future__ import annotations

from typing import Any

from lmread.analysis.agreement import agreement_of_study
from lmread.analysis.calibration import calibration_of_study
from lmread.analysis.readings import readings_of
from lmread.study import Study


def add_reader_checks(doc: dict[str, Any], study: Study, n_boot: int = 500, seed: int = 0,
                      max_read_speed: float | None = None) -> None:
    """Add the ``calibration`` and ``agreement`` blocks (over the whole study, every annotator) to
    a survival document, and its calibration warnings (an annotator who misses controls or marks
    them late) to the document's warnings.  ``max_read_speed`` (words/s) flags too-fast readings
    in the calibration block (default: the study's limit, else 8)."""
    readings = readings_of(study)
    doc["calibration"] = calibration_of_study(study, readings, max_read_speed=max_read_speed)
    doc["agreement"] = agreement_of_study(study, readings, n_boot=n_boot, seed=seed)
    doc.setdefault("warnings", []).extend(doc["calibration"]["warnings"])
