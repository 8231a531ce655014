"""``lmread probe`` end to end with scripted model cards: outputs, progress, one-line errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jsonschema
import orjson
import pytest

from lmread.cli import main

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "annotations" / "schema" /
                     "probe.schema.json").read_text())


def write_card(home: Path, model_id: str, tokenizer: str = "words") -> None:
    """A scripted model card in the user's model folder (its script is not used by score())."""
    models = home / "models"
    models.mkdir(exist_ok=True)
    script = home / f"{model_id}.txt"
    script.write_text("unused by score()", encoding="utf-8")
    (models / f"{model_id}.toml").write_text(
        f'id = "{model_id}"\nname = "Scripted {model_id}"\nfamily = "scripted"\nbackends = ["scripted"]\n'
        f'n_params = 1000\nsource = {{ path = {json.dumps(str(script))} }}\n[extra]\ntokenizer = "{tokenizer}"\n',
        encoding="utf-8")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["probe", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_probe_writes_json_csv_plot_and_prints_the_table(lmread_home: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    write_card(lmread_home, "alpha")
    write_card(lmread_home, "beta", tokenizer="chars")
    out_json, out_csv, out_png, out_svg = (tmp_path / n for n in ("p.json", "p.csv", "p.png", "p.svg"))
    code, out, err = run(capsys, "--model", "alpha", "--model", "beta", "--list", "planets", "--json", str(out_json),
                         "--csv", str(out_csv), "--plot", str(out_png))
    assert code == 0, err
    assert "[1/2] loading alpha" in err and "[2/2] beta: " in err and "tokens scored" in err
    doc = orjson.loads(out_json.read_bytes())
    jsonschema.validate(doc, SCHEMA)
    assert doc["source"] == {"list": "planets"} and len(doc["items"]) == 8
    assert [m["model"] for m in doc["models"]] == ["alpha", "beta"]
    lines = out.splitlines()
    assert lines[0].startswith("rank probe of list planets: 8 items")
    for m in doc["models"]:
        s = m["summary"]
        row = next(line for line in lines if line.strip().startswith(m["model"] + " "))
        assert f"{100 * s['top1_rate']:.1f}%" in row and f"{100 * s['top10_rate']:.1f}%" in row
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert len(rows) == 2 * 7
    assert rows[0]["model"] == "alpha" and rows[0]["item"] == "1" and rows[0]["first_word"] == "Venus"
    assert rows[0]["piece"] == "\nVenus" and rows[0]["lead"] == "\n"  # the words tokenizer merges the break
    assert rows[7]["model"] == "beta" and rows[7]["piece"] == "V" and json.loads(rows[7]["word_split"]) == list("Venus")
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, err = run(capsys, "--model", "alpha", "--model", "beta", "--list", "planets", "--plot", str(out_svg))
    assert code == 0 and b"<svg" in out_svg.read_bytes()[:2000]


def test_json_to_stdout_and_a_file_with_a_regex(lmread_home: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    write_card(lmread_home, "alpha")
    src = tmp_path / "list.txt"
    src.write_text("Counting: one, two, three, four, five.", encoding="utf-8")
    code, out, err = run(capsys, "--model", "alpha", "--file", str(src), "--item-regex", r"(?<=[:,] )\w", "--json", "-")
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert [i["first_word"] for i in doc["items"]] == ["one", "two", "three", "four", "five"]
    assert doc["item_regex"] == r"(?<=[:,] )\w" and doc["source"] == {"file": str(src)}
    reading = doc["models"][0]["readings"][0]
    assert reading["piece"] == " two," and reading["lead"] == " " and reading["straddles"]
    assert reading["word"]["split"] == ["two"] and not reading["word"]["exact"]


@pytest.mark.parametrize("args, message", [
    (["--list", "kings"], "unknown list 'kings': use one of presidents, elements, months, planets"),
    (["--list", "months", "--file", "x.txt"], "give exactly one of --list NAME"),
    ([], "give exactly one of --list NAME"),
    (["--file", "{missing}"], "does not exist"),
    (["--file", "{empty}"], "is empty"),
    (["--file", "{one}"], "has 1 item, a probe needs at least 2"),
    (["--file", "{two}", "--item-regex", "Z"], "--item-regex 'Z' matches 0 items, a probe needs at least 2"),
    (["--list", "months", "--item-regex", "("], "invalid option --item-regex"),
    (["--list", "months", "--plot", "{dir}/p.gif"], "unknown image type '.gif'"),
    (["--list", "months", "--csv", "-"], "--csv needs a file path"),
    (["--list", "months", "--json", "{dir}/nope/p.json"], "does not exist; create it"),
])
def test_one_line_errors_before_any_model_is_loaded(lmread_home: Path, tmp_path: Path, args: list[str], message: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    write_card(lmread_home, "alpha")
    (tmp_path / "empty.txt").write_text("\n \n")
    (tmp_path / "one.txt").write_text("just one\n")
    (tmp_path / "two.txt").write_text("a\nb\n")
    paths = {"missing": tmp_path / "missing.txt", "empty": tmp_path / "empty.txt", "one": tmp_path / "one.txt",
             "two": tmp_path / "two.txt", "dir": tmp_path}
    args = [a.format(**{k: str(v) for k, v in paths.items()}) for a in args]
    code, out, err = run(capsys, "--model", "alpha", *args)
    assert code == 2
    assert err.startswith("lmread: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "loading" not in err and out == ""


def test_unknown_model_and_backend_are_one_line_errors(lmread_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_card(lmread_home, "alpha")
    code, _, err = run(capsys, "--model", "nope", "--list", "months")
    assert code == 2 and err.startswith("lmread: error: ") and "nope" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "--model", "alpha", "--list", "months", "--backend", "llamacpp")
    assert code == 2 and "has no backend 'llamacpp'" in err
