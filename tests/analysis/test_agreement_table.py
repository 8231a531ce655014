"""The readings as columns (``ReadingTable``, ``pairs_within_samples``) against the plain
definitions: one Python object per reading and per pair, ``itertools.combinations`` over each
sample's readings, and one bootstrap per pair of readers.  The agreement document built from the
columns must equal the one those definitions give (all statistics of a block on the same
replicates), bit for bit, on random readings with
duplicates, unknown answers, machine readers, unknown categories and missing severities."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from lmread.analysis.agreement import (
    FallCodes,
    FallPair,
    ReadingTable,
    agreement_from_readings,
    answer,
    comparable,
    fall_pair,
    kappa_from_counts,
    pairs_within_samples,
    ratio_from_units,
    rng_for,
    what_fell_documents,
    what_fell_statistics,
)
from lmread.analysis.agreement.kernels import alpha_from_units, fleiss_from_counts
from lmread.analysis.agreement.pairs import machine_vs_human
from lmread.analysis.agreement.resample import bootstrap
from lmread.analysis.readings import Reading, WordCounter
from lmread.records import CATEGORY_KEYS, Mark
from tests.fixtures.readers import word_sample

N_TOKENS = 60


def random_readings(seed: int, n_samples: int = 40) -> list[Reading]:
    """Readers ``a``..``e`` and ``auto-x`` read random samples; some read a sample twice (two
    readings of one annotator), some stop early without a fall (unknown at the horizon)."""
    rng = np.random.default_rng(seed)
    samples = [word_sample(f"s{i:02d}", N_TOKENS - int(rng.integers(0, 20)), split=int(rng.integers(1, 3)))
               for i in range(n_samples)]
    names = ["c", "a", "auto-x", "e", "b", "d"]
    categories: list[str | None] = [*CATEGORY_KEYS[:3], None, "other"]
    out: list[Reading] = []
    for s in samples:
        for name in names:
            for _ in range(1 + int(rng.random() < 0.1)):  # a second reading by the same annotator
                if rng.random() < 0.35:
                    continue
                if rng.random() < 0.55:
                    at = int(rng.integers(0, s.n_tokens))
                    mark = Mark(s.id, name, "fall", at=at, category=categories[rng.integers(0, 5)],
                                severity=[1, 2, 3, None][rng.integers(0, 4)])
                else:
                    mark = Mark(s.id, name, "no_fall", read_to=int(rng.integers(0, s.n_tokens + 1)))
                out.append(Reading.of(s, mark, len(out), True))
    rng.shuffle(out)  # type: ignore[arg-type]
    return out


def reference_agreement(readings: list[Reading], horizon: int, tolerance: int, n_boot: int,
                        seed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The pairs and the overall block by the definitions, one object per (pair, sample)."""
    words = WordCounter("words")
    per_sample: dict[str, list[Reading]] = {}
    for r in readings:
        per_sample.setdefault(r.sample.id, []).append(r)
    multi = {sid: sorted(rows, key=lambda r: r.annotator) for sid, rows in per_sample.items() if len(rows) >= 2}
    by_pair: dict[tuple[str, str], list[tuple[Reading, Reading]]] = {}
    for sid in sorted(multi):
        firsts: dict[str, Reading] = {}
        for r in multi[sid]:
            firsts.setdefault(r.annotator, r)
        for ra, rb in itertools.combinations(firsts.values(), 2):
            by_pair.setdefault((ra.annotator, rb.annotator), []).append((ra, rb))
    pairs = []
    for (a, b), common in sorted(by_pair.items()):
        units = [(ra, rb) for ra, rb in common if answer(ra, horizon) is not None and answer(rb, horizon) is not None]
        ya = np.array([bool(answer(ra, horizon)) for ra, _ in units], dtype=bool)
        yb = np.array([bool(answer(rb, horizon)) for _, rb in units], dtype=bool)
        fell2 = np.array([ra.at is not None and rb.at is not None for ra, rb in units], dtype=bool)
        at = np.array([(ra.at, rb.at) if f else (0, 0) for (ra, rb), f in zip(units, fell2, strict=True)],
                      dtype=float).reshape(-1, 2)
        wd = np.array([(words.before(ra.sample, ra.at), words.before(rb.sample, rb.at)) if f else (0, 0)
                       for (ra, rb), f in zip(units, fell2, strict=True)], dtype=float).reshape(-1, 2)

        def alpha(w: np.ndarray, fell2: np.ndarray = fell2, at: np.ndarray = at) -> np.ndarray:
            if not fell2.any():
                return np.full(w.shape[0], np.nan)
            return alpha_from_units(w[:, fell2], np.full(int(fell2.sum()), 2.0), at[fell2].sum(axis=1),
                                    (at[fell2] ** 2).sum(axis=1))

        cells = [(ya & yb), (ya & ~yb), (~ya & yb), (~ya & ~yb)]
        d_at, d_wd = np.abs(at[:, 0] - at[:, 1]), np.abs(wd[:, 0] - wd[:, 1])
        falls = FallCodes.of([[f for i, (ra, rb) in enumerate(units)
                               if (f := fall_pair(i, ra, rb, tolerance)) is not None]])
        # every statistic of the pair on the same replicates, drawn from the pair's generator
        est = bootstrap({"kappa": lambda w, c=cells: kappa_from_counts(*(w @ x.astype(float) for x in c)),
                         "alpha": alpha,
                         "tokens": lambda w, d=d_at, f=fell2: ratio_from_units(w, d, f),
                         "words": lambda w, d=d_wd, f=fell2: ratio_from_units(w, d, f),
                         **{"what:" + k: f for k, f in what_fell_statistics(falls).items()}},
                        len(units), n_boot, rng_for(seed, f"{a}\0{b}"))
        block: dict[str, Any] = {
            "a": a, "b": b, "common": len(common), "answered": len(units),
            "left_out": {"samples": len(common) - len(units),
                         "a_unknown": sum(answer(ra, horizon) is None for ra, _ in common),
                         "b_unknown": sum(answer(rb, horizon) is None for _, rb in common)},
            "table": {"both_fell": int(cells[0].sum()), "a_only": int(cells[1].sum()), "b_only": int(cells[2].sum()),
                      "neither": int(cells[3].sum())},
            "cohen_kappa": {"n": len(units), **est["kappa"]},
            "mean_abs_distance": {"n": int(fell2.sum()), "tokens": est["tokens"], "words": est["words"]},
            "alpha": {"n": int(fell2.sum()), **est["alpha"]},
            "what_fell": what_fell_documents(falls, [est], "what:")[0],
        }
        if a.startswith("auto-") != b.startswith("auto-"):
            kept = [(ra, rb) for ra, rb in common if comparable(ra, rb)]
            block["machine_vs_human"] = machine_vs_human(
                a, b, np.array([-1 if ra.at is None else ra.at for ra, _ in kept], dtype=np.int64),
                np.array([-1 if rb.at is None else rb.at for _, rb in kept], dtype=np.int64), tolerance)
        pairs.append(block)
    # overall: every sample with two or more readings, every pair of its readings
    sids = sorted(multi)
    n_i, yes_i, m, s1, s2, d_tok, d_n = (np.zeros(len(sids)) for _ in range(7))
    falls_all: list[FallPair] = []
    for k, sid in enumerate(sids):
        rows = multi[sid]
        known = [x for x in (answer(r, horizon) for r in rows) if x is not None]
        if len(known) >= 2:
            n_i[k], yes_i[k] = len(known), sum(known)
        pos = [r.at for r in rows if r.at is not None]
        if len(pos) >= 2:
            m[k], s1[k], s2[k] = len(pos), sum(pos), sum(x * x for x in pos)
        for ra, rb in itertools.combinations(rows, 2):
            if (f := fall_pair(k, ra, rb, tolerance)) is not None:
                falls_all.append(f)
            if ra.at is not None and rb.at is not None:
                d_tok[k] += abs(ra.at - rb.at)
                d_n[k] += 1
    has_f, has_a = n_i >= 2, m >= 2
    codes = FallCodes.of([falls_all])
    est = bootstrap({"fleiss": lambda w: fleiss_from_counts(w[:, has_f], n_i[has_f], yes_i[has_f]),
                     "alpha": lambda w: alpha_from_units(w[:, has_a], m[has_a], s1[has_a], s2[has_a]),
                     "tokens": lambda w: ratio_from_units(w, d_tok, d_n),
                     **{"what:" + k: f for k, f in what_fell_statistics(codes).items()}},
                    len(sids), n_boot, rng_for(seed, "\0overall"))
    overall = {"samples": len(sids), "readings": sum(len(v) for v in multi.values()),
               "fleiss": est["fleiss"], "alpha": est["alpha"], "tokens": est["tokens"],
               "what_fell": what_fell_documents(codes, [est], "what:")[0]}
    return pairs, overall


