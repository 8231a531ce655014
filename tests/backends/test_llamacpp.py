"""The llama.cpp backend on the two bundled models (short generations, models loaded once)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk
from lmread.backends.llamacpp import LlamaCppBackend
from lmread.errors import BackendError, ModelError, OptionError
from lmread.generate import generate_sample, limited_stream
from lmread.records import TokenAssembler
from tests.fixtures.llamacpp import bundled_model_path, load_llamacpp

MODELS = ["llama_smollm2", "llama_gemma"]
STORY = "The lighthouse keeper opened the logbook and wrote"


@pytest.fixture(params=MODELS)
def model(request: pytest.FixtureRequest) -> LlamaCppBackend:
    """Each bundled model in turn."""
    return request.getfixturevalue(request.param)


def gen(backend: LlamaCppBackend, prompt: str, **opts: Any) -> tuple[list[TokenChunk], StreamEnd]:
    """Run a stream to its end, with the driver's stop strings and max_tokens."""
    *chunks, end = list(limited_stream(backend, prompt, GenOptions(**opts)))
    assert isinstance(end, StreamEnd)
    return chunks, end  # type: ignore[return-value]


def test_chunks_carry_sane_distribution_fields(model: LlamaCppBackend) -> None:
    chunks, end = gen(model, STORY, max_tokens=12, temperature=1.0, seed=21, top_logprobs=5)
    assert end.reason in {"length", "eos"} and chunks
    for c in chunks:
        assert 0 <= c.id < model.n_vocab
        assert c.piece == model.piece(c.id)
        assert c.logprob is not None and c.logprob <= 0.0
        assert c.rank is not None and c.rank >= 1
        assert c.entropy is not None and c.entropy >= 0.0
        assert len(c.top_ids) == len(c.top_logprobs) == len(c.top_pieces) == 5
        assert c.top_logprobs == sorted(c.top_logprobs, reverse=True)
        assert c.top_pieces == [model.piece(t) for t in c.top_ids]
        if c.rank <= 5:
            assert c.top_ids[c.rank - 1] == c.id or c.top_logprobs[c.rank - 1] == pytest.approx(c.logprob)
            assert c.top_logprobs[c.top_ids.index(c.id)] == pytest.approx(c.logprob, abs=1e-9)
        else:
            assert c.id not in c.top_ids and c.logprob <= c.top_logprobs[-1]


def test_fields_match_a_float64_softmax_of_the_same_logits(llama_smollm2: LlamaCppBackend) -> None:
    # Recompute the first token's distribution from the prompt's logits, independently.
    b = llama_smollm2
    chunks, _ = gen(b, STORY, max_tokens=1, temperature=1.0, seed=4, top_logprobs=5)
    c = chunks[0]
    ids = b.tokenize(STORY)
    b._reset()
    assert b._prefill(ids) == 0
    x = b._logits(-1).astype(np.float64)
    logp = x - x.max() - math.log(np.exp(x - x.max()).sum())
    assert c.logprob == pytest.approx(logp[c.id], abs=1e-4)
    assert c.rank == int(np.count_nonzero(x > x[c.id])) + 1
    assert c.entropy == pytest.approx(float(-(np.exp(logp) * logp).sum()), abs=1e-3)
    assert c.top_ids == [int(i) for i in np.argsort(-x, kind="stable")[:5]]


def test_greedy_tokens_all_have_rank_one(model: LlamaCppBackend) -> None:
    chunks, _ = gen(model, STORY, max_tokens=12, temperature=0.0)
    assert chunks and all(c.rank == 1 for c in chunks)
    again, _ = gen(model, STORY, max_tokens=12, temperature=0.0)
    assert [c.id for c in again] == [c.id for c in chunks]


def test_same_seed_same_text_other_seeds_differ(model: LlamaCppBackend) -> None:
    prompt = "A list of unusual words:"
    runs = {seed: [c.id for c in gen(model, prompt, max_tokens=10, temperature=1.0, seed=seed)[0]] for seed in (1, 2, 3)}
    assert [c.id for c in gen(model, prompt, max_tokens=10, temperature=1.0, seed=1)[0]] == runs[1]
    assert len({tuple(v) for v in runs.values()}) >= 2


