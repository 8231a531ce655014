"""``repetition``: the onset of a loop.

Two rules; the fall is the earlier of the two (category ``repetition``).

Tokens are compared by id where the sample has real ids, and by their exact text (bytes) where
it has none (imported text and tokens a server sent without an id carry id -1; comparing those
ids would find the whole text one loop).

**Window rule** (the rule of kvguard).  Slide a window of ``window`` tokens over the sample (one
window starting at every token).  When the same window (the same tokens in the same order)
occurs at least ``repeats`` times (occurrences may overlap, so a loop with a period shorter than
the window counts too), the text fell at the window's *second* occurrence: the first occurrence
was still new text, the second is where the repetition begins.  Among several such windows the
earliest second occurrence counts.  Defaults ``window=20``, ``repeats=3`` (kvguard's).

**Tail-loop rule** (after Holtzman et al. 2020, "The curious case of neural text degeneration":
degenerate text ends in a phrase repeated until the generation stops).  The generation ends in
a phrase of ``p <= tail_period`` units repeated back to back to the very end (the last copy may
be cut short), at least ``tail_repeats`` times and covering at least ``tail_min`` units; the
smallest such ``p`` is the phrase, and the fall is the start of its second copy.  This catches
short loops at the end that never fill ``repeats`` windows.  ``tail_period=0`` turns it off.

**Words.** With ``unit=words`` both rules run on words (maximal runs of non-whitespace, compared
exactly) instead of token ids, with a window of ``word_window`` words (default 15: a 20-token
window is about 15 English words at ~1.3 BPE tokens a word); ``tail_period`` and ``tail_min``
then count words.  The fall is the token holding the first character of the word where the
repetition begins.  Words make the rule independent of the tokenizer (and so comparable across
model families) and catch loops whose tokenization drifts ("the end" vs " the end").

Windows are compared by a 64-bit polynomial hash of their ids (numpy, all windows at once); the
window that decides the fall is compared element by element, and exact row comparison takes over
in the (astronomically rare) case of a hash collision.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lmread.detectors.base import Detector, Finding, Param, SampleView

_BASE = np.uint64(0x9E3779B97F4A7C15)


def _window_hashes(seq: np.ndarray, window: int) -> np.ndarray:
    """Polynomial hash (mod 2^64) of every window of ``window`` consecutive values,
    ``sum_k (seq[i+k] + 1) B^(window-1-k)``, built by doubling (log2(window) vector steps)."""
    n = int(seq.size)
    block = seq.astype(np.uint64) + np.uint64(1)  # hashes of windows of length `size`
    size, power = 1, _BASE  # power = B ** size
    result: np.ndarray | None = None
    length, remaining = 0, window
    with np.errstate(over="ignore"):
        while remaining:
            if remaining & 1:
                if result is None:
                    result, length = block, size
                else:
                    m = n - length - size + 1
                    result = result[:m] * power + block[length:length + m]
                    length += size
            remaining >>= 1
            if remaining:
                m = block.size - size
                block = block[:m] * power + block[size:size + m]
                size, power = size * 2, power * power
    assert result is not None
    return result


def _second_occurrence(keys: np.ndarray, repeats: int) -> tuple[int, int, int] | None:
    """Among the values of ``keys`` that occur at least ``repeats`` times, the earliest second
    occurrence: ``(second, first, count)``, or ``None``."""
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True, axis=0 if keys.ndim > 1 else None)
    inverse = inverse.ravel()
    if counts.max(initial=0) < repeats:
        return None
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    classes = np.flatnonzero(counts >= repeats)
    seconds = order[starts[classes] + 1]
    best = int(np.argmin(seconds))
    cls = classes[best]
    return int(seconds[best]), int(order[starts[cls]]), int(counts[cls])


def window_onset(seq: np.ndarray, window: int, repeats: int) -> tuple[int, int, int] | None:
    """Window rule on a sequence of ids: ``(second, first, count)`` of the deciding window, or
    ``None`` when no window of ``window`` values occurs ``repeats`` times."""
    if seq.size < window or repeats < 2:
        return None
    hashes = _window_hashes(seq, window)
    ordered = np.sort(hashes)
    if not np.any(ordered[1:] == ordered[:-1]):  # no window occurs twice: the common case
        return None
    hit = _second_occurrence(hashes, repeats)
    if hit is None:
        return None
    second, first, _ = hit
    if np.array_equal(seq[first:first + window], seq[second:second + window]):
        return hit
    return _second_occurrence(sliding_window_view(seq, window), repeats)  # a hash collision


def tail_onset(seq: np.ndarray, max_period: int, min_repeats: int, min_units: int) -> tuple[int, int, float] | None:
    """Tail-loop rule: ``(onset, period, copies)`` where ``onset`` is the start of the second copy of
    the shortest phrase (period ``<= max_period``) repeated back to back to the end, or ``None``."""
    n = int(seq.size)
    periods = min(max_period, n - 1)
    if periods < 1:
        return None
    rev = seq[::-1]
    # only periods p whose last unit equals the one p before can repeat to the end
    for p in (np.flatnonzero(rev[1:periods + 1] == rev[0]) + 1).tolist():
        differs = rev[: n - p] != rev[p:]  # differs[k]: seq[n-1-k] != seq[n-1-k-p]
        run = int(np.argmax(differs)) if differs.any() else n - p
        covered = run + p
        if covered >= min_repeats * p and covered >= min_units:
            return n - run, p, covered / p
    return None


class Repetition(Detector):
    name = "repetition"
    version = "2"  # 2: tokens without ids (imported text) compared by their text, not by id -1
    category = "repetition"
    params = (
        Param("unit", "tokens", "compare tokens or words", choices=("tokens", "words")),
        Param("window", 20, "window length in tokens (unit=tokens)", minimum=1),
        Param("word_window", 15, "window length in words (unit=words)", minimum=1),
        Param("repeats", 3, "occurrences of one window that make a loop", minimum=2),
        Param("tail_period", 50, "longest phrase of the tail-loop rule (0: rule off)", minimum=0),
        Param("tail_repeats", 3, "copies of the phrase the tail must hold", minimum=2),
        Param("tail_min", 12, "units the repeated tail must cover", minimum=1),
    )

    def detect(self, view: SampleView, params: dict[str, Any]) -> Finding:
        words = params["unit"] == "words"
        if words:
            seq, to_token = view.words
            window = int(params["word_window"])
        else:
            seq, _ = view.token_codes
            to_token = None
            window = int(params["window"])
        unit = "words" if words else "tokens"
        candidates: list[tuple[int, str]] = []
        hit = window_onset(seq, window, int(params["repeats"]))
        if hit is not None:
            second, first, count = hit
            candidates.append((second, f"a window of {window} {unit} first at {unit[:-1]} {first} recurs "
                                       f"{count} times; its second occurrence starts the loop"))
        if params["tail_period"] > 0:
            tail = tail_onset(seq, int(params["tail_period"]), int(params["tail_repeats"]), int(params["tail_min"]))
            if tail is not None:
                onset, period, copies = tail
                candidates.append((onset, f"the text ends in a {period}-{unit[:-1]} phrase repeated "
                                          f"{copies:.1f} times to the end"))
        if not candidates:
            return Finding(None)
        at, note = min(candidates)
        token = int(to_token[at]) if to_token is not None else at
        return Finding(token, self.category, note)


DETECTOR = Repetition()