def test_rows_and_pairs_follow_each_samples_combinations() -> None:
    readings = random_readings(1)
    table = ReadingTable.of(readings, 50, WordCounter("words"))
    counts: dict[str, int] = {}
    for r in readings:
        counts[r.sample.id] = counts.get(r.sample.id, 0) + 1
    want_rows = sorted((r for r in readings if counts[r.sample.id] >= 2),
                       key=lambda r: (r.sample.id, r.annotator))  # stable: an annotator's readings in order
    assert [id(r) for r in table.readings] == [id(r) for r in want_rows]
    assert [table.samples[k] for k in table.sample] == [r.sample.id for r in want_rows]
    assert [table.annotators[k] for k in table.annotator] == [r.annotator for r in want_rows]
    assert table.answer.tolist() == [{True: 1, False: 0, None: -1}[answer(r, 50)] for r in want_rows]
    pairs = pairs_within_samples(table)
    want_pairs = [(i, j) for sid in table.samples
                  for i, j in itertools.combinations([k for k, r in enumerate(want_rows) if r.sample.id == sid], 2)]
    assert list(zip(pairs.a.tolist(), pairs.b.tolist(), strict=True)) == want_pairs
    assert len(want_pairs) > 200 and (table.first == False).any()  # noqa: E712 - duplicates are in the data


