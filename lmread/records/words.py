"""Where the words of a text start, by the one word rule (:data:`~lmread.records.names.WORD_RE`:
a word is a maximal run of non-whitespace characters)."""

from __future__ import annotations

import numpy as np

#: whether each code point below U+3001 is whitespace (``str.isspace``, what ``\s`` matches); none above is
_SPACE = np.array([chr(c).isspace() for c in range(0x3001)] + [False])


def word_starts(text: str) -> np.ndarray:
    """Character positions where words (maximal runs of non-whitespace) start: the starts of the
    matches of :data:`~lmread.records.names.WORD_RE`, found on the code points at once."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    space = _SPACE[np.minimum(codes, len(_SPACE) - 1)]
    start = ~space
    start[1:] &= space[:-1]
    return np.flatnonzero(start).astype(np.int64)
