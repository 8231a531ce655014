"""The sentence unit: the documented splitter, sentence starts recorded by an import, counting
before a token, and prompt_fall marks (schema lmread.mark/2) in records and studies."""

from __future__ import annotations

import orjson
import pytest

from lmread.errors import MarkError, StudyError
from lmread.importer.passages import Guess, Passage, guess_mark, passage_sample
from lmread.records import Mark, Sample
from lmread.sentences import join_sentences, sentence_count, sentences_before, split_sentences
from lmread.study import Study


def test_splitter_rules() -> None:
    text = 'He left. "Why?" she asked! Then… nothing.  Next\n\nA new paragraph without a stop\nstill one'
    starts = split_sentences(text)
    pieces = [text[a:b].strip() for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
    # a stop followed by a closing quote ends the sentence too (no guessing about dialogue tags)
    assert pieces == ["He left.", '"Why?"', "she asked!", "Then…", "nothing.", "Next",
                      "A new paragraph without a stop\nstill one"]
    assert split_sentences("") == [] and split_sentences("   ") == []
    assert split_sentences("  Leading space. Two.") == [2, 17]
    assert split_sentences("Dr. Smith came.") == [0, 4]  # no abbreviation list (documented)
    assert split_sentences("3.14 is pi. Yes") == [0, 12]  # a stop not followed by whitespace ends nothing


def test_sentences_in_text_for_a_live_stream() -> None:
    from lmread.sentences import sentences_in_text

    text = "One. Two is here. Thr"
    assert sentences_in_text(text) == 3 and sentences_in_text(text, 5) == 1 and sentences_in_text(text, 6) == 2
    assert sentences_in_text("") == 0 and sentences_in_text("   ", 2) == 0


def test_join_sentences_records_starts() -> None:
    text, starts = join_sentences(["One.", "Two two.", "Three."], lead=" ")
    assert text == " One. Two two. Three." and starts == [1, 6, 15]


def _passage(kind: str = "machine", boundary: int | None = 2) -> Passage:
    sents = [f"Sentence number {i} here." for i in range(10)]
    return Passage(sents, boundary, kind, {"id": "gpt2", "name": "gpt2", "n_params": 124_000_000}, {"top_p": 0.4},
                   "Short Stories", ("t", kind, boundary))


def test_sentences_before_uses_the_imports_starts() -> None:
    sample = passage_sample(_passage())
    assert sample.prompt["text"].count("Sentence") == 3 and sample.text.count("Sentence") == 7
    assert sentence_count(sample) == 7
    # the fall at the first token of machine sentence k has k sentences before it
    for k in range(7):
        mark = guess_mark(_passage(), sample, Guess("r", 2 + k))
        assert mark.kind == "fall" and sentences_before(sample, mark.at) == k
    assert sentences_before(sample, sample.n_tokens) == 7 and sentences_before(sample, 10**6) == 7
    # recorded starts win over the splitter: a sample whose text has no stops still counts them
    plain = Sample(id="x", model={}, backend="import", prompt={"text": ""}, settings={}, seed=None, text="a b c d",
                   tokens=sample.tokens.__class__(ids=[-1] * 4, offsets=[0, 1, 3, 5, 7], nbytes=[1, 2, 2, 2]),
                   finish_reason="eos", sentences=[0, 4])
    assert sentences_before(plain, 2) == 1 and sentences_before(plain, 3) == 2


def test_guess_marks_for_every_case() -> None:
    machine = passage_sample(_passage())
    early = guess_mark(_passage(), machine, Guess("r", 0))
    assert early.kind == "prompt_fall" and machine.prompt["text"][early.prompt_at:].startswith("Sentence number 1")
    assert guess_mark(_passage(), machine, Guess("r", None)).kind == "no_fall"
    human = passage_sample(_passage("human", None))
    assert human.control["kind"] == "human" and human.prompt["text"] == "Sentence number 0 here."
    fall = guess_mark(_passage("human", None), human, Guess("r", 0))
    assert fall.kind == "fall" and human.text[human.tokens.offsets[fall.at]:].lstrip().startswith("Sentence number 1")
    splice = passage_sample(_passage("splice", 4))
    onset = splice.control["onset"]
    assert splice.text[splice.tokens.offsets[onset]:].lstrip().startswith("Sentence number 5")


def test_prompt_fall_mark_roundtrip_and_validation(tmp_path) -> None:
    sample = passage_sample(_passage())
    study = Study.create(tmp_path / "s")
    study.add_samples([sample])
    mark = guess_mark(_passage(), sample, Guess("reader1", 1))
    study.append_marks([mark])
    line = (tmp_path / "s" / "marks" / "reader1.jsonl").read_bytes()
    data = orjson.loads(line)
    assert data["schema"] == "lmread.mark/2" and data["kind"] == "prompt_fall" and "at" not in data
    again = Study.open(tmp_path / "s")
    assert [m.kind for m in again.marks()] == ["prompt_fall"]
    assert again.info()["annotators"][0]["fallen"] == 1
    # an ordinary mark stays lmread.mark/1, byte for byte
    assert orjson.loads(Mark(sample="s", annotator="a", kind="fall", at=1).dumps())["schema"] == "lmread.mark/1"
    with pytest.raises(StudyError, match="needs schema lmread.mark/2"):
        Mark.from_json({**data, "schema": "lmread.mark/1"}, "here")
    with pytest.raises(MarkError, match="prompt_at"):
        Mark(sample="s", annotator="a", kind="prompt_fall").validate()
    with pytest.raises(MarkError, match="prompt_fall mark only"):
        Mark(sample="s", annotator="a", kind="fall", at=0, prompt_at=3).validate()
    with pytest.raises(MarkError, match="outside the prompt"):
        study.check_mark(Mark(sample=sample.id, annotator="a", kind="prompt_fall", prompt_at=10_000))


def test_sample_sentences_are_checked() -> None:
    sample = passage_sample(_passage())
    data = sample.to_json()
    assert Sample.from_json(orjson.loads(orjson.dumps(data)), "x").sentences == sample.sentences
    with pytest.raises(StudyError, match="ascending character offsets"):
        Sample.from_json({**data, "sentences": [5, 3]}, "x")
    plain = {k: v for k, v in data.items() if k != "sentences"}
    assert Sample.from_json(plain, "x").sentences is None


@pytest.mark.parametrize("text", ["", " a  b\n c ", "héllo 🏰 東京 wörld  ", "   ", "x", "Tab\tand\r\nCRLF."])
def test_import_tokens_equal_the_assembler(text: str) -> None:
    """The importer builds word tokens directly; they must equal what TokenAssembler makes."""
    from lmread.backends.scripted import split_text
    from lmread.importer.passages import _assemble
    from lmread.records import TokenAssembler

    assembler = TokenAssembler(with_distribution=False)
    for piece in split_text(text, "words"):
        assembler.add(-1, piece)
    tokens, out, raw = assembler.finish()
    mine, mine_text = _assemble(text)
    assert mine.to_json() == tokens.to_json() and mine_text == out and raw is None