@pytest.mark.parametrize("seed", [2, 3])
def test_document_equals_the_definitions_bit_for_bit(seed: int) -> None:
    readings = random_readings(seed)
    doc = agreement_from_readings(readings, horizon=45, tolerance=6, n_boot=60, seed=seed)
    pairs, overall = reference_agreement(readings, 45, 6, 60, seed)
    got = [{k: p[k] for k in ref} for p, ref in zip(doc["pairs"], pairs, strict=True)]
    assert len(doc["pairs"]) == len(pairs) == 15
    assert got == pairs
    assert sum("machine_vs_human" in p for p in pairs) == 5
    o = doc["overall"]
    assert (o["samples"], o["readings"]) == (overall["samples"], overall["readings"])
    assert {k: v for k, v in o["fleiss_kappa"].items() if k in overall["fleiss"]} == overall["fleiss"]
    assert {k: v for k, v in o["alpha"].items() if k in overall["alpha"]} == overall["alpha"]
    assert o["mean_abs_distance"]["tokens"] == overall["tokens"]
    assert o["what_fell"] == overall["what_fell"]
    assert o["what_fell"]["category"]["n"] > 0 and o["what_fell"]["severity"]["n"] > 0


def test_one_reading_per_sample_makes_no_rows() -> None:
    s = word_sample("s0", 30)
    readings = [Reading.of(s, Mark(s.id, "a", "fall", at=3), 0, True)]
    table = ReadingTable.of(readings, 30, WordCounter("words"))
    assert len(table) == 0 and len(pairs_within_samples(table)) == 0
    doc = agreement_from_readings(readings, n_boot=10)
    assert doc["pairs"] == [] and doc["overall"]["samples"] == 0 and doc["warnings"]
