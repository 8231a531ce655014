"""``lmread plan``: Schoenfeld's events by hand, the vectorised log-rank against lmread's own,
simulated power of a planned N on known Weibull curves, the plan stored in study.toml with
progress in ``lmread study info`` and the interim-look warning of ``lmread survival``, and the
one-line refusals of what cannot be planned."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from scipy import stats

from lmread.analysis import plan as P
from lmread.analysis.survival import GroupTables, logrank
from lmread.cli import main
from tests.fixtures.readers import StudyWriter, schema, word_sample


def test_schoenfeld_events_by_hand() -> None:
    # (z_.975 + z_.8)^2 / (1/4 * log(1.5)^2) = (1.959964 + 0.841621)^2 / (0.25 * 0.164402) = 190.97
    assert P.schoenfeld_events(1.5, 0.05, 0.8) == 191
    assert P.schoenfeld_events(1 / 1.5, 0.05, 0.8) == 191
    z = stats.norm.ppf(0.995) + stats.norm.ppf(0.9)
    assert P.schoenfeld_events(2.0, 0.01, 0.9) == math.ceil(z * z / (0.25 * math.log(2.0) ** 2))
    for hr in (1.0, 1.0005):
        with pytest.raises(P.OptionError, match="do not differ"):
            P.schoenfeld_events(hr)
    for alpha, power in ((0.0, 0.8), (1.0, 0.8), (0.05, 1.0), (0.05, -0.1)):
        with pytest.raises(P.OptionError, match="strictly between 0 and 1"):
            P.schoenfeld_events(1.5, alpha, power)


def test_logrank_replicates_match_lmread_logrank() -> None:
    rng = np.random.default_rng(4)
    r, n_a, n_b, grid = 25, 30, 45, 40
    ti = rng.integers(0, grid, size=(r, n_a + n_b))
    ev = rng.random((r, n_a + n_b)) < 0.6
    ti[:, n_a:] = np.minimum(grid - 1, ti[:, n_a:] + rng.integers(0, 6, size=(r, n_b)))  # b falls later
    ours = P.logrank_replicates(ti, ev, n_a, grid)
    for k in range(r):
        groups = np.r_[np.zeros(n_a, int), np.ones(n_b, int)]
        ref = logrank(GroupTables.build(ti[k].astype(float), ev[k].astype(int), groups, 2))
        assert ours[k] == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
    assert ours.max() > 4  # some replicates differ clearly: the test can see a difference


def weibull_draws(rng: np.random.Generator, scale: float, shape: float, size: tuple[int, ...], length: int,
                  stop: float) -> tuple[np.ndarray, np.ndarray]:
    """Coherent lengths floor(Weibull) read to ``length``; a share ``stop`` of readers stop at a
    uniform point before it.  Returns (durations, events)."""
    t = np.floor(scale * rng.weibull(shape, size))
    c = np.where(rng.random(size) < stop, rng.integers(0, length, size), length)
    fell = t < c
    return np.where(fell, t, c), fell


def weibull_arm(scale: float, shape: float, length: int, stop: float) -> P.Arm:
    """The arm of :func:`weibull_draws` on the grid 0..length: P(T >= t) = exp(-(t / scale)^shape)."""
    t = np.arange(length + 1, dtype=float)
    s = np.exp(-((t / scale) ** shape))
    return P.Arm("w", np.concatenate((s[:-1] - s[1:], [0.0])), np.concatenate((np.full(length, stop / length), [0.0])))


def fresh_power(rng: np.random.Generator, n: int, reps: int, scales: tuple[float, float], shape: float, length: int,
                stop: float) -> float:
    """Power of the log-rank on ``reps`` fresh studies of ``n`` per group drawn from the Weibull curves."""
    da, ea = weibull_draws(rng, scales[0], shape, (reps, n), length, stop)
    db, eb = weibull_draws(rng, scales[1], shape, (reps, n), length, stop)
    chi2 = P.logrank_replicates(np.concatenate([da, db], axis=1).astype(np.int64),
                                np.concatenate([ea, eb], axis=1), n, length + 1)
    return float(np.mean(stats.chi2.sf(chi2, 1) < 0.05))


SHAPE, SCALE_A, LENGTH, STOP = 1.4, 120.0, 300, 0.25
SCALE_B = SCALE_A * 1.5 ** (-1 / SHAPE)                 # S_b = S_a^1.5: hazard ratio 1.5


def test_simulated_power_of_the_planned_n_on_known_weibull_curves() -> None:
    """The N the simulation plans from two known Weibull curves (proportional hazards, HR 1.5,
    a quarter of the readers stopping early) has the target power on fresh studies drawn from
    those curves: within 3 points over 4,000 studies."""
    arms = [weibull_arm(SCALE_A, SHAPE, LENGTH, STOP), weibull_arm(SCALE_B, SHAPE, LENGTH, STOP)]
    sim = P.power_curve(arms, 0.8, 0.05, 2000, seed=0, around=100)
    assert sim.n_target is not None and sim.n_target_mc_error is not None and sim.n_target_mc_error < 5
    assert sim.power[0] < 0.5 < 0.95 < sim.power[-1]
    assert abs(sim.power_at_n_target - 0.8) < 0.03
    power = fresh_power(np.random.default_rng(100), sim.n_target, 4000, (SCALE_A, SCALE_B), SHAPE, LENGTH, STOP)
    assert abs(power - 0.8) < 0.03, (sim.n_target, power)
    # half the N has clearly less power: the check can fail
    assert fresh_power(np.random.default_rng(101), sim.n_target // 2, 2000, (SCALE_A, SCALE_B), SHAPE, LENGTH,
                       STOP) < 0.6


def test_a_large_pilot_from_known_curves_plans_about_the_same_n() -> None:
    rng = np.random.default_rng(12)
    pilot = []
    for label, scale in (("a", SCALE_A), ("b", SCALE_B)):
        d, e = weibull_draws(rng, scale, SHAPE, (3000,), LENGTH, STOP)
        pilot.append(P.GroupInput(label, durations=d, events=e.astype(np.int64)))
    comp = P.plan_comparison(pilot[0], pilot[1], alpha=0.05, power=0.8, hazard_ratio=None, replicates=1000, seed=3)
    assert comp.hazard_ratio == pytest.approx(1.5, rel=0.08)
    truth = P.power_curve([weibull_arm(SCALE_A, SHAPE, LENGTH, STOP), weibull_arm(SCALE_B, SHAPE, LENGTH, STOP)],
                          0.8, 0.05, 1000, seed=0, around=100).n_target
    assert truth is not None and comp.simulation is not None
    assert comp.samples_per_group == comp.simulation.n_target
    assert comp.samples_per_group == pytest.approx(truth, rel=0.2)
    # the pilot's censoring is the readers' early stops: about a quarter stop before the end
    grid = np.unique(np.concatenate([g.durations for g in pilot if g.durations is not None]))
    arms = P.pilot_arms(grid, [(g.label, g.durations, g.events) for g in pilot
                               if g.durations is not None and g.events is not None])
    assert arms[0].censor_mass[grid < LENGTH].sum() == pytest.approx(STOP, abs=0.03)
    # and its event curve is the Weibull one: P(fall within the length) = 1 - exp(-(300 / 120)^1.4)
    assert arms[0].p_event_by_end == pytest.approx(1 - math.exp(-((LENGTH / SCALE_A) ** SHAPE)), abs=0.02)
    # Schoenfeld's approximation lands near the simulation
    assert 0.75 < comp.samples_schoenfeld / 2 / comp.samples_per_group < 1.33


def test_reader_time_and_median_width_by_hand() -> None:
    rt = P.reader_time(100, 120.0, "x", 4.0, "y", controls_rate=0.2, overlap=0.2, readers=3)
    # 125 samples with controls; each reader reads 125 / (0.2 + 3 * 0.8) = 48.08: 145 readings
    assert (rt.samples_with_controls, rt.readings) == (125, 145)
    assert rt.hours == pytest.approx(145 * 120 / 4.0 / 3600) and rt.hours_per_reader == pytest.approx(rt.hours / 3)
    assert P.reader_time(100, 50, "x", 5, "y", 0.0, 0.0, 1).readings == 100
    assert P.events_for_median_width(10.0, 4.0) == math.ceil((1.959964 / math.asinh(0.2)) ** 2)
    assert P.n_for_width(40, 20.0, 10.0) == 160 and P.n_for_width(40, None, 10.0) is None
    assert P.obf_boundary(1.0) == pytest.approx(0.05)
    assert P.obf_boundary(0.5) == pytest.approx(2 * (1 - stats.norm.cdf(1.959964 / math.sqrt(0.5))), rel=1e-5)
    assert P.obf_boundary(0.0) is None


def pilot_study(path: Path, n: int = 40, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    w = StudyWriter(path)
    for model, scale, size in (("small", 40, 10**8), ("large", 70, 10**9)):
        for i in range(n):
            sid = f"{model}-{i}"
            w.add(word_sample(sid, 200, model=model, n_params=size))
            t = int(rng.weibull(1.5) * scale)
            if t < 200 and rng.random() < 0.9:
                w.mark("ann", sid, at=t, elapsed_s=t / 4.0 + 1)
            else:
                w.mark("ann", sid, read_to=200, elapsed_s=50)
    return path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_from_a_pilot_is_stored_and_progress_shows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = pilot_study(tmp_path / "st")
    doc = run_json(capsys, "plan", "--study", str(st), "--unit", "words", "--replicates", "300", "--readers", "2",
                   "--ci-width", "10")
    jsonschema.validate(doc, schema("plan"))
    (comp,) = doc["comparisons"]
    assert (comp["a"], comp["b"]) == ("small", "large") and comp["hazard_ratio"] < 1
    assert comp["schoenfeld"]["events"] == P.schoenfeld_events(comp["hazard_ratio"])
    sim = comp["simulation"]
    assert [p["n_per_group"] for p in sim["curve"]] == sorted(p["n_per_group"] for p in sim["curve"])
    assert sim["curve"][0]["power"] < 0.8 <= sim["curve"][-1]["power"]
    assert doc["samples_per_group"]["small"] >= comp["samples_per_group"]
    rt = doc["reader_time"]
    assert rt["readers"] == 2 and rt["reading_wps_source"].startswith("pilot")
    assert rt["hours"] == pytest.approx(rt["readings"] * rt["words_per_reading"] / rt["reading_wps"] / 3600)
    meta = tomllib.loads((st / "study.toml").read_text())
    jsonschema.validate(meta, schema("study"))
    assert meta["plan"]["groups"] == ["small", "large"] and meta["plan"]["events"] == doc["events"]
    assert meta["plan"]["samples_per_group"] == [doc["samples_per_group"]["small"], doc["samples_per_group"]["large"]]
    assert meta["name"] == "readers" and meta["shuffle_seed"] == 1  # the rest of study.toml is kept
    info = run_json(capsys, "study", "info", str(st))
    prog = info["plan"]
    assert prog["planned"] and prog["readings_done"] == 80 and prog["readings_planned"] == rt["readings"]
    assert [(g["label"], g["read"], g["planned"]) for g in prog["groups"]] == [
        ("small", 40, doc["samples_per_group"]["small"]), ("large", 40, doc["samples_per_group"]["large"])]
    assert all(g["median_ci_width"] > 0 for g in prog["groups"])
    assert main(["study", "info", str(st)]) == 0
    out = capsys.readouterr().out
    assert f"samples read/planned: small 40/{doc['samples_per_group']['small']:,}" in out
    # survival looks before the planned N
    assert main(["survival", "--study", str(st), "--bootstrap", "0"]) == 0
    err = capsys.readouterr().err
    assert "this look comes before the planned N" in err and "inflates the false-positive rate" in err
    assert "O'Brien-Fleming (Lan-DeMets) boundary for a single planned interim look" in err
    # --dry-run leaves study.toml alone
    before = (st / "study.toml").read_bytes()
    assert main(["plan", "--study", str(st), "--replicates", "0", "--dry-run"]) == 0
    assert (st / "study.toml").read_bytes() == before


def test_plan_from_assumptions(capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capsys, "plan", "--median", "A=10,B=15", "--unit", "words", "--max-length", "400",
                   "--replicates", "300")
    jsonschema.validate(doc, schema("plan"))
    (comp,) = doc["comparisons"]
    assert comp["hazard_ratio"] == pytest.approx(10 / 15) and comp["schoenfeld"]["events"] == 191
    assert comp["schoenfeld"]["p_event"] == pytest.approx(1.0, abs=1e-6)  # read to 400: every text falls
    assert doc["source"] == "assumptions" and doc["study"] == {}
    hr_only = run_json(capsys, "plan", "--hazard-ratio", "1.5", "--max-length", "200", "--censoring", "0.3",
                       "--words-per-sample", "150", "--replicates", "0")
    (c2,) = hr_only["comparisons"]
    assert c2["schoenfeld"]["p_event"] == pytest.approx(0.7) and c2["simulation"] is None
    assert c2["schoenfeld"]["samples"] == math.ceil(191 / 0.7)
    assert hr_only["reader_time"]["words_per_reading"] == 150


@pytest.mark.parametrize("args, message", [
    (["--median", "A=10"], "needs two or more groups"),
    (["--median", "A=10,B=10", "--max-length", "100"], "do not differ"),
    (["--median", "A=10,B=x", "--max-length", "100"], "NAME=LENGTH"),
    (["--hazard-ratio", "1", "--max-length", "100", "--censoring", "0.3"], "do not differ"),
    (["--median", "A=10,B=15", "--max-length", "100", "--alpha", "1.5"], "--alpha 1.5 must lie strictly between"),
    (["--median", "A=10,B=15", "--max-length", "100", "--power", "0"], "--power 0.0 must lie strictly between"),
    (["--median", "A=10,B=15"], "needs --max-length"),
    (["--hazard-ratio", "1.5", "--max-length", "100"], "needs --censoring"),
])
def test_what_cannot_be_planned_is_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["plan", *args, "--words-per-sample", "100", "--replicates", "50"]) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("lmread: error:")]
    assert len(err) == 1 and message in err[0], err
    assert "inf" not in err[0].split(":", 2)[2] and "nan" not in err[0]


def test_pilot_with_one_group_or_no_falls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "one")
    w.add(*(word_sample(f"s{i}", 50) for i in range(5)))
    for i in range(5):
        w.mark("ann", f"s{i}", at=10 + i)
    capsys.readouterr()
    assert main(["plan", "--study", str(tmp_path / "one")]) == 2
    assert "one group only (m-small); a comparison needs two or more" in capsys.readouterr().err
    w = StudyWriter(tmp_path / "none")
    w.add(*(word_sample(f"a{i}", 50, model="x") for i in range(5)), *(word_sample(f"b{i}", 50, model="y")
                                                                       for i in range(5)))
    for i in range(5):
        w.mark("ann", f"a{i}", at=10 + i)
        w.mark("ann", f"b{i}", read_to=50)
    assert main(["plan", "--study", str(tmp_path / "none"), "--replicates", "10"]) == 2
    err = capsys.readouterr().err
    assert "group y has no fall in the pilot (5 readings)" in err and "Traceback" not in err
    assert "plan" not in tomllib.loads((tmp_path / "none" / "study.toml").read_text())


def test_bench_entry_runs_the_product_path() -> None:
    from lmread.bench.plan import run
    from lmread.bench.runner import BENCHMARKS

    assert BENCHMARKS["plan"] == "lmread.bench.plan"
    (result,) = run(quick=True)
    assert result.unit == "s" and result.value > 0 and result.details["replicates"] == 400
    assert 0.0 < result.details["power"] < 1.0 and result.details["samples_per_group"] == 500


def test_a_tiny_difference_keeps_schoenfeld_and_is_not_simulated(capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capsys, "plan", "--median", "A=100,B=102", "--max-length", "500", "--unit", "words")
    (comp,) = doc["comparisons"]
    assert comp["simulation"] is None and comp["schoenfeld"]["events"] > 50_000
    assert comp["samples_per_group"] == comp["schoenfeld"]["samples_per_group"]
    assert any("beyond what is simulated" in n for n in comp["notes"])
    assert math.isfinite(doc["reader_time"]["hours"])


def test_assumptions_on_a_study_take_its_length_in_the_unit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = StudyWriter(tmp_path / "st")
    w.add(word_sample("s0", 120, split=2), word_sample("s1", 80, split=2))  # 240 and 160 tokens
    words = run_json(capsys, "plan", "--study", str(tmp_path / "st"), "--median", "A=10,B=15", "--unit", "words",
                     "--replicates", "0", "--dry-run")
    tokens = run_json(capsys, "plan", "--study", str(tmp_path / "st"), "--median", "A=10,B=15", "--replicates", "0",
                      "--dry-run")
    assert words["settings"]["max_length"] == 120 and tokens["settings"]["max_length"] == 240
    # no marks: words per reading come from the study's samples
    assert words["reader_time"]["words_per_reading"] == pytest.approx(100.0)
