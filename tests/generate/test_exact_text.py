"""Exact text through the driver: random Unicode split at random byte positions.

Whatever the byte split, the sample's text is the original text, the token pieces concatenate
to its bytes, offsets tile the text, each character belongs to the token that holds its last
byte, and the sample survives a JSON round trip.  Invalid UTF-8 keeps its raw bytes.
"""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lmread.backends.base import GenOptions
from lmread.backends.scripted import ScriptedBackend
from lmread.generate import generate_sample
from lmread.records import Sample

PROMPT = {"text": "Once upon a time", "set": "test", "name": "t-01"}

# letters with accents, CJK, emoji (incl. ZWJ sequences and skin tones), combining marks, newlines
_ALPHABET = st.one_of(
    st.characters(codec="utf-8", exclude_categories=("Cs",)),
    st.sampled_from(list("aé ñ\n\t日本語中文한국어👍🏽👨‍👩‍👧🎉\u0301\u0308\u200dÅ∑ß")),
)
TEXTS = st.text(alphabet=_ALPHABET, min_size=0, max_size=60)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """Split ``data`` at the given byte positions (deduplicated, in range) into non-empty pieces."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def expected_offsets(text: str, pieces: list[bytes]) -> list[int]:
    """Offsets by the rule "a character belongs to the token holding its last byte", computed
    independently of the assembler: from each character's last byte position."""
    last_byte = []
    pos = 0
    for ch in text:
        pos += len(ch.encode("utf-8"))
        last_byte.append(pos - 1)
    ends = []
    acc = 0
    for p in pieces:
        acc += len(p)
        ends.append(acc)
    offsets = [0]
    ci = 0
    for end in ends:
        while ci < len(last_byte) and last_byte[ci] < end:
            ci += 1
        offsets.append(ci)
    return offsets


def _generate(pieces: list[bytes]) -> Sample:
    backend = ScriptedBackend(pieces=pieces, model_id="scripted-exact")
    return generate_sample(backend, PROMPT, GenOptions(max_tokens=max(1, len(pieces)), seed=7))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=40))
def test_random_byte_splits_keep_exact_text(text: str, cuts: list[int]) -> None:
    data = text.encode("utf-8")
    pieces = split_at(data, cuts)
    sample = _generate(pieces)

    assert sample.text == text
    assert sample.raw is None
    assert sample.n_tokens == len(pieces)
    assert sample.tokens.nbytes == [len(p) for p in pieces]
    # offsets tile the text: start at 0, never decrease, end at its length
    offs = sample.tokens.offsets
    assert offs[0] == 0 and offs[-1] == len(text)
    assert all(a <= b for a, b in zip(offs, offs[1:], strict=False))
    assert "".join(sample.piece(i) for i in range(sample.n_tokens)) == text
    # the span rule, checked independently
    assert offs == expected_offsets(text, pieces)
    # the bytes of tokens concatenate to the text's bytes
    assert b"".join(pieces) == data
    # JSON round trip
    again = Sample.from_json(orjson.loads(sample.dumps()), "roundtrip")
    assert again.text == sample.text
    assert again.tokens.offsets == sample.tokens.offsets
    assert again.tokens.nbytes == sample.tokens.nbytes
    assert again.tokens.ids == sample.tokens.ids
    assert again.raw is None
    assert again.id == sample.id and again.seed == 7


@settings(max_examples=100, deadline=None)
@given(
    prefix=TEXTS,
    junk=st.lists(st.sampled_from([b"\xff", b"\xfe", b"\xc3", b"\xe6\x97", b"\xf0\x9f\x91", b"\x80", b"\xed\xa0\x80"]),
                  min_size=1, max_size=4),
    suffix=TEXTS,
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=20),
)
def test_invalid_utf8_keeps_raw_bytes(prefix: str, junk: list[bytes], suffix: str, cuts: list[int]) -> None:
    data = prefix.encode("utf-8") + b"".join(junk) + suffix.encode("utf-8")
    try:  # junk pieces can combine into a valid character (b"\xc3" + b"\x80" is "À"): not this test's case
        data.decode("utf-8")
        assume(False)
    except UnicodeDecodeError:
        pass
    pieces = split_at(data, cuts)
    sample = _generate(pieces)

    assert sample.raw == data  # no byte lost
    assert sum(sample.tokens.nbytes) == len(data)
    assert sample.text == data.decode("utf-8", errors="replace")
    assert sample.tokens.offsets[-1] == len(sample.text)
    again = Sample.from_json(orjson.loads(sample.dumps()), "roundtrip")
    assert again.raw == data
    assert again.text == sample.text


