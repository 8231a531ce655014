"""Controls with a known answer: the splice and loop builders, ``lmread controls make``,
``lmread import --control human``, the sample/2 records, and survival without (and with) them."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from lmread.backends.base import GenOptions
from lmread.backends.scripted import ScriptedBackend
from lmread.cli import main
from lmread.controls import (
    build_loop,
    build_splice,
    clean_boundaries,
    control_line,
    control_onset,
    is_control,
    make_controls,
)
from lmread.errors import OptionError, SchemaVersionError, StudyError
from lmread.generate import generate_sample
from lmread.records import Mark, Sample
from lmread.study import Study

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "annotations" / "schema"

TEXTS = [
    "The harbour was quiet that morning. Gulls circled above the boats, and a man in a red coat walked "
    "along the pier counting ropes. He stopped at the last mooring and said the tide would turn by noon. ",
    "To bake bread, mix flour, water, salt and yeast. Knead the dough for ten minutes, then let it rise "
    "in a warm place until it has doubled. Shape the loaf, score the top and bake it for forty minutes. ",
    "Dear Anna, thank you for your letter. The roses you planted last spring have finally bloomed, and "
    "the neighbours stop at the fence to look at them. I will send you a photograph next week. ",
    "The committee met on Tuesday to discuss the budget. After a long debate, the members agreed to "
    "repair the library roof first and to postpone the new playground until the autumn. ",
]
#: a text with an emoji, accents and CJK, cut into single bytes: many token boundaries split a character
MULTIBYTE = "Café au lait 🐍 et thé vert. 日本の夏は暑い。 Les enfants jouent près de la rivière, et le soleil brille. " * 2


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def gen(text: str, prompt: str, model: str = "model-a", n_params: int = 1000, seed: int = 1,
        tokenizer: str = "words") -> Sample:
    backend = ScriptedBackend(text=text, tokenizer=tokenizer, model_id=model, n_params=n_params)
    return generate_sample(backend, {"text": prompt, "set": "test", "name": prompt[:10]},
                           GenOptions(max_tokens=2000, seed=seed))


def pieces_text(sample: Sample) -> str:
    return "".join(sample.piece(i) for i in range(sample.n_tokens))


def check_exact(sample: Sample) -> None:
    """The invariants of every sample: spans tile the text, arrays have one entry per token."""
    toks = sample.tokens
    n = sample.n_tokens
    assert len(toks.offsets) == n + 1 and toks.offsets[0] == 0 and toks.offsets[-1] == len(sample.text)
    assert all(a <= b for a, b in zip(toks.offsets, toks.offsets[1:], strict=False))
    assert pieces_text(sample) == sample.text
    assert len(toks.nbytes) == n and sum(toks.nbytes) == len(sample.text.encode("utf-8"))
    for name in ("logprob", "rank", "entropy", "top_ids", "top_logprobs", "top_pieces"):
        arr = getattr(toks, name)
        assert arr is None or len(arr) == n
    again = Sample.from_json(orjson.loads(sample.dumps()), "test")
    assert again.to_json() == sample.to_json()
    jsonschema.validate(orjson.loads(sample.dumps()), schema("sample"))


def run(*args: Any) -> int:
    return main([str(a) for a in args])


def run_json(capsys: pytest.CaptureFixture[str], *args: Any) -> Any:
    capsys.readouterr()
    assert run(*args) == 0
    return json.loads(capsys.readouterr().out)


def make_study(path: Path, n_per_prompt: int = 3) -> Study:
    """A study of two models answering the four prompts."""
    st = Study.create(path, shuffle_seed=17)
    samples = []
    for i, text in enumerate(TEXTS):
        for model, size in (("model-a", 1000), ("model-b", 5000)):
            for j in range(n_per_prompt):
                samples.append(gen(text * 2, f"prompt {i}", model, size, seed=j))
    st.add_samples(samples)
    return st


# --------------------------------------------------------------------------------------------
# Builders


def test_splice_has_exact_arrays_and_the_known_onset() -> None:
    a = gen(TEXTS[0] * 2, "harbour")
    b = gen(TEXTS[1] * 2, "bread")
    k = 23
    c = build_splice(a, b, k, seed=5)
    check_exact(c)
    assert c.text == a.text[: a.tokens.offsets[k]] + b.text[b.tokens.offsets[k]:]
    assert c.n_tokens == b.n_tokens  # as long as an ordinary sample
    assert c.tokens.ids == a.tokens.ids[:k] + b.tokens.ids[k:]
    assert c.tokens.nbytes == a.tokens.nbytes[:k] + b.tokens.nbytes[k:]
    assert [c.piece(i) for i in range(k)] == [a.piece(i) for i in range(k)]
    assert [c.piece(i) for i in range(k, c.n_tokens)] == [b.piece(i) for i in range(k, b.n_tokens)]
    # A's own prefix keeps its distribution; B's tokens were scored in another context: null
    assert c.tokens.logprob[:k] == a.tokens.logprob[:k] and c.tokens.rank[:k] == a.tokens.rank[:k]
    assert all(v is None for v in c.tokens.logprob[k:] + c.tokens.rank[k:] + c.tokens.entropy[k:])
    assert all(v == [] for v in c.tokens.top_ids[k:] + c.tokens.top_pieces[k:])
    assert c.control == {"kind": "splice", "onset": k, "category": "drift", "parts": [a.id, b.id], "seed": 5}
    assert is_control(c) and control_onset(c) == k and not is_control(a) and control_onset(a) is None
    assert c.prompt == a.prompt and c.id.startswith("s_")
    assert c.dumps().startswith(b'{"schema":"lmread.sample/2"')


def test_loop_repeats_an_earlier_span_from_the_onset() -> None:
    a = gen(TEXTS[2] * 2, "letter")
    k, start = 30, 12
    c = build_loop(a, k, start, seed=2)
    check_exact(c)
    span = a.text[a.tokens.offsets[start]: a.tokens.offsets[k]]
    assert c.text[: c.tokens.offsets[k]] == a.text[: a.tokens.offsets[k]]
    tail = c.text[c.tokens.offsets[k]:]
    assert tail == (span * (len(tail) // len(span) + 1))[: len(tail)]
    assert c.n_tokens == a.n_tokens
    assert c.tokens.ids[k:] == [a.tokens.ids[start + (i % (k - start))] for i in range(c.n_tokens - k)]
    assert c.tokens.logprob[:k] == a.tokens.logprob[:k] and all(v is None for v in c.tokens.rank[k:])
    assert c.control == {"kind": "loop", "onset": k, "category": "repetition", "parts": [a.id], "seed": 2}


def test_builders_never_split_a_character() -> None:
    a = gen(MULTIBYTE, "café", tokenizer="bytes")
    b = gen(MULTIBYTE[::-1], "thé", tokenizer="bytes")
    clean_a, clean_b = clean_boundaries(a), clean_boundaries(b)
    split = next(k for k in range(1, a.n_tokens) if not clean_a[k])
    with pytest.raises(OptionError, match="splits a character"):
        build_splice(a, b, split, seed=1)
    both = [k for k in range(40, 120) if clean_a[k] and clean_b[k]]
    c = build_splice(a, b, both[0], seed=1)
    check_exact(c)
    # a loop whose last repetition would end inside a character is cut at the character before
    span_start = next(s for s in range(20, 40) if clean_a[s] and MULTIBYTE.encode()[s:s + 1] == b" ")
    k = next(j for j in range(span_start + 9, span_start + 40) if clean_a[j])
    loop = build_loop(a, k, span_start, seed=1)
    check_exact(loop)
    assert loop.n_tokens <= a.n_tokens


def test_make_controls_on_multibyte_byte_tokens_is_exact(tmp_path: Path) -> None:
    st = Study.create(tmp_path / "mb", shuffle_seed=3)
    st.add_samples([gen(MULTIBYTE, "café", tokenizer="bytes", seed=1),
                    gen(MULTIBYTE.upper(), "thé", tokenizer="bytes", seed=2),
                    gen(MULTIBYTE.lower() * 2, "vert", tokenizer="bytes", seed=3)])
    report = make_controls(st, rate=1.0, kinds=["splice", "loop"], seed=9)
    assert report.total == {"splice": 2, "loop": 1} and not report.warnings
    for sid in report.added["splice"] + report.added["loop"]:
        check_exact(Study.open(st.path).samples[sid])


# --------------------------------------------------------------------------------------------
# lmread controls make


def test_controls_make_is_deterministic_and_rerun_adds_nothing(tmp_path: Path, capsys) -> None:
    one = make_study(tmp_path / "one")
    two = make_study(tmp_path / "two")
    n = len(one.samples)
    out1 = run_json(capsys, "controls", "make", "--study", one.path, "--rate", "0.25", "--seed", "4", "--json")
    out2 = run_json(capsys, "controls", "make", "--study", two.path, "--rate", "0.25", "--seed", "4", "--json")
    assert out1["added"] == out2["added"]  # same study, seed and rate: the same control ids
    assert out1["target"] == {"splice": 3, "loop": 3} and out1["ordinary_samples"] == n
    st = Study.open(one.path)
    ids = out1["added"]["splice"] + out1["added"]["loop"]
    assert len(set(ids)) == 6 and all(is_control(st.samples[i]) for i in ids)
    lengths = sorted({s.n_tokens for s in st.samples.values() if not is_control(s)})
    for sid in ids:
        c = st.samples[sid]
        check_exact(c)
        parts = [st.samples[p] for p in c.control["parts"]]
        assert all(not is_control(p) for p in parts)
        assert c.prompt == parts[0].prompt
        assert lengths[0] <= c.n_tokens <= lengths[-1]  # the length of an ordinary sample
        shortest = min(p.n_tokens for p in parts)
        assert 0.1 * shortest <= c.control["onset"] <= 0.8 * shortest
        if c.control["kind"] == "splice":  # B answers another prompt, from the same model here
            assert parts[1].prompt["text"] != parts[0].prompt["text"] and parts[1].model_id == parts[0].model_id
    before = (one.path / "samples.jsonl").read_bytes()
    again = run_json(capsys, "controls", "make", "--study", one.path, "--rate", "0.25", "--seed", "4", "--json")
    assert again["added"] == {"splice": [], "loop": []} and again["total"] == {"splice": 3, "loop": 3}
    assert (one.path / "samples.jsonl").read_bytes() == before
    # another seed at the same rate adds nothing either: the rate decides how many
    other = run_json(capsys, "controls", "make", "--study", one.path, "--rate", "0.25", "--seed", "5", "--json")
    assert other["added"] == {"splice": [], "loop": []}
    # a higher rate adds the difference
    more = run_json(capsys, "controls", "make", "--study", one.path, "--rate", "0.5", "--seed", "4", "--json")
    assert [len(v) for v in more["added"].values()] == [3, 3]
    # the controls are in the reading queue
    order = Study.open(one.path).reading_order("tester")
    assert set(ids) <= set(order)


def test_controls_make_errors_are_one_line(tmp_path: Path, capsys) -> None:
    st = make_study(tmp_path / "s", n_per_prompt=1)
    capsys.readouterr()
    assert run("controls", "make", "--study", st.path, "--kinds", "splice,typo") != 0
    err = capsys.readouterr().err
    assert err.startswith("lmread: error: unknown control kind 'typo'") and len(err.strip().splitlines()) == 1
    assert run("controls", "make", "--study", st.path, "--rate", "1.5") != 0
    assert "between 0 and 1" in capsys.readouterr().err
    assert run("controls", "make", "--study", tmp_path / "missing") != 0
    assert "does not exist" in capsys.readouterr().err


def test_splice_needs_two_prompts(tmp_path: Path, capsys) -> None:
    st = Study.create(tmp_path / "one-prompt", shuffle_seed=1)
    st.add_samples([gen(TEXTS[0] * 2, "same", seed=i) for i in range(4)])
    out = run_json(capsys, "controls", "make", "--study", st.path, "--rate", "0.5", "--json")
    assert out["added"]["splice"] == [] and len(out["added"]["loop"]) == 1
    assert any("two different prompts" in w for w in out["warnings"])


# --------------------------------------------------------------------------------------------
# Records


def test_ordinary_samples_stay_byte_identical_at_version_1() -> None:
    folder = ROOT / "annotations" / "examples" / "example-study"
    for line in (folder / "samples.jsonl").read_bytes().splitlines(keepends=True):
        sample = Sample.from_json(orjson.loads(line), "example")
        assert sample.control is None and sample.dumps() == line
    assert b"control" not in gen(TEXTS[0], "p").dumps()


def test_sample_versions_are_checked(tmp_path: Path) -> None:
    a, b = gen(TEXTS[0] * 2, "a"), gen(TEXTS[1] * 2, "b")
    record = orjson.loads(build_splice(a, b, 20, seed=1).dumps())
    v1 = dict(record, schema="lmread.sample/1")
    with pytest.raises(StudyError, match="needs schema lmread.sample/2"):
        Sample.from_json(v1, "line 1")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(v1, schema("sample"))
    with pytest.raises(SchemaVersionError):
        Sample.from_json(dict(record, schema="lmread.sample/3"), "line 1")
    bad = dict(record, control=dict(record["control"], onset=10_000))
    with pytest.raises(StudyError, match="onset"):
        Sample.from_json(bad, "line 1")
    no_control = {k: v for k, v in record.items() if k != "control"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(no_control, schema("sample"))


# --------------------------------------------------------------------------------------------
# Human controls


def test_human_controls_are_imported_then_picked_into_the_queue(tmp_path: Path, capsys) -> None:
    st = make_study(tmp_path / "s", n_per_prompt=1)  # 8 ordinary samples
    rows = [{"text": TEXTS[i] * 2, "model": "human", "prompt": f"prompt {i}"} for i in range(4)]
    src = tmp_path / "human.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = run_json(capsys, "import", "--study", st.path, "--control", "human", src, "--json")
    assert out["imported"] == 4
    st = Study.open(st.path)
    humans = [st.samples[i] for i in out["ids"]]
    for h in humans:
        assert h.control == {"kind": "human", "onset": None, "category": None, "parts": [], "seed": 0}
        assert h.dumps().startswith(b'{"schema":"lmread.sample/2"')
        jsonschema.validate(orjson.loads(h.dumps()), schema("sample"))
    # imported human controls wait in the pool: not in any queue until picked
    assert not set(out["ids"]) & set(st.reading_order("tester"))
    made = run_json(capsys, "controls", "make", "--study", st.path, "--kinds", "human", "--rate", "0.25",
                    "--seed", "3", "--json")
    assert made["target"] == {"human": 2} and len(made["added"]["human"]) == 2
    st = Study.open(st.path)
    meta = tomllib.loads((st.path / "study.toml").read_text())
    jsonschema.validate(meta, schema("study"))
    assert meta["controls"]["human"] == made["added"]["human"]
    order = st.reading_order("tester")
    assert set(made["added"]["human"]) <= set(order) and len(set(out["ids"]) & set(order)) == 2
    again = run_json(capsys, "controls", "make", "--study", st.path, "--kinds", "human", "--rate", "0.25",
                     "--seed", "3", "--json")
    assert again["added"] == {"human": []}
    # asking for more than were imported says so
    short = run_json(capsys, "controls", "make", "--study", st.path, "--kinds", "human", "--rate", "1", "--json")
    assert len(short["added"]["human"]) == 2 and "only 4 are imported" in short["warnings"][0]
    # importing the same text again as an ordinary sample is a different sample
    capsys.readouterr()
    assert run("import", "--study", st.path, src) == 0


def test_import_control_kind_is_checked(tmp_path: Path, capsys) -> None:
    src = tmp_path / "h.jsonl"
    src.write_text(json.dumps({"text": "A text.", "model": "human"}) + "\n")
    capsys.readouterr()
    assert run("import", "--study", tmp_path / "s", "--control", "splice", src) != 0
    assert "lmread: error:" in capsys.readouterr().err
    assert run("import", "--study", tmp_path / "s", "--control", "human", src) == 0
    assert "no prompt" in capsys.readouterr().err  # an empty prompt line would set it apart


# --------------------------------------------------------------------------------------------
# Survival: controls never enter model curves


def test_survival_leaves_controls_out_and_shows_them_with_controls(tmp_path: Path, capsys) -> None:
    st = make_study(tmp_path / "s", n_per_prompt=1)
    rows = [{"text": TEXTS[3] * 2, "model": "human", "prompt": "prompt 3", "id": "h1"}]
    (tmp_path / "h.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert run("import", "--study", st.path, "--control", "human", tmp_path / "h.jsonl") == 0
    report = make_controls(Study.open(st.path), rate=0.375, seed=1)  # 8 samples: 1 splice, 1 loop, 1 human
    assert report.total == {"splice": 1, "loop": 1, "human": 1}
    info = run_json(capsys, "study", "info", st.path, "--json")  # controls are no model's samples
    assert [m["model"] for m in info["models"]] == ["model-a", "model-b"] and info["models"][0]["samples"] == 4
    assert info["controls"] == {"human": 1, "loop": 1, "splice": 1} and info["samples"] == 11
    st = Study.open(st.path)
    for sid, sample in st.samples.items():
        if sid == "h1" or not is_control(sample):
            at = 5 if sample.model_id != "human" else None
        else:
            at = control_onset(sample) + 2
        mark = Mark(sample=sid, annotator="ann", kind="fall" if at is not None else "no_fall", at=at,
                    read_to=None if at is not None else sample.n_tokens)
        st.append_mark(mark)
    doc = run_json(capsys, "survival", "--study", st.path, "--json", "-")
    jsonschema.validate(doc, schema("survival"))
    labels = [g["label"] for g in doc["groups"]]
    assert labels == ["model-a", "model-b"] and doc["n"] == 8
    assert doc["filters"]["controls"] is False and doc["filters"]["left_out"]["controls"] == 3
    assert doc["scaling"]["note"] and "control" not in json.dumps(doc["comparisons"])
    doc = run_json(capsys, "survival", "--study", st.path, "--controls", "--json", "-")
    jsonschema.validate(doc, schema("survival"))
    groups = {g["label"]: g for g in doc["groups"]}
    assert set(groups) == {"model-a", "model-b", "control:splice", "control:loop", "control:human"}
    assert groups["control:human"]["events"] == 0 and groups["control:human"]["censored"] == 1
    assert groups["control:splice"]["events"] == 1 and groups["control:splice"]["n_params"] is None
    assert groups["model-a"]["n"] == 4 and doc["filters"]["controls"] is True
    assert doc["comparisons"]["trend"]["groups"] == ["model-a", "model-b"]  # sizes only from models
    # the TUI's survival view uses the same computation: controls left out there too
    from lmread.analysis.report import compute

    view, _ = compute(st.path)
    assert [g["label"] for g in view["groups"]] == ["model-a", "model-b"]


def test_control_line_after_the_mark() -> None:
    a, b = gen(TEXTS[0] * 2, "a"), gen(TEXTS[1] * 2, "b")
    c = build_splice(a, b, 20, seed=1)
    fall = Mark(sample=c.id, annotator="x", kind="fall", at=27, read_to=30)
    assert control_line(c, fall) == "control: spliced at token 20 (another text from there); you marked 27"
    early = Mark(sample=c.id, annotator="x", kind="no_fall", read_to=15)
    assert control_line(c, early).endswith("you stopped at token 15, before it")
    late = Mark(sample=c.id, annotator="x", kind="no_fall", read_to=60)
    assert control_line(c, late).endswith("you read 60 tokens without marking a fall")
    loop = build_loop(a, 30, 12, seed=1)
    assert control_line(loop, fall).startswith("control: a loop from token 30")
    assert control_line(a, fall) is None
    assert control_line(c, Mark(sample=c.id, annotator="x", kind="skip")) is None


# --------------------------------------------------------------------------------------------
# On real model output (byte-level BPE from the bundled SmolLM2 through llama.cpp)


def test_controls_from_real_model_samples(llama_smollm2, tmp_path: Path) -> None:
    prompts = ["Write about the sea at night.", "Explain how to plant a tree.", "Describe a café in Paris. ☕"]
    st = Study.create(tmp_path / "real", shuffle_seed=8)
    samples = [generate_sample(llama_smollm2, {"text": p, "set": "test"}, GenOptions(max_tokens=48, seed=i))
               for i, p in enumerate(prompts)]
    st.add_samples(samples)
    report = make_controls(st, rate=1.0, kinds=["splice", "loop"], seed=2)
    assert report.total == {"splice": 2, "loop": 1}, report.warnings
    st = Study.open(st.path)
    for sid in report.added["splice"] + report.added["loop"]:
        c = st.samples[sid]
        check_exact(c)
        a = st.samples[c.control["parts"][0]]
        k = c.control["onset"]
        assert c.tokens.ids[:k] == a.tokens.ids[:k] and c.text.startswith(a.text[: a.tokens.offsets[k]])
        assert c.tokens.logprob[:k] == a.tokens.logprob[:k] and c.tokens.rank[k] is None
