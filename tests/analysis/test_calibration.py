"""``lmread calibration``: synthetic readers with known behaviour on controls with known answers,
reading speed, order effects, the survival block and warning, and the schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from scipy import stats as sps

from lmread.analysis.calibration import roft_points, spearman
from lmread.cli import main
from tests.fixtures.readers import StudyWriter, human, loop, schema, splice, word_sample


def calibration(study: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["calibration", "--study", str(study), "--json", *extra]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, schema("calibration"))
    return doc


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["annotator"]: a for a in doc["annotators"]}


def control_study(path: Path, n: int = 12) -> StudyWriter:
    """``n`` splice/loop controls of 80 words (onsets 10..), 4 human controls, 6 ordinary samples."""
    w = StudyWriter(path)
    for i in range(n):
        onset = 10 + 4 * i
        w.add(word_sample(f"c{i}", 80, control=splice(onset) if i % 2 else loop(onset)))
    w.add(*(word_sample(f"h{i}", 60, control=human()) for i in range(4)))
    w.add(*(word_sample(f"s{i}", 60) for i in range(6)))
    return w


def onset(w: StudyWriter, sid: str) -> int:
    return int(w.samples[sid].control["onset"])  # type: ignore[index]


def test_late_reader_and_never_reader(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = control_study(tmp_path / "st")
    for sid, s in w.samples.items():
        if s.control and s.control["kind"] != "human":
            w.mark("late", sid, at=onset(w, sid) + 5, elapsed_s=60.0)
        else:
            w.mark("late", sid, read_to=s.n_tokens, elapsed_s=60.0)
        w.mark("never", sid, read_to=s.n_tokens, elapsed_s=60.0)
    doc = calibration(tmp_path / "st", capsys)
    assert doc["controls"] == {"splice": 6, "loop": 6, "human": 4}
    late, never = by_name(doc)["late"], by_name(doc)["never"]
    o = late["onset_controls"]
    assert (o["evaluable"], o["detected"], o["early"], o["missed"]) == (12, 12, 0, 0)
    assert o["detection_rate"] == 1.0 and o["early_rate"] == 0.0
    assert o["delay_tokens"] == {"n": 12, "median": 5.0, "q1": 5.0, "q3": 5.0, "mean": 5.0}
    assert o["delay_words"]["median"] == 5.0  # one word per token here
    assert o["by_kind"]["splice"]["detected"] == 6 and o["by_kind"]["loop"]["detected"] == 6
    assert late["human_controls"] == {"read": 4, "false_falls": 0, "false_fall_rate": 0.0}
    assert late["score"]["mean"] == 5.0 and late["score"]["n"] == 16  # within 10 words: full points
    assert late["warnings"] == []

    o = never["onset_controls"]
    assert o["detection_rate"] == 0.0 and o["missed"] == 12 and o["delay_tokens"]["n"] == 0
    assert never["human_controls"]["false_fall_rate"] == 0.0
    assert never["score"]["points"] == 4 * 5  # only the human controls score
    assert any("did not detect 12 of 12" in m for m in never["warnings"])
    assert doc["warnings"] == never["warnings"]

    # the same numbers in the survival JSON, and the warning line in 'lmread survival'
    capsys.readouterr()
    assert main(["survival", "--study", str(tmp_path / "st"), "--json", "-", "--bootstrap", "20"]) == 0
    out = capsys.readouterr()
    surv = json.loads(out.out)
    jsonschema.validate(surv, schema("survival"))
    jsonschema.validate(surv["calibration"], schema("calibration"))
    jsonschema.validate(surv["agreement"], schema("agreement"))
    assert by_name(surv["calibration"])["late"]["onset_controls"] == late["onset_controls"]
    assert "lmread: warning: annotator never did not detect 12 of 12" in out.err
    assert "annotator late" not in out.err


def test_systematically_late_reader_is_warned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = control_study(tmp_path / "st", n=6)
    for sid in [s for s in w.samples if s.startswith("c")]:
        w.mark("slow", sid, at=min(79, onset(w, sid) + 25))
    doc = calibration(tmp_path / "st", capsys)
    slow = by_name(doc)["slow"]
    assert slow["onset_controls"]["delay_words"]["median"] == 25.0
    assert slow["score"]["mean"] == 3.0  # 25 words late: 5 - 25 // 10
    assert any("marks controls late: median delay 25 words" in m for m in slow["warnings"])
    capsys.readouterr()
    assert main(["calibration", "--study", str(tmp_path / "st"), "--warn-late-words", "30"]) == 0
    assert "warning" not in capsys.readouterr().out


def test_hand_computed_small_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    w.add(word_sample("a", 40, control=splice(10)),            # fall at 13: detected, 3 tokens / 3 words late
          word_sample("b", 40, control=loop(20)),              # fall at 15: early by 5
          word_sample("c", 40, control=splice(30)),            # no fall, read 35 > 30: missed
          word_sample("d", 60, control=splice(40)),            # no fall, read 35 <= 40: not reached
          word_sample("e", 40, split=2, control=loop(5)),      # fall at 52: 47 tokens, 26 - 3 = 23 words late
          word_sample("f", 30, control=human()),               # fall: a false fall
          word_sample("g", 30, control=human()),               # no fall: right
          word_sample("x", 30))                                # an ordinary sample: no calibration entry
    m = w.mark("r", "a", at=2)
    w.undo("r", m)                                             # withdrawn: the next mark counts
    w.mark("r", "a", at=13)
    w.mark("r", "b", at=15)
    w.mark("r", "c", read_to=35)
    w.mark("r", "d", read_to=35)
    w.mark("r", "e", at=52)
    w.mark("r", "f", at=4)
    w.mark("r", "g", read_to=30)
    w.mark("r", "x", at=9)
    w.add(word_sample("y", 40, control=splice(10)))
    w.mark("r", "y", at=12)
    w.mark("r", "y", skip=True)                                # a standing skip: contributes nothing
    r = by_name(calibration(tmp_path / "st", capsys))["r"]
    o = r["onset_controls"]
    assert (o["read"], o["evaluable"], o["not_reached"], o["detected"], o["early"], o["missed"]) == (5, 4, 1, 2, 1, 1)
    assert (o["detection_rate"], o["early_rate"], o["miss_rate"]) == (0.5, 0.25, 0.25)
    # delays 3 and 47 tokens: median 25, linear quartiles 3 + 0.25 * 44 = 14 and 3 + 0.75 * 44 = 36
    assert o["delay_tokens"] == {"n": 2, "median": 25.0, "q1": 14.0, "q3": 36.0, "mean": 25.0}
    assert o["delay_words"]["median"] == 13.0 and o["delay_words"]["q1"] == 8.0  # words 3 and 23
    assert o["early_by_tokens"]["median"] == 5.0
    assert o["by_kind"]["loop"]["detected"] == 1 and o["by_kind"]["loop"]["early"] == 1
    assert r["human_controls"] == {"read": 2, "false_falls": 1, "false_fall_rate": 0.5}
    # points: a 5 (3 words), e 3 (23 words), b 0, c 0, f 0, g 5; d is not scored
    assert r["score"]["points"] == 13 and r["score"]["n"] == 6
    assert r["score"]["mean"] == pytest.approx(13 / 6)
    assert [roft_points(d) for d in (0, 9, 10, 23, 49, 50, 500)] == [5, 5, 4, 3, 1, 0, 0]


def test_fast_reader_is_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    w.add(*(word_sample(f"s{i}", 100) for i in range(5)))
    for i in range(5):
        w.mark("quick", f"s{i}", read_to=100, elapsed_s=1.0)            # 100 words in a second
        w.mark("calm", f"s{i}", at=39, revealed=40, elapsed_s=10.0)     # 40 words in 10 s: 4 words/s
        w.mark("untimed", f"s{i}", read_to=100)
    doc = calibration(tmp_path / "st", capsys)
    quick, calm, untimed = (by_name(doc)[k]["reading_speed"] for k in ("quick", "calm", "untimed"))
    assert quick["too_fast"] == 5 and quick["too_fast_share"] == 1.0 and quick["wps"] == 100.0
    assert {r["sample"] for r in quick["too_fast_readings"]} == {f"s{i}" for i in range(5)}
    assert quick["too_fast_readings"][0]["words"] == 100
    assert calm["too_fast"] == 0 and calm["wps"] == 4.0 and calm["median_wps"] == 4.0 and calm["words"] == 200
    assert untimed["timed"] == 0 and untimed["wps"] is None and untimed["too_fast"] == 0
    relaxed = by_name(calibration(tmp_path / "st", capsys, "--max-read-speed", "150"))["quick"]
    assert relaxed["reading_speed"]["too_fast"] == 0
    strict = by_name(calibration(tmp_path / "st", capsys, "--max-read-speed", "3"))["calm"]
    assert strict["reading_speed"]["too_fast"] == 5
    assert main(["calibration", "--study", str(tmp_path / "st"), "--max-read-speed", "0"]) == 2
    assert "--max-read-speed 0 must be > 0" in capsys.readouterr().err


def test_order_effects_follow_queue_position(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = control_study(tmp_path / "st", n=10)
    controls = [s for s in w.samples if s.startswith("c")]
    ordinary = [s for s in w.samples if s.startswith("s")]
    # "tiring": later in the queue, later marks on controls and earlier falls on samples
    for q, sid in enumerate(controls):
        w.mark("tiring", sid, at=onset(w, sid) + q, queue_pos=q)
    for q, sid in enumerate(ordinary):
        w.mark("tiring", sid, at=50 - 5 * q, queue_pos=len(controls) + q)
    # "recorded": file order is the reverse of the recorded queue, so the recorded one must be used
    for q, sid in reversed(list(enumerate(controls))):
        w.mark("recorded", sid, at=onset(w, sid) + q, queue_pos=q)
    # "unrecorded": no queue_pos, the order of marking stands in for it
    for q, sid in enumerate(controls):
        w.mark("unrecorded", sid, at=onset(w, sid) + 10 - q, queue_pos=None)
    doc = calibration(tmp_path / "st", capsys)
    t = by_name(doc)["tiring"]["order"]
    assert t["control_delay"]["rho"] == pytest.approx(1.0) and t["control_delay"]["p_value"] == pytest.approx(0, abs=1e-12)
    assert t["fall_position"]["rho"] == pytest.approx(-1.0) and t["fall_position"]["n"] == 6
    assert t["queue_pos_recorded"] == 16
    r = by_name(doc)["recorded"]["order"]
    assert r["control_delay"]["rho"] == pytest.approx(1.0)
    u = by_name(doc)["unrecorded"]["order"]
    assert u["queue_pos_recorded"] == 0 and u["control_delay"]["rho"] == pytest.approx(-1.0)
    assert u["fall_position"] == {"n": 0, "rho": None, "p_value": None}


def test_spearman_matches_scipy_on_random_data() -> None:
    rng = np.random.default_rng(7)
    for n in (3, 5, 12, 40, 200):
        x = rng.integers(0, 30, n)  # with ties
        y = x * rng.uniform(-1, 1) + rng.normal(0, 8, n)
        ours = spearman(x, y)
        ref = sps.spearmanr(x, y)
        assert ours["rho"] == pytest.approx(ref.statistic, abs=1e-12)
        assert ours["p_value"] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
    assert spearman([1, 2], [3, 4])["rho"] is None
    assert spearman([1, 1, 1], [3, 4, 5])["rho"] is None


def test_study_without_controls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    w.add(word_sample("s0", 20))
    w.mark("a", "s0", at=3, elapsed_s=5.0)
    doc = calibration(tmp_path / "st", capsys)
    a = by_name(doc)["a"]
    assert a["onset_controls"]["detection_rate"] is None and a["human_controls"]["false_fall_rate"] is None
    assert a["score"]["mean"] is None and a["reading_speed"]["timed"] == 1
    capsys.readouterr()
    assert main(["calibration", "--study", str(tmp_path / "st")]) == 0
    text = capsys.readouterr().out
    assert "calibration - readers" in text and "order effects" in text
    assert main(["calibration", "--study", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_word_counter_counts_words_as_the_observations_do() -> None:
    from lmread.analysis.readings import WordCounter
    from lmread.records.words import word_starts

    rng = np.random.default_rng(4)
    alphabet = list("ab c\u00a0\u2003\n\td\u00e9\U0001f600")
    for trial in range(30):
        sample = word_sample("s", 1)
        text = "".join(rng.choice(alphabet, int(rng.integers(0, 60))))
        cuts = sorted(set(rng.integers(0, len(text) + 1, 6).tolist()) | {0, len(text)})
        sample.text, sample.tokens.offsets = text, cuts
        sample.tokens.ids = list(range(len(cuts) - 1))
        words, starts = WordCounter(), word_starts(text)
        for t, cut in enumerate(cuts):
            assert words.before(sample, t) == int(np.searchsorted(starts, cut, side="left")), trial


def test_speed_limit_from_study_settings_and_untimed_marks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    w.add(*(word_sample(f"s{i}", 30) for i in range(3)))
    w.mark("r", "s0", read_to=30, elapsed_s=5.0)    # 6 words/s
    w.mark("r", "s1", read_to=30, elapsed_s=0.0)    # no clock ran: not timed
    w.mark("r", "s2", read_to=30, elapsed_s=10.0)   # 3 words/s
    speed = by_name(calibration(tmp_path / "st", capsys))["r"]["reading_speed"]
    assert (speed["timed"], speed["too_fast"], speed["wps"]) == (2, 0, 4.0)
    toml = tmp_path / "st" / "study.toml"
    toml.write_text(toml.read_text() + "max_read_speed_wps = 5.0\n")
    doc = calibration(tmp_path / "st", capsys)
    assert doc["settings"]["max_read_speed_wps"] == 5.0 and by_name(doc)["r"]["reading_speed"]["too_fast"] == 1
    assert by_name(calibration(tmp_path / "st", capsys, "--max-read-speed", "7"))["r"]["reading_speed"]["too_fast"] == 0
    # the survival JSON's block uses the survival command's limit, which also leaves the reading out
    capsys.readouterr()
    assert main(["survival", "--study", str(tmp_path / "st"), "--json", "-", "--bootstrap", "0",
                 "--max-read-speed", "4"]) == 0
    surv = json.loads(capsys.readouterr().out)
    assert surv["calibration"]["settings"]["max_read_speed_wps"] == 4.0
    assert by_name(surv["calibration"])["r"]["reading_speed"]["too_fast"] == 1
    assert surv["filters"]["left_out"]["too_fast"] == 1
