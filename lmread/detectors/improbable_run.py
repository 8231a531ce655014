"""``improbable-run``: a run of tokens the model itself found improbable.

Read from the recorded token arrays (the unmodified next-token distribution each token was
sampled from).  A token is *improbable* when

* its rank is beyond ``rank_over`` (default 1000: GLTR's last bucket, "not even in the top
  1000", Gehrmann et al. 2019), or
* the model's entropy there spikes: it exceeds the mean entropy of the previous ``baseline``
  tokens (default 32; at least 8 of them needed) by more than ``entropy_jump`` nats (default 4;
  0 turns spikes off).

The text fell at the first improbable token of the first stretch of ``window`` tokens (default 8)
that holds at least ``min_count`` improbable ones (default 3): one odd token is sampling noise at
temperature 1, a cluster is the model losing its thread (category ``incoherent``).

Samples without distributions (imported text, or a backend that gave none) cannot be read by
this rule: they get a **skip** mark with a note (a skip contributes nothing to the curves, and
the note says why), never a no-fall, which would claim the text held up.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmread.detectors.base import Detector, Finding, Param, SampleView
from lmread.errors import OptionError

MIN_BASELINE = 8


def improbable_flags(rank: np.ndarray | None, entropy: np.ndarray | None, rank_over: float,
                     entropy_jump: float, baseline: int) -> np.ndarray:
    """Per token: rank beyond ``rank_over`` or an entropy spike (see the module notes)."""
    n = len(rank) if rank is not None else len(entropy)  # type: ignore[arg-type]
    flags = np.zeros(n, dtype=bool)
    if rank is not None:
        with np.errstate(invalid="ignore"):
            flags |= rank > rank_over
    if entropy is not None and entropy_jump > 0:
        ok = ~np.isnan(entropy)
        vals = np.where(ok, entropy, 0.0)
        csum = np.concatenate(([0.0], np.cumsum(vals)))
        ccount = np.concatenate(([0], np.cumsum(ok)))
        idx = np.arange(n)
        lo = np.maximum(idx - baseline, 0)
        count = ccount[idx] - ccount[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (csum[idx] - csum[lo]) / count
            flags |= ok & (count >= MIN_BASELINE) & (entropy - mean > entropy_jump)
    return flags


def first_cluster(flags: np.ndarray, window: int, min_count: int) -> int | None:
    """The first flagged index that starts a stretch of ``window`` with ``min_count`` flags."""
    if flags.sum() < min_count:
        return None
    csum = np.concatenate(([0], np.cumsum(flags)))
    idx = np.arange(flags.size)
    ahead = csum[np.minimum(idx + window, flags.size)] - csum[idx]
    hit = np.flatnonzero(flags & (ahead >= min_count))
    return int(hit[0]) if hit.size else None


class ImprobableRun(Detector):
    name = "improbable-run"
    version = "1"
    category = "incoherent"
    params = (
        Param("rank_over", 1000, "a token ranked beyond this is improbable", minimum=1),
        Param("entropy_jump", 4.0, "nats above the recent mean entropy that make a spike (0: off)", minimum=0),
        Param("baseline", 32, "tokens of the recent mean entropy", minimum=1),
        Param("window", 8, "length of the stretch", minimum=1),
        Param("min_count", 3, "improbable tokens within the stretch", minimum=1),
    )

    def check(self, params: dict[str, Any]) -> None:
        if params["min_count"] > params["window"]:
            raise OptionError(f"--param min_count={params['min_count']} cannot exceed window={params['window']}")

    def detect(self, view: SampleView, params: dict[str, Any]) -> Finding:
        rank = view.distribution("rank")
        entropy = view.distribution("entropy") if params["entropy_jump"] > 0 else None
        if rank is None and entropy is None:
            return Finding(None, skip=True, note="no token distributions recorded (ranks, entropies); not read")
        flags = improbable_flags(rank, entropy, float(params["rank_over"]), float(params["entropy_jump"]),
                                 int(params["baseline"]))
        at = first_cluster(flags, int(params["window"]), int(params["min_count"]))
        if at is None:
            return Finding(None)
        count = int(flags[at:at + int(params["window"])].sum())
        return Finding(at, self.category, f"{count} of {params['window']} tokens from token {at} improbable "
                                          f"(rank > {params['rank_over']} or entropy +{params['entropy_jump']:g} nats)")


DETECTOR = ImprobableRun()
