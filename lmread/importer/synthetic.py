"""A synthetic file in RoFT's released layout (``roft.csv``), for tests, the benchmark and the
README's "Reproducing RoFT" commands, since the real file is downloaded by each user.

Run ``python -m lmread.importer.synthetic OUT.csv [--rows N] [--readers N] [--seed N] [--jsonl]``.

Passages come from gpt2, gpt2-xl, ctrl and davinci at top-p 0.4 and 1.0 (gpt2-xl also 0.0),
plus all-human passages and spliced ``baseline`` passages, over three datasets.  Each simulated
reader detects machine text with a per-sentence probability that falls with the generator's
size, sometimes guesses early (a human sentence) and sometimes answers "all human"; ``points``
follow RoFT's rule, so an import reports no disagreeing rows.
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

COLUMNS = ("date", "model", "dataset", "annotator", "group", "dec_strat_value", "predicted_boundary_index",
           "true_boundary_index", "points", "reason", "prompt", "prompt_body", "generation", "gen_body",
           "recipe_familiarity", "news_familiarity", "stories_familiarity", "gen_familiarity", "native_speaker",
           "read_guide")
#: per machine sentence, the chance a reader spots it (bigger generators are harder to spot)
DETECT = {"gpt2": 0.45, "ctrl": 0.38, "gpt2-xl": 0.3, "davinci": 0.2, "baseline": 0.5}
TOP_P = {"gpt2": (0.4, 1.0), "gpt2-xl": (0.0, 0.4, 1.0), "ctrl": (0.4, 1.0), "davinci": (0.4, 1.0)}
DATASETS = ("Short Stories", "Recipes", "New York Times")
REASONS = ("grammar", "repetition", "irrelevant", "contradicts_sentence", "contradicts_knowledge", "common_sense",
           "coreference", "generic")
_WORDS = ("the", "a", "river", "kitchen", "senator", "quietly", "salt", "door", "morning", "letter", "stove",
          "city", "council", "garden", "slowly", "onion", "storm", "train", "voice", "window", "bright", "old")


def _points(g: int, b: int) -> int:
    return 0 if g < b else max(5 - (g - b), 0)


def _sentence(rng: random.Random, tag: str) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 14))]
    return f"{tag.capitalize()} {' '.join(words)}."


def synth_rows(n_rows: int = 3000, n_readers: int = 30, seed: int = 0) -> list[dict[str, Any]]:
    """``n_rows`` RoFT rows (dicts keyed by :data:`COLUMNS`) by ``n_readers`` readers."""
    rng = random.Random(seed)
    readers = []
    for k in range(n_readers):
        readers.append({"annotator": str(1000 + 7 * k), "group": "ABC"[k % 3],
                        **{c: rng.choice((-1, 1, 2, 3, 4, 5)) for c in COLUMNS if c.endswith("_familiarity")},
                        "native_speaker": rng.choice(("Yes", "No")), "read_guide": rng.choice(("Yes", "No", ""))})
    n_passages = max(12, n_rows // 3)
    passages: list[dict[str, Any]] = []
    models = ("gpt2", "gpt2-xl", "ctrl", "davinci")
    for p in range(n_passages):
        kind = ("human" if p % 10 == 0 else "baseline" if p % 10 == 1 else models[p % len(models)])
        b = 9 if kind == "human" else rng.randint(0, 8)
        model = rng.choice(models) if kind == "human" else kind
        top_p = rng.choice(TOP_P[model]) if model in TOP_P else ""
        human = [_sentence(rng, f"h{p}s{i}") for i in range(b + 1)]
        extra = rng.randint(0, 3)
        gen = [] if kind == "human" else [_sentence(rng, f"m{p}s{i}") for i in range(9 - b + extra)]
        # the released file labels all-human passages "human" (its notebook's model counts)
        label = "baseline" if kind == "baseline" else "human" if kind == "human" else model
        passages.append({"model": label, "kind": kind, "b": b,
                         "top_p": "" if kind == "baseline" else top_p, "dataset": DATASETS[p % len(DATASETS)],
                         "prompt": str(p // len(DATASETS)),  # an index within its dataset, as in RoFT
                         "generation": "" if kind == "human" else str(10_000 + p // len(DATASETS)),
                         "prompt_body": "_SEP_".join(human), "gen_body": "_SEP_".join(gen)})
    start = datetime(2021, 2, 1, 9, 0, 0)
    seen: set[tuple[int, int]] = set()
    rows: list[dict[str, Any]] = []
    while len(rows) < n_rows:
        pi = rng.randrange(n_passages)
        ri = rng.randrange(n_readers)
        if (pi, ri) in seen:
            if len(seen) >= n_passages * n_readers:
                break
            continue
        seen.add((pi, ri))
        psg = passages[pi]
        b = int(psg["b"])
        roll = rng.random()
        if psg["kind"] == "human":
            g = rng.randint(0, 8) if roll < 0.3 else 9
        elif b > 0 and roll < 0.12:
            g = rng.randint(0, b - 1)  # an early guess: a human sentence
        else:
            g = 9
            for k in range(b + 1, 10):
                if rng.random() < DETECT[str(psg["kind"] if psg["kind"] == "baseline" else psg["model"])]:
                    g = k - 1
                    break
        reason = ""
        if g < 9 and rng.random() < 0.7:
            picked = rng.sample(REASONS, rng.randint(1, 2))
            reason = str(picked) if rng.random() < 0.8 else "it just felt off"
        reader = readers[ri]
        rows.append({"date": (start + timedelta(minutes=3 * len(rows))).isoformat(sep=" "),
                     "model": psg["model"], "dataset": psg["dataset"], "annotator": reader["annotator"],
                     "group": reader["group"], "dec_strat_value": psg["top_p"], "predicted_boundary_index": g,
                     "true_boundary_index": b, "points": _points(g, b), "reason": reason, "prompt": psg["prompt"],
                     "prompt_body": psg["prompt_body"], "generation": psg["generation"], "gen_body": psg["gen_body"],
                     **{c: reader[c] for c in COLUMNS if c.endswith("_familiarity")},
                     "native_speaker": reader["native_speaker"], "read_guide": reader["read_guide"]})
    return rows


def write_roft(path: Path, rows: list[dict[str, Any]], jsonl: bool = False) -> Path:
    """Write ``rows`` as a RoFT CSV (or JSONL with the same fields)."""
    if jsonl:
        path.write_bytes(b"".join(orjson.dumps({c: r[c] for c in COLUMNS}) + b"\n" for r in rows))
        return path
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def main(argv: list[str] | None = None) -> None:
    """Write a synthetic RoFT file (see the module notes)."""
    parser = argparse.ArgumentParser(prog="python -m lmread.importer.synthetic", description="Write a synthetic RoFT file.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--readers", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jsonl", action="store_true")
    args = parser.parse_args(argv)
    rows = synth_rows(args.rows, args.readers, args.seed)
    write_roft(args.out, rows, jsonl=args.jsonl)
    print(f"wrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
