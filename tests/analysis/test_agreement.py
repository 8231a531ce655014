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


def test_hand_computed_pair_and_the_horizon_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import krippendorff
    from statsmodels.stats.inter_rater import cohens_kappa, fleiss_kappa

    w = StudyWriter(tmp_path / "st")
    w.add(*(word_sample(f"s{i}", 100) for i in range(1, 8)), word_sample("s8", 40))
    w.mark("A", "s1", at=10), w.mark("B", "s1", at=14)                # both fell, 4 apart
    w.mark("A", "s2", at=20), w.mark("B", "s2", at=20)                # both fell, same token
    w.mark("A", "s3", read_to=100), w.mark("B", "s3", read_to=50)     # B stopped early: B unknown
    w.mark("A", "s4", at=30), w.mark("B", "s4", read_to=80)           # B stopped early: B unknown
    w.mark("A", "s5", at=70), w.mark("B", "s5", read_to=100)          # fell / read all: disagree
    w.mark("A", "s6", read_to=100), w.mark("B", "s6", at=90)          # read all / fell: disagree
    m = w.mark("A", "s7", at=5)
    w.undo("A", m)                                                    # undone: A has no reading on s7
    w.mark("B", "s7", at=5)
    w.mark("A", "s8", read_to=40), w.mark("B", "s8", read_to=40)      # a short text read to its end: no, no
    doc = agreement(tmp_path / "st", capsys)
    assert doc["settings"]["horizon_tokens"] == 100 and doc["settings"]["horizon_source"] == "max_tokens"
    p = pair(doc, "A", "B")
    assert (p["common"], p["answered"]) == (7, 5)
    assert p["left_out"] == {"samples": 2, "a_unknown": 0, "b_unknown": 2}
    assert p["table"] == {"both_fell": 2, "a_only": 1, "b_only": 1, "neither": 1}
    # po = 3/5, pa = pb = 3/5, pe = 0.36 + 0.16 = 0.52: kappa = 0.08 / 0.48
    assert p["cohen_kappa"]["value"] == pytest.approx(0.08 / 0.48)
    assert p["percent_agreement"] == pytest.approx(0.6)
    # positions are unchanged by the horizon: both fell on s1, s2 (s4's fall has no partner)
    assert p["mean_abs_distance"]["tokens"]["value"] == 2.0 and p["mean_abs_distance"]["n"] == 2
    # values 10, 14 | 20, 20: observed 2 * 4^2 = 32, all ordered pairs 576: 1 - 3 * 32 / 576
    assert p["alpha"]["value"] == pytest.approx(1 - 3 * 32 / 576)
    o = doc["overall"]
    assert o["samples"] == 7 and o["fleiss_kappa"]["n"] == 5 and o["fleiss_kappa"]["readings"] == 10
    assert o["fleiss_kappa"]["readings_left_out"] == 2 and o["fleiss_kappa"]["readings_unpaired"] == 2
    assert o["fleiss_kappa"]["value"] == pytest.approx(0.08 / 0.48)
    assert o["alpha"]["n"] == 2 and o["alpha"]["value"] == pytest.approx(1 - 3 * 32 / 576)
    assert any("2 of 14 readings stopped before the horizon of 100 tokens" in x for x in doc["warnings"])

    assert cohens_kappa(np.array([[2, 1], [1, 1]])).kappa == pytest.approx(p["cohen_kappa"]["value"])
    assert fleiss_kappa(np.array([[0, 2], [0, 2], [2, 0], [1, 1], [1, 1]])) == pytest.approx(o["fleiss_kappa"]["value"])
    ref = krippendorff.alpha(reliability_data=np.array([[10, 20, np.nan], [14, 20, np.nan]], dtype=float),
                             level_of_measurement="interval")
    assert ref == pytest.approx(p["alpha"]["value"])

    # a horizon of 50: s3 and s4 are answered now (B read 50 and 80), s5's fall at 70 and s6's at 90
    # are past the horizon (no)
    short = pair(agreement(tmp_path / "st", capsys, "--horizon", "50"), "A", "B")
    assert short["left_out"] == {"samples": 0, "a_unknown": 0, "b_unknown": 0} and short["answered"] == 7
    assert short["table"] == {"both_fell": 2, "a_only": 1, "b_only": 0, "neither": 4}