def test_truncation_and_penalty_options_run(llama_smollm2: LlamaCppBackend) -> None:
    chunks, end = gen(llama_smollm2, STORY, max_tokens=8, temperature=0.7, top_k=5, top_p=0.9, min_p=0.05,
                      repetition_penalty=1.3, seed=8)
    assert end.reason in {"length", "eos"} and chunks
    assert all(c.rank is not None and c.rank <= 5 for c in chunks)  # top_k=5 keeps only the 5 best
    again, _ = gen(llama_smollm2, STORY, max_tokens=8, temperature=0.7, top_k=5, top_p=0.9, min_p=0.05,
                   repetition_penalty=1.3, seed=8)
    assert [c.id for c in again] == [c.id for c in chunks]  # llama.cpp's seeded chain is reproducible


MULTILINGUAL = ["Emoji list: 😀 😃 😄 ", "日本語の文章：東京は", "Café, naïve, façade, crème brûlée, "]


def test_exact_text_across_scripts_with_split_characters(llama_smollm2: LlamaCppBackend,
                                                         llama_gemma: LlamaCppBackend) -> None:
    partial = 0
    for backend in (llama_smollm2, llama_gemma):
        for prompt in MULTILINGUAL:
            chunks, _ = gen(backend, prompt, max_tokens=24, temperature=1.0, seed=1)
            asm = TokenAssembler()
            for c in chunks:
                asm.add(c.id, c.piece, c.logprob, c.rank, c.entropy, c.top_ids, c.top_logprobs, c.top_pieces)
                try:
                    c.piece.decode("utf-8")
                except UnicodeDecodeError:
                    partial += 1
            tokens, text, raw = asm.finish()
            data = b"".join(c.piece for c in chunks)
            if raw is None:
                assert data.decode("utf-8") == text
            else:  # the last character was cut by max_tokens: bytes are kept, none lost
                assert raw == data and data.decode("utf-8", errors="replace") == text
            offs = tokens.offsets
            assert offs[0] == 0 and offs[-1] == len(text)
            assert "".join(text[a:b] for a, b in zip(offs, offs[1:], strict=False)) == text
    assert partial > 0, "no token split a multi-byte character; the split case was not exercised"


def test_eos_ends_the_stream(llama_smollm2: LlamaCppBackend) -> None:
    prompt = "<|im_start|>user\nIs the sky blue? Answer yes or no.<|im_end|>\n<|im_start|>assistant\n"
    chunks, end = gen(llama_smollm2, prompt, max_tokens=24, temperature=0.0)
    assert end.reason == "eos" and 0 < len(chunks) < 24


def test_context_full_ends_with_context(llama_home: Path) -> None:
    small = load_llamacpp("smollm2-135m", llama_home, n_ctx=64)
    try:
        n_ctx = small.n_ctx  # llama.cpp may round the size up
        words = " ".join(["boat"] * (n_ctx - 6))
        ids = small.tokenize(words)
        prompt = " ".join(["boat"] * (n_ctx - 6 - (len(ids) - (n_ctx - 6))))
        n_prompt = len(small.tokenize(prompt))
        assert n_ctx - 8 <= n_prompt <= n_ctx - 3
        chunks, end = gen(small, prompt, max_tokens=64, temperature=0.0)
        assert end.reason == "context"
        assert len(chunks) == n_ctx - n_prompt + 1  # the last one is sampled from the full context

        with pytest.raises(OptionError, match=rf"prompt has \d+ tokens, the context holds {n_ctx}"):
            small.stream(" ".join(["boat"] * (n_ctx + 10)), GenOptions(max_tokens=4))
    finally:
        small.close()


def test_score_returns_one_chunk_per_text_token(model: LlamaCppBackend) -> None:
    text = " and the sea was calm. Café 😀 東京"
    chunks = model.score(text, prompt=STORY)
    expected = model.tokenize(text, as_prompt=False)
    assert [c.id for c in chunks] == expected
    assert b"".join(c.piece for c in chunks) == text.encode("utf-8")
    assert all(c.logprob is not None and c.logprob <= 0 and c.rank >= 1 and c.entropy >= 0 for c in chunks)


