"""The reader's token document (headless): wrapping, lookups, cursor motions, reveal, streaming,
on the three layers composed (:class:`TokenSpans`, :class:`WrappedDocument` over them,
:class:`DocumentNavigator` over that); each layer alone is tested in the modules beside this one."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmread.backends.scripted import split_text
from lmread.records import TokenAssembler
from lmread.tui.document import (
    KIND_CONTROL,
    KIND_NEWLINE,
    KIND_TAB,
    TAB_SIZE,
    DocumentNavigator,
    TokenSpans,
    WrappedDocument,
    char_cells,
)

# ---------------------------------------------------------------------------------------------
# helpers


@dataclass
class Doc:
    """The three layers of one document, composed as the token view composes them."""

    spans: TokenSpans
    wrapped: WrappedDocument
    nav: DocumentNavigator


def make_doc(text: str = "", offsets: list[int] | None = None, revealed: int | None = None, *, width: int = 80,
             show_newlines: bool = False) -> Doc:
    spans = TokenSpans(text, offsets, revealed)
    wrapped = WrappedDocument(spans, width=width, show_newlines=show_newlines)
    return Doc(spans, wrapped, DocumentNavigator(wrapped))


def doc_from_pieces(pieces: list[bytes], revealed: int | None = None, width: int = 80) -> Doc:
    """A document whose offsets come from real byte pieces through TokenAssembler."""
    asm = TokenAssembler(with_distribution=False)
    for i, piece in enumerate(pieces):
        asm.add(i, piece)
    tokens, text, _ = asm.finish()
    return make_doc(text, tokens.offsets, revealed, width=width)


def doc_from_text(text: str, tokenizer: str = "words", width: int = 80) -> Doc:
    return doc_from_pieces(split_text(text, tokenizer), width=width)


def byte_chunks(text: str, size: int) -> list[bytes]:
    data = text.encode("utf-8")
    return [data[i : i + size] for i in range(0, len(data), size)]


def ref_line_starts(doc: Doc, width: int) -> list[int]:
    """A plain character-by-character implementation of the documented wrapping rules."""
    text = doc.spans.visible_text
    end = len(text)
    info = doc.wrapped.measure.info

    def line_end(s: int) -> int | None:
        x, i, last_opp, prev_breaks = 0, s, -1, False
        while i < end:
            c = text[i]
            if c == "\n":
                return i + 1
            if c == "\t":
                w, wide = TAB_SIZE - x % TAB_SIZE, False
            else:
                w = info(c)[0]
                if w == 0:
                    i += 1
                    continue
                wide = w >= 2
            space = c == " "
            opp = i > s and not space and (prev_breaks or wide)
            if x + w > width:
                if space:
                    j = i + 1
                    while j < end and (text[j] == " " or (text[j] not in "\n\t" and info(text[j])[0] == 0)):
                        j += 1
                    if j >= end:
                        return None
                    return j + 1 if text[j] == "\n" else j
                if opp:
                    return i
                if last_opp > s:
                    return last_opp
                if i > s:
                    return i
            elif opp:
                last_opp = i
            x += w
            prev_breaks = space or wide or c == "\t"
            i += 1
        return None

    starts, s = [], 0
    while True:
        starts.append(s)
        if s >= end:
            return starts
        nxt = line_end(s)
        if nxt is None:
            return starts
        s = nxt


def all_starts(doc: Doc, width: int) -> list[int]:
    return [doc.wrapped.line_range(y, width)[0] for y in range(doc.wrapped.line_count(width))]


def check_tiling(doc: Doc, width: int) -> None:
    """Lines tile the visible text; pieces tile each line; every character is displayed by the
    token holding it; nothing past the visible end appears."""
    end = doc.spans.visible_end
    pos = 0
    for y in range(doc.wrapped.line_count(width)):
        a, b = doc.wrapped.line_range(y, width)
        assert a == pos and b <= end
        x = 0
        cpos = a
        for p in doc.wrapped.line_pieces(y, width):
            assert p.start == cpos and p.end <= b and p.x == x
            assert 0 <= p.token < doc.spans.revealed
            lo, hi = doc.spans.span(p.token)
            assert lo <= p.start and p.end <= hi and lo < hi  # never an empty-span token
            x += p.cells
            cpos = p.end
        assert cpos == b
        pos = b
    assert pos == end


SAMPLE = (
    "The keeper wrote: \"Storm at dawn.\" Then nothing!\tTabs\there.\n\n"
    "漢字のテキストも折り返す。 Emoji 😀👍🏽 and café\u0301 too… Control \x00 \x1b \x7f \x85 end.\r\n"
    "Last line with a verylongwordthatcannotfitonasinglelineatall and more."
)


# ---------------------------------------------------------------------------------------------
# wrapping and display


def test_char_cells_basics() -> None:
    assert char_cells("a") == 1
    assert char_cells("漢") == 2
    assert char_cells("😀") == 2
    assert char_cells("\u0301") == 0
    assert char_cells("\u200d") == 0
    assert char_cells("é") == 1


def test_wide_chars_fill_two_cells_and_wrap() -> None:
    text = "漢字" * 10
    doc = make_doc(text, list(range(len(text) + 1)), width=7)
    # 7 cells hold 3 wide characters; a wide character never straddles the edge
    assert [doc.wrapped.line_text(y) for y in range(doc.wrapped.line_count())][:2] == ["漢字漢", "字漢字"]
    pieces = doc.wrapped.line_pieces(0)
    assert [p.cells for p in pieces] == [2, 2, 2]
    assert [p.x for p in pieces] == [0, 2, 4]
    assert doc.wrapped.token_at(0, 0) == doc.wrapped.token_at(1, 0) == 0
    assert doc.wrapped.token_at(5, 0) == 2
    assert doc.wrapped.token_at(6, 0) is None
    check_tiling(doc, 7)


def test_emoji_and_combining_marks() -> None:
    doc = doc_from_pieces(byte_chunks("a😀b café\u0301 x", 1), width=80)
    line = doc.wrapped.line_pieces(0)
    cells = {p.text: p.cells for p in line}
    assert cells["😀"] == 2
    assert cells["\u0301"] == 0
    # the emoji's token (the one holding its last byte) owns both of its cells
    emoji = next(p for p in line if p.text == "😀")
    assert doc.spans.token_text(emoji.token) == "😀"
    assert doc.wrapped.token_at(emoji.x, 0) == doc.wrapped.token_at(emoji.x + 1, 0) == emoji.token
    # the combining mark adds no cell: "x" sits where it would without it
    assert doc.wrapped.line_text(0) == "a😀b café\u0301 x"
    assert doc.wrapped.line_pieces(0)[-1].x == 1 + 2 + 1 + 1 + 4 + 1


def test_combining_mark_never_starts_a_line() -> None:
    text = "abcde\u0301\u0301fgh"
    doc = make_doc(text, list(range(len(text) + 1)), width=5)
    assert doc.wrapped.line_text(0) == "abcde\u0301\u0301"
    assert doc.wrapped.line_text(1) == "fgh"
    assert doc.wrapped.line_count() == 2


def test_tabs_shown_visibly_to_the_next_stop() -> None:
    doc = make_doc("a\tbc\td", [0, 1, 2, 4, 5, 6])
    pieces = doc.wrapped.line_pieces(0)
    tabs = [p for p in pieces if p.kind == KIND_TAB]
    assert [t.text for t in tabs] == ["→" + " " * (TAB_SIZE - 2), "→" + " " * (TAB_SIZE - 6 % TAB_SIZE - 1)]
    assert [(t.x, t.cells) for t in tabs] == [(1, TAB_SIZE - 1), (6, TAB_SIZE - 6 % TAB_SIZE)]
    assert doc.wrapped.token_at(2, 0) == 1 and doc.wrapped.token_at(TAB_SIZE, 0) == 2


def test_control_characters_shown_as_symbols() -> None:
    text = "a\x00b\x1bc\x7fd\x85e\u2028"
    doc = make_doc(text, list(range(len(text) + 1)))
    controls = [p for p in doc.wrapped.line_pieces(0) if p.kind == KIND_CONTROL]
    assert [p.text for p in controls] == ["␀", "␛", "␡", "<85>", "␤"]
    assert doc.wrapped.line_text(0) == "a␀b␛c␡d<85>e␤"
    assert doc.wrapped.token_at(9, 0) == text.index("\x85")  # inside "<85>"


def test_newlines_inside_tokens_break_lines() -> None:
    pieces = [b"One.", b"\n\nTwo", b" three", b"\n", b"four"]
    doc = doc_from_pieces(pieces)
    assert doc.wrapped.line_count() == 4
    assert doc.wrapped.line_text(0) == "One. "  # the newline shows as a one-cell marker
    assert doc.wrapped.line_text(1) == " "
    assert doc.wrapped.line_text(2) == "Two three "
    assert doc.wrapped.line_text(3) == "four"
    assert [p.kind for p in doc.wrapped.line_pieces(1)] == [KIND_NEWLINE]
    assert doc.wrapped.line_of_token(1) == 0  # "\n\nTwo" starts on line 0
    assert doc.wrapped.token_span_cells(1) == [(0, 4, 5), (1, 0, 1), (2, 0, 3)]
    assert doc.wrapped.token_at(0, 1) == 1
    marked = make_doc(doc.spans.text, doc.spans.offsets, show_newlines=True)
    assert marked.wrapped.line_text(0) == "One.↵"


def test_word_wrap_breaks_after_spaces_and_cuts_long_words() -> None:
    doc = doc_from_text("aaa bbb ccc dddddddddddd e", width=8)
    assert [doc.wrapped.line_text(y) for y in range(doc.wrapped.line_count())] == ["aaa bbb ", "ccc ", "dddddddd", "dddd e"]
    # spaces that do not fit hang past the edge instead of starting the next line
    doc = doc_from_text("abcd    efg", width=4)
    assert [doc.wrapped.line_text(y) for y in range(doc.wrapped.line_count())] == ["abcd    ", "efg"]


@pytest.mark.parametrize("width", [1, 2, 3, 7, 20, 80])
def test_sample_tiles_and_matches_reference(width: int) -> None:
    for pieces in (split_text(SAMPLE, "words"), byte_chunks(SAMPLE, 3), split_text(SAMPLE, "bytes")):
        doc = doc_from_pieces(pieces, width=width)
        check_tiling(doc, width)
        assert all_starts(doc, width) == ref_line_starts(doc, width)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=st.sampled_from(list("ab  \n\t.é漢😀\u0301\x00—x")), max_size=60),
    st.integers(min_value=1, max_value=14),
)
def test_wrap_matches_reference(text: str, width: int) -> None:
    doc = make_doc(text, [0, len(text)] if text else [0])
    assert all_starts(doc, width) == ref_line_starts(doc, width)
    check_tiling(doc, width)


def test_token_at_and_line_of_token_round_trip_every_token() -> None:
    for pieces in (split_text(SAMPLE, "words"), split_text(SAMPLE, "bytes"), byte_chunks(SAMPLE, 2)):
        for width in (9, 31):
            doc = doc_from_pieces(pieces, width=width)
            for i in range(doc.spans.n_tokens):
                lo, hi = doc.spans.span(i)
                cells = doc.wrapped.token_span_cells(i)
                if lo == hi:
                    assert cells == []
                    continue
                # an all-zero-width token (a lone combining mark) has no cell of its own
                if all(char_cells(c) == 0 for c in doc.spans.token_text(i)):
                    continue
                assert cells, i
                assert cells[0][0] == doc.wrapped.line_of_token(i)
                for y, x0, x1 in cells:
                    for x in range(x0, x1):
                        assert doc.wrapped.token_at(x, y) == i, (i, y, x)


def test_split_utf8_characters_belong_to_their_last_byte() -> None:
    text = "ab😀漢é"
    doc = doc_from_pieces(split_text(text, "bytes"))
    # tokens that only start a character have empty spans; the last byte's token shows it
    spans = [doc.spans.span(i) for i in range(doc.spans.n_tokens)]
    assert sum(1 for lo, hi in spans if lo == hi) == 3 + 2 + 1
    pieces = doc.wrapped.line_pieces(0)
    assert [p.text for p in pieces] == list(text)
    for p in pieces:
        assert doc.spans.token_text(p.token) == p.text
        assert doc.wrapped.token_at(p.x, 0) == p.token
    assert doc.spans.display_token(2) == 5  # first byte of the emoji -> the token completing it


# ---------------------------------------------------------------------------------------------
# reveal


def test_nothing_past_revealed_appears() -> None:
    pieces = byte_chunks(SAMPLE, 2)
    full = doc_from_pieces(pieces, width=13)
    for revealed in range(0, full.spans.n_tokens + 1, 7):
        doc = make_doc(full.spans.text, full.spans.offsets, revealed, width=13)
        end = doc.spans.offsets[revealed]
        shown = "".join(doc.spans.text[p.start : p.end] for y in range(doc.wrapped.line_count()) for p in doc.wrapped.line_pieces(y))
        assert shown == doc.spans.text[:end]
        assert all(p.token < revealed for y in range(doc.wrapped.line_count()) for p in doc.wrapped.line_pieces(y))
        check_tiling(doc, 13)
        # the wrap of a prefix is the wrap of that prefix alone: unrevealed text never moves a break
        alone = make_doc(doc.spans.text[:end], doc.spans.offsets[: revealed + 1], width=13)
        assert all_starts(doc, 13) == all_starts(alone, 13)
        # motions stay inside the revealed tokens
        cur = 0
        for kind in ("token", "word", "sentence", "line", "page", "edge"):
            cur = doc.nav.move(cur, kind, 1)
            assert cur <= max(0, revealed - 1)
        assert doc.wrapped.token_at(0, doc.wrapped.line_count()) is None


def test_reveal_grows_and_shrinks_consistently() -> None:
    full = doc_from_pieces(byte_chunks(SAMPLE, 3), width=11)
    doc = make_doc(full.spans.text, full.spans.offsets, 0, width=11)
    assert doc.wrapped.line_count() == 1 and doc.wrapped.line_pieces(0) == []
    for revealed in [5, 20, 3, 40, 40, 12, full.spans.n_tokens, 0, 17]:
        doc.spans.revealed = revealed
        fresh = make_doc(full.spans.text, full.spans.offsets, revealed, width=11)
        assert all_starts(doc, 11) == all_starts(fresh, 11)
    doc.spans.revealed = 10**6
    assert doc.spans.revealed == full.spans.n_tokens
    doc.spans.revealed = -3
    assert doc.spans.revealed == 0


# ---------------------------------------------------------------------------------------------
# streaming


def test_append_extends_incrementally() -> None:
    doc = make_doc(width=10)
    doc.spans.append("Hello", [5], reveal=True)
    assert doc.wrapped.line_text(0) == "Hello"
    doc.spans.append(" world, again", [11, 12, 18], reveal=True)
    assert doc.spans.n_tokens == 4 and doc.spans.revealed == 4
    assert [doc.wrapped.line_text(y) for y in range(doc.wrapped.line_count())] == ["Hello ", "world, ", "again"]
    doc.spans.append(" hidden", [25])
    assert doc.spans.revealed == 4 and doc.wrapped.line_count() == 3
    # a flushed trailing character joins the last token
    doc.spans.append("\ufffd", [])
    assert doc.spans.token_text(4) == " hidden\ufffd"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=st.sampled_from(list("abc  \n.!漢😀é\u0301\t\x01")), max_size=80),
    st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=40),
    st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=40),
    st.sampled_from([1, 3, 6, 10, 40]),
)
def test_incremental_append_equals_full_load(text: str, cuts: list[int], batches: list[int], width: int) -> None:
    # split the UTF-8 bytes at random places (multi-byte characters get split too)
    data = text.encode("utf-8")
    pieces, pos, k = [], 0, 0
    while pos < len(data):
        size = cuts[k % len(cuts)]
        pieces.append(data[pos : pos + size])
        pos += size
        k += 1
    asm = TokenAssembler(with_distribution=False)
    streamed = make_doc(width=width)
    sent_tokens = sent_chars = 0
    i = b = 0
    while i < len(pieces):
        for _ in range(batches[b % len(batches)]):
            if i < len(pieces):
                asm.add(i, pieces[i])
                i += 1
        b += 1
        n = len(asm)
        offs = asm.tokens.offsets[sent_tokens + 1 : n + 1]
        chunk = asm.text[sent_chars : offs[-1]]
        streamed.spans.append(chunk, offs, reveal=True)
        sent_tokens, sent_chars = n, offs[-1]
        streamed.wrapped.line_count()  # wrap as the stream goes (exercises the incremental path)
        if b % 3 == 0:
            streamed.wrapped.line_count(width + 1)  # a second width kept up to date lazily
    tokens, full_text, _ = asm.finish()
    if len(full_text) > sent_chars:
        streamed.spans.append(full_text[sent_chars:], [])
    full = make_doc(full_text, tokens.offsets, width=width)
    assert streamed.spans.text == full.spans.text and streamed.spans.offsets == full.spans.offsets
    for w in (width, width + 1):
        assert all_starts(streamed, w) == all_starts(full, w)
        assert [streamed.wrapped.line(y, w) for y in range(streamed.wrapped.line_count(w))] == [
            full.wrapped.line(y, w) for y in range(full.wrapped.line_count(w))
        ]


# ---------------------------------------------------------------------------------------------
# cursor motions


def test_token_motions_skip_empty_spans() -> None:
    doc = doc_from_pieces(split_text("a😀b", "bytes"))  # tokens: a, 3 empty, last byte of 😀, b
    assert doc.spans.n_tokens == 6
    assert doc.nav.next_token(0) == 4
    assert doc.nav.prev_token(4) == 0
    assert doc.nav.next_token(4) == 5
    assert doc.nav.next_token(5) == 5  # the end: stays
    assert doc.nav.prev_token(0) == 0
    assert doc.nav.move(1, "token", 1) == 4  # from an empty-span token too
    doc.spans.revealed = 3  # the emoji is not complete yet: only "a" shows
    assert doc.nav.next_token(0) == 0
    assert doc.nav.last_token() == 0
    assert doc.spans.clamp(10) == 2


def test_word_and_sentence_motions() -> None:
    text = "One two. Three four!  Five?\nSix \"seven.\" Eight"
    doc = doc_from_text(text)
    words = [doc.spans.token_text(i) for i in range(doc.spans.n_tokens)]
    assert words[:3] == ["One", " two.", " Three"]
    i = 0
    seen = []
    for _ in range(12):
        i = doc.nav.move(i, "word", 1)
        seen.append(doc.spans.token_text(i).strip())
    assert seen[:9] == ["two.", "Three", "four!", "Five?", "Six", '"seven."', "Eight", "Eight", "Eight"]
    assert doc.nav.move(doc.spans.n_tokens - 1, "word", -1) == doc.spans.n_tokens - 2
    starts = []
    i = 0
    for _ in range(7):
        i = doc.nav.move(i, "sentence", 1)
        starts.append(doc.spans.token_text(i).strip())
    assert starts == ["Three", "Five?", "Six", "Eight", "Eight", "Eight", "Eight"]
    back = []
    for _ in range(5):
        i = doc.nav.move(i, "sentence", -1)
        back.append(doc.spans.token_text(i).strip())
    assert back == ["Six", "Five?", "Three", "One", "One"]
    # from the middle of a sentence, back goes to its start
    assert doc.spans.token_text(doc.nav.prev_sentence(words.index(" four!"))).strip() == "Three"


def test_word_motion_within_split_words() -> None:
    doc = doc_from_pieces([b"run", b"ning", b" fast", b"er", b" now"])
    assert doc.nav.next_word(0) == 2
    assert doc.nav.prev_word(1) == 0
    assert doc.nav.prev_word(3) == 2
    assert doc.nav.next_word(3) == 4


def test_line_motions_keep_the_column() -> None:
    text = "aaaa bbbb cccc\ndd\neeee ffff gggg hhhh"
    doc = doc_from_text(text, width=80)
    t = [doc.spans.token_text(i) for i in range(doc.spans.n_tokens)]
    cccc = t.index(" cccc")
    down = doc.nav.move(cccc, "line", 1)
    assert doc.spans.token_text(down) == "\ndd"  # the short line: its last token
    goal = doc.wrapped.token_anchor(cccc)[1]
    down2 = doc.nav.line_move(down, 1, goal_x=goal)
    assert doc.spans.token_text(down2) == " gggg"  # back at the goal column on the long line
    assert doc.nav.move(down2, "line", -1, goal_x=goal) == down
    assert doc.nav.move(0, "line", -1) == 0  # top line: no move
    last = doc.spans.n_tokens - 1
    assert doc.nav.move(last, "line", 1) == last
    # a page past the end lands on the last line, at the same column
    assert doc.nav.move(0, "page", 1, page_lines=10) == doc.wrapped.token_at(0, 2) == t.index("\neeee")
    assert doc.wrapped.token_anchor(last) == (2, 15)  # the "h" after the leading space
    assert doc.nav.move(last, "page", -1, page_lines=10) == cccc  # past the line end: its last word
    assert doc.nav.move(5, "edge", -1) == 0 and doc.nav.move(0, "edge", 1) == last


def test_line_motion_over_a_token_spanning_lines() -> None:
    doc = doc_from_pieces([b"ab", b" " + b"x" * 30, b" cd"], width=10)
    # token 1 covers lines 0..3; moving down from token 0 lands past it
    assert doc.nav.move(0, "line", 1) == 1
    assert doc.nav.move(1, "line", 1) == 2
    assert doc.nav.move(2, "line", -1) == 1


def test_motions_on_empty_document() -> None:
    doc = make_doc()
    for kind in ("token", "word", "sentence", "line", "page", "edge"):
        assert doc.nav.move(0, kind, 1) == 0 and doc.nav.move(0, kind, -1) == 0
    assert doc.wrapped.line_count() == 1 and doc.wrapped.line(0) == [] and doc.wrapped.token_at(0, 0) is None


# ---------------------------------------------------------------------------------------------
# ranks and catching up with a stored sample


def test_ranks_follow_the_tokens() -> None:
    doc = make_doc("ab", [0, 1, 2])
    assert doc.spans.ranks == [None, None]
    doc.spans.load("abc", [0, 1, 2, 3], ranks=[5, 7])  # short: padded
    assert doc.spans.ranks == [5, 7, None]
    doc.spans.append("de", [4, 5], ranks=[1, 2, 3])  # long: cut
    assert doc.spans.ranks == [5, 7, None, 1, 2] and doc.spans.n_tokens == 5
    doc.spans.set_ranks(None)
    assert doc.spans.ranks == [None] * 5


def test_extend_to_appends_only_what_is_missing() -> None:
    asm = TokenAssembler()
    pieces = [b"The", b" cat", b" \xf0\x9f", b"\x90\x88", b" sat", b" \xe6\x97"]  # ends mid-character
    streamed = make_doc()
    for i, piece in enumerate(pieces):
        asm.add(i, piece, rank=i + 1)
        if i == 2:  # a batch of the first three tokens
            streamed.spans.append(asm.text, asm.tokens.offsets[1:4], reveal=True, ranks=asm.tokens.rank[:3])
    loads = streamed.spans.load_count
    tokens, text, _ = asm.finish()
    assert text.endswith("\ufffd")
    assert streamed.spans.extend_to(text, tokens.offsets, tokens.rank, reveal=False)
    assert (streamed.spans.text, streamed.spans.offsets, streamed.spans.ranks) == (text, tokens.offsets, tokens.rank)
    assert streamed.spans.revealed == 3 and streamed.spans.load_count == loads  # appended, not reloaded
    # every token already there: the flushed U+FFFD still joins the last token
    whole = make_doc(text[:-1], tokens.offsets[:-1] + [len(text) - 1])
    assert whole.spans.extend_to(text, tokens.offsets, tokens.rank, reveal=True)
    assert whole.spans.offsets == tokens.offsets and whole.spans.text == text and whole.spans.revealed == len(pieces)
    # not a beginning of it: everything is loaded, the reveal count kept
    other = make_doc("A dog", [0, 1, 5], revealed=1)
    assert not other.spans.extend_to(text, tokens.offsets, tokens.rank)
    assert (other.spans.text, other.spans.offsets, other.spans.revealed) == (text, tokens.offsets, 1)


# ---------------------------------------------------------------------------------------------
# bad input


def test_bad_offsets_and_motion_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="out of order"):
        make_doc("abc", [0, 2, 1, 3])
    with pytest.raises(ValueError, match="end at 2"):
        make_doc("abc", [0, 2])
    with pytest.raises(ValueError, match="outside the text"):
        make_doc("abc", [0, 4])
    doc = make_doc("abc", [0, 3])
    with pytest.raises(ValueError, match="new_offsets"):
        doc.spans.append("de", [6])
    with pytest.raises(ValueError, match="new_offsets"):
        doc.spans.append("de", [2])
    with pytest.raises(ValueError, match="unknown cursor motion"):
        doc.nav.move(0, "paragraph", 1)
    with pytest.raises(ValueError, match="without any token"):
        make_doc().spans.append("x", [])
    assert doc.spans.text == "abc" and doc.spans.offsets == [0, 3]  # refused appends change nothing


# ---------------------------------------------------------------------------------------------
# headless


def test_document_imports_only_the_standard_library() -> None:
    code = (
        "import sys; import lmread.tui.document as d; "
        "bad = [m for m in ('textual', 'rich', 'numpy', 'orjson') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_large_document_wraps_every_character_once() -> None:
    words = "lorem ipsum dolor sit amet, 漢字 consectetur 😀 adipiscing elit.\n" * 400
    pieces = [m.group(0).encode() for m in re.finditer(r"\s*\S+|\s+", words)]
    doc = doc_from_pieces(pieces, width=37)
    check_tiling(doc, 37)
    assert all_starts(doc, 37) == ref_line_starts(doc, 37)
