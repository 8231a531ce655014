"""Reading speed (words per second of a mark), the survival filter on it, and the overlap share
of the reading order."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from lmread.analysis.reading_speed import (
    DEFAULT_MAX_WPS,
    reading_speed,
    speed_verdict,
    tokens_read,
    words_in_tokens,
    words_per_second,
)
from lmread.backends.base import GenOptions
from lmread.backends.scripted import ScriptedBackend
from lmread.cli import main
from lmread.errors import OptionError, StudyError
from lmread.generate import generate_sample
from lmread.records import WORD_RE, Mark, Sample
from lmread.records.words import word_starts
from lmread.study import Study
from lmread.study.order import overlap_order, shared_count, shared_ids

SCHEMAS = Path(__file__).resolve().parents[2] / "annotations" / "schema"
#: 10 words per sentence, words tokenizer: a word with its leading space is one token
SENTENCE = "The keeper of the light wrote down every single storm. "
#: 40 words, 40 tokens
TEXT40 = (SENTENCE * 4).rstrip()


def gen(text: str, model: str = "m", n_params: int = 1000, seed: int = 1, tokenizer: str = "words",
        prompt: str = "p") -> Sample:
    backend = ScriptedBackend(text=text, tokenizer=tokenizer, model_id=model, n_params=n_params)
    return generate_sample(backend, {"text": prompt, "set": "t"}, GenOptions(max_tokens=5000, seed=seed))


def run_json(capsys: pytest.CaptureFixture[str], *args: Any) -> Any:
    capsys.readouterr()
    assert main([str(a) for a in args]) == 0
    return json.loads(capsys.readouterr().out)


# --------------------------------------------------------------------------------------------
# The speed of one reading


def test_words_per_second_by_hand() -> None:
    s = gen(TEXT40)
    assert s.n_tokens == 40
    no_fall = Mark(sample=s.id, annotator="a", kind="no_fall", read_to=40, revealed=40, elapsed_s=2.0)
    assert words_per_second(no_fall, s) == 20.0  # 40 words in 2 s: the "about 20 words a second"
    fall = Mark(sample=s.id, annotator="a", kind="fall", at=12, read_to=25, revealed=25, elapsed_s=5.0)
    assert reading_speed(fall, s).words == 25 and words_per_second(fall, s) == 5.0
    # a fall without read_to / revealed (lmread mark --at): read through the fall token
    bare = Mark(sample=s.id, annotator="a", kind="fall", at=9, elapsed_s=1.0)
    assert tokens_read(bare, s) == 10 and words_per_second(bare, s) == 10.0
    # unknown speed: no clock (lmread mark), a zero clock, a skip
    assert words_per_second(Mark(sample=s.id, annotator="a", kind="no_fall", read_to=40), s) is None
    assert words_per_second(Mark(sample=s.id, annotator="a", kind="no_fall", read_to=40, elapsed_s=0.0), s) is None
    assert words_per_second(Mark(sample=s.id, annotator="a", kind="skip", elapsed_s=3.0), s) is None


def test_words_count_like_the_words_unit() -> None:
    # one character per token: a word counts once it has started
    s = gen("ab cd  ef", tokenizer="chars")
    assert [words_in_tokens(s, n) for n in range(s.n_tokens + 1)] == [0, 1, 1, 1, 2, 2, 2, 2, 3, 3]
    from lmread.records.words import word_starts

    for n in range(s.n_tokens + 1):
        cut = s.tokens.offsets[n]
        assert words_in_tokens(s, n) == int((word_starts(s.text) < cut).sum())


def test_speed_verdict() -> None:
    assert DEFAULT_MAX_WPS == 8.0
    assert speed_verdict(20.0, None, 8.0) == "too_fast"
    assert speed_verdict(8.0, None, 8.0) == "ok"
    assert speed_verdict(0.5, 1.0, 8.0) == "too_slow"
    assert speed_verdict(None, 1.0, 8.0) == "unknown"


# --------------------------------------------------------------------------------------------
# lmread survival --min-read-speed / --max-read-speed


@pytest.fixture
def timed_study(tmp_path: Path) -> Study:
    """Six samples of 40 words; readings at 2, 4, 6, 10, 20 words/s and one without a clock."""
    st = Study.create(tmp_path / "timed", shuffle_seed=1)
    samples = [gen(TEXT40, model="m", seed=i) for i in range(6)]
    st.add_samples(samples)
    for s, elapsed in zip(samples, [20.0, 10.0, 40 / 6, 4.0, 2.0, None], strict=True):
        st.append_mark(Mark(sample=s.id, annotator="ann", kind="no_fall", read_to=40, revealed=40,
                            elapsed_s=elapsed, client="tui"))
    return st


def test_survival_leaves_out_readings_outside_the_speed_limits(timed_study: Study, capsys) -> None:
    schema = json.loads((SCHEMAS / "survival.schema.json").read_text())
    doc = run_json(capsys, "survival", "--study", timed_study.path, "--json", "-")
    assert doc["n"] == 6 and doc["filters"]["max_read_speed_wps"] is None
    doc = run_json(capsys, "survival", "--study", timed_study.path, "--max-read-speed", "8", "--json", "-")
    jsonschema.validate(doc, schema)
    assert doc["n"] == 4  # 10 and 20 words/s left out; the reading without a clock is kept
    assert doc["filters"]["max_read_speed_wps"] == 8.0
    assert doc["filters"]["left_out"] == {"controls": 0, "too_fast": 2, "too_slow": 0}
    assert any("reading-speed" in w for w in doc["warnings"])
    doc = run_json(capsys, "survival", "--study", timed_study.path, "--min-read-speed", "3",
                   "--max-read-speed", "15", "--json", "-")
    assert doc["n"] == 4 and doc["filters"]["left_out"] == {"controls": 0, "too_fast": 1, "too_slow": 1}
    capsys.readouterr()
    assert main(["survival", "--study", str(timed_study.path), "--max-read-speed", "0"]) != 0
    assert "must be > 0" in capsys.readouterr().err


def test_study_setting_sets_the_speed_limit(timed_study: Study, capsys) -> None:
    timed_study.update_meta(max_read_speed_wps=8)
    doc = run_json(capsys, "survival", "--study", timed_study.path, "--json", "-")
    assert doc["n"] == 4 and doc["filters"]["max_read_speed_wps"] == 8.0
    doc = run_json(capsys, "survival", "--study", timed_study.path, "--max-read-speed", "100", "--json", "-")
    assert doc["n"] == 6  # the option overrides the study setting
    timed_study.update_meta(max_read_speed_wps="fast")
    capsys.readouterr()
    assert main(["survival", "--study", str(timed_study.path)]) != 0
    assert "max_read_speed_wps must be a number" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Overlap by design


@pytest.fixture
def big_study(tmp_path: Path) -> Study:
    st = Study.create(tmp_path / "big", shuffle_seed=23)
    st.add_samples([gen(f"Sample number {i}. " + SENTENCE, model=f"m{i % 3}", seed=i) for i in range(50)])
    return st


def test_overlap_share_is_exact_and_shared_across_annotators(big_study: Study) -> None:
    orders = {a: big_study.reading_order(a, overlap=0.2) for a in ("alice", "bob", "carol")}
    shared = shared_ids(big_study, overlap=0.2)
    assert len(shared) == 10 == shared_count(50, 0.2)
    for order in orders.values():
        assert sorted(order) == sorted(big_study.samples)  # everything, once
        # the shared samples, in the same order, every fifth position
        assert [order[5 * j] for j in range(10)] == shared
    rest = {a: [sid for sid in o if sid not in shared] for a, o in orders.items()}
    assert rest["alice"] != rest["bob"] != rest["carol"]  # each annotator's own order of the rest
    # deterministic from the study seed
    again = Study.open(big_study.path)
    assert again.reading_order("bob", overlap=0.2) == orders["bob"]
    assert shared_ids(again, overlap=0.1) == shared[:5]  # a smaller share is part of a larger one


def test_overlap_study_setting_and_the_default_order(big_study: Study) -> None:
    legacy = sorted(big_study.samples)
    random.Random(big_study.shuffle_seed).shuffle(legacy)
    assert big_study.reading_order("alice") == big_study.reading_order("bob") == legacy  # unset: one order
    big_study.update_meta(overlap=0.3)
    st = Study.open(big_study.path)
    assert st.reading_order("alice") == st.reading_order("alice", overlap=0.3)
    assert len(shared_ids(st)) == 15
    assert st.reading_order("alice", overlap=1.0) == st.reading_order("bob", overlap=1.0)
    assert set(st.reading_order("alice", overlap=0.0)[:10]) != set(st.reading_order("bob", overlap=0.0)[:10])
    with pytest.raises(OptionError):
        st.reading_order("alice", overlap=1.5)
    st.update_meta(overlap=7)
    with pytest.raises(StudyError, match="overlap"):
        Study.open(st.path).reading_order("alice")


def test_overlap_positions_for_uneven_shares() -> None:
    ids = [f"s{i:02d}" for i in range(7)]
    order, shared = overlap_order(ids, seed=1, annotator="x", overlap=0.5)
    assert len(shared) == 4 and sorted(order) == ids
    assert [order[j * 7 // 4] for j in range(4)] == shared


def test_read_overlap_option_is_checked(tmp_path: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["read", "--study", str(tmp_path / "s"), "--overlap", "2"]) != 0
    err = capsys.readouterr().err
    assert err.startswith("lmread: error: --overlap 2.0 must be a share between 0 and 1")


def test_word_starts_match_the_word_regex_on_any_text() -> None:
    """``word_starts`` finds words on the code points at once: the same starts as WORD_RE's
    matches, with Unicode spaces, astral characters and a lone surrogate in the text."""
    alphabet = ["a", "b", " ", "\t", "\n", "\r", "\x0b", "\x1c", "\x85", "\xa0", "\u2003", "\u3000", "\u200b",
                "é", "\U0001f600", "\ud800"]
    rng = random.Random(1)
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert word_starts(text).tolist() == [m.start() for m in WORD_RE.finditer(text)], repr(text)
    assert word_starts(" two  words").tolist() == [1, 6]