def test_score_of_a_generated_text_reproduces_its_stream(llama_smollm2: LlamaCppBackend) -> None:
    # Scoring runs the same decode path as generation, so teacher forcing the greedy
    # continuation gives back exactly the streamed distributions.
    chunks, _ = gen(llama_smollm2, STORY, max_tokens=10, temperature=0.0)
    text = b"".join(c.piece for c in chunks).decode("utf-8")
    assert llama_smollm2.tokenize(text, as_prompt=False) == [c.id for c in chunks]
    scored = llama_smollm2.score(text, prompt=STORY)
    assert [c.id for c in scored] == [c.id for c in chunks]
    for s, c in zip(scored, chunks, strict=True):
        assert s.rank == c.rank == 1
        assert s.logprob == pytest.approx(c.logprob, abs=1e-6)
        assert s.entropy == pytest.approx(c.entropy, abs=1e-6)
        assert s.top_ids == c.top_ids


def test_score_without_prompt_uses_bos_as_context(llama_smollm2: LlamaCppBackend) -> None:
    chunks = llama_smollm2.score("Hello world")
    assert [c.id for c in chunks] == llama_smollm2.tokenize("Hello world", as_prompt=False)
    assert all(c.logprob is not None for c in chunks)


def test_describe_records_identity(llama_gemma: LlamaCppBackend) -> None:
    import llama_cpp

    info = llama_gemma.describe()
    assert info["id"] == "gemma3-270m"
    assert info["backend"] == "llamacpp" and info["backend_version"] == llama_cpp.__version__
    assert info["architecture"] == "gemma3" and info["quantization"] == "Q4_K_M"
    assert 200_000_000 < info["n_params"] < 400_000_000
    assert len(info["sha256"]) == 64 and info["library_versions"]["llama_cpp_python"] == llama_cpp.__version__
    assert llama_gemma.max_concurrency == 1


def test_samples_record_the_file_name_not_its_path(llama_smollm2: LlamaCppBackend) -> None:
    # the full path is the owner's folder layout, no part of the identity (the sha256 is)
    prompt = {"text": STORY}
    sample = generate_sample(llama_smollm2, prompt, GenOptions(max_tokens=2, seed=1))
    assert sample.model["file"] == llama_smollm2.path.name and "path" not in sample.model
    assert str(llama_smollm2.path.parent) not in sample.dumps().decode()
    full = generate_sample(llama_smollm2, prompt, GenOptions(max_tokens=2, seed=1), record_model_path=True)
    assert full.model["path"] == str(llama_smollm2.path) and full.id == sample.id
    assert full.text == sample.text


#: Sample ids, finish reasons and token counts of llama.cpp samples generated before the backend
#: contract (issue 9).  Sample ids hash the model identity, prompt, settings and seed, never a
#: model float: they hold on every CPU.
PINNED: dict[tuple[str, str], list[Any]] = {
    ("llama_smollm2", "t1"): ["s_72c934a37311cdec1c26", "length", 10],
    ("llama_smollm2", "greedy-stop"): ["s_d1e97c6d8e2192674e4a", "stop", 15],
    ("llama_smollm2", "topk"): ["s_3c5ad3ee9388ed580fe7", "length", 8],
    ("llama_gemma", "t1"): ["s_1eef714017fceedc1bff", "length", 10],
    ("llama_gemma", "greedy-stop"): ["s_5f3a846963359e633a66", "stop", 21],
    ("llama_gemma", "topk"): ["s_b3f13ddb5ef228746fb8", "length", 8],
}
PINNED_OPTIONS = {
    "t1": GenOptions(max_tokens=10, seed=5),
    "greedy-stop": GenOptions(max_tokens=40, temperature=0.0, stop=[","], seed=2),
    "topk": GenOptions(max_tokens=8, temperature=0.8, top_k=20, seed=9),
}
#: The whole records (without times) per class of ggml CPU kernels.  Which tokens a model draws
#: depends on its floats wherever two candidates are nearly tied (a greedy top-2 gap of 0.009
#: nats, a seeded draw 3e-5 from a boundary), and the floats depend on the SIMD kernels ggml was
#: built with: the same llama.cpp (llama-cpp-python 0.3.36) built for AVX2 only moved these
#: logprobs by up to 0.22 nats from its AVX-512 build and took another path in 5 of the 6
#: cases, while an Intel Xeon with AVX-512 drew the same tokens as the AMD EPYC (AVX-512) that
#: wrote these pins.  "avx512": the native build on an AMD EPYC (AVX-512 F/BW/VL/VNNI/BF16);
#: "avx2": ggml-cpu built with GGML_NATIVE=OFF GGML_AVX2=ON GGML_FMA=ON GGML_F16C=ON
#: GGML_AVX512=OFF, loaded through LLAMA_CPP_LIB_PATH on the same machine.
PINNED_RECORDS = Path(__file__).parent / "data" / "pinned_llamacpp_samples.json"

