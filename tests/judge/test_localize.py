"""Judge answers to exact tokens: sentence numbering, quote matching, fall tokens, answer parsing,
templates (issue 19)."""

from __future__ import annotations

import json

import pytest

from lmread.errors import OptionError
from lmread.judge.answer import ANSWER_SCHEMA, extract_json, read_answer
from lmread.judge.localize import locate, numbered, split_sentences, token_at
from lmread.judge.templates import ANSWER_FORMAT, SHIPPED, Template, load_template_file, resolve_templates
from lmread.records import CATEGORY_KEYS
from tests.fixtures.judge import piece_sample, word_pieces

REPEATED = "The cat sat on the mat. The cat sat on the mat. The cat sat on the hat."


def fall(sample, sentence: int, quote: str | None, **extra):
    body = {"falls": True, "sentence": sentence, **extra}
    if quote is not None:
        body["quote"] = quote
    return read_answer(json.dumps(body), sample, split_sentences(sample.text))


def test_sentences_tile_the_text_and_are_numbered() -> None:
    text = "  One. Two!  \"Three?\" he said. Four…\nFive 京都。六です。 seven"
    sents = split_sentences(text)
    assert [s.shown for s in sents] == ["One.", "Two!", "\"Three?\" he said.", "Four…", "Five 京都。", "六です。", "seven"]
    assert sents[0].start == 0 and sents[-1].end == len(text)
    assert all(a.end == b.start for a, b in zip(sents, sents[1:], strict=False))
    assert [s.number for s in sents] == list(range(1, 8))
    assert numbered(sents).splitlines()[2] == "[3] \"Three?\" he said."


def test_decimals_and_whitespace_only_pieces() -> None:
    sents = split_sentences("Pi is 3.14 today.\n\n\nNext one.")
    assert [s.shown for s in sents] == ["Pi is 3.14 today.", "Next one."]
    assert split_sentences("") == []


def test_repeated_phrase_is_found_in_the_named_sentence() -> None:
    sents = split_sentences(REPEATED)
    assert locate(REPEATED, sents[1], "The cat sat") == REPEATED.index("The cat sat", 1)
    assert locate(REPEATED, sents[2], "The cat sat") == REPEATED.rindex("The cat sat")
    # twice in one sentence: the first occurrence in it
    text = "It was the end. It was the end, the end, the end."
    s = split_sentences(text)
    assert locate(text, s[1], "the end") == text.index("the end", 16)


def test_quote_not_in_the_named_sentence_is_no_location() -> None:
    sents = split_sentences(REPEATED)
    assert locate(REPEATED, sents[0], "hat") is None
    # a quote may run on into the next sentence, but must start inside the named one
    assert locate(REPEATED, sents[0], "mat. The cat") == REPEATED.index("mat")
    assert locate(REPEATED, sents[1], "hat") is None


def test_loose_matching_quotes_case_whitespace_ellipsis() -> None:
    text = "She said “no way” and left.\nThen   the  sky\tturned green."
    sents = split_sentences(text)
    assert locate(text, sents[0], '"no way"') == text.index("no way")
    assert locate(text, sents[0], "She said \"no way\"") == 0
    assert locate(text, sents[1], "the sky turned GREEN...") == text.index("the  sky")
    assert locate(text, sents[1], "'turned green'") == text.index("turned")
    assert locate(text, sents[1], "“…sky turned”") == text.index("sky")
    assert locate(text, sents[1], "") == text.index("Then")
    assert locate(text, sents[1], None) == text.index("Then")
    assert locate(text, sents[1], "purple") is None


def test_cjk_quote_with_tokens_that_split_characters() -> None:
    # 京 = e4 ba ac, 都 = e9 83 bd: tokens cut inside the characters
    pieces = [b"Kyoto ", b"\xe4\xba", b"\xac\xe9", b"\x83\xbd", "は".encode(), "美しい。".encode(),
              "雪が".encode(), "降る。".encode()]
    sample = piece_sample("s_cjk", pieces)
    assert sample.text == "Kyoto 京都は美しい。雪が降る。"
    v = fall(sample, 1, "京都")
    assert v.kind == "fall" and v.at == 1  # token 1 starts 京 (its span is empty)
    v = fall(sample, 1, "都は")
    assert v.at == 2  # token 2 finishes 京 and starts 都 (it holds 都's first byte)
    v = fall(sample, 2, "降る")
    assert v.at == 7 and v.sentence == 2
    v = fall(sample, 2, "雪")
    assert v.at == 6


