"""Reading item positions from a teacher-forced pass: hand-made lists whose right tokens are
known (scripted tokenizers, and SmolLM2's real tokenizer), the document and its schema, errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import pytest

from lmread.backends.openai import OpenAIBackend
from lmread.backends.scripted import ScriptedBackend, split_text
from lmread.errors import BackendError, OptionError
from lmread.probe.core import probe_backend, read_items, run_probe, score_text, token_at
from lmread.probe.document import build_document, format_table, render_csv
from lmread.probe.items import split_items
from lmread.probe.lists import builtin_list

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "annotations" / "schema" /
                     "probe.schema.json").read_text())


def test_token_at_uses_the_first_token_holding_a_byte_of_the_character() -> None:
    # tokens: "ab" | "" (first byte of "é") | "éc" | "d"
    offsets = [0, 2, 2, 4, 5]
    assert [token_at(offsets, c) for c in range(5)] == [0, 0, 1, 2, 3]
    # a token that starts before the character (a merged space) holds it
    assert token_at([0, 3, 8], 4) == 1
    with pytest.raises(ValueError):
        token_at(offsets, 5)


def test_words_tokenizer_merges_the_line_break_into_the_first_token() -> None:
    text = "Alpha one\nBeta two\nGamma\n"
    backend = ScriptedBackend(text=text, model_id="words")
    # words: "Alpha", " one", "\nBeta", " two", "\nGamma", "\n"
    assert split_text(text) == [b"Alpha", b" one", b"\nBeta", b" two", b"\nGamma", b"\n"]
    chunks = backend.score(text)
    readings = read_items(score_text(backend, text), split_items(text))
    assert [r.item for r in readings] == [1, 2] and [r.shots for r in readings] == [1, 2]
    assert [r.token for r in readings] == [2, 4]
    assert [r.piece for r in readings] == ["\nBeta", "\nGamma"]
    assert [r.lead for r in readings] == ["\n", "\n"] and all(r.straddles for r in readings)
    assert [r.rank for r in readings] == [chunks[2].rank, chunks[4].rank]
    assert [r.logprob for r in readings] == [chunks[2].logprob, chunks[4].logprob]
    assert [r.top1 for r in readings] == [chunks[2].rank == 1, chunks[4].rank == 1]
    assert readings[0].top_ids == chunks[2].top_ids
    assert readings[0].word_split == ["Beta"] and readings[0].word_tokens == 1
    assert not readings[0].word_exact  # the token also holds the line break


def test_chars_tokenizer_one_token_per_character() -> None:
    text = "red\ngreen\nblue\n"
    backend = ScriptedBackend(text=text, tokenizer="chars", model_id="chars")
    chunks = backend.score(text)
    items = split_items(text)
    readings = read_items(score_text(backend, text), items)
    assert [r.token for r in readings] == [4, 10]  # "g", "b"
    assert [r.piece for r in readings] == ["g", "b"] and [r.lead for r in readings] == ["", ""]
    assert [r.word_tokens for r in readings] == [5, 4]
    assert readings[0].word_split == list("green") and readings[0].word_exact
    assert readings[0].word_logprob == pytest.approx(sum(c.logprob for c in chunks[4:9]))
    assert readings[1].word_logprob == pytest.approx(sum(c.logprob for c in chunks[10:14]))


def test_bytes_tokenizer_item_starting_with_a_split_character() -> None:
    text = "xy\nÉcole\n🪐 ring\n"
    backend = ScriptedBackend(text=text, tokenizer="bytes", model_id="bytes")
    readings = read_items(score_text(backend, text), split_items(text))
    data = text.encode()
    # the item's first token is the first byte of its first character
    assert [r.token for r in readings] == [data.index("É".encode()), data.index("🪐".encode())]
    assert [r.piece for r in readings] == ["", ""]  # a lone leading byte completes no character
    assert readings[0].word_tokens == len("École".encode())
    assert "".join(readings[0].word_split) == "École"
    assert readings[1].word_tokens == 4 and "".join(readings[1].word_split) == "🪐"  # non-word run: the emoji


def test_document_csv_and_table_validate() -> None:
    text = builtin_list("months")
    items = split_items(text)
    a = ScriptedBackend(text=text, model_id="alpha")
    b = ScriptedBackend(text=text, tokenizer="chars", model_id="beta")
    probes = run_probe(["alpha", "beta"], {"alpha": a, "beta": b}.__getitem__, text, items, source="list 'months'")
    doc = build_document({"list": "months"}, text, items, probes)
    jsonschema.validate(doc, SCHEMA)
    assert doc["schema"] == "lmread.probe/1"
    assert [m["model"] for m in doc["models"]] == ["alpha", "beta"]
    for m in doc["models"]:
        ranks = np.array([r["rank"] for r in m["readings"]])
        assert len(ranks) == 11
        assert m["summary"]["top1_rate"] == pytest.approx(np.mean(ranks == 1))
        assert m["summary"]["top10_rate"] == pytest.approx(np.mean(ranks <= 10))
        assert m["summary"]["median_rank"] == pytest.approx(np.median(ranks))
    # words keep "February" whole, chars cut it into letters: every item differs
    assert doc["split_differs"] == list(range(1, 12))
    assert doc["items"][1]["splits"] == {"alpha": ["February"], "beta": list("February")}
    assert doc["items"][0].get("splits") is None
    rows = list(csv.reader(io.StringIO(render_csv(doc).decode())))
    assert len(rows) == 1 + 2 * 11 and rows[0][:4] == ["model", "backend", "item", "shots"]
    assert rows[1][:4] == ["alpha", "scripted", "1", "1"] and rows[1][8] == "\nFebruary"
    table = format_table(doc)
    s = doc["models"][0]["summary"]
    assert f"{100 * s['top1_rate']:.1f}%" in table and "split the first word differently in 11 items" in table


class ContextLimited(ScriptedBackend):
    """A scripted model with a context window, refusing longer texts like the real backends."""

    n_ctx = 8

    def score(self, text: str, prompt: str = "", top_logprobs: int = 5) -> list[Any]:
        n = len(split_text(text, self.tokenizer))
        if n > self.n_ctx:
            raise OptionError(f"prompt and text have {n} tokens, the context holds {self.n_ctx}; shorten them or raise --ctx")
        return super().score(text, prompt, top_logprobs)


def test_a_list_longer_than_the_context_names_both_lengths() -> None:
    text = builtin_list("months")
    with pytest.raises(OptionError) as err:
        probe_backend(ContextLimited(text=text), text, split_items(text), model="tiny", backend_name="scripted",
                      source="list 'months'")
    msg = str(err.value)
    assert "list 'months' does not fit the context of model tiny (scripted)" in msg
    assert "13 tokens, the context holds 8; shorten them" in msg and "\n" not in msg


def echo_server(text_pieces: list[str] | None) -> OpenAIBackend:
    """An OpenAI-compatible backend on a mock server: echoes prompt logprobs when ``text_pieces``
    is given, else answers without them (a server that cannot score)."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "served", "object": "model"}]})
        prompt = json.loads(request.content)["prompt"]
        if text_pieces is None:
            return httpx.Response(200, json={"choices": [{"text": prompt + "!", "index": 0, "finish_reason": "length"}]})
        tokens = [*text_pieces, "!"]
        offsets = [0]
        for t in tokens[:-1]:
            offsets.append(offsets[-1] + len(t))
        lps = [None] + [-0.5 - 0.1 * i for i in range(1, len(tokens))]
        tops = [None] + [{t: lp, "zz": lp - 1.0} for t, lp in zip(tokens[1:], lps[1:], strict=True)]
        return httpx.Response(200, json={
            "choices": [{"text": prompt + "!", "index": 0, "finish_reason": "length",
                         "logprobs": {"tokens": tokens, "text_offset": offsets, "token_logprobs": lps,
                                      "top_logprobs": tops}}],
            "usage": {"prompt_tokens": len(text_pieces), "completion_tokens": 1}})

    return OpenAIBackend("http://127.0.0.1:9/v1", "served", transport=httpx.MockTransport(handle))