def test_split_at_helper() -> None:
    assert split_at(b"abcdef", [0, 2, 2, 4, 99]) == [b"ab", b"cd", b"ef"]
    assert split_at(b"", [1]) == []
    # the helper itself: a 4-byte emoji split in the middle, the completing token carries it
    assert expected_offsets("a👍", [b"a\xf0\x9f", b"\x91\x8d"]) == [0, 1, 2]


# --------------------------------------------------------------------------------------------
# A stream that stops inside a character (issue 16): max_tokens, end of text or a stop string
# after a token that only starts a multi-byte character.
#
# The rule: the text ends in ONE U+FFFD standing for the incomplete bytes (what a UTF-8 decoder
# with errors="replace" writes, and what llama-server's `content` holds), that U+FFFD belongs to
# the last token, and the exact bytes are kept in the sample's `raw` (`raw_b64`), so no byte is lost.

SPLIT_CHARS = ["é", "日", "👍", "👍🏽"]  # 2, 3 and 4 bytes, and an emoji whose skin-tone modifier is cut


def _cut_cases() -> list[tuple[str, str, int, bool]]:
    """(how the stream ends, character, bytes of it that were generated, whether the bytes of
    the cut character came in two tokens)."""
    out = []
    for ch in SPLIT_CHARS:
        n = len(ch.encode("utf-8"))
        first = n - len(ch[-1].encode("utf-8"))  # bytes of the complete leading characters, if any
        for k in range(first + 1, n):
            out.extend([("length", ch, k, False), ("eos", ch, k, False), ("stop", ch, k, False)])
            if k - first >= 2:
                out.extend([("length", ch, k, True), ("eos", ch, k, True)])
    return out


@pytest.mark.parametrize(("end", "char", "kept", "two_tokens"), _cut_cases())
def test_a_stream_that_stops_inside_a_character(char: str, kept: int, two_tokens: bool, end: str) -> None:
    head = "Bonjour, " if end != "stop" else "Bonjour, STOP"
    data = char.encode("utf-8")
    cut = data[:kept]
    complete = cut.decode("utf-8", errors="ignore")  # a complete leading character (👍 of 👍🏽) stays
    tail_start = len(complete.encode("utf-8"))
    partial = cut[tail_start:]
    if two_tokens:
        pieces = [head.encode(), cut[:tail_start + 1], cut[tail_start + 1:]]
    else:
        pieces = [head.encode(), cut]
    if end == "stop":  # the stop string and the partial character arrive in the last token
        pieces = [b"Bonjour, ", b"ST", b"OP" + b"".join(pieces[1:])]
    script = pieces + ([b" and more text"] if end != "eos" else [])
    backend = ScriptedBackend(pieces=script, model_id="scripted-exact")
    opts = GenOptions(max_tokens=len(pieces) if end != "stop" else 50, seed=7, stop=["STOP"] if end == "stop" else [])
    sample = generate_sample(backend, PROMPT, opts)

    raw = b"".join(pieces)
    assert sample.finish_reason == end and sample.n_tokens == len(pieces)
    assert raw == head.encode() + cut
    # the text: every complete character, then one U+FFFD for the incomplete bytes
    assert sample.text == head + complete + "\ufffd"
    assert sample.text == raw.decode("utf-8", errors="replace")  # as a server's replacing decoder writes it
    assert partial and sample.text.count("\ufffd") == 1
    # no byte is lost: the raw bytes are kept, the byte counts add up to them
    assert sample.raw == raw and sum(sample.tokens.nbytes) == len(raw)
    assert sample.tokens.nbytes == [len(p) for p in pieces]
    # spans tile the text; the U+FFFD belongs to the last token; a token that only starts the cut
    # character has an empty span
    offs = sample.tokens.offsets
    assert offs[0] == 0 and offs[-1] == len(sample.text) and all(a <= b for a, b in zip(offs, offs[1:], strict=False))
    assert sample.piece(sample.n_tokens - 1).endswith("\ufffd")
    assert offs[:-1] == expected_offsets(head + complete, pieces)[:-1]
    if two_tokens and not complete:
        assert sample.piece(sample.n_tokens - 2) == ""  # it holds only the leading byte
    # the JSON line holds the bytes and reads back the same
    line = orjson.loads(sample.dumps())
    assert base64.b64decode(line["raw_b64"]) == raw
    again = Sample.from_json(line, "roundtrip")
    assert (again.text, again.raw, again.tokens.offsets, again.id) == (sample.text, raw, offs, sample.id)


def test_a_stream_that_ends_on_a_whole_character_keeps_no_raw_bytes() -> None:
    pieces = [b"Bonjour ", "👍".encode()[:2], "👍".encode()[2:]]
    sample = _generate(pieces)
    assert sample.text == "Bonjour 👍" and sample.raw is None and "raw_b64" not in orjson.loads(sample.dumps())
    assert sample.tokens.offsets == [0, 8, 8, 9]