#: Tolerance (nats) on the floats a model computes (logprob, entropy, top-k logprobs) within one
#: kernel class: CPUs of a class run the same kernels, whose integer dot products are exact, and
#: differ only where a CPU's extra instructions (AVX-VNNI, AVX512-FP16) sum floats in another
#: order (not measurable on one machine; expected far below 0.01 nats, and an Intel Xeon with
#: AVX-512 drew every pinned token).  0.02 stays far below what a broken record shows: distributions
#: recorded one token off (checked below against the pins themselves) or after temperature/top-k
#: (the topk case) move logprobs by a nat or more.
FLOAT_TOL_NATS = 0.02


def ggml_kernel_class() -> str:
    """``avx512``, ``avx2`` or ``other``: the SIMD class of the ggml CPU kernels llama.cpp runs."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    if "AVX512 = 1" in info:
        return "avx512"
    return "avx2" if "AVX2 = 1" in info else "other"


def _near(a: float, b: float) -> bool:
    return abs(a - b) <= 2 * FLOAT_TOL_NATS


def _tie_groups(values: list[float]) -> list[list[int]]:
    """Positions of a descending list, grouped where neighbours lie within twice the tolerance."""
    groups: list[list[int]] = []
    for j, v in enumerate(values):
        if groups and _near(values[groups[-1][-1]], v):
            groups[-1].append(j)
        else:
            groups.append([j])
    return groups


def record_differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """How ``got`` differs from the pinned record ``want`` (empty: it matches).

    Everything must be equal, except the floats a model computes (within FLOAT_TOL_NATS), what
    those floats decide among near-tied tokens (ranks and the order of the top-k alternatives),
    and the library versions (which must be the installed ones)."""
    import llama_cpp

    out: list[str] = []
    got, want = dict(got), dict(want)
    gm, wm = dict(got.pop("model")), dict(want.pop("model"))
    if gm.pop("backend_version") != llama_cpp.__version__ or \
            gm.pop("library_versions").get("llama_cpp_python") != llama_cpp.__version__:
        out.append("model: not the installed llama-cpp-python version")
    wm.pop("backend_version"), wm.pop("library_versions")
    if gm != wm:
        out.append(f"model: {gm} != {wm}")
    gt, wt = dict(got.pop("tokens")), dict(want.pop("tokens"))
    if got != want:  # id, prompt, settings, seed, finish reason, text, ...
        out.append(f"record: {got} != {want}")
    for key in ("ids", "offsets", "bytes"):
        if gt[key] != wt[key]:
            out.append(f"tokens.{key}: {gt[key]} != {wt[key]}")
    if out:
        return out
    k = len(wt["top"]["ids"][0])
    for i in range(len(wt["ids"])):
        for key in ("logprob", "entropy"):
            if abs(gt[key][i] - wt[key][i]) > FLOAT_TOL_NATS:
                out.append(f"token {i}: {key} {gt[key][i]} != {wt[key][i]}")
        g_ids, w_ids = gt["top"]["ids"][i], wt["top"]["ids"][i]
        g_lps, w_lps = gt["top"]["logprobs"][i], wt["top"]["logprobs"][i]
        if len(g_ids) != k or any(abs(g - w) > FLOAT_TOL_NATS for g, w in zip(g_lps, w_lps, strict=True)):
            out.append(f"token {i}: top logprobs {g_lps} != {w_lps}")
        pieces = dict(zip(w_ids, wt["top"]["pieces"][i], strict=True))
        if any(pieces.get(t, p) != p for t, p in zip(g_ids, gt["top"]["pieces"][i], strict=True)):
            out.append(f"token {i}: top pieces {gt['top']['pieces'][i]} != {wt['top']['pieces'][i]}")
        for group in _tie_groups(w_lps):
            # near-tied alternatives may swap; at the k-th place one from beyond the top k may come in
            if {g_ids[j] for j in group} != {w_ids[j] for j in group} and group[-1] != k - 1:
                out.append(f"token {i}: top ids {g_ids} != {w_ids}")
        rank_w, rank_g, lp = wt["rank"][i], gt["rank"][i], wt["logprob"][i]
        if rank_w <= k:  # the rank moves only among the tokens tied with it
            tied = [j + 1 for j in range(k) if _near(w_lps[j], lp)]
            ok = rank_g == rank_w or (tied and min(tied) <= rank_g <= max(tied) + (max(tied) == k))
        else:  # beyond the top k a rank counts the vocabulary's near ties, which may shift a little
            ok = rank_g > k and abs(rank_g - rank_w) <= max(2, rank_w // 10)
        if not ok:
            out.append(f"token {i}: rank {rank_g} != {rank_w}")
    return out


@pytest.mark.parametrize(("fixture", "label"), sorted(PINNED))
def test_pinned_sample_ids_and_records(fixture: str, label: str, request: pytest.FixtureRequest) -> None:
    """Sample ids exactly on every CPU; for the CPU's kernel class, token ids, text, offsets,
    finish reasons and token counts exactly and model floats within FLOAT_TOL_NATS (no hash over
    floats: their low bits differ between CPUs)."""
    import orjson

    backend = request.getfixturevalue(fixture)
    prompt = {"text": "The history of the old harbour town begins", "set": None, "name": "p"}
    sample = generate_sample(backend, prompt, PINNED_OPTIONS[label])
    assert sample.id == PINNED[(fixture, label)][0]
    record = orjson.loads(sample.dumps())
    record.pop("created")
    record.pop("times")
    # what no model float decides, on every CPU: the record's own exactness
    assert b"".join(backend.piece(t) for t in sample.tokens.ids).decode("utf-8") == sample.text
    assert sample.tokens.nbytes == [len(backend.piece(t)) for t in sample.tokens.ids]
    pins = orjson.loads(PINNED_RECORDS.read_bytes())
    cls = ggml_kernel_class()
    if cls not in pins:  # no pinned path for these kernels: what defines the sample still is
        want = pins["avx512"][f"{fixture}/{label}"]
        fixed = ("schema", "id", "source", "backend", "prompt", "settings", "seed")
        assert {k: record[k] for k in fixed} == {k: want[k] for k in fixed}
        return
    assert [sample.finish_reason, sample.n_tokens] == PINNED[(fixture, label)][1:]
    want = pins[cls][f"{fixture}/{label}"]
    assert record_differences(record, want) == []
    # the tolerance tells a broken record apart: distributions recorded one token off fail it
    shifted = orjson.loads(orjson.dumps(record))
    toks = shifted["tokens"]
    for key in ("logprob", "entropy", "rank"):
        toks[key] = toks[key][1:] + toks[key][:1]
    for key in ("ids", "logprobs", "pieces"):
        toks["top"][key] = toks["top"][key][1:] + toks["top"][key][:1]
    assert any("logprob" in d for d in record_differences(shifted, want))


def test_from_card_and_plain_path(llama_home: Path) -> None:
    path = bundled_model_path("smollm2-135m", llama_home)
    b = LlamaCppBackend.from_card(str(path), n_ctx=128, n_threads=1)
    try:
        assert b.n_threads == 1 and b.describe()["id"] == path.stem
        assert len(gen(b, STORY, max_tokens=2, temperature=0.0)[0]) == 2
    finally:
        b.close()
    with pytest.raises(BackendError, match="closed"):
        b.stream(STORY, GenOptions(max_tokens=2))
    b.close()  # closing twice is harmless


def test_missing_llama_cpp_is_a_model_error(llama_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = bundled_model_path("smollm2-135m", llama_home)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp now raises ImportError
    with pytest.raises(ModelError, match=r"pip install 'lmread\[llamacpp\]'"):
        LlamaCppBackend(path)


# -------------------------------------------------------------------------- bad inputs


def test_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        LlamaCppBackend(tmp_path / "nope.gguf")


def test_non_gguf_file_is_refused_before_llama_loads_it(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 this is a zip, not a model" * 10)
    with pytest.raises(ModelError, match="is not a GGUF file"):
        LlamaCppBackend(bad)


def test_unsupported_architecture_is_named(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "bogus.gguf"
    writer = gguf.GGUFWriter(str(path), "bogusformer")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelError, match="architecture 'bogusformer'") as info:
        LlamaCppBackend(path)
    assert "\n" not in str(info.value)


def test_bad_backend_options_are_option_errors(llama_home: Path) -> None:
    path = bundled_model_path("smollm2-135m", llama_home)
    with pytest.raises(OptionError, match="--ctx"):
        LlamaCppBackend(path, n_ctx=2)
    with pytest.raises(OptionError, match="--threads"):
        LlamaCppBackend(path, n_threads=0)


def test_prompt_too_long_raises_before_generating(llama_gemma: LlamaCppBackend) -> None:
    prompt = "word " * (llama_gemma.n_ctx + 50)
    with pytest.raises(OptionError, match=r"prompt has \d+ tokens, the context holds \d+; shorten it or raise --ctx"):
        llama_gemma.stream(prompt, GenOptions(max_tokens=4))


def test_stop_string_ends_with_stop(llama_smollm2: LlamaCppBackend) -> None:
    chunks, _ = gen(llama_smollm2, STORY, max_tokens=12, temperature=0.0)
    text = b"".join(c.piece for c in chunks).decode("utf-8", errors="replace")
    word = text.split()[1]
    chunks2, end = gen(llama_smollm2, STORY, max_tokens=12, temperature=0.0, stop=[word])
    assert end.reason == "stop"
    assert word in b"".join(c.piece for c in chunks2).decode("utf-8", errors="replace")
    assert len(chunks2) < len(chunks)


def test_a_new_stream_supersedes_an_unfinished_one(llama_smollm2: LlamaCppBackend) -> None:
    first = llama_smollm2.stream(STORY, GenOptions(max_tokens=8, temperature=0.0))
    assert isinstance(next(first), TokenChunk)
    second, end = gen(llama_smollm2, STORY, max_tokens=3, temperature=0.0)
    assert end.reason == "length" and len(second) == 3
    rest = list(first)
    assert isinstance(rest[-1], StreamEnd) and rest[-1].reason == "error"


def test_sample_unmodified_draws_from_the_softmax() -> None:
    from lmread.backends.base import distribution_fields, sample_unmodified

    rng = np.random.default_rng(0)
    logits = rng.normal(size=3000).astype(np.float32) * 2.0  # three draw blocks, the last ragged
    logits[[5, 1500, 2999]] += 6.0
    p = np.exp(logits.astype(np.float64) - logits.max())
    p /= p.sum()
    draws = np.array([sample_unmodified(logits, 3, float(u))[0] for u in rng.random(4000)])
    for tid in (5, 1500, 2999):
        assert abs(np.mean(draws == tid) - p[tid]) < 4 * math.sqrt(p[tid] * (1 - p[tid]) / 4000) + 1e-3
    tid, *fields = sample_unmodified(logits, 3, 0.5)
    ref = distribution_fields(logits, tid, 3)
    assert fields[:3] == list(ref[:3]) and list(fields[3]) == list(ref[3])
    assert sample_unmodified(logits, 3, 0.0)[0] == int(np.flatnonzero(p > 0)[0])