def test_openai_backend_probes_where_the_server_echoes_and_fails_in_one_line_where_not() -> None:
    text = "Mercury\nVenus\nEarth\n"
    pieces = ["Mercury", "\n", "Ven", "us", "\n", "Earth", "\n"]
    probe = probe_backend(echo_server(pieces), text, split_items(text), model="served", backend_name="openai")
    assert [r.piece for r in probe.readings] == ["Ven", "Earth"]
    assert [r.word_split for r in probe.readings] == [["Ven", "us"], ["Earth"]]
    assert probe.readings[0].word_logprob == pytest.approx(-0.7 + -0.8)
    assert probe.readings[0].rank == 1
    with pytest.raises(BackendError) as err:
        probe_backend(echo_server(None), text, split_items(text), model="served", backend_name="openai",
                      source="list 'planets'")
    assert str(err.value).startswith("model served (openai) cannot probe list 'planets': scoring not supported")


@pytest.mark.slow
def test_real_tokenizer_hand_made_list(llama_smollm2: Any) -> None:
    """SmolLM2's tokenizer keeps a line break apart from the next word, and has these weekdays
    as single tokens: the item's first token is the whole day, right after the line break."""
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    text = "\n".join(days) + "\n"
    ids = llama_smollm2.tokenize(text, as_prompt=False)
    probe = probe_backend(llama_smollm2, text, split_items(text), model="smollm2-135m", backend_name="llamacpp")
    assert [r.piece for r in probe.readings] == days[1:]
    assert [r.lead for r in probe.readings] == [""] * 6
    # token k of the text is day k/2 (day, line break, day, ...)
    assert [r.token for r in probe.readings] == [2 * k for k in range(1, 7)]
    assert [r.token_id for r in probe.readings] == [ids[2 * k] for k in range(1, 7)]
    assert all(r.word_tokens == 1 and r.word_exact for r in probe.readings)
    # after one shot the model cannot know a list is coming (rank ~200); from two shots on the
    # right day is in its top 10, and at the end of the week it is its first choice
    assert probe.readings[0].rank > 10
    assert all(r.rank <= 10 for r in probe.readings[1:])
    assert probe.readings[-1].top1 and probe.readings[-2].top1


