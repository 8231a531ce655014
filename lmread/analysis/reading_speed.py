"""How fast a reading was: words read per second of looking at the sample.

A mark records how many tokens were read (``read_to``; for a fall also the fall token ``at``),
how many were revealed (``revealed``) and how long the reader looked (``elapsed_s``).  The words
read are the words of the sample's text that start before the end of the last token read (a word
is a maximal run of non-whitespace characters, the rule of the ``words`` unit of survival).

A reading faster than a few words a second is not a reading: people read prose at about 4-5
words/s, fast readers 6-8.  ``DEFAULT_MAX_WPS`` is the limit above which the reader says so and
``lmread survival --max-read-speed`` (or the study's ``max_read_speed_wps``) can leave it out.

The reader's reading pace is a speed in the same words (``DEFAULT_PACE_WPS``, well below the
limit), and its paced reveal counts words by the same rule (:func:`tokens_within_words`): text
revealed by the pace alone never reads faster than the pace, so a reading at the default pace is
never flagged.  What can make a reading fast is what the reader did: reveals forced ahead of the
pace (space; recorded on the mark as ``forced``), a faster pace they chose, or a mark made without
looking long.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from lmread.records import WORD_RE, Mark, Sample
from lmread.records.words import word_starts as word_starts_array

#: Readings faster than this many words per second are flagged as too fast to be readings.
DEFAULT_MAX_WPS = 8.0

#: The reader's default reading pace, words per second: people read prose at about 4-5 words/s,
#: and the pace sits well below :data:`DEFAULT_MAX_WPS`.
DEFAULT_PACE_WPS = 4.5
#: Bounds of the reading pace (``lmread read --pace``, the settings, the pace keys), words/s.
PACE_MIN_WPS, PACE_MAX_WPS = 0.5, 300.0
#: Words per token of English prose under the bundled models' tokenizers: how an old
#: ``reading_pace_tps`` setting (tokens/s) is read as words/s.
WORDS_PER_TOKEN = 0.75


def word_starts(text: str) -> list[int]:
    """Character positions where the words of ``text`` start (the word rule of this module)."""
    starts: list[int] = word_starts_array(text).tolist()
    return starts


def words_before(starts: Sequence[int], end: int) -> int:
    """Words (given by their ``starts``) that start before character ``end``."""
    return bisect_right(starts, end - 1) if end > 0 else 0


def tokens_within_words(offsets: Sequence[int], starts: Sequence[int], words: int) -> int:
    """The most tokens (``offsets`` has ``n + 1`` entries) whose text holds at most ``words``
    words by the rule of :func:`words_in_tokens`: every token up to the one where word
    ``words + 1`` starts (all tokens when the text has no more words)."""
    n = len(offsets) - 1
    if words < 0:
        return 0
    if words >= len(starts):
        return n
    return max(0, bisect_right(offsets, starts[words]) - 1)


def tokens_read(mark: Mark, sample: Sample) -> int | None:
    """Tokens the mark says were read: ``read_to``, else ``revealed``, else through the fall
    token; None for a skip or undo (nothing was read as a reading)."""
    if mark.kind not in ("fall", "no_fall"):
        return None
    if mark.read_to is not None:
        n = mark.read_to
    elif mark.revealed is not None:
        n = mark.revealed
    elif mark.kind == "fall" and mark.at is not None:
        n = mark.at + 1
    else:
        return None
    return max(0, min(int(n), sample.n_tokens))


def words_in_tokens(sample: Sample, n_tokens: int) -> int:
    """Words of ``sample`` that start within its first ``n_tokens`` tokens."""
    cut = sample.tokens.offsets[max(0, min(n_tokens, sample.n_tokens))]
    # with endpos=cut, a word that starts before the cut still matches (its cut-off head)
    return sum(1 for _ in WORD_RE.finditer(sample.text, 0, cut))


@dataclass(frozen=True)
class ReadingSpeed:
    """The speed of one reading: ``words`` read in ``elapsed_s`` seconds."""

    words: int
    tokens: int
    elapsed_s: float
    #: tokens the reader revealed ahead of the reading pace (None: not recorded)
    forced: int | None = None

    @property
    def wps(self) -> float:
        """Words per second."""
        return self.words / self.elapsed_s


def reading_speed(mark: Mark, sample: Sample) -> ReadingSpeed | None:
    """The speed of the reading ``mark`` records on ``sample``, or None when it cannot be known:
    a skip or undo, a mark without ``elapsed_s`` (e.g. written by ``lmread mark``), or an elapsed
    time of 0 (no clock ran: a scripted or machine mark, not a person reading)."""
    n = tokens_read(mark, sample)
    if n is None or mark.elapsed_s is None or not mark.elapsed_s > 0:
        return None
    return ReadingSpeed(words=words_in_tokens(sample, n), tokens=n, elapsed_s=float(mark.elapsed_s),
                        forced=mark.forced)


def words_per_second(mark: Mark, sample: Sample) -> float | None:
    """Words read per second of the reading ``mark`` records, or None (see :func:`reading_speed`)."""
    speed = reading_speed(mark, sample)
    return None if speed is None else speed.wps


def speed_verdict(wps: float | None, min_wps: float | None = None, max_wps: float | None = None) -> str:
    """``"too_fast"`` (above ``max_wps``), ``"too_slow"`` (below ``min_wps``), ``"unknown"`` (no
    speed) or ``"ok"``."""
    if wps is None:
        return "unknown"
    if max_wps is not None and wps > max_wps:
        return "too_fast"
    if min_wps is not None and wps < min_wps:
        return "too_slow"
    return "ok"
