"""Where a judge says the text falls: numbered sentences, a quote, and the exact token.

A judge is shown the generated text as numbered sentences (:func:`split_sentences`) and answers
with a sentence number and the first wrong words quoted from that sentence.  :func:`locate`
turns that into a character offset, and :func:`token_at` into the token index of a fall mark.

Rules (each one tested):

* A sample whose import gave sentence starts (RoFT, boundary files) is numbered by those.
  Otherwise sentences tile the text: sentence ``k`` is ``text[start:end]`` and the spans cover the text
  without gaps; whitespace after a sentence belongs to it.  A sentence ends after ``. ! ? …``
  (and any closing quotes or brackets) followed by whitespace or the end of the text, unless
  the next word on the line starts with a lowercase letter (``"Why?" he asked.``), after the
  CJK terminators ``。！？`` (no space needed), and at every line break.  Whitespace-only pieces
  join the sentence before them.
* A sentence is shown to the judge stripped, with every run of whitespace as one space, and
  special-token shapes (``<|im_end|>``) broken by an invisible word joiner (:func:`defang`),
  which a quote may carry back: it is ignored.
* The quote is looked for from the start of its sentence; the first occurrence whose first
  character lies inside that sentence wins (a quote may run on into the next sentence).  It is
  matched exactly first, then with whitespace runs as one space, curly quotes as straight
  ones, case folded, and with quotation marks or an ellipsis the judge wrapped it in removed.
  A quote that matches nowhere in the sentence is no location: the answer becomes a skip.
* An empty or missing quote means the sentence itself: its first non-space character.
* The fall token is the first token that holds a byte of the character found (a token that
  only starts a multi-byte character counts: it already wrote part of the wrong text).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lmread.records import Sample

#: ends a sentence when whitespace or the end of the text follows
_TERMINALS = ".!?…"
#: ends a sentence on its own (CJK full-width terminators)
_CJK_TERMINALS = "。！？"
#: may follow a terminator and still belong to the sentence
_CLOSERS = "\"'”’)]}»」』）】"

_QUOTE_MAP = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'",
                            "‚": "'", "`": "'", "「": '"', "」": '"', "『": '"', "』": '"'})
_WRAPPERS = "\"'“”‘’«»「」『』`"
#: put after the ``<`` of anything shaped like a special token, so the judge's tokenizer reads text
WORD_JOINER = "\u2060"
_SPECIAL_SHAPE = re.compile(r"<(?=[|/]?[A-Za-z_][A-Za-z0-9_.\-|]*\|?>|\|)|\[(?=/?INST\])")


@dataclass(frozen=True)
class Sentence:
    """One numbered sentence: its number (from 1), its character span, and how it is shown."""

    number: int
    start: int
    end: int
    shown: str


def split_sentences(text: str) -> list[Sentence]:
    """The sentences of ``text``, numbered from 1, tiling it exactly (see the module rules)."""
    cuts: list[int] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            j = i + 1
            while j < n and text[j].isspace():
                j += 1
            cuts.append(j)
            i = j
            continue
        if ch in _CJK_TERMINALS or ch in _TERMINALS:
            j = i + 1
            while j < n and (text[j] in _TERMINALS or text[j] in _CJK_TERMINALS or text[j] in _CLOSERS):
                j += 1
            if ch in _CJK_TERMINALS or j == n or (text[j].isspace() and not _lower_follows(text, j)):
                while j < n and text[j].isspace() and text[j] != "\n":
                    j += 1
                if j < n and text[j] == "\n":
                    while j < n and text[j].isspace():
                        j += 1
                cuts.append(j)
                i = j
                continue
            i = j
            continue
        i += 1
    bounds = [0]
    for cut in cuts:
        if cut > bounds[-1]:
            bounds.append(cut)
    if bounds[-1] < n:
        bounds.append(n)
    spans: list[tuple[int, int]] = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        if spans and not text[start:end].strip():
            spans[-1] = (spans[-1][0], end)  # whitespace only: joins the sentence before
        elif spans and not text[spans[-1][0]:spans[-1][1]].strip():
            spans[-1] = (spans[-1][0], end)  # leading whitespace joins the first real sentence
        else:
            spans.append((start, end))
    return [Sentence(k + 1, s, e, " ".join(text[s:e].split())) for k, (s, e) in enumerate(spans)]


def sample_sentences(sample: Sample) -> list[Sentence]:
    """The numbered sentences of a sample: the sentence starts its import gave (RoFT's, a
    boundary file's: the judge numbers the sentences the source's readers saw), else
    :func:`split_sentences`.  Text before the first given start belongs to sentence 1."""
    text = sample.text
    given = sample.sentences
    if not given:
        return split_sentences(text)
    bounds = [0, *[int(c) for c in given if 0 < int(c) < len(text)], len(text)]
    bounds = sorted(set(bounds))
    return [Sentence(k + 1, a, b, " ".join(text[a:b].split()))
            for k, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))]


def _lower_follows(text: str, j: int) -> bool:
    """Whether the next non-space character from ``j`` on the same line is a lowercase letter
    (then a terminator inside quotes, or an abbreviation, does not end the sentence)."""
    while j < len(text) and text[j].isspace() and text[j] != "\n":
        j += 1
    return j < len(text) and text[j].islower()


def defang(text: str) -> str:
    """``text`` with an invisible word joiner after the ``<`` of every special-token shape
    (``<|im_end|>``, ``<end_of_turn>``, ``</s>``, ``[INST]``), so a chat server or llama.cpp,
    which parse special tokens in the rendered chat, read it as the plain text a person saw."""
    return _SPECIAL_SHAPE.sub(lambda m: m.group(0) + WORD_JOINER, text)


def numbered(sentences: list[Sentence]) -> str:
    """The sentences as the judge sees them: ``[1] First sentence.`` one per line (special-token
    shapes defanged, see :func:`defang`)."""
    return "\n".join(f"[{s.number}] {defang(s.shown)}" for s in sentences)


def _fold(text: str) -> tuple[str, list[int]]:
    """``text`` normalized for loose matching, with the index in ``text`` of each character."""
    out: list[str] = []
    where: list[int] = []
    prev_space = False
    for i, ch in enumerate(text):
        if ch == WORD_JOINER:
            continue
        if ch.isspace():
            if prev_space:
                continue
            prev_space = True
            out.append(" ")
            where.append(i)
            continue
        prev_space = False
        for c in ch.translate(_QUOTE_MAP).casefold():
            out.append(c)
            where.append(i)
    return "".join(out), where


def _clean_quote(quote: str) -> str:
    q = quote.strip()
    for _ in range(3):
        before = q
        for tail in ("...", "…"):
            if q.endswith(tail):
                q = q[: -len(tail)].rstrip()
            if q.startswith(tail):
                q = q[len(tail):].lstrip()
        if len(q) >= 2 and q[0] in _WRAPPERS and q[-1] in _WRAPPERS:
            q = q[1:-1].strip()
        if q == before:
            break
    return q


def locate(text: str, sentence: Sentence, quote: str | None) -> int | None:
    """The character offset in ``text`` where ``quote`` starts inside ``sentence``, or None.

    See the module rules: exact first, then loosely; the match must start inside the sentence.
    """
    if quote is None or not quote.strip():
        body = text[sentence.start:sentence.end]
        return sentence.start + (len(body) - len(body.lstrip()))
    quote = quote.replace(WORD_JOINER, "")
    for candidate in dict.fromkeys((quote, quote.strip())):
        hit = text.find(candidate, sentence.start)
        if 0 <= hit < sentence.end and candidate:
            return hit
    cleaned = _clean_quote(quote)
    if not cleaned:
        return None
    folded_text, where = _fold(text[sentence.start:])
    folded_quote, _ = _fold(cleaned)
    folded_quote = folded_quote.strip()
    if not folded_quote:
        return None
    hit = folded_text.find(folded_quote)
    while hit >= 0:
        offset = sentence.start + where[hit]
        if offset >= sentence.end:
            return None
        if not text[offset].isspace():
            return offset
        hit = folded_text.find(folded_quote, hit + 1)
    return None


def token_at(text: str, offsets: list[int], nbytes: list[int], char: int) -> int:
    """The index of the first token holding a byte of the character at ``char``.

    ``offsets`` are a sample's ``n + 1`` token offsets and ``nbytes`` its token byte counts.
    When the token bytes spell the text's UTF-8 exactly, the answer is found by bytes (a token
    that only started the character comes first); otherwise (text that was not valid UTF-8) it is
    the token whose span holds the character.
    """
    n = len(nbytes)
    if not 0 <= char < offsets[-1] or n == 0:
        raise ValueError(f"character {char} is outside the text (0..{offsets[-1] - 1})")
    if sum(nbytes) == len(text.encode("utf-8")):
        byte = len(text[:char].encode("utf-8"))
        starts = [0]
        for size in nbytes:
            starts.append(starts[-1] + size)
        i = bisect.bisect_right(starts, byte) - 1
        while i > 0 and nbytes[i] == 0:  # a token without bytes holds nothing
            i -= 1
        return min(i, n - 1)
    i = bisect.bisect_right(offsets, char) - 1
    return min(max(i, 0), n - 1)


_WORD = re.compile(r"\S+")


def first_words(text: str, start: int, count: int = 6) -> str:
    """Up to ``count`` words of ``text`` from ``start`` (for notes)."""
    return " ".join(m.group() for _, m in zip(range(count), _WORD.finditer(text, start), strict=False))
