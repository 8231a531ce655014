"""The agreement document of a study or a list of readings, and its short summary."""

from __future__ import annotations

from typing import Any

import numpy as np

from lmread import __version__
from lmread.analysis.agreement.answers import reading_horizon
from lmread.analysis.agreement.overall import overall_block
from lmread.analysis.agreement.pairs import pair_blocks
from lmread.analysis.agreement.resample import CI_LEVEL
from lmread.analysis.agreement.table import ReadingTable, pairs_within_samples
from lmread.analysis.readings import Reading, WordCounter, readings_of
from lmread.study import Study

AGREEMENT_SCHEMA = "lmread.agreement/2"
DEFAULT_TOLERANCE = 10
DEFAULT_BOOTSTRAP = 1000


def agreement_from_readings(
    readings: list[Reading],
    *,
    horizon: int | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    study: dict[str, Any] | None = None,
    study_horizon: tuple[int, str] | None = None,
    unit: str = "words",
) -> dict[str, Any]:
    """The agreement document (schema ``lmread.agreement/2``) of a list of readings.

    ``horizon`` (tokens, >= 1) is the fell-or-not horizon; by default ``study_horizon`` (the
    study's reading horizon and its source, see :func:`reading_horizon`), else the reading
    horizon of the readings' samples.  Distances are in tokens and in ``unit`` (``words``, or
    ``sentences`` as RoFT counted them: the key ``mean_abs_distance.sentences`` then replaces
    ``words`` and ``settings.distance_unit`` says so)."""
    if horizon is not None:
        if horizon < 1:
            raise ValueError(f"horizon {horizon} must be >= 1 token")
        h, source = int(horizon), "--horizon"
    else:
        h, source = study_horizon or reading_horizon({r.sample.id: r.sample for r in readings}.values())
        h = max(1, h)
    table = ReadingTable.of(readings, h, WordCounter(unit))
    within = pairs_within_samples(table)
    # a pair of readers compares each one's first reading of a sample, by pair of readers, then sample
    distinct = within.select(table.first[within.a] & table.first[within.b])
    distinct = distinct.select(np.lexsort((distinct.sample, table.annotator[distinct.b], table.annotator[distinct.a])))
    pairs = pair_blocks(table, distinct, n_boot, seed, tolerance)
    warnings = []
    if not len(table):
        warnings.append("no sample is read by two or more annotators yet; share samples between readers "
                        "(merge their study folders with 'lmread merge') to measure agreement")
    overall = overall_block(table, within, tolerance, n_boot, seed)
    if overall["fleiss_kappa"]["readings_left_out"]:
        warnings.append(f"{overall['fleiss_kappa']['readings_left_out']} of {overall['readings']} readings stopped "
                        f"before the horizon of {h} tokens without a fall and are left out of fell-or-not "
                        "agreement (a shorter --horizon keeps more of them)")
    settings: dict[str, Any] = {
        "horizon_tokens": h, "horizon_source": source, "tolerance_tokens": tolerance, "n_boot": n_boot,
        "seed": seed, "ci_level": CI_LEVEL, "ci_method": "percentile bootstrap over samples",
        "fell_or_not": f"did the text fall within the first {h} tokens (or before the text ended)? "
                       "a no-fall reading that stopped sooner is unknown and left out"}
    if unit != "words":  # the second distance is counted in ``unit``: name it so
        settings["distance_unit"] = unit
        for block in [overall, *pairs]:
            block["mean_abs_distance"][unit] = block["mean_abs_distance"].pop("words")
    return {
        "schema": AGREEMENT_SCHEMA,
        "lmread_version": __version__,
        "study": study or {},
        "settings": settings,
        "annotators": table.annotators,
        "overall": overall,
        "pairs": pairs,
        "machine_vs_human": [p["machine_vs_human"] for p in pairs if "machine_vs_human" in p],
        "warnings": warnings,
    }


def agreement_of_study(study: Study, readings: list[Reading] | None = None, **options: Any) -> dict[str, Any]:
    """The agreement document of an open :class:`~lmread.study.Study` (``readings``: its
    :func:`~lmread.analysis.readings.readings_of`, if already built; options as
    :func:`agreement_from_readings`; the default horizon is the study's reading horizon)."""
    info = {"path": str(study.path), "name": study.name, "samples": len(study.samples)}
    return agreement_from_readings(readings_of(study) if readings is None else readings, study=info,
                                   study_horizon=reading_horizon(study.samples.values()), **options)


def agreement_summary(study: Study) -> dict[str, Any]:
    """A short summary for ``lmread study info``: samples read by 2+ annotators and the overall
    measures at the study's horizon (no bootstrap)."""
    doc = agreement_of_study(study, n_boot=0)
    overall = doc["overall"]
    return {
        "samples": overall["samples"],
        "annotators": overall["annotators"],
        "horizon_tokens": doc["settings"]["horizon_tokens"],
        "fleiss_kappa": overall["fleiss_kappa"]["value"],
        "readings_left_out": overall["fleiss_kappa"]["readings_left_out"],
        "alpha": overall["alpha"]["value"],
        "mean_abs_distance_tokens": overall["mean_abs_distance"]["tokens"]["value"],
        "severity_weighted_kappa": overall["what_fell"]["severity"]["weighted_kappa"]["value"],
    }
