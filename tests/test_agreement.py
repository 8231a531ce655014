"""``lmread agreement``: identical, independent and hand-computed readers, the censoring rule,
machine vs human, cross-checks against krippendorff and statsmodels, study info and schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from lmread.analysis.agreement import krippendorff_alpha_interval
from lmread.cli import main
from tests.fixtures.readers import StudyWriter, schema, word_sample


def agreement(study: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["agreement", "--study", str(study), "--json", "--bootstrap", "200", *extra]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, schema("agreement"))
    return doc


def pair(doc: dict[str, Any], a: str, b: str) -> dict[str, Any]:
    return next(p for p in doc["pairs"] if (p["a"], p["b"]) == (a, b))


def random_readings(w: StudyWriter, names: list[str], n: int, seed: int, n_tokens: int = 200,
                    p_fall: float = 0.6, shared: float = 0.0) -> None:
    """Every reader reads every sample to the end or falls; with ``shared`` > 0 the fall positions
    share a per-sample part (correlated readers), with 0 they are independent."""
    rng = np.random.default_rng(seed)
    w.add(*(word_sample(f"r{i}", n_tokens) for i in range(n)))
    for i in range(n):
        base = rng.uniform(0, n_tokens)
        for name in names:
            if rng.random() < p_fall:
                at = shared * base + (1 - shared) * rng.uniform(0, n_tokens) + rng.normal(0, 5) * (shared > 0)
                w.mark(name, f"r{i}", at=int(np.clip(at, 0, n_tokens - 1)))
            else:
                w.mark(name, f"r{i}", read_to=n_tokens)


def test_identical_readers_agree_perfectly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    rng = np.random.default_rng(1)
    w.add(*(word_sample(f"s{i}", 100) for i in range(30)))
    for i in range(30):
        fall = rng.random() < 0.6
        at = int(rng.integers(0, 100))
        for name in ("ann", "bea"):
            if fall:
                w.mark(name, f"s{i}", at=at)
            else:
                w.mark(name, f"s{i}", read_to=100)
    doc = agreement(tmp_path / "st", capsys)
    p = pair(doc, "ann", "bea")
    assert p["cohen_kappa"]["value"] == pytest.approx(1.0) and p["alpha"]["value"] == pytest.approx(1.0)
    assert p["cohen_kappa"]["ci_low"] == pytest.approx(1.0) and p["percent_agreement"] == 1.0
    assert p["mean_abs_distance"]["tokens"]["value"] == 0.0 and p["mean_abs_distance"]["words"]["value"] == 0.0
    assert doc["overall"]["fleiss_kappa"]["value"] == pytest.approx(1.0)
    assert doc["overall"]["alpha"]["value"] == pytest.approx(1.0)
    assert doc["overall"]["samples"] == 30 and doc["annotators"] == ["ann", "bea"]


def test_independent_random_readers_have_alpha_near_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    random_readings(w, ["a", "b", "c"], 400, seed=3)
    doc = agreement(tmp_path / "st", capsys, "--bootstrap", "300")
    o = doc["overall"]
    assert abs(o["alpha"]["value"]) < 0.1 and abs(o["fleiss_kappa"]["value"]) < 0.1
    assert o["alpha"]["ci_low"] < 0 < o["alpha"]["ci_high"]
    for p in doc["pairs"]:
        assert abs(p["cohen_kappa"]["value"]) < 0.15 and abs(p["alpha"]["value"]) < 0.2
        # independent uniform falls on 0..199: E|X - Y| = 200 / 3
        assert p["mean_abs_distance"]["tokens"]["value"] == pytest.approx(200 / 3, rel=0.15)


def test_hand_computed_pair_and_the_censoring_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import krippendorff
    from statsmodels.stats.inter_rater import cohens_kappa, fleiss_kappa

    w = StudyWriter(tmp_path / "st")
    w.add(*(word_sample(f"s{i}", 100) for i in range(1, 8)))
    w.mark("A", "s1", at=10), w.mark("B", "s1", at=14)                # both fell, 4 apart
    w.mark("A", "s2", at=20), w.mark("B", "s2", at=20)                # both fell, same token
    w.mark("A", "s3", read_to=100), w.mark("B", "s3", read_to=50)     # neither fell
    w.mark("A", "s4", at=30), w.mark("B", "s4", read_to=80)           # B read past 30: disagreement
    w.mark("A", "s5", at=70), w.mark("B", "s5", read_to=60)           # B stopped before 70: not comparable
    w.mark("A", "s6", read_to=100), w.mark("B", "s6", at=90)          # A read past 90: disagreement
    m = w.mark("A", "s7", at=5)
    w.undo("A", m)                                                    # undone: A has no reading on s7
    w.mark("B", "s7", at=5)
    doc = agreement(tmp_path / "st", capsys)
    p = pair(doc, "A", "B")
    assert (p["common"], p["comparable"], p["not_comparable"]) == (6, 5, 1)
    assert p["table"] == {"both_fell": 2, "a_only": 1, "b_only": 1, "neither": 1}
    # po = 3/5, pa = pb = 3/5, pe = 0.36 + 0.16 = 0.52: kappa = 0.08 / 0.48
    assert p["cohen_kappa"]["value"] == pytest.approx(0.08 / 0.48)
    assert p["percent_agreement"] == pytest.approx(0.6)
    assert p["mean_abs_distance"]["tokens"]["value"] == 2.0 and p["mean_abs_distance"]["n"] == 2
    # values 10, 14 | 20, 20: observed 2 * 4^2 = 32, all ordered pairs 576: 1 - 3 * 32 / 576
    assert p["alpha"]["value"] == pytest.approx(1 - 3 * 32 / 576)
    o = doc["overall"]
    # s5 has no comparable pair and drops out of Fleiss' kappa; s7 has one reader
    assert o["samples"] == 6 and o["fleiss_kappa"]["n"] == 5
    assert o["fleiss_kappa"]["pairs_not_comparable"] == 1 and o["fleiss_kappa"]["readings_left_out"] == 2
    assert o["fleiss_kappa"]["value"] == pytest.approx(0.08 / 0.48)
    assert o["alpha"]["n"] == 2 and o["alpha"]["value"] == pytest.approx(1 - 3 * 32 / 576)

    assert cohens_kappa(np.array([[2, 1], [1, 1]])).kappa == pytest.approx(p["cohen_kappa"]["value"])
    assert fleiss_kappa(np.array([[0, 2], [0, 2], [2, 0], [1, 1], [1, 1]])) == pytest.approx(o["fleiss_kappa"]["value"])
    ref = krippendorff.alpha(reliability_data=np.array([[10, 20, np.nan], [14, 20, np.nan]], dtype=float),
                             level_of_measurement="interval")
    assert ref == pytest.approx(p["alpha"]["value"])


def test_a_short_no_fall_reading_does_not_hide_two_agreeing_falls(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    w.add(word_sample("s", 300), word_sample("t", 300), word_sample("u", 300))
    w.mark("a", "s", read_to=10), w.mark("b", "s", at=200), w.mark("c", "s", at=210)
    w.mark("a", "t", read_to=300), w.mark("b", "t", at=100), w.mark("c", "t", read_to=300)
    w.mark("a", "u", at=50), w.mark("b", "u", read_to=100), w.mark("c", "u", read_to=40)
    doc = agreement(tmp_path / "st", capsys)
    assert pair(doc, "a", "b")["not_comparable"] == 1 and pair(doc, "a", "c")["not_comparable"] == 2
    assert pair(doc, "a", "b")["table"]["a_only"] == 1  # u: b read past a's fall
    assert pair(doc, "b", "c")["table"] == {"both_fell": 1, "a_only": 1, "b_only": 0, "neither": 1}
    o = doc["overall"]
    # s: only b-c comparable (a is left out), they agree: P = 1 over 2 readings, 2 falls;
    # t: all three pairs comparable, one agrees: P = 1/3, 1 fall in 3;
    # u: a-b disagree, b-c agree, a-c not comparable: P = 1/2, 1 fall in 3
    assert o["fleiss_kappa"]["readings_left_out"] == 1 and o["fleiss_kappa"]["pairs_not_comparable"] == 3
    assert o["fleiss_kappa"]["n"] == 3
    p_bar, p_fell = (1 + 1 / 3 + 1 / 2) / 3, 4 / 8
    pe = p_fell**2 + (1 - p_fell) ** 2
    assert o["fleiss_kappa"]["value"] == pytest.approx((p_bar - pe) / (1 - pe))
    assert o["mean_abs_distance"]["tokens"]["value"] == 10.0


def test_machine_vs_human(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    w.add(*(word_sample(f"s{i}", 100) for i in range(13)))
    for i in range(10):
        w.mark("alice", f"s{i}", at=20 + i)
        w.mark("auto-repetition", f"s{i}", at=23 + i)                 # always 3 tokens late
    w.mark("alice", "s10", read_to=100), w.mark("auto-repetition", "s10", at=50)   # a false alarm
    w.mark("alice", "s11", at=40), w.mark("auto-repetition", "s11", read_to=100)   # a miss
    w.mark("alice", "s12", read_to=30), w.mark("auto-repetition", "s12", at=60)    # not comparable
    doc = agreement(tmp_path / "st", capsys)
    (m,) = doc["machine_vs_human"]
    assert (m["machine"], m["human"]) == ("auto-repetition", "alice")
    assert m["offset_tokens"] == {"median": 3.0, "mean": 3.0} and m["both_fell"] == 10
    assert (m["true_positives"], m["machine_falls"], m["human_falls"]) == (10, 11, 11)
    assert m["precision"] == pytest.approx(10 / 11) and m["recall"] == pytest.approx(10 / 11)
    assert pair(doc, "alice", "auto-repetition")["machine"] == [False, True]
    tight = agreement(tmp_path / "st", capsys, "--tolerance", "2")["machine_vs_human"][0]
    assert tight["true_positives"] == 0 and tight["precision"] == 0.0 and tight["recall"] == 0.0
    capsys.readouterr()
    assert main(["agreement", "--study", str(tmp_path / "st"), "--bootstrap", "50"]) == 0
    text = capsys.readouterr().out
    assert "auto-repetition vs alice: offset median +3, mean +3.0 tokens" in text


def test_matches_reference_packages_on_random_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import krippendorff
    from statsmodels.stats.inter_rater import cohens_kappa, fleiss_kappa

    names = ["r1", "r2", "r3", "r4"]
    w = StudyWriter(tmp_path / "st")
    random_readings(w, names, 80, seed=11, shared=0.7, p_fall=0.55)
    doc = agreement(tmp_path / "st", capsys, "--bootstrap", "0")
    at = np.full((len(names), 80), np.nan)
    fell = np.zeros((len(names), 80), dtype=int)
    for k, name in enumerate(names):
        for line in (tmp_path / "st" / "marks" / f"{name}.jsonl").read_text().splitlines():
            mark = json.loads(line)
            i = int(mark["sample"][1:])
            if mark["kind"] == "fall":
                at[k, i] = mark["at"]
                fell[k, i] = 1
    o = doc["overall"]
    yes = fell.sum(axis=0)
    assert o["fleiss_kappa"]["value"] == pytest.approx(fleiss_kappa(np.column_stack([4 - yes, yes])), abs=1e-12)
    assert o["alpha"]["value"] == pytest.approx(krippendorff.alpha(reliability_data=at, level_of_measurement="interval"),
                                                abs=1e-10)
    for p in doc["pairs"]:
        a, b = names.index(p["a"]), names.index(p["b"])
        fa, fb = fell[a].astype(bool), fell[b].astype(bool)
        table = np.array([[np.sum(fa & fb), np.sum(fa & ~fb)], [np.sum(~fa & fb), np.sum(~fa & ~fb)]])
        assert p["cohen_kappa"]["value"] == pytest.approx(cohens_kappa(table).kappa, abs=1e-12)
        ref = krippendorff.alpha(reliability_data=at[[a, b]], level_of_measurement="interval")
        assert p["alpha"]["value"] == pytest.approx(ref, abs=1e-10)
        both = ~np.isnan(at[a]) & ~np.isnan(at[b])
        assert p["mean_abs_distance"]["tokens"]["value"] == pytest.approx(np.abs(at[a] - at[b])[both].mean())
    assert o["alpha"]["value"] > 0.5  # correlated readers agree


def test_alpha_function_matches_krippendorff_with_missing_values() -> None:
    import krippendorff
    rng = np.random.default_rng(5)
    for trial in range(20):
        coders, units = int(rng.integers(2, 6)), int(rng.integers(3, 40))
        data = np.round(rng.normal(0, 1, units)[None, :] * rng.uniform(0, 3) + rng.normal(0, 1, (coders, units)), 1)
        data[rng.random((coders, units)) < 0.35] = np.nan
        ours = krippendorff_alpha_interval([list(col[~np.isnan(col)]) for col in data.T])
        if ours is None:
            continue
        ref = krippendorff.alpha(reliability_data=data, level_of_measurement="interval")
        assert ours == pytest.approx(ref, abs=1e-10), trial


def test_bootstrap_is_seeded_and_brackets_the_estimate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    random_readings(w, ["a", "b", "c"], 60, seed=2, shared=0.5)
    one = agreement(tmp_path / "st", capsys, "--seed", "4")
    two = agreement(tmp_path / "st", capsys, "--seed", "4")
    other = agreement(tmp_path / "st", capsys, "--seed", "5")
    assert one["pairs"] == two["pairs"] and one["overall"] == two["overall"]
    assert one["overall"]["alpha"]["ci_low"] != other["overall"]["alpha"]["ci_low"]
    for est in (one["overall"]["alpha"], one["overall"]["fleiss_kappa"], pair(one, "a", "b")["cohen_kappa"]):
        assert est["ci_low"] <= est["value"] <= est["ci_high"] and est["n_boot_used"] == 200
    # a new annotator does not move the CIs of an existing pair
    w.mark("d", "r0", at=5), w.mark("d", "r1", read_to=200)
    assert pair(agreement(tmp_path / "st", capsys, "--seed", "4"), "a", "b") == pair(one, "a", "b")


def test_study_info_and_survival_carry_agreement(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    random_readings(w, ["a", "b"], 20, seed=9, shared=0.8)
    capsys.readouterr()
    assert main(["study", "info", str(tmp_path / "st"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    ag = agreement(tmp_path / "st", capsys)
    assert info["agreement"]["samples"] == 20 and info["agreement"]["annotators"] == 2
    assert info["agreement"]["alpha"] == pytest.approx(ag["overall"]["alpha"]["value"])
    assert info["agreement"]["fleiss_kappa"] == pytest.approx(ag["overall"]["fleiss_kappa"]["value"])
    assert main(["study", "info", str(tmp_path / "st")]) == 0
    assert "agreement: 20 samples read by 2+ annotators; Fleiss' kappa" in capsys.readouterr().out
    assert main(["survival", "--study", str(tmp_path / "st"), "--json", "-", "--bootstrap", "200"]) == 0
    surv = json.loads(capsys.readouterr().out)
    jsonschema.validate(surv, schema("survival"))
    jsonschema.validate(surv["agreement"], schema("agreement"))
    assert surv["agreement"]["overall"] == ag["overall"]


def test_no_shared_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    w.add(word_sample("s0", 10), word_sample("s1", 10))
    w.mark("a", "s0", at=3), w.mark("b", "s1", at=4)
    doc = agreement(tmp_path / "st", capsys)
    assert doc["pairs"] == [] and doc["overall"]["samples"] == 0
    assert doc["overall"]["alpha"]["value"] is None and "no sample is read by two" in doc["warnings"][0]
    assert main(["study", "info", str(tmp_path / "st"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["agreement"]["samples"] == 0


def test_two_annotator_folders_merged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each annotator reads their own copy of the study (controls included); 'lmread merge' joins
    the folders and agreement and calibration see both readers."""
    from tests.fixtures.readers import splice

    samples = [word_sample(f"s{i}", 50) for i in range(6)] + [word_sample("c0", 50, control=splice(20))]
    positions = {"ann": [10, 20, None, 30, 40, None, 22], "bob": [12, 20, None, 35, None, None, 25]}
    for name, marks in positions.items():
        w = StudyWriter(tmp_path / name)
        w.add(*samples)
        for s, at in zip(samples, marks, strict=True):
            w.mark(name, s.id, at=at) if at is not None else w.mark(name, s.id, read_to=50)
    assert main(["merge", str(tmp_path / "ann"), str(tmp_path / "bob"), "--into", str(tmp_path / "all")]) == 0
    doc = agreement(tmp_path / "all", capsys)
    p = pair(doc, "ann", "bob")
    assert p["table"] == {"both_fell": 4, "a_only": 1, "b_only": 0, "neither": 2}
    assert p["mean_abs_distance"]["tokens"]["value"] == pytest.approx((2 + 0 + 5 + 3) / 4)
    capsys.readouterr()
    assert main(["calibration", "--study", str(tmp_path / "all"), "--json"]) == 0
    cal = {a["annotator"]: a for a in json.loads(capsys.readouterr().out)["annotators"]}
    assert cal["ann"]["onset_controls"]["delay_tokens"]["median"] == 2.0
    assert cal["bob"]["onset_controls"]["delay_tokens"]["median"] == 5.0


