"""``lmread survival`` end to end: studies built with ``lmread import`` and ``lmread mark``."""

from __future__ import annotations

import builtins
import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from lmread.analysis.observations import observations_from_study
from lmread.cli import main
from lmread.records.words import word_starts
from lmread.study import Study

SCHEMA = Path(__file__).resolve().parents[2] / "annotations" / "schema" / "survival.schema.json"

#: model -> (n_params, [(sample index, "fall" at / "read" to, tokens, category)])
KNOWN: dict[str, tuple[int, list[tuple[str, int, str | None]]]] = {
    "tiny": (10_000_000, [("fall", 3, "repetition"), ("fall", 3, "drift"), ("fall", 7, None), ("read", 12, None),
                          ("fall", 0, "incoherent"), ("fall", 15, "repetition"), ("read", 3, None)]),
    "small": (100_000_000, [("fall", 9, "drift"), ("read", 30, None), ("fall", 18, "repetition"), ("fall", 9, None),
                            ("read", 20, None), ("fall", 25, "drift"), ("fall", 4, None)]),
    "large": (1_000_000_000, [("read", 40, None), ("fall", 22, "repetition"), ("read", 40, None), ("fall", 30, None),
                              ("fall", 12, "drift"), ("read", 15, None), ("fall", 33, "repetition")]),
}
TEXT = " ".join(f"w{j}" for j in range(40))  # 40 word tokens with the words tokenizer


def run(*args: str) -> int:
    return main([str(a) for a in args])