@pytest.mark.slow
def test_llamacpp_spans_pass_agrees_with_the_one_by_one_pass(llama_smollm2: Any) -> None:
    """The batched pass the probe uses on llama.cpp: the same tokens, distributions exactly on the
    tokens of the spans, within the cross-backend tolerance of one-by-one decoding."""
    text = builtin_list("planets") + builtin_list("months")
    items = split_items(text)
    spans = [(i.start, i.word_end) for i in items[1:]]
    full = llama_smollm2.score(text, top_logprobs=10)
    part = llama_smollm2.score(text, top_logprobs=10, spans=spans)
    assert [c.id for c in part] == [c.id for c in full] and [c.piece for c in part] == [c.piece for c in full]
    scored = score_text(llama_smollm2, text)
    expected = set()
    for item in items[1:]:
        first, last = token_at(scored.offsets, item.start), token_at(scored.offsets, item.word_end - 1)
        expected |= set(range(first, last + 1))
    assert {i for i, c in enumerate(part) if c.logprob is not None} == expected
    rows = sorted(expected)
    diff = np.abs(np.array([part[i].logprob for i in rows]) - np.array([full[i].logprob for i in rows]))
    assert diff.mean() < 0.1
    assert np.mean([part[i].rank == full[i].rank for i in rows]) >= 0.8
    assert all(len(part[i].top_ids) == 10 for i in rows)


def test_example_probe_document_validates() -> None:
    path = Path(__file__).resolve().parents[2] / "annotations" / "examples" / "probe-planets.json"
    doc = json.loads(path.read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["source"] == {"list": "planets"} and [m["model"] for m in doc["models"]] == ["smollm2-135m", "gemma3-270m"]
    for m in doc["models"]:
        assert m["summary"]["top10_rate"] == pytest.approx(np.mean([r["top10"] for r in m["readings"]]))


@pytest.mark.server
def test_a_real_server_that_cannot_score_is_a_one_line_error(openai_smollm2: Any) -> None:
    """llama-cpp-python's server echoes SmolLM2's prompt logprobs one token off: refused."""
    text = builtin_list("planets")
    with pytest.raises(BackendError) as err:
        probe_backend(openai_smollm2, text, split_items(text), model="smollm2-135m", backend_name="openai",
                      source="list 'planets'")
    msg = str(err.value)
    assert msg.startswith("model smollm2-135m (openai) cannot probe list 'planets': scoring not supported by this server")
    assert "\n" not in msg


def test_a_backend_that_declares_no_scoring_is_refused_in_one_line() -> None:
    from lmread.errors import ModelError

    class NoScore(ScriptedBackend):
        supports_score = False

    text = builtin_list("planets")
    with pytest.raises(ModelError, match=r"^model x \(scripted\) cannot score texts"):
        probe_backend(NoScore(text=text), text, split_items(text), model="x", backend_name="scripted")
