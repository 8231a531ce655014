"""A study's summary: samples and marks counted per model and per annotator.

Report logic kept out of the storage class: :class:`~lmread.study.folder.Study` reads and writes
the folder, this module counts what is in it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from lmread.study.folder import Study


def summarize_study(study: Study) -> dict[str, Any]:
    """Counts per model and per annotator (samples, marked, fallen, censored, skipped): what
    ``lmread study info`` prints and the reader's home screen lists."""
    samples = study.samples
    per_model: dict[str, dict[str, Any]] = {}
    controls: Counter[str] = Counter()
    for s in samples.values():
        if s.control is not None:  # controls are no model's samples
            controls[str(s.control["kind"])] += 1
            continue
        entry = per_model.setdefault(
            s.model_id, {"model": s.model_id, "n_params": s.model.get("n_params"), "samples": 0, "tokens": 0}
        )
        entry["samples"] += 1
        entry["tokens"] += s.n_tokens
    per_annotator: dict[str, Counter[str]] = defaultdict(Counter)
    marked_samples: set[str] = set()
    for (annotator, sid), mark in study.current_marks().items():
        if sid not in samples:
            continue
        counts = per_annotator[annotator]
        counts["marked"] += 1
        counts[{"fall": "fallen", "no_fall": "censored", "skip": "skipped", "prompt_fall": "fallen"}[mark.kind]] += 1
        if mark.kind != "skip":
            marked_samples.add(sid)
        model = samples[sid].model_id
        if samples[sid].control is not None:
            continue
        per_model[model].setdefault("marked", 0)
        per_model[model]["marked"] += 1 if mark.kind != "skip" else 0
    for entry in per_model.values():
        entry.setdefault("marked", 0)
    return {
        "study": str(study.path),
        "name": study.name,
        "samples": len(samples),
        "marked_samples": len(marked_samples),
        "models": sorted(per_model.values(), key=lambda e: (e["n_params"] or 0, e["model"])),
        **({"controls": dict(sorted(controls.items()))} if controls else {}),
        "annotators": [
            {"annotator": a, "marked": c["marked"], "fallen": c["fallen"], "censored": c["censored"],
             "skipped": c["skipped"], "events": len(study.marks(a))}
            for a, c in sorted(per_annotator.items())
        ] + [
            {"annotator": a, "marked": 0, "fallen": 0, "censored": 0, "skipped": 0, "events": len(study.marks(a))}
            for a in study.annotators() if a not in per_annotator
        ],
        "warnings": study.warnings,
    }
