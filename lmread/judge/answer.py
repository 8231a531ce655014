"""A judge's answer: the JSON schema it is asked for, and how its raw text becomes a verdict.

The answer is one JSON object ``{"falls": bool, "sentence": int, "quote": str, "category": str,
"severity": 1|2|3}`` (only ``falls`` is required; the rest matter when it is true).  Engines that
can constrain decoding get :data:`ANSWER_SCHEMA`; the text is parsed the same way either way.

:func:`read_answer` never guesses.  The verdict is ``skip`` (with the reason and the raw answer
in its note) when the text holds no JSON object, when ``falls`` is not a boolean, when a fall has
no sentence number inside the text, a quote that cannot be found in that sentence, an unknown
category or a severity other than 1-3.  A JSON object wrapped in prose or a code fence is read;
prose alone (a refusal) is a skip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lmread.errors import MarkError
from lmread.judge.localize import Sentence, first_words, locate, token_at
from lmread.records import CATEGORY_KEYS, Sample, check_category

#: the JSON schema of an answer (constrained decoding where the engine supports it)
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "falls": {"type": "boolean"},
        "sentence": {"type": "integer", "minimum": 1},
        "quote": {"type": "string"},
        "category": {"type": "string", "enum": list(CATEGORY_KEYS)},
        "severity": {"type": "integer", "enum": [1, 2, 3]},
    },
    "required": ["falls"],
    "additionalProperties": False,
}

#: longest raw answer kept in a note (the whole answer is kept in the mark's judge record)
NOTE_ANSWER_CHARS = 1500


@dataclass
class Verdict:
    """What an answer says about one sample: ``fall`` at token ``at``, ``no_fall`` or ``skip``."""

    kind: str
    at: int | None = None
    category: str | None = None
    severity: int | None = None
    note: str | None = None
    sentence: int | None = None


def skip(reason: str, raw: str | None) -> Verdict:
    """A skip whose note says why and quotes the raw answer."""
    note = f"judge: {reason}"
    if raw is not None:
        shown = raw if len(raw) <= NOTE_ANSWER_CHARS else raw[:NOTE_ANSWER_CHARS] + "..."
        note += f"; answer: {shown}"
    return Verdict("skip", note=note)


def extract_json(raw: str) -> Any:
    """The JSON object in ``raw``: the whole text, a fenced block, or the first balanced
    ``{...}`` that parses; None when there is none."""
    text = raw.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start >= 0:
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def read_answer(raw: str, sample: Sample, sentences: list[Sentence]) -> Verdict:
    """Turn a judge's raw answer about ``sample`` (shown as ``sentences``) into a verdict."""
    data = extract_json(raw)
    if not isinstance(data, dict):
        return skip("no JSON object in the answer (refusal or prose)", raw)
    falls = data.get("falls")
    if not isinstance(falls, bool):
        return skip("'falls' is not true or false", raw)
    if not falls:
        return Verdict("no_fall", note="judge: no fall")
    number = data.get("sentence")
    if not isinstance(number, int) or isinstance(number, bool):
        return skip("a fall without a whole sentence number", raw)
    if not 1 <= number <= len(sentences):
        return skip(f"sentence {number} is outside the text (1..{len(sentences)})", raw)
    sentence = sentences[number - 1]
    quote = data.get("quote")
    if quote is not None and not isinstance(quote, str):
        return skip("'quote' is not a string", raw)
    category = data.get("category")
    if category is not None:
        if not isinstance(category, str):
            return skip("'category' is not a string", raw)
        try:
            category = check_category(category)
        except MarkError:
            return skip(f"unknown category {category!r}", raw)
    severity = data.get("severity")
    if severity is not None and (not isinstance(severity, int) or isinstance(severity, bool)
                                 or severity not in (1, 2, 3)):
        return skip(f"severity {severity!r} is not 1, 2 or 3", raw)
    char = locate(sample.text, sentence, quote)
    if char is None:
        return skip(f"the quote is not in sentence {number}", raw)
    if sample.n_tokens == 0 or char >= len(sample.text):
        return skip(f"sentence {number} holds no token", raw)
    at = token_at(sample.text, sample.tokens.offsets, sample.tokens.nbytes, char)
    note = f"judge: sentence {number}, from {first_words(sample.text, char)!r}"
    return Verdict("fall", at=at, category=category, severity=severity, note=note, sentence=number)
