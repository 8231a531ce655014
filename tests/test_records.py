"""Records: token assembly with split UTF-8, sample/mark codecs, options, distribution helpers."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import orjson
import pytest

from lmread.backends.base import GenOptions, distribution_fields, sample_token
from lmread.errors import MarkError, OptionError, SchemaVersionError, StudyError
from lmread.records import Mark, Prompt, Sample, TokenAssembler, check_category, sample_id, schema_version


def test_split_emoji_belongs_to_the_token_with_its_last_byte() -> None:
    emoji = "😀".encode()  # 4 bytes
    asm = TokenAssembler(with_distribution=False)
    assert asm.add(1, b"ok ") == "ok "
    assert asm.add(2, emoji[:1]) == ""
    assert asm.add(3, emoji[1:3]) == ""
    assert asm.add(4, emoji[3:] + b"!") == "😀!"
    tokens, text, raw = asm.finish()
    assert text == "ok 😀!" and raw is None
    assert tokens.offsets == [0, 3, 3, 3, 5]
    assert tokens.nbytes == [3, 1, 2, 2]


def test_invalid_and_truncated_bytes_are_kept() -> None:
    asm = TokenAssembler(with_distribution=False)
    asm.add(1, b"a\xff")
    asm.add(2, "é".encode()[:1])  # generation ends mid-character
    tokens, text, raw = asm.finish()
    assert raw == b"a\xff\xc3"
    assert text == "a\ufffd\ufffd"
    assert tokens.offsets[-1] == len(text)
    sample = Sample(id="s", model={"id": "m"}, backend="x", prompt={"text": ""}, settings={}, seed=1, text=text,
                    tokens=tokens, finish_reason="length", raw=raw)
    back = Sample.from_json(orjson.loads(sample.dumps()), "test")
    assert back.raw == raw and back.text == text and back.tokens.offsets == tokens.offsets


def test_sample_roundtrip_with_distributions() -> None:
    asm = TokenAssembler()
    asm.add(5, b"Hi", -0.5, 1, 2.0, [5, 6], [-0.5, -1.0], [b"Hi", b"\xe6"])
    tokens, text, raw = asm.finish()
    assert tokens.top_pieces == [["Hi", "\\xe6"]]
    s = Sample(id="s", model={"id": "m"}, backend="x", prompt={"text": "p"}, settings={"t": 1}, seed=3, text=text,
               tokens=tokens, finish_reason="eos")
    back = Sample.from_json(orjson.loads(s.dumps()), "here")
    assert back.tokens.logprob == [-0.5] and back.tokens.top_ids == [[5, 6]] and back.seed == 3


def test_sample_id_is_stable_and_depends_on_definition() -> None:
    model = {"id": "m", "sha256": "abc", "backend": "llamacpp", "n_params": 5}
    a = sample_id(model, {"text": "p"}, {"temperature": 1.0}, 7)
    assert a == sample_id(dict(model, n_params=6), {"text": "p", "set": "x"}, {"temperature": 1.0}, 7)
    assert a != sample_id(model, {"text": "p"}, {"temperature": 1.0}, 8)
    assert a != sample_id(model, {"text": "q"}, {"temperature": 1.0}, 7)


def test_schema_versions() -> None:
    assert schema_version({"schema": "lmread.mark/1"}, "lmread.mark/1", "x") == 1
    with pytest.raises(SchemaVersionError):
        schema_version({"schema": "lmread.mark/2"}, "lmread.mark/1", "x")
    with pytest.raises(StudyError, match="expected lmread.mark/1"):
        schema_version({"schema": "lmread.sample/1"}, "lmread.mark/1", "x")
    with pytest.raises(StudyError, match="missing"):
        schema_version({}, "lmread.mark/1", "x")
    # a schema accepted once is remembered per expected schema: the same string is still refused
    # where another schema is expected, and a newer one still refused after an older one passed
    assert schema_version({"schema": "lmread.mark/1"}, "lmread.mark/2", "x") == 1
    with pytest.raises(StudyError, match="expected lmread.sample/1"):
        schema_version({"schema": "lmread.mark/1"}, "lmread.sample/1", "x")
    with pytest.raises(SchemaVersionError):
        schema_version({"schema": "lmread.mark/3"}, "lmread.mark/2", "x")


def test_mark_validation() -> None:
    assert check_category("Repetition / loop") == "repetition"
    with pytest.raises(MarkError):
        Mark(sample="s", annotator="a", kind="fall").validate()
    with pytest.raises(MarkError):
        Mark(sample="s", annotator="a", kind="no_fall", read_to=3, category="grammar").validate()
    with pytest.raises(MarkError):
        Mark(sample="s", annotator="a", kind="eaten").validate()
    m = Mark(sample="s", annotator="a", kind="fall", at=0, note="two\nlines").validate()
    assert m.note == "two lines"
    assert check_category("grammar") == "grammar" and check_category(" GRAMMAR ") == "grammar"
    with pytest.raises(MarkError, match="unknown category"):
        check_category("gramar")
    with pytest.raises(MarkError, match="must be a string"):
        check_category(["grammar"])  # type: ignore[arg-type]
    # names that passed are remembered; a bad name is refused however many good ones came first
    for name in ("a", "reader-1", "a"):
        Mark(sample="s", annotator=name, kind="fall", at=0).validate()
    for bad in ("../a", "", ".", "a/b", 3):
        with pytest.raises(MarkError, match="not allowed"):
            Mark(sample="s", annotator=bad, kind="fall", at=0).validate()  # type: ignore[arg-type]


def test_a_mark_with_a_category_that_is_no_string_is_a_one_line_study_error() -> None:
    record = {"schema": "lmread.mark/1", "id": "m1", "kind": "fall", "sample": "s", "annotator": "a",
              "time": "2026-01-01T00:00:00Z", "at": 2, "category": {"key": "grammar"}}
    with pytest.raises(StudyError, match="marks.jsonl: line 4: a category must be a string"):
        Mark.from_json(record, "marks.jsonl: line 4")


def test_a_samples_word_starts_follow_the_word_rule_and_are_found_once() -> None:
    from lmread.records import WORD_RE
    from lmread.records.words import word_starts

    for text in ["", "  ", "one", " two  words\n", "tab\there\u00a0nbsp\u3000ideographic end", "ünï cödé 語 😀 x"]:
        assert word_starts(text).tolist() == [m.start() for m in WORD_RE.finditer(text)]
    sample = Sample.from_json(orjson.loads((EXAMPLES / "example-study" / "samples.jsonl").read_bytes().splitlines()[0]), "x")
    assert sample.word_starts == [m.start() for m in WORD_RE.finditer(sample.text)]
    assert sample.word_starts is sample.word_starts  # cached on the sample


@pytest.mark.parametrize(("field", "value"), [
    ("max_tokens", 0), ("temperature", -1.0), ("temperature", float("nan")), ("top_p", 0.0), ("top_p", 1.5),
    ("top_k", -2), ("min_p", 2.0), ("repetition_penalty", 0.0), ("seed", -1), ("stop", [""]),
])
def test_invalid_options(field: str, value: object) -> None:
    with pytest.raises(OptionError, match=field.replace("_", "-")):
        GenOptions(**{field: value}).validate()


def test_distribution_fields_match_a_direct_softmax() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=1000).astype(np.float32) * 3
    token = int(np.argsort(-logits)[4])
    lp, rank, ent, top_ids, top_lp = distribution_fields(logits, token, 5)
    p = np.exp(logits.astype(np.float64) - logits.max())
    p /= p.sum()
    assert math.isclose(lp, math.log(p[token]), abs_tol=1e-5)
    assert rank == 5
    assert math.isclose(ent, float(-(p * np.log(p)).sum()), abs_tol=1e-4)
    assert list(top_ids) == list(np.argsort(-logits)[:5])
    assert math.isclose(top_lp[4], lp, abs_tol=1e-6)


def test_sample_token_greedy_topk_and_seeded() -> None:
    logits = np.array([0.0, 5.0, 1.0, 4.9])
    assert sample_token(logits, GenOptions(temperature=0.0), np.random.default_rng(0)) == 1
    draws = {sample_token(logits, GenOptions(top_k=2), np.random.default_rng(s)) for s in range(50)}
    assert draws == {1, 3}
    a = [sample_token(logits, GenOptions(), np.random.default_rng(9)) for _ in range(3)]
    b = [sample_token(logits, GenOptions(), np.random.default_rng(9)) for _ in range(3)]
    assert a == b
    assert sample_token(logits, GenOptions(repetition_penalty=100.0, temperature=0.0), np.random.default_rng(0),
                        history=[1]) == 3


# ---- byte-for-byte round trips -----------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parent.parent / "annotations" / "examples"


def test_example_samples_round_trip_byte_for_byte() -> None:
    lines = (EXAMPLES / "example-study" / "samples.jsonl").read_bytes().splitlines(keepends=True)
    assert len(lines) == 6
    for k, line in enumerate(lines):
        sample = Sample.from_json(orjson.loads(line), f"samples.jsonl:{k + 1}")
        assert isinstance(sample.prompt, Prompt)
        assert sample.dumps() == line


def test_example_marks_round_trip_byte_for_byte() -> None:
    files = sorted((EXAMPLES / "example-study" / "marks").glob("*.jsonl"))
    assert len(files) == 2
    for file in files:
        for k, line in enumerate(file.read_bytes().splitlines(keepends=True)):
            assert Mark.from_json(orjson.loads(line), f"{file.name}:{k + 1}").dumps() == line


def test_prompt_is_typed_and_keeps_its_layout() -> None:
    generated = Prompt(text="Once", set="story", name="story-01")
    assert generated.to_json() == {"text": "Once", "set": "story", "name": "story-01"}
    assert orjson.dumps(Prompt(text="p").to_json()) == b'{"text":"p","set":null,"name":null}'
    imported = Prompt.of({"text": "p", "set": "s"})
    assert (imported.text, imported.set, imported.name) == ("p", "s", None)
    assert orjson.dumps(imported.to_json()) == b'{"text":"p","set":"s"}'
    odd = Prompt.of({"name": "n", "lang": "de", "text": "t"})
    assert orjson.dumps(odd.to_json()) == b'{"name":"n","lang":"de","text":"t"}'
    assert odd["lang"] == "de" and odd.get("set") is None and dict(odd) == {"name": "n", "lang": "de", "text": "t"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        generated.text = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Prompt.of({"text": 3})
    # layouts that passed are remembered; a layout that does not match its fields is still refused
    for _ in range(2):
        Prompt(text="t", layout=("text", "lang"), extra=(("lang", "de"),))
        with pytest.raises(ValueError, match="does not match"):
            Prompt(text="t", layout=("text", "lang"), extra=())
        with pytest.raises(ValueError, match="does not match"):
            Prompt(text="t", layout=("text", "text"))
    with pytest.raises(StudyError, match="malformed sample"):
        Sample.from_json({**orjson.loads((EXAMPLES / "example-study" / "samples.jsonl").read_bytes().splitlines()[0]),
                          "prompt": {"text": "p", "set": 7}}, "x")


def test_prompt_equality_is_json_equality() -> None:
    assert Prompt(text="p") == {"text": "p", "set": None, "name": None} == Prompt.of({"text": "p", "set": None,
                                                                                          "name": None})
    assert Prompt(text="p") != Prompt.of({"text": "p"}) and Prompt(text="p") != Prompt(text="q")
    assert Prompt(text="p") != "p"
    assert len({Prompt(text="p"), Prompt.of({"text": "p", "set": None, "name": None})}) == 1