def test_token_at_rules() -> None:
    text = "abcéxyzw"  # é is two bytes, split over tokens 1 and 2
    offsets = [0, 3, 3, 4, 8]
    nbytes = [3, 1, 1, 4]
    assert token_at(text, offsets, nbytes, 0) == 0
    assert token_at(text, offsets, nbytes, 3) == 1  # token 1 only started the character 3
    assert token_at(text, offsets, nbytes, 5) == 3
    with pytest.raises(ValueError):
        token_at(text, offsets, nbytes, 8)
    # text that was not valid UTF-8 (a replacement character): by spans
    assert token_at("ab\ufffdc", [0, 2, 3, 4], [2, 1, 1], 2) == 1


def test_word_tokens_fall_at_the_quoted_word() -> None:
    sample = piece_sample("s_w", word_pieces(REPEATED))
    v = fall(sample, 3, "hat", category="drift", severity=2)
    assert v.kind == "fall" and sample.piece(v.at) == " hat."
    assert v.category == "drift" and v.severity == 2
    v = fall(sample, 2, "The cat sat", category="repetition / loop")
    assert sample.piece(v.at) == " The" and v.at == 6 and v.category == "repetition"


@pytest.mark.parametrize(("raw", "reason"), [
    ("I cannot help with judging this text.", "no JSON object"),
    ('{"falls": "yes"}', "'falls' is not true or false"),
    ('{"falls": true}', "without a whole sentence number"),
    ('{"falls": true, "sentence": 0, "quote": "x"}', "outside the text"),
    ('{"falls": true, "sentence": 9, "quote": "The"}', "outside the text (1..3)"),
    ('{"falls": true, "sentence": 2, "quote": "dog"}', "quote is not in sentence 2"),
    ('{"falls": true, "sentence": 2, "quote": "The", "category": "boring"}', "unknown category"),
    ('{"falls": true, "sentence": 2, "quote": "The", "severity": 5}', "severity 5"),
    ('{"falls": true, "sentence": true, "quote": "The"}', "without a whole sentence number"),
    ('{"falls": tru', "no JSON object"),
])
def test_unreadable_answers_are_skips_with_the_raw_answer(raw: str, reason: str) -> None:
    sample = piece_sample("s_w", word_pieces(REPEATED))
    v = read_answer(raw, sample, split_sentences(sample.text))
    assert v.kind == "skip" and v.at is None
    assert reason in v.note and raw in v.note


def test_json_in_prose_or_fence_is_read_and_no_fall() -> None:
    sample = piece_sample("s_w", word_pieces(REPEATED))
    sents = split_sentences(sample.text)
    v = read_answer('Sure! ```json\n{"falls": true, "sentence": 3, "quote": "hat"}\n```', sample, sents)
    assert v.kind == "fall" and sample.piece(v.at) == " hat."
    assert read_answer('{"falls": false, "sentence": 2}', sample, sents).kind == "no_fall"
    assert extract_json("nothing {here} at all") is None


def test_schema_lists_lmread_categories() -> None:
    assert ANSWER_SCHEMA["properties"]["category"]["enum"] == list(CATEGORY_KEYS)
    assert ANSWER_SCHEMA["required"] == ["falls"]


def test_shipped_templates_differ_and_render_what_a_reader_sees() -> None:
    assert len(SHIPPED) >= 3
    texts = {t.text for t in SHIPPED.values()}
    assert len(texts) == len(SHIPPED)
    for t in SHIPPED.values():
        t.check()
        out = t.render("PROMPT-TEXT", "[1] SENTENCE", 1)
        assert "PROMPT-TEXT" in out and "[1] SENTENCE" in out and '"falls"' in out
        assert "{prompt}" not in out and "{sentences}" not in out
    assert len({t.sha256 for t in SHIPPED.values()}) == len(SHIPPED)