def test_end_to_end_controls_two_readers_merged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """import (with human controls) -> controls make -> two annotators mark their own copies with
    'lmread mark' -> merge -> calibration and agreement see the known answers and both readers."""
    import shutil

    from lmread.study import Study

    rng = np.random.default_rng(8)
    words = [f"word{i}" for i in range(50)]
    rows = [{"text": " ".join(rng.choice(words, 80)), "model": model, "n_params": size,
             "prompt": f"prompt {i % 4}", "id": f"{model}-{i}"}
            for model, size in (("small", 1000), ("big", 9000)) for i in range(8)]
    (tmp_path / "gen.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    humans = [{"text": " ".join(rng.choice(words, 70)), "model": "person", "prompt": f"prompt {i}", "id": f"h{i}"}
              for i in range(3)]
    (tmp_path / "human.jsonl").write_text("\n".join(json.dumps(r) for r in humans) + "\n")
    base = tmp_path / "base"
    assert main(["study", "create", str(base), "--seed", "5"]) == 0
    assert main(["import", "--study", str(base), str(tmp_path / "gen.jsonl")]) == 0
    assert main(["import", "--study", str(base), str(tmp_path / "human.jsonl"), "--control", "human"]) == 0
    assert main(["controls", "make", "--study", str(base), "--rate", "0.6", "--seed", "3"]) == 0
    samples = Study.open(base).samples
    controls = {sid: s.control for sid, s in samples.items() if s.control}
    kinds = {c["kind"] for c in controls.values()}
    assert {"splice", "loop", "human"} <= kinds
    lateness = {"ann": 5, "bob": 2}
    for name, late in lateness.items():
        shutil.copytree(base, tmp_path / name)
        for sid, s in samples.items():
            c = s.control
            mark = ["mark", "--study", str(tmp_path / name), "--sample", sid, "--annotator", name]
            if c and c["kind"] != "human" and c["onset"] + 5 < s.n_tokens:
                mark += ["--at", str(c["onset"] + late)]
            elif c is None and int(sid.split("-")[1]) % 2:
                mark += ["--at", str(20 + late)]
            else:
                mark += ["--no-fall", "--read-to", str(s.n_tokens)]
            assert main(mark) == 0
    assert main(["merge", str(tmp_path / "ann"), str(tmp_path / "bob"), "--into", str(tmp_path / "all")]) == 0
    capsys.readouterr()
    assert main(["calibration", "--study", str(tmp_path / "all"), "--json"]) == 0
    cal = {a["annotator"]: a for a in json.loads(capsys.readouterr().out)["annotators"]}
    for name, late in lateness.items():
        o = cal[name]["onset_controls"]
        assert o["detected"] >= 1 and o["detection_rate"] == 1.0 and o["delay_tokens"]["median"] == late
        assert cal[name]["human_controls"]["false_fall_rate"] == 0.0
    doc = agreement(tmp_path / "all", capsys)
    p = pair(doc, "ann", "bob")
    assert p["common"] == len(samples) and p["cohen_kappa"]["value"] == pytest.approx(1.0)
    assert p["mean_abs_distance"]["tokens"]["value"] == pytest.approx(3.0)


