"""Machine readers: deterministic fall detectors and their registry.

Each detector lives in its own module and exposes ``DETECTOR`` (a
:class:`~lmread.detectors.base.Detector`); :data:`DETECTORS` maps names to those modules.
``lmread annotate`` (:mod:`lmread.detectors.annotate`) runs them over a study and writes ordinary
mark events under the annotator ``auto-<name>``, so machine readers are compared with humans by
the same measures.
"""

from __future__ import annotations

import importlib
from typing import Any

from lmread.detectors.base import Detector
from lmread.errors import OptionError
from lmread.records import MACHINE_PREFIX

#: detector name -> module holding its ``DETECTOR``
DETECTORS: dict[str, str] = {
    "repetition": "lmread.detectors.repetition",
    "special-token": "lmread.detectors.special_token",
    "improbable-run": "lmread.detectors.improbable_run",
}

#: annotator names of machine readers start with this
ANNOTATOR_PREFIX = MACHINE_PREFIX


def get_detector(name: str) -> Detector:
    """The detector called ``name``, or a one-line :class:`OptionError` listing the known ones."""
    module = DETECTORS.get(name.strip())
    if module is None:
        raise OptionError(f"unknown detector {name!r}: use one of {', '.join(DETECTORS)}")
    detector: Detector = importlib.import_module(module).DETECTOR
    return detector


def annotator_name(detector: Detector) -> str:
    """The annotator a detector writes as, e.g. ``auto-repetition``."""
    return ANNOTATOR_PREFIX + detector.name


def resolve(names: list[str], assignments: list[str]) -> list[tuple[Detector, dict[str, Any]]]:
    """Detectors by name with their parameters: defaults overridden by ``KEY=VALUE`` (every
    chosen detector that declares KEY) or ``DETECTOR.KEY=VALUE`` (that one only).

    An assignment that no chosen detector declares is an :class:`OptionError`.
    """
    chosen: list[Detector] = []
    for name in names:
        det = get_detector(name)
        if det not in chosen:
            chosen.append(det)
    if not chosen:
        raise OptionError("--detector needs at least one name: " + ", ".join(DETECTORS))
    params = {det.name: det.defaults() for det in chosen}
    for item in assignments:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OptionError(f"--param {item!r}: write KEY=VALUE or DETECTOR.KEY=VALUE")
        target, dot, short = key.rpartition(".")
        targets = [d for d in chosen if d.name == target] if dot else chosen
        if dot and not targets:
            raise OptionError(f"--param {item}: detector {target!r} is not among --detector "
                              f"{','.join(d.name for d in chosen)}")
        hit = False
        for det in targets:
            declared = det.param(short)
            if declared is not None:
                params[det.name][short] = declared.parse(value.strip(), det.name)
                hit = True
        if not hit:
            known = sorted({p.name for d in targets for p in d.params})
            raise OptionError(f"--param {item}: no chosen detector has a parameter {short!r}; "
                              f"known: {', '.join(known) or 'none'}")
    for det in chosen:
        det.check(params[det.name])
    return [(det, params[det.name]) for det in chosen]