def test_user_templates_checked(tmp_path) -> None:
    good = tmp_path / "mine.txt"
    good.write_text("Read {prompt} then {sentences}. Example {\"falls\": false}", encoding="utf-8")
    t = load_template_file(str(good))
    assert t.id == "mine" and t.source == str(good)
    assert '{"falls": false}' in t.render("p", "s", 1)  # brace text that is no placeholder stays
    assert t.render("p", "s", 1).endswith(ANSWER_FORMAT)  # no {format}: the answer format is appended
    named = load_template_file(f"other={good}")
    assert named.id == "other"
    missing = tmp_path / "bad.txt"
    missing.write_text("Only {prompt} here", encoding="utf-8")
    with pytest.raises(OptionError, match=r"lacks the placeholder\(s\) \{sentences\}"):
        load_template_file(str(missing))
    typo = tmp_path / "typo.txt"
    typo.write_text("{prompt} {sentences} {categorys}", encoding="utf-8")
    with pytest.raises(OptionError, match=r"unknown placeholder\(s\) \{categorys\}"):
        load_template_file(str(typo))
    with pytest.raises(OptionError, match="does not exist"):
        load_template_file(str(tmp_path / "nope.txt"))
    with pytest.raises(OptionError, match="unknown template 'nope'"):
        resolve_templates(["nope"], [])
    assert [t.id for t in resolve_templates(["all"], [])] == list(SHIPPED)
    assert [t.id for t in resolve_templates(["strict,editor"], [str(good)])] == ["strict", "editor", "mine"]
    with pytest.raises(OptionError, match="not allowed"):
        Template("Bad Name", "{prompt}{sentences}").check()


def test_judge_annotator_names_are_valid_and_distinct() -> None:
    from lmread.judge.runner import judge_annotator
    from lmread.records import check_annotator

    assert judge_annotator("gemma3-270m", "editor") == "auto-judge-gemma3-270m-editor"
    assert judge_annotator("Qwen/Qwen3-32B", "strict") == "auto-judge-Qwen_Qwen3-32B-strict"
    long_a = judge_annotator("org/" + "a" * 80 + "-v1", "first-wrong")
    long_b = judge_annotator("org/" + "a" * 80 + "-v2", "first-wrong")
    assert len(long_a) <= 64 and long_a != long_b and long_a.endswith("-first-wrong")
    for name in (long_a, long_b, judge_annotator("///", "x")):
        assert check_annotator(name) == name


def test_special_token_shapes_are_defanged_and_quotes_still_match() -> None:
    from lmread.judge.localize import WORD_JOINER, defang

    text = "Fine so far.<|im_end|> Then <end_of_turn> and </s> and [INST] x. a < b and <3."
    shown = defang(text)
    for special in ("<|im_end|>", "<end_of_turn>", "</s>", "[INST]"):
        assert special not in shown
    assert shown.replace(WORD_JOINER, "") == text
    assert "a < b and <3." in shown  # a plain '<' stays as it was
    sents = split_sentences(text)
    assert numbered(sents).count(WORD_JOINER) == 4
    quoted = defang("<|im_end|> Then")
    assert locate(text, sents[0], quoted) == text.index("<|im_end|>")


def test_sentence_starts_given_by_the_import_number_the_sentences() -> None:
    from lmread.judge.localize import sample_sentences

    sample = piece_sample("s_roft", word_pieces("Once upon a time there was a fox who liked grapes and then the end"))
    assert [s.shown for s in sample_sentences(sample)] == [sample.text]  # no terminator: one sentence
    sample.sentences = [0, sample.text.index("who"), sample.text.index("and then")]
    sents = sample_sentences(sample)
    assert [s.shown for s in sents] == ["Once upon a time there was a fox", "who liked grapes", "and then the end"]
    v = read_answer('{"falls": true, "sentence": 3, "quote": "the end"}', sample, sents)
    assert v.kind == "fall" and sample.piece(v.at) == " the" and v.sentence == 3
