"""The order in which an annotator reads a study's samples.

Which samples are in the queue: every sample except the imported human controls that have not
been picked into it (``lmread controls make`` picks them; their ids are listed in study.toml
under ``[controls] human``).

The order:

* **overlap not set** (the default): one order for every annotator, the queued ids sorted and
  shuffled with the study's ``shuffle_seed`` (samples of all models interleaved).
* **overlap F** (study.toml ``overlap = F`` or ``lmread read --overlap F``, 0 <= F <= 1): a
  share ``round(F * N)`` of the ``N`` queued samples is *shared*: every annotator reads them, in
  the same order and at the same, evenly spaced positions of their queue (shared sample ``j`` at
  position ``floor(j * N / n_shared)``), so that readers who get through only part of their queue
  still overlap in proportion.  The rest is the annotator's own order (a hash of the study seed,
  the annotator's name and the sample id), so annotators who split the work read different
  samples apart from the shared ones.  The shared set is chosen by a hash of the study seed and
  the sample id, so it is the same for everyone and changes little when samples are added.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import TYPE_CHECKING, Any

from lmread.errors import OptionError, StudyError
from lmread.records import control_kind

if TYPE_CHECKING:
    from lmread.study.folder import Study


def picked_human_ids(meta: dict[str, Any]) -> list[str]:
    """Ids of the human controls picked into the reading queue (``[controls] human`` in study.toml)."""
    table = meta.get("controls")
    ids = table.get("human") if isinstance(table, dict) else None
    return [str(i) for i in ids] if isinstance(ids, list) else []


def queued_ids(study: Study) -> list[str]:
    """Sorted ids of the samples that belong in reading queues (see the module notes)."""
    picked = set(picked_human_ids(study.meta))
    return sorted(sid for sid, s in study.samples.items() if control_kind(s) != "human" or sid in picked)


def check_overlap(value: Any, where: str = "--overlap") -> float:
    """Return ``value`` as a share in [0, 1], else raise :class:`OptionError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise OptionError(f"{where} {value!r} must be a share between 0 and 1 (e.g. 0.2)")
    return float(value)


def study_overlap(study: Study) -> float | None:
    """The study's ``overlap`` setting, or None when it is not set."""
    value = study.meta.get("overlap")
    if value is None:
        return None
    try:
        return check_overlap(value, f"{study.path}/study.toml: overlap")
    except OptionError as exc:
        raise StudyError(str(exc)) from None


def shared_count(n: int, overlap: float) -> int:
    """How many of ``n`` queued samples every annotator reads: ``round(overlap * n)`` (half up)."""
    return min(n, int(math.floor(overlap * n + 0.5)))


def _hash_key(seed: int, tag: str, sample_id: str) -> str:
    return hashlib.sha256(f"lmread-order:{seed}:{tag}:{sample_id}".encode()).hexdigest()


def overlap_order(ids: list[str], seed: int, annotator: str, overlap: float) -> tuple[list[str], list[str]]:
    """``(order, shared)``: the annotator's queue of ``ids`` with the shared share interleaved."""
    n = len(ids)
    k = shared_count(n, overlap)
    by_shared = sorted(ids, key=lambda sid: _hash_key(seed, "overlap", sid))
    shared = by_shared[:k]
    own = sorted(by_shared[k:], key=lambda sid: _hash_key(seed, f"annotator:{annotator}", sid))
    order: list[str | None] = [None] * n
    for j, sid in enumerate(shared):
        order[j * n // k] = sid
    rest = iter(own)
    out = [sid if sid is not None else next(rest) for sid in order]
    return out, shared


def reading_order(study: Study, annotator: str | None = None, overlap: float | None = None) -> list[str]:
    """The queued sample ids in ``annotator``'s reading order (see the module notes)."""
    ids = queued_ids(study)
    share = study_overlap(study) if overlap is None else check_overlap(overlap)
    if share is None:
        rng = random.Random(study.shuffle_seed)
        rng.shuffle(ids)
        return ids
    return overlap_order(ids, study.shuffle_seed, annotator or "", share)[0]


def shared_ids(study: Study, overlap: float | None = None) -> list[str]:
    """The samples every annotator reads under the overlap share (empty when none is set)."""
    share = study_overlap(study) if overlap is None else check_overlap(overlap)
    if share is None:
        return []
    return overlap_order(queued_ids(study), study.shuffle_seed, "", share)[1]
