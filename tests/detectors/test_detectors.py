"""Machine readers: each detector on synthetic texts with a known onset, ``lmread annotate``
end to end (idempotent re-runs, marks as ordinary events under ``auto-<name>``), one-line CLI
errors, and a study generated through the scripted backend then read by ``lmread survival``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from lmread.cli import main
from lmread.detectors import DETECTORS, get_detector, resolve
from lmread.detectors.annotate import annotate
from lmread.detectors.base import SampleView
from lmread.detectors.repetition import tail_onset, window_onset
from lmread.errors import OptionError
from lmread.records import Sample, Tokens
from lmread.study import Study

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "annotations" / "schema"


def make_sample(pieces: list[str], rank: list[int | None] | None = None, entropy: list[float] | None = None,
                sid: str = "s_test", model: str = "m", n_params: int = 1000) -> Sample:
    """A sample whose tokens are exactly ``pieces`` (ids: one per distinct piece)."""
    vocab: dict[str, int] = {}
    ids = [vocab.setdefault(p, len(vocab)) for p in pieces]
    offsets = [0]
    for p in pieces:
        offsets.append(offsets[-1] + len(p))
    n = len(pieces)
    with_dist = rank is not None or entropy is not None
    tokens = Tokens(ids=ids, offsets=offsets, nbytes=[len(p.encode()) for p in pieces],
                    logprob=[-1.0] * n if with_dist else None,
                    rank=rank if rank is not None else ([1] * n if with_dist else None),
                    entropy=entropy if entropy is not None else ([2.0] * n if with_dist else None))
    return Sample(id=sid, model={"id": model, "n_params": n_params}, backend="scripted", prompt={"text": "x"},
                  settings={}, seed=0, text="".join(pieces), tokens=tokens, finish_reason="length")


def words(n: int, start: int = 0) -> list[str]:
    return [f" w{i}" for i in range(start, start + n)]


def detect(name: str, sample: Sample, **params: Any) -> Any:
    det = get_detector(name)
    resolved = dict(resolve([name], [f"{k}={v}" for k, v in params.items()])[0][1])
    return det.detect(SampleView(sample), resolved)


# --------------------------------------------------------------------------------------------
# repetition


def test_window_rule_fall_is_second_occurrence() -> None:
    loop = words(30, 1000)
    pieces = words(100) + loop * 4
    found = detect("repetition", make_sample(pieces), tail_period=0)
    assert found.at == 130 and found.category == "repetition"
    assert "recurs 4 times" in found.note


def test_window_rule_needs_repeats_occurrences() -> None:
    phrase = words(25, 500)
    pieces = words(50) + phrase + words(40, 100) + phrase + words(40, 200)  # twice only
    assert detect("repetition", make_sample(pieces), tail_period=0).at is None
    assert detect("repetition", make_sample(pieces), tail_period=0, repeats=2).at == 50 + 25 + 40


def test_window_rule_overlapping_short_period() -> None:
    # period 3 < window 20: overlapping windows recur; the loop starts at 60, the first window of
    # the loop recurs 3 tokens later
    pieces = words(60) + (words(3, 900) * 20)
    assert detect("repetition", make_sample(pieces), tail_period=0).at == 63


def test_window_rule_earliest_second_occurrence_wins() -> None:
    a, b = words(20, 300), words(20, 400)
    pieces = words(10) + b + words(5, 50) + a + a + words(5, 60) + b + words(5, 70) + b + a + words(5, 80)
    # b at 10, 80, 105 (second at 80); a at 35, 55, 125 (second at 55): the earlier second wins
    assert detect("repetition", make_sample(pieces), tail_period=0).at == 55


def test_tail_rule_short_loop_at_the_end() -> None:
    pieces = words(80) + [" yes", " no"] * 8  # period 2, 16 tokens: never fills 3 windows of 20
    found = detect("repetition", make_sample(pieces))
    assert found.at == 82 and "2-token phrase repeated 8.0 times" in found.note
    assert detect("repetition", make_sample(pieces), tail_period=0).at is None
    # a cut-short last copy still counts
    assert tail_onset(np.array([5, 6, 7, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2]), 10, 3, 6) == (6, 3, 11 / 3)
    assert tail_onset(np.array([1, 2, 3, 4]), 10, 3, 6) is None


def test_window_rule_on_words_is_tokenizer_independent() -> None:
    # the same words tokenized two ways inside the loop: token windows never repeat, word windows do
    base = [f" v{i}" for i in range(40)]
    loop_words = [f" l{i}" for i in range(16)]
    pieces = list(base)
    for copy in range(3):
        for j, w in enumerate(loop_words):
            pieces += [w[:2], w[2:]] if (j + copy) % 2 else [w]
    sample = make_sample(pieces)
    assert detect("repetition", sample, tail_period=0).at is None
    found = detect("repetition", sample, unit="words", tail_period=0)
    first_loop_token = 40
    second_copy_token = first_loop_token + sum(2 if j % 2 else 1 for j in range(16))
    assert found.at == second_copy_token and "15 words" in found.note


def test_window_onset_and_hash_collision_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    seq = np.arange(200) % 37
    assert window_onset(seq, 20, 3) == (37, 0, 5)  # (second occurrence, first, count)
    import lmread.detectors.repetition as rep

    # every window hashing alike: the deciding pair is compared exactly and exact rows take over
    monkeypatch.setattr(rep, "_window_hashes", lambda s, w: np.zeros(s.size - w + 1, dtype=np.uint64))
    assert window_onset(np.arange(100), 20, 3) is None
    assert window_onset(seq, 20, 3) == (37, 0, 5)


# --------------------------------------------------------------------------------------------
# special-token


def test_special_token_in_running_text() -> None:
    pieces = [" Mix", " the", " flour", " and", " water", ".", " Then", "<start_of_image>", " bake"]
    found = detect("special-token", make_sample(pieces))
    assert found.at == 7 and found.category == "other" and "<start_of_image>" in found.note


@pytest.mark.parametrize("marker", ["<|im_start|>", "<eos>", "</s>", "[INST]", "<end_of_turn>", "<unused42>"])
def test_special_token_markers(marker: str) -> None:
    pieces = [" One", " two", " three", f" {marker}", " more", " text"]
    assert detect("special-token", make_sample(pieces)).at == 3


def test_special_token_split_across_tokens_and_final_stop() -> None:
    pieces = [" Hello", " <|", "im", "_end", "|>", " again"]
    assert detect("special-token", make_sample(pieces)).at == 1  # the token holding its first character
    ending = [" The", " end", ".", "<|endoftext|>", "\n"]
    assert detect("special-token", make_sample(ending)).at is None  # how a model stops
    assert detect("special-token", make_sample(ending), final=1).at == 3
    assert detect("special-token", make_sample([" a", " <b>", " c"])).at is None  # ordinary markup is fine
    assert detect("special-token", make_sample([" a", " <think>", " c"]), extra="<think>").at == 1


# --------------------------------------------------------------------------------------------
# improbable-run


def test_improbable_run_rank_cluster() -> None:
    rank = [1] * 100
    rank[30] = 5000  # one odd token: noise
    for i in (61, 64, 66):  # 3 within 8 tokens from 61
        rank[i] = 2000
    rank[62] = None  # a token without a distribution is not improbable
    found = detect("improbable-run", make_sample(words(100), rank=rank), entropy_jump=0)
    assert found.at == 61 and found.category == "incoherent"
    assert detect("improbable-run", make_sample(words(100), rank=rank), entropy_jump=0, rank_over=2000).at is None


def test_improbable_run_entropy_spikes() -> None:
    entropy = [2.0] * 120
    for i in (90, 92, 95):
        entropy[i] = 7.5  # 5.5 nats above the running mean
    found = detect("improbable-run", make_sample(words(120), rank=[1] * 120, entropy=entropy))
    assert found.at == 90
    assert detect("improbable-run", make_sample(words(120), rank=[1] * 120, entropy=entropy), entropy_jump=6).at is None
    early = [2.0] * 120
    for i in (2, 3, 4):
        early[i] = 9.0  # fewer than 8 tokens of baseline: not a spike
    assert detect("improbable-run", make_sample(words(120), rank=[1] * 120, entropy=early)).at is None


def test_improbable_run_without_distributions_is_a_skip() -> None:
    found = detect("improbable-run", make_sample(words(50)))
    assert found.skip and found.at is None and "no token distributions" in found.note


# --------------------------------------------------------------------------------------------
# parameters


def test_resolve_params_and_errors() -> None:
    specs = resolve(["repetition", "improbable-run"], ["window=10", "improbable-run.window=4", "unit=words"])
    params = {det.name: p for det, p in specs}
    assert params["repetition"]["window"] == 10 and params["repetition"]["unit"] == "words"
    assert params["improbable-run"]["window"] == 4
    with pytest.raises(OptionError, match="unknown detector 'loops'"):
        resolve(["loops"], [])
    with pytest.raises(OptionError, match="no chosen detector has a parameter 'size'"):
        resolve(["repetition"], ["size=3"])
    with pytest.raises(OptionError, match="needs int for window"):
        resolve(["repetition"], ["window=big"])
    with pytest.raises(OptionError, match="window >= 1"):
        resolve(["repetition"], ["window=0"])
    with pytest.raises(OptionError, match="use one of tokens, words"):
        resolve(["repetition"], ["unit=bytes"])
    with pytest.raises(OptionError, match="KEY=VALUE"):
        resolve(["repetition"], ["window"])
    with pytest.raises(OptionError, match="min_count=9 cannot exceed window=8"):
        resolve(["improbable-run"], ["min_count=9"])


# --------------------------------------------------------------------------------------------
# annotate: marks, idempotence, CLI


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """Four samples: a loop, a special token, an improbable run, and a clean one."""
    st = Study.create(tmp_path / "study", shuffle_seed=1)
    rank = [1] * 150
    for i in (100, 101, 103):
        rank[i] = 4000
    samples = [
        make_sample(words(60) + words(25, 700) * 4, rank=[1] * 160, sid="s_loop"),
        make_sample(words(20) + ["<|im_start|>"] + words(40, 100), rank=[1] * 61, sid="s_special"),
        make_sample(words(150), rank=rank, sid="s_improbable", model="big", n_params=10**6),
        make_sample(words(90), rank=[1] * 90, sid="s_clean", model="big", n_params=10**6),
    ]
    st.add_samples(samples)
    return st.path


def marks_of(path: Path, who: str) -> list[dict[str, Any]]:
    file = path / "marks" / f"{who}.jsonl"
    return [orjson.loads(line) for line in file.read_bytes().splitlines()] if file.exists() else []


def test_annotate_writes_ordinary_marks(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import jsonschema

    assert main(["annotate", "--study", str(study), "--detector", "repetition,special-token",
                 "--detector", "improbable-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {d["annotator"] for d in report["detectors"]} == {f"auto-{n}" for n in DETECTORS}
    schema = json.loads((SCHEMA_DIR / "mark.schema.json").read_text())
    by: dict[str, dict[str, dict[str, Any]]] = {}
    for name in DETECTORS:
        for mark in marks_of(study, f"auto-{name}"):
            jsonschema.validate(mark, schema)
            assert mark["detector"]["name"] == name and mark["detector"]["version"] == get_detector(name).version
            assert mark["detector"]["params"] == get_detector(name).defaults()
            by.setdefault(name, {})[mark["sample"]] = mark
    assert by["repetition"]["s_loop"]["kind"] == "fall" and by["repetition"]["s_loop"]["at"] == 85
    assert by["repetition"]["s_clean"] == {**by["repetition"]["s_clean"], "kind": "no_fall", "read_to": 90}
    assert by["special-token"]["s_special"]["at"] == 20
    assert by["improbable-run"]["s_improbable"]["at"] == 100
    assert by["improbable-run"]["s_loop"]["kind"] == "no_fall" and by["improbable-run"]["s_loop"]["read_to"] == 160
    # they load back as Marks through the study like any human's
    st = Study.open(study)
    assert st.current_marks("auto-repetition")[("auto-repetition", "s_loop")].detector["name"] == "repetition"


def test_annotate_rerun_adds_nothing_new_params_supersede(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["annotate", "--study", str(study), "--detector", "repetition"]) == 0
    first = (study / "marks" / "auto-repetition.jsonl").read_bytes()
    capsys.readouterr()
    assert main(["annotate", "--study", str(study), "--detector", "repetition", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["detectors"][0]
    assert again["added"] == 0 and again["unchanged"] == 4
    assert (study / "marks" / "auto-repetition.jsonl").read_bytes() == first
    assert main(["annotate", "--study", str(study), "--detector", "repetition", "--param", "window=10",
                 "--json"]) == 0
    changed = json.loads(capsys.readouterr().out)["detectors"][0]
    assert changed["added"] == 4 and changed["params"]["window"] == 10
    current = Study.open(study).current_marks("auto-repetition")
    assert all(m.detector["params"]["window"] == 10 for m in current.values())


def test_annotate_skip_for_text_without_distributions(tmp_path: Path) -> None:
    st = Study.create(tmp_path / "s", shuffle_seed=0)
    st.add_samples([make_sample(words(30), sid="s_plain")])
    report = annotate(Study.open(st.path, top_k=False), resolve(["improbable-run"], []))
    assert report.detectors[0].skips == 1
    (mark,) = marks_of(st.path, "auto-improbable-run")
    assert mark["kind"] == "skip" and "no token distributions" in mark["note"]


@pytest.mark.parametrize("args, message", [
    (["--detector", "loops"], "unknown detector 'loops': use one of repetition, special-token, improbable-run"),
    (["--detector", "repetition", "--param", "window=x"], "--param window=x: repetition needs int"),
    (["--detector", "repetition", "--param", "nope=1"], "no chosen detector has a parameter 'nope'"),
])
def test_cli_errors_are_one_line(study: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                 message: str) -> None:
    assert main(["annotate", "--study", str(study), *args]) != 0
    err = capsys.readouterr().err
    assert err.startswith("lmread: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (study / "marks").exists() or not list((study / "marks").glob("auto-*"))


def test_cli_missing_study_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["annotate", "--study", str(tmp_path / "none"), "--detector", "repetition"]) != 0
    err = capsys.readouterr().err
    assert err.startswith("lmread: error: ") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("raw, control", [(None, None), (b"\xff raw", None), (None, "loop"), (b"\xff raw", "loop")])
def test_top_k_free_load_keeps_everything_else(tmp_path: Path, raw: bytes | None, control: str | None) -> None:
    st = Study.create(tmp_path / "s", shuffle_seed=0)
    sample = make_sample(words(12), rank=[1] * 12, sid="s_k")
    sample.tokens.top_ids = [[1, 2]] * 12
    sample.tokens.top_logprobs = [[-0.1, -2.0]] * 12
    sample.tokens.top_pieces = [["}}}", '"},"top":{'] for _ in range(12)]  # braces and quotes in pieces
    sample.raw = raw
    if control:
        sample.control = {"kind": control, "onset": 4, "category": "repetition", "parts": ["s_a"], "seed": 1}
    st.add_samples([sample])
    full = Study.open(st.path).samples["s_k"]
    light = Study.open(st.path, top_k=False).samples["s_k"]
    assert full.tokens.top_pieces is not None and light.tokens.top_ids is None and light.tokens.top_pieces is None
    assert light.raw == full.raw == raw and light.control == full.control
    assert (light.text, light.tokens.ids, light.tokens.offsets, light.tokens.rank, light.tokens.entropy) == (
        full.text, full.tokens.ids, full.tokens.offsets, full.tokens.rank, full.tokens.entropy)


# --------------------------------------------------------------------------------------------
# end to end through the scripted backend and lmread survival


def test_generate_annotate_survival(lmread_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two scripted 'models' (one that loops, one that does not), generated with lmread generate,
    read by the machine, then machine survival curves for both."""
    models = lmread_home / "models"
    models.mkdir(exist_ok=True)
    fresh = " ".join(f"t{i}" for i in range(120))
    texts = {"looper": " ".join(f"t{i}" for i in range(40)) + " again and again and again" * 12, "steady": fresh}
    for k, (model_id, text) in enumerate(texts.items()):
        (lmread_home / f"{model_id}.txt").write_text(text, encoding="utf-8")
        (models / f"{model_id}.toml").write_text(
            f'id = "{model_id}"\nname = "{model_id}"\nfamily = "scripted"\nbackends = ["scripted"]\n'
            f'source = {{ path = {orjson.dumps(str(lmread_home / (model_id + ".txt"))).decode()} }}\n'
            f"n_params = {10 ** (6 + k)}\n", encoding="utf-8")
    study = tmp_path / "study"
    assert main(["generate", "--study", str(study), "--model", "looper", "--model", "steady", "--prompt", "Go",
                 "--samples", "3", "--max-tokens", "100", "--seed", "1"]) == 0
    capsys.readouterr()
    assert main(["annotate", "--study", str(study), "--detector", "repetition,special-token,improbable-run"]) == 0
    out = capsys.readouterr().out
    assert "auto-repetition" in out and "unchanged 0" in out
    assert main(["survival", "--study", str(study), "--annotator", "auto-repetition", "--json", "-",
                 "--bootstrap", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    groups = {g["label"]: g for g in doc["groups"]}
    assert groups["looper"]["events"] == 3 and groups["steady"]["events"] == 0
    # the loop " again and again and again" (5 word tokens) starts at token 40; its window of
    # 20 tokens recurs from token 45 on
    assert {p["t"] for p in groups["looper"]["curve"] if p["events"]} == {45}
    # every loop falls at the same token and nothing is censored beyond it: no shape to fit, said so
    par = {g["label"]: g for g in doc["parametric"]["groups"]}
    assert par["looper"]["weibull"] is None and "shape is not identified" in par["looper"]["note"]
    assert par["steady"]["weibull"] is None and "no falls" in par["steady"]["note"]


def test_survival_all_means_humans_machines_by_name(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["annotate", "--study", str(study), "--detector", "repetition"]) == 0
    capsys.readouterr()
    assert main(["survival", "--study", str(study), "--bootstrap", "0"]) != 0
    err = capsys.readouterr().err
    assert "no human fall or no-fall marks yet" in err and "--annotator auto-repetition" in err
    assert main(["mark", "--study", str(study), "--sample", "s_clean", "--at", "5", "--annotator", "ann"]) == 0
    capsys.readouterr()
    assert main(["survival", "--study", str(study), "--json", "-", "--bootstrap", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n"] == 1  # only the human's mark
    assert main(["survival", "--study", str(study), "--annotator", "auto-repetition", "--json", "-",
                 "--bootstrap", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 4


# --------------------------------------------------------------------------------------------
# imported text (issue 16, defect 4): tokens without ids are compared by their text

_VOCAB = ("the a harbour town old river market bridge winter summer people boats fish salt rope stone "
          "church bell tower street house window door lamp night morning rain wind sea ship captain "
          "merchant child mother father road hill field farmer horse cart wheel bread cheese wine letter "
          "story song dance year century king queen law war peace trade coin silver gold iron wood fire "
          "smoke ash quiet loud slow quick bright dark narrow wide new small large early late long short "
          "walked carried built sold bought watched heard told sang remembered forgot opened closed "
          "crossed waited returned left found lost kept gave took made ran stood fell rose and but then "
          "while because after before under over near far from into with without of to in on at by").split()


def _prose(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` words of seeded prose-like text (sentences of 5-14 words, capitalised, full stops)."""
    out: list[str] = []
    while len(out) < n:
        sentence = [str(w) for w in rng.choice(_VOCAB, size=int(rng.integers(5, 15)))]
        sentence[0] = sentence[0].capitalize()
        sentence[-1] += "."
        out.extend(sentence)
    return out[:n]


def test_annotate_repetition_on_imported_words_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Imported texts carry token id -1: the detector must compare the words, not the ids (on ids
    every imported text fell at token 1)."""
    rng = np.random.default_rng(16)
    rows, onsets = [], {}
    for i in range(10):  # a 25-word span looped from a known word (the onset) to the end
        onset = int(rng.integers(40, 160))
        text = _prose(rng, onset)
        span = text[onset - 25:onset]
        while len(text) < onset + 110:
            text.extend(span)
        text = text[:onset + 110]
        rows.append({"id": f"loop{i}", "model": "m", "text": " ".join(text)})
        onsets[f"loop{i}"] = onset
    for i in range(5):  # loop-free texts
        rows.append({"id": f"clean{i}", "model": "m", "text": " ".join(_prose(rng, int(rng.integers(150, 300))))})
    src = tmp_path / "texts.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    study = tmp_path / "st"
    assert main(["import", "--study", str(study), str(src), "--tokenizer", "words"]) == 0
    assert all(i == -1 for s in Study.open(study).samples.values() for i in s.tokens.ids)
    capsys.readouterr()
    assert main(["annotate", "--study", str(study), "--detector", "repetition", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["detectors"][0]
    assert (report["falls"], report["no_falls"]) == (10, 5)
    samples = Study.open(study).samples
    for mark in marks_of(study, "auto-repetition"):
        sample = samples[mark["sample"]]
        if mark["sample"].startswith("clean"):
            assert mark["kind"] == "no_fall" and mark["read_to"] == sample.n_tokens
            continue
        assert mark["kind"] == "fall" and mark["category"] == "repetition"
        # the fall token's word: words are counted in the text up to the token's first letter
        start = sample.tokens.offsets[mark["at"]]
        start += len(sample.text[start:]) - len(sample.text[start:].lstrip())
        word = len(sample.text[:start].split())
        assert abs(word - onsets[mark["sample"]]) <= 3, (mark, onsets[mark["sample"]])


def test_token_codes_ids_where_real_else_exact_bytes() -> None:
    from lmread.records import TokenAssembler

    pieces = [b"A", b" \xe6", b"\x97\xa5", b" \xe6", b"\x9c\xac", b"A", b" \xe6", b"\x97\xa5"]  # A 日 本 A 日
    for ids, basis in (([3, 7, 8, 7, 9, 3, 7, 8], "ids"), ([-1] * 8, "text"), ([3, 7, -1, 7, 9, 3, 7, 8], "text")):
        asm = TokenAssembler(with_distribution=False)
        for tid, piece in zip(ids, pieces, strict=True):
            asm.add(tid, piece)
        tokens, text, raw = asm.finish()
        sample = Sample(id="s", model={"id": "m"}, backend="x", prompt={"text": ""}, settings={}, seed=0,
                        text=text, tokens=tokens, finish_reason="length", raw=raw)
        codes, got = SampleView(sample).token_codes
        assert got == basis
        if basis == "ids":
            assert codes.tolist() == ids
        else:  # equal codes exactly for equal bytes
            assert [[a == b for b in codes.tolist()] for a in codes.tolist()] == [
                [p == q for q in pieces] for p in pieces]
