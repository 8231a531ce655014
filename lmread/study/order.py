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
from typing import Protocol

from lmread.records import Sample, control_kind
from lmread.study.settings import StudySettings
from lmread.study.settings import check_overlap as check_overlap


class Queue(Protocol):
    """What a reading order is made from: a study's samples and settings (a
    :class:`~lmread.study.folder.Study` is one)."""

    @property
    def samples(self) -> dict[str, Sample]: ...

    @property
    def settings(self) -> StudySettings: ...


def queued_ids(study: Queue) -> list[str]:
    """Sorted ids of the samples that belong in reading queues (see the module notes)."""
    picked = set(study.settings.human_controls)
    return sorted(sid for sid, s in study.samples.items() if control_kind(s) != "human" or sid in picked)


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


def reading_order(study: Queue, annotator: str | None = None, overlap: float | None = None) -> list[str]:
    """The queued sample ids in ``annotator``'s reading order (see the module notes)."""
    settings = study.settings
    ids = queued_ids(study)
    share = settings.overlap if overlap is None else check_overlap(overlap)
    if share is None:
        rng = random.Random(settings.shuffle_seed)
        rng.shuffle(ids)
        return ids
    return overlap_order(ids, settings.shuffle_seed, annotator or "", share)[0]


def shared_ids(study: Queue, overlap: float | None = None) -> list[str]:
    """The samples every annotator reads under the overlap share (empty when none is set)."""
    settings = study.settings
    share = settings.overlap if overlap is None else check_overlap(overlap)
    if share is None:
        return []
    return overlap_order(queued_ids(study), settings.shuffle_seed, "", share)[1]