def test_machine_reader_from_lmread_annotate_against_a_human(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from tests.fixtures.readers import looping_sample

    w = StudyWriter(tmp_path / "st")
    w.add(*(looping_sample(f"l{i}", 30 + 5 * i) for i in range(4)), *(word_sample(f"s{i}", 100) for i in range(3)))
    for i in range(4):
        w.mark("human", f"l{i}", at=30 + 5 * i)   # the first word of the loop
    for i in range(3):
        w.mark("human", f"s{i}", read_to=100)
    assert main(["annotate", "--study", str(tmp_path / "st"), "--detector", "repetition"]) == 0
    doc = agreement(tmp_path / "st", capsys)
    (m,) = doc["machine_vs_human"]
    # the repetition detector marks a loop at its second occurrence: one period (7 words) later
    assert (m["machine"], m["human"]) == ("auto-repetition", "human")
    assert m["offset_tokens"] == {"median": 7.0, "mean": 7.0} and m["both_fell"] == 4
    assert m["precision"] == 1.0 and m["recall"] == 1.0
    assert pair(doc, "auto-repetition", "human")["cohen_kappa"]["value"] == pytest.approx(1.0)
    tight = agreement(tmp_path / "st", capsys, "--tolerance", "5")["machine_vs_human"][0]
    assert tight["precision"] == 0.0 and tight["recall"] == 0.0
    capsys.readouterr()
    assert main(["calibration", "--study", str(tmp_path / "st"), "--json"]) == 0
    cal = {a["annotator"]: a for a in json.loads(capsys.readouterr().out)["annotators"]}
    assert cal["auto-repetition"]["machine"] is True and cal["human"]["machine"] is False
    assert cal["auto-repetition"]["reading_speed"]["timed"] == 0  # no clock runs for a machine