def write_import(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def known_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study whose marks give known durations, built with the CLI."""
    base = tmp_path_factory.mktemp("known")
    study = base / "study"
    rows = []
    for model, (n_params, marks) in KNOWN.items():
        for i, _ in enumerate(marks):
            rows.append({"text": TEXT, "model": model, "n_params": n_params, "id": f"{model}-{i}",
                         "prompt_set": "story" if i % 2 else "essay"})
    assert run("import", "--study", study, write_import(base / "in.jsonl", rows)) == 0
    for model, (_, marks) in KNOWN.items():
        for i, (kind, n, cat) in enumerate(marks):
            args = ["mark", "--study", study, "--sample", f"{model}-{i}", "--annotator", "ann"]
            if kind == "fall":
                args += ["--at", str(n)] + (["--category", cat] if cat else [])
            else:
                args += ["--no-fall", "--read-to", str(n)]
            assert run(*args) == 0
    return study


def survival_json(study: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert run("survival", "--study", study, "--json", "-", "--bootstrap", "100", *extra) == 0
    return json.loads(capsys.readouterr().out)


def test_known_study_matches_lifelines(known_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    out_json, out_csv, out_png = tmp_path / "s.json", tmp_path / "s.csv", tmp_path / "s.png"
    code = run("survival", "--study", known_study, "--json", out_json, "--csv", out_csv, "--plot", out_png,
               "--bootstrap", "200")
    assert code == 0
    doc = orjson.loads(out_json.read_bytes())
    assert doc["schema"] == "lmread.survival/1" and doc["unit"] == "tokens"
    assert [g["label"] for g in doc["groups"]] == ["tiny", "small", "large"]  # ordered by n_params
    for group in doc["groups"]:
        n_params, marks = KNOWN[group["label"]]
        assert group["model"]["id"] == group["label"] and group["n_params"] == n_params
        d = np.array([n for _, n, _ in marks], dtype=float)
        e = np.array([k == "fall" for k, _, _ in marks])
        assert (group["n"], group["events"], group["censored"]) == (len(d), int(e.sum()), int((~e).sum()))
        kmf = KaplanMeierFitter().fit(d, e)
        sf = kmf.survival_function_.iloc[:, 0]
        ci = kmf.confidence_interval_
        curve = group["curve"]
        assert [p["t"] for p in curve] == sf.index.tolist()
        np.testing.assert_allclose([p["survival"] for p in curve], sf.values, atol=1e-6)
        np.testing.assert_allclose([p["ci_low"] for p in curve], ci.iloc[:, 0].values, atol=1e-6)
        np.testing.assert_allclose([p["ci_high"] for p in curve], ci.iloc[:, 1].values, atol=1e-6)
        assert [p["at_risk"] for p in curve] == kmf.event_table["at_risk"].tolist()
        med = median_survival_times(ci)
        lif = [kmf.median_survival_time_, med.iloc[0, 0], med.iloc[0, 1]]
        ours = [group["median"]["value"], group["median"]["ci_low"], group["median"]["ci_high"]]
        assert ours == [None if math.isinf(v) else v for v in lif]
    # categories: tiny has repetition x2, drift, incoherent, and one uncategorized fall
    tiny = doc["groups"][0]["by_category"]
    assert {k: v["events"] for k, v in tiny.items()} == {"repetition": 2, "drift": 1, "incoherent": 1,
                                                         "uncategorized": 1}
    assert len(doc["comparisons"]["pairwise"]) == 3
    assert doc["comparisons"]["trend"]["direction"] == "longer coherent length with size"
    assert doc["scaling"]["statistic"] in ("median", "rmst") and doc["scaling"]["slope"] > 0

    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(doc)

    import pandas as pd
    from lifelines import KaplanMeierFitter as KMF

    df = pd.read_csv(out_csv)
    assert list(df.columns) == ["group", "model", "n_params", "sample", "annotator", "n_annotators", "tokens",
                                "words", "chars", "event", "category", "end"]
    assert len(df) == 21
    tiny_rows = df[df.group == "tiny"]
    fitted = KMF().fit(tiny_rows.tokens, tiny_rows.event)
    assert fitted.survival_function_.iloc[:, 0].tolist() == pytest.approx(
        [p["survival"] for p in doc["groups"][0]["curve"]])
    assert (df.words == df.tokens).all()  # one word per token with the words tokenizer

    from PIL import Image

    with Image.open(out_png) as image:
        assert image.format == "PNG" and image.size[0] > 300


def test_table_output(known_study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("survival", "--study", known_study, "--bootstrap", "50") == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "large" in out and "log-rank" in out and "curation ratio" in out
    assert "median" in out and "trend across sizes" in out


def test_units_words_and_chars(known_study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    words = survival_json(known_study, "--unit", "words", capsys=capsys)
    chars = survival_json(known_study, "--unit", "chars", capsys=capsys)
    tokens = survival_json(known_study, capsys=capsys)
    t_tokens = [p["t"] for p in tokens["groups"][0]["curve"]]
    assert [p["t"] for p in words["groups"][0]["curve"]] == t_tokens
    # chars before token i in "w0 w1 w2 ...": i words plus i - 1 spaces (before w10, 2 chars each)
    expected = [len(" ".join(f"w{j}" for j in range(i))) for i in t_tokens]
    assert [p["t"] for p in chars["groups"][0]["curve"]] == expected
    assert chars["unit"] == "chars" and words["unit"] == "words"


def test_word_count_rule() -> None:
    text = "  Hello, world!  foo\tbar"
    starts = word_starts(text)
    assert starts.tolist() == [2, 9, 17, 21]
    # a word is counted when it starts before the cut: cutting inside "world!" counts it
    assert int(np.searchsorted(starts, 10, side="left")) == 2
    assert int(np.searchsorted(starts, 9, side="left")) == 1


def test_groupings(known_study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    by_set = survival_json(known_study, "--by", "prompt-set", capsys=capsys)
    assert sorted(g["label"] for g in by_set["groups"]) == ["essay", "story"]
    assert all(g["model"] is None for g in by_set["groups"])  # sets span models
    assert by_set["scaling"]["slope"] is None and "three model sizes" in by_set["scaling"]["note"]
    by_dec = survival_json(known_study, "--by", "model+decoding", capsys=capsys)
    assert len(by_dec["groups"]) == 3


# ---- hand-worked studies -------------------------------------------------------------------


@pytest.fixture
def small_study(tmp_path: Path) -> Path:
    study = tmp_path / "small"
    rows = [{"text": TEXT, "model": "m", "n_params": 1000, "id": f"s{i}"} for i in range(4)]
    rows.append({"text": "one two three", "model": "other", "id": "short"})
    assert run("import", "--study", study, write_import(tmp_path / "in.jsonl", rows)) == 0
    return study


def obs_of(study: Path, **kw: Any) -> Any:
    return observations_from_study(Study.open(study), **kw)


def test_mark_at_token_zero(small_study: Path) -> None:
    assert run("mark", "--study", small_study, "--sample", "s0", "--at", "0") == 0
    obs = obs_of(small_study)
    assert obs.tokens.tolist() == [0] and obs.words.tolist() == [0] and obs.chars.tolist() == [0]
    assert obs.event.tolist() == [True] and obs.category(0) == "uncategorized"


def test_undone_mark_is_withdrawn(small_study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("mark", "--study", small_study, "--sample", "s0", "--at", "5") == 0
    assert run("mark", "--study", small_study, "--sample", "s1", "--at", "9") == 0
    assert run("mark", "--study", small_study, "--sample", "s1", "--undo") == 0
    obs = obs_of(small_study)
    assert obs.sample == ["s0"] and obs.tokens.tolist() == [5]
    # a replaced mark: the latest standing mark counts; undoing it brings back the earlier one
    assert run("mark", "--study", small_study, "--sample", "s0", "--at", "7") == 0
    assert obs_of(small_study).tokens.tolist() == [7]
    assert run("mark", "--study", small_study, "--sample", "s0", "--undo") == 0
    assert obs_of(small_study).tokens.tolist() == [5]


def test_skip_contributes_nothing(small_study: Path) -> None:
    assert run("mark", "--study", small_study, "--sample", "s0", "--skip") == 0
    assert run("mark", "--study", small_study, "--sample", "s1", "--no-fall", "--read-to", "4") == 0
    obs = obs_of(small_study)
    assert obs.sample == ["s1"] and obs.event.tolist() == [False] and obs.end == ["read"]


def test_eos_read_to_end_is_censored_at_length(small_study: Path) -> None:
    assert run("mark", "--study", small_study, "--sample", "short", "--no-fall", "--read-to", "3") == 0
    obs = obs_of(small_study)
    assert obs.tokens.tolist() == [3] and obs.event.tolist() == [False] and obs.end == ["eos"]
    assert obs.words.tolist() == [3] and obs.chars.tolist() == [len("one two three")]


def test_two_annotators_on_one_sample(small_study: Path) -> None:
    for who, args in (("alice", ["--at", "10"]), ("bob", ["--at", "4"]), ("carol", ["--no-fall", "--read-to", "20"])):
        assert run("mark", "--study", small_study, "--sample", "s2", "--annotator", who, *args) == 0
    each = obs_of(small_study, consensus="each")
    assert sorted(zip(each.annotator, each.tokens.tolist(), each.event.tolist(), strict=True)) == [
        ("alice", 10, True), ("bob", 4, True), ("carol", 20, False)]
    earliest = obs_of(small_study, consensus="earliest")
    assert (earliest.tokens.tolist(), earliest.event.tolist(), earliest.annotator) == ([4], [True], ["bob"])
    assert earliest.n_annotators.tolist() == [3]
    median = obs_of(small_study, consensus="median")
    assert (median.tokens.tolist(), median.event.tolist()) == ([10], [True])
    only_carol = obs_of(small_study, annotator="carol")
    assert only_carol.annotator == ["carol"] and only_carol.event.tolist() == [False]
    two = obs_of(small_study, annotator="bob", consensus="median")
    assert two.tokens.tolist() == [4]


def test_two_annotators_earliest_when_nobody_fell(small_study: Path) -> None:
    assert run("mark", "--study", small_study, "--sample", "s3", "--annotator", "a1", "--no-fall", "--read-to", "8") == 0
    assert run("mark", "--study", small_study, "--sample", "s3", "--annotator", "a2", "--no-fall", "--read-to", "15") == 0
    obs = obs_of(small_study, consensus="earliest")
    assert obs.tokens.tolist() == [15] and obs.event.tolist() == [False]


def test_group_with_no_events_and_single_sample(small_study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("mark", "--study", small_study, "--sample", "s0", "--no-fall", "--read-to", "12") == 0
    assert run("mark", "--study", small_study, "--sample", "s1", "--no-fall", "--read-to", "30") == 0
    assert run("mark", "--study", small_study, "--sample", "short", "--at", "1") == 0
    doc = survival_json(small_study, capsys=capsys)
    all_censored = next(g for g in doc["groups"] if g["label"] == "m")
    assert all_censored["events"] == 0 and all_censored["censored"] == 2
    assert all_censored["median"]["value"] is None and "no falls" in all_censored["median"]["note"]
    assert all(p["survival"] == 1.0 for p in all_censored["curve"])
    single = next(g for g in doc["groups"] if g["label"] == "other")
    assert single["n"] == 1 and single["median"]["value"] == 1
    assert [p["survival"] for p in single["curve"]] == [1.0, 0.0]
    import jsonschema

    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--unit", "bytes", "unknown unit 'bytes'"),
    ("--by", "size", "unknown grouping 'size'"),
    ("--annotator", "nobody", "unknown annotator 'nobody'"),
    ("--consensus", "mean", "unknown consensus 'mean'"),
])
def test_unknown_options(known_study: Path, capsys: pytest.CaptureFixture[str], option: str, value: str,
                         message: str) -> None:
    capsys.readouterr()
    assert run("survival", "--study", known_study, option, value) != 0
    err = capsys.readouterr().err
    assert message in err and err.startswith("lmread: error:") and len(err.strip().splitlines()) == 1


def test_study_without_marks(small_study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("survival", "--study", small_study) != 0
    err = capsys.readouterr().err
    assert "no fall or no-fall marks" in err and "lmread mark" in err and "Traceback" not in err


def test_study_with_only_skips(small_study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("mark", "--study", small_study, "--sample", "s0", "--skip") == 0
    capsys.readouterr()
    assert run("survival", "--study", small_study) != 0
    assert "no fall or no-fall marks" in capsys.readouterr().err


def test_missing_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("survival", "--study", tmp_path / "nope") != 0
    assert "does not exist" in capsys.readouterr().err


def test_unwritable_output(known_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # even root cannot create a file below a regular file
    out_json = tmp_path / "ok.json"
    assert run("survival", "--study", known_study, "--json", out_json, "--csv", blocker / "x.csv") != 0
    err = capsys.readouterr().err
    assert "--csv" in err
    assert not out_json.exists()  # nothing half-written


def test_output_in_missing_folder(known_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("survival", "--study", known_study, "--json", tmp_path / "no" / "s.json") != 0
    err = capsys.readouterr().err
    assert "does not exist" in err and "--json" in err


def test_output_write_failure_leaves_nothing(known_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import lmread.analysis.export as export

    def fail(*_a: Any, **_k: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export.os, "replace", fail)
    target = tmp_path / "s.json"
    assert run("survival", "--study", known_study, "--json", target, "--bootstrap", "0") != 0
    assert "No space left" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_plot_without_matplotlib(known_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    out = tmp_path / "s.png"
    assert run("survival", "--study", known_study, "--plot", out, "--bootstrap", "0") != 0
    err = capsys.readouterr().err
    assert "pip install 'lmread[plot]'" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_plot_bad_suffix_and_svg(known_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("survival", "--study", known_study, "--plot", tmp_path / "s.gif") != 0
    assert "use a .png, .svg or .pdf" in capsys.readouterr().err
    assert run("survival", "--study", known_study, "--plot", tmp_path / "s.svg", "--bootstrap", "0") == 0
    assert (tmp_path / "s.svg").read_text().lstrip().startswith("<?xml")


def test_csv_to_stdout_refused(known_study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("survival", "--study", known_study, "--csv", "-") != 0
    assert "needs a file path" in capsys.readouterr().err


def test_csv_loads_with_csv_module(known_study: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    assert run("survival", "--study", known_study, "--csv", out, "--bootstrap", "0") == 0
    rows = list(csv.DictReader(out.open()))
    falls = [r for r in rows if r["event"] == "1"]
    assert all(r["category"] for r in falls) and all(not r["category"] for r in rows if r["event"] == "0")


def test_output_path_is_a_folder(known_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("survival", "--study", known_study, "--csv", tmp_path) != 0
    err = capsys.readouterr().err
    assert "is a folder" in err and "--csv" in err
