"""``lmread generate --shard I/N``: N shards, merged with ``lmread merge``, equal the unsharded run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from lmread.cli import main
from lmread.errors import OptionError
from lmread.generate.shard import in_shard, parse_shard, shard_of
from tests.generate.test_generate import read_samples, write_card

PROMPTS = ["The lighthouse", "Dear Sir,", "東京の朝は静かだ。🌸", "Step one:", "Once upon a time"]


def _stable(sample: dict[str, Any]) -> dict[str, Any]:
    """A sample without the fields that record when and how fast it was made."""
    return {k: v for k, v in sample.items() if k not in ("created", "times")}


def _generate(study: Path, *extra: str) -> int:
    args = ["generate", "--study", str(study), "--model", "scr-a", "--model", "scr-b", "--samples", "3",
            "--max-tokens", "9", "--seed", "7"]
    for p in PROMPTS:
        args += ["--prompt", p]
    return main([*args, *extra])


def test_parse_shard() -> None:
    assert parse_shard(None) is None
    assert parse_shard("1/1") == (1, 1) and parse_shard(" 3 / 4 ") == (3, 4)
    for bad in ("0/4", "5/4", "1/0", "a/b", "2", "-1/3", "1/2/3"):
        with pytest.raises(OptionError, match=r"^invalid option --shard"):
            parse_shard(bad)


def test_shards_partition_the_plan_independent_of_order() -> None:
    prompts = [{"text": f"prompt {i}"} for i in range(40)]
    items = [(m, p["text"], i) for m in ("a", "b") for p in prompts for i in range(5)]
    owners = {}
    for m, text, i in items:
        hits = [k for k in range(1, 5) if in_shard((k, 4), m, {"text": text}, i)]
        assert len(hits) == 1  # every sample in exactly one shard
        owners[(m, text, i)] = hits[0]
        assert shard_of(m, {"text": text, "name": "renamed"}, i, 4) == hits[0]  # only the text counts
    sizes = [sum(1 for v in owners.values() if v == k) for k in range(1, 5)]
    assert sum(sizes) == len(items) and min(sizes) > len(items) / 4 * 0.7  # roughly even
    assert in_shard(None, "a", {"text": "x"}, 0) and in_shard((1, 1), "a", {"text": "x"}, 0)


def test_union_of_shards_equals_unsharded_run(lmread_home: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    write_card(lmread_home, "scr-a")
    write_card(lmread_home, "scr-b", text="A second script, shorter, with naïve façade — and 🌸 too. " * 3)
    whole = tmp_path / "whole"
    assert _generate(whole) == 0
    capsys.readouterr()
    expected = {s["id"]: _stable(s) for s in read_samples(whole)}
    assert len(expected) == 2 * len(PROMPTS) * 3

    n = 3
    parts = [tmp_path / f"shard{i}" for i in range(1, n + 1)]
    seen: set[str] = set()
    for i, part in enumerate(parts, start=1):
        assert _generate(part, "--shard", f"{i}/{n}", "--json") == 0
        summary = orjson.loads(capsys.readouterr().out)
        ids = {s["id"] for s in read_samples(part)}
        assert summary["generated"] == len(ids) > 0
        assert not ids & seen  # shards are disjoint
        seen |= ids
    # running a shard again resumes it: nothing new
    assert _generate(parts[0], "--shard", f"1/{n}", "--json") == 0
    again = orjson.loads(capsys.readouterr().out)
    assert again["generated"] == 0 and again["skipped"] == len(read_samples(parts[0]))

    merged = tmp_path / "merged"
    assert main(["merge", *map(str, parts), "--into", str(merged)]) == 0
    got = {s["id"]: _stable(s) for s in read_samples(merged)}
    assert got == expected


def test_bad_shard_is_an_error_before_anything(lmread_home: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    write_card(lmread_home, "scr-a")
    study = tmp_path / "s"
    code = main(["generate", "--study", str(study), "--model", "scr-a", "--prompt", "x", "--shard", "4/3"])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("lmread: error: invalid option --shard '4/3'") and err.count("\n") == 1
    assert not study.exists()