def test_short_no_fall_readings_are_left_out_by_the_reader_alone(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    w.add(word_sample("s", 300), word_sample("t", 300), word_sample("u", 300))
    w.mark("a", "s", read_to=10), w.mark("b", "s", at=200), w.mark("c", "s", at=210)
    w.mark("a", "t", read_to=300), w.mark("b", "t", at=100), w.mark("c", "t", read_to=300)
    w.mark("a", "u", at=50), w.mark("b", "u", read_to=100), w.mark("c", "u", read_to=40)
    doc = agreement(tmp_path / "st", capsys)
    # horizon 300: a on s, b and c on u stopped early
    assert pair(doc, "a", "b")["left_out"] == {"samples": 2, "a_unknown": 1, "b_unknown": 1}
    assert pair(doc, "a", "b")["table"] == {"both_fell": 0, "a_only": 0, "b_only": 1, "neither": 0}
    assert pair(doc, "b", "c")["table"] == {"both_fell": 1, "a_only": 1, "b_only": 0, "neither": 0}
    o = doc["overall"]
    # s: b, c answer yes, yes: P = 1; t: yes among no, no: P = 1/3; u: only a answers (unpaired)
    assert o["fleiss_kappa"]["readings_left_out"] == 3 and o["fleiss_kappa"]["readings_unpaired"] == 1
    assert o["fleiss_kappa"]["n"] == 2 and o["fleiss_kappa"]["readings"] == 5
    p_bar, p_fell = (1 + 1 / 3) / 2, 3 / 5
    pe = p_fell**2 + (1 - p_fell) ** 2
    assert o["fleiss_kappa"]["value"] == pytest.approx((p_bar - pe) / (1 - pe))
    assert o["mean_abs_distance"]["tokens"]["value"] == 10.0


def simulated_readers(w: StudyWriter, n: int, seed: int, identical: bool, n_tokens: int = 100) -> None:
    """Two readers on ``n`` samples: each reading falls at a uniform token with probability 0.5,
    else stops at a uniform point (or reads to the end, with probability 0.3); identical readers
    share one reading per sample."""
    rng = np.random.default_rng(seed)
    w.add(*(word_sample(f"x{i}", n_tokens) for i in range(n)))

    def draw() -> dict[str, int]:
        if rng.random() < 0.5:
            return {"at": int(rng.integers(0, n_tokens))}
        return {"read_to": n_tokens if rng.random() < 0.3 else int(rng.integers(0, n_tokens))}

    for i in range(n):
        first = draw()
        w.mark("ann", f"x{i}", **first)
        w.mark("bob", f"x{i}", **(first if identical else draw()))


def test_independent_readers_who_stop_at_random_score_kappa_zero(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    simulated_readers(w, 4000, seed=21, identical=False)
    doc = agreement(tmp_path / "st", capsys, "--bootstrap", "0")
    p = pair(doc, "ann", "bob")
    assert abs(p["cohen_kappa"]["value"]) < 0.05
    assert abs(doc["overall"]["fleiss_kappa"]["value"]) < 0.05
    # about half of the no-fall readings stop early: roughly 0.5 * 0.7 of each reader's readings
    assert 0.3 < p["left_out"]["a_unknown"] / 4000 < 0.4 and 0.3 < p["left_out"]["b_unknown"] / 4000 < 0.4
    assert doc["overall"]["fleiss_kappa"]["readings_left_out"] == p["left_out"]["a_unknown"] + p["left_out"]["b_unknown"]
    # the rule used before (a fall beyond the other's extent not comparable) scored these readers
    # well above 0; recompute it here to show the difference is the rule
    old = {"both": 0, "a": 0, "b": 0, "none": 0}
    marks = {name: {json.loads(x)["sample"]: json.loads(x) for x in (tmp_path / "st" / "marks" / f"{name}.jsonl")
                    .read_text().splitlines()} for name in ("ann", "bob")}
    for sid, ma in marks["ann"].items():
        mb = marks["bob"][sid]
        fa, fb = ma["kind"] == "fall", mb["kind"] == "fall"
        if (fa and not fb and ma["at"] >= mb["read_to"]) or (fb and not fa and mb["at"] >= ma["read_to"]):
            continue
        old["both" if fa and fb else "a" if fa else "b" if fb else "none"] += 1
    from lmread.analysis.agreement import kappa_from_counts
    assert kappa_from_counts(old["both"], old["a"], old["b"], old["none"]) > 0.15


def test_identical_readers_who_stop_at_random_score_kappa_one(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    simulated_readers(w, 500, seed=22, identical=True)
    doc = agreement(tmp_path / "st", capsys, "--bootstrap", "50")
    p = pair(doc, "ann", "bob")
    assert p["cohen_kappa"]["value"] == pytest.approx(1.0) and p["cohen_kappa"]["ci_low"] == pytest.approx(1.0)
    assert doc["overall"]["fleiss_kappa"]["value"] == pytest.approx(1.0)
    assert p["left_out"]["a_unknown"] == p["left_out"]["b_unknown"] > 0


def test_what_the_fall_is_matches_statsmodels_and_krippendorff(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    import krippendorff
    from statsmodels.stats.inter_rater import cohens_kappa

    from lmread.records import CATEGORY_KEYS

    rng = np.random.default_rng(31)
    w = StudyWriter(tmp_path / "st")
    n = 150
    w.add(*(word_sample(f"c{i}", 200) for i in range(n)))
    cats = {"r1": [], "r2": []}  # type: dict[str, list[str | None]]
    sevs = {"r1": [], "r2": []}  # type: dict[str, list[int | None]]
    within = []
    for i in range(n):
        at = int(rng.integers(20, 150))
        gap = int(rng.choice([0, 3, 10, 11, 40]))           # 11 and 40 lie beyond the tolerance of 10
        true_cat = str(rng.choice(CATEGORY_KEYS[:4]))
        true_sev = int(rng.integers(1, 4))
        for name, pos in (("r1", at), ("r2", at + gap)):
            cat = true_cat if rng.random() < 0.6 else str(rng.choice(CATEGORY_KEYS))
            sev = int(np.clip(true_sev + rng.choice([-1, 0, 0, 1]), 1, 3))
            cat_given = None if rng.random() < 0.1 else cat
            sev_given = None if rng.random() < 0.1 else sev
            w.mark(name, f"c{i}", at=pos, category=cat_given, severity=sev_given)
            cats[name].append(cat_given)
            sevs[name].append(sev_given)
        within.append(gap <= 10)
    doc = agreement(tmp_path / "st", capsys, "--bootstrap", "200")
    wf = pair(doc, "r1", "r2")["what_fell"]
    assert wf["n"] == sum(within)
    keys = list(CATEGORY_KEYS)
    both_cat = [i for i in range(n) if within[i] and cats["r1"][i] and cats["r2"][i]]
    table = np.zeros((len(keys), len(keys)))
    for i in both_cat:
        table[keys.index(str(cats["r1"][i])), keys.index(str(cats["r2"][i]))] += 1
    assert wf["category"]["n"] == len(both_cat)
    assert wf["category"]["kappa"]["value"] == pytest.approx(cohens_kappa(table).kappa, abs=1e-12)
    both_sev = [i for i in range(n) if within[i] and sevs["r1"][i] and sevs["r2"][i]]
    sev_table = np.zeros((3, 3))
    for i in both_sev:
        sev_table[int(sevs["r1"][i] or 0) - 1, int(sevs["r2"][i] or 0) - 1] += 1
    assert wf["severity"]["n"] == len(both_sev)
    assert wf["severity"]["weighted_kappa"]["value"] == pytest.approx(cohens_kappa(sev_table, wt="linear").kappa,
                                                                      abs=1e-12)
    data = np.array([[sevs[name][i] for i in both_sev] for name in ("r1", "r2")], dtype=float)
    ref = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal", value_domain=[1, 2, 3])
    assert wf["severity"]["alpha_ordinal"]["value"] == pytest.approx(ref, abs=1e-10)
    for est in (wf["category"]["kappa"], wf["severity"]["weighted_kappa"], wf["severity"]["alpha_ordinal"]):
        assert est["ci_low"] <= est["value"] <= est["ci_high"] and est["n_boot_used"] == 200
    # two readers: the overall block is the pair's
    assert doc["overall"]["what_fell"]["severity"]["weighted_kappa"]["value"] == pytest.approx(
        wf["severity"]["weighted_kappa"]["value"])
    assert 0.2 < wf["severity"]["weighted_kappa"]["value"] < 0.9  # noisy but related ratings
    capsys.readouterr()
    assert main(["agreement", "--study", str(tmp_path / "st"), "--bootstrap", "20"]) == 0
    text = capsys.readouterr().out
    assert f"what the fall is ({sum(within)} pairs of falls within 10 tokens): category kappa" in text
    assert main(["survival", "--study", str(tmp_path / "st"), "--bootstrap", "20"]) == 0
    text = capsys.readouterr().out
    assert f"severity agreement between readers ({len(both_sev)} falls rated by two readers within 10 tokens): " \
           f"weighted kappa {wf['severity']['weighted_kappa']['value']:.2f}" in text


def test_ordinal_alpha_matches_krippendorff_with_several_coders() -> None:
    import krippendorff

    from lmread.analysis.agreement import ordinal_alpha_from_coincidences

    rng = np.random.default_rng(6)
    for trial in range(20):
        coders, units = int(rng.integers(2, 5)), int(rng.integers(4, 40))
        data = np.clip(rng.integers(1, 4, units)[None, :] + rng.integers(-1, 2, (coders, units)), 1, 3).astype(float)
        data[rng.random((coders, units)) < 0.3] = np.nan
        coin = np.zeros((3, 3))
        for col in data.T:
            vals = col[~np.isnan(col)].astype(int) - 1
            if vals.size < 2:
                continue
            for i in range(vals.size):
                for j in range(vals.size):
                    if i != j:
                        coin[vals[i], vals[j]] += 1 / (vals.size - 1)
        ours = ordinal_alpha_from_coincidences(coin[None])[0]
        if np.isnan(ours):
            continue
        ref = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal", value_domain=[1, 2, 3])
        assert ours == pytest.approx(ref, abs=1e-10), trial


def test_table_columns_line_up_with_long_annotator_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    random_readings(w, ["auto-improbable-run", "auto-special-token", "al"], 30, seed=4, shared=0.6)
    capsys.readouterr()
    assert main(["agreement", "--study", str(tmp_path / "st"), "--bootstrap", "30"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, x in enumerate(lines) if x.lstrip().startswith("pair "))
    table = lines[start:start + 4]
    assert "auto-improbable-run / auto-special-token" in "\n".join(table)
    head = table[0]
    # every right-aligned column ends where its header ends
    ends = [head.index(h) + len(h) for h in ("common", "answered", "agree", "kappa [95% CI]", "distance tok",
                                               "alpha [95% CI]")]
    for row in table[1:]:
        for end in ends:
            assert row[end - 1] != " " and (end == len(row) or row[end] == " "), (row, end)
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
