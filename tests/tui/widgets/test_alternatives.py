"""Alternatives that look alike: pieces are drawn with white space and invisible characters made
visible, and two alternatives that still draw the same show their token ids."""

from __future__ import annotations

import math

import pytest

from lmread.backends.base import GenOptions
from lmread.backends.scripted import ScriptedBackend
from lmread.generate import generate_sample
from lmread.records import Mark

pytest.importorskip("textual")

from lmread.tui.widgets.alternatives import alternatives_text, visible_piece
from lmread.tui.widgets.panels import after_mark_text


@pytest.mark.parametrize(("piece", "shown"), [
    (" m", "␣m"), ("m", "m"), ("\n", "⏎"), ("\n\n", "⏎⏎"), ("\t", "⇥"), ("", "∅"), ("  ", "␣␣"),
    ("\r\n", "\\x0d⏎"), ("a\x0bb", "a\\x0bb"), ("\u200b", "\\u200b"), ("\xa0x", "\\xa0x"), ("漢", "漢"),
    ("\\xe6", "\\xe6"),
])
def test_visible_piece(piece: str, shown: str) -> None:
    assert visible_piece(piece) == shown


def test_look_alikes_show_their_ids() -> None:
    lps = [math.log(p) for p in (0.25, 0.2, 0.09, 0.05)]
    text = alternatives_text([" m", "m", " m", "\n"], lps, [281, 76, 1499, 198]).plain
    assert text == "␣m#281 0.25  m 0.20  ␣m#1499 0.09  ⏎ 0.05"
    # no ids recorded: drawn visibly all the same
    assert alternatives_text([" m", " m"], lps[:2], None).plain == "␣m 0.25  ␣m 0.20"


def test_after_mark_panel_draws_alternatives_visibly() -> None:
    backend = ScriptedBackend(text="It was a m m day and then more words.", model_id="m", fake_logprobs=True)
    sample = generate_sample(backend, {"text": "p", "set": "t"}, GenOptions(max_tokens=50, seed=1))
    toks = sample.tokens
    assert toks.top_pieces is not None and toks.top_ids is not None and toks.top_logprobs is not None
    at = 3
    toks.top_pieces[at] = [" m", " m", "\n", "m"]
    toks.top_ids[at] = [76, 281, 198, 1499]
    toks.top_logprobs[at] = [math.log(p) for p in (0.25, 0.09, 0.05, 0.01)]
    mark = Mark(sample=sample.id, annotator="a", kind="fall", at=at, read_to=6, revealed=6, elapsed_s=3.0)
    plain = after_mark_text(sample, mark, show_model=False).plain
    assert "Model's top alternatives here: ␣m#76 0.25  ␣m#281 0.09  ⏎ 0.05  m 0.01" in plain
