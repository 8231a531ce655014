"""The transformers backend on the bundled GGUF models and on tiny local folders.

Generations are short (<= 24 tokens); the bundled models are loaded once per session.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import pytest

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk, stream_many
from lmread.backends.hf import HFBackend
from lmread.errors import ModelError, OptionError
from lmread.generate import generate_sample, limited_batch, limited_stream
from lmread.records import TokenAssembler, sample_id

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.slow

PROMPT = "The old lighthouse keeper opened his logbook and wrote"
UNICODE_TEXTS = [
    "Party time 🎉🐍🚀 with friends! Ünïcödé façade, naïve café, crème brûlée.",
    "東京は日本の首都です。今日は良い天気ですね。中文也可以：你好，世界！",
    "Emoji in a row: 😀😃😄😁 and a flag 🇫🇷, done.",
    "Rare scripts fall back to bytes: 𓀀𓁐 ꙮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ᚠᚢᚦ 𐌰𐌱 🦩🪿.",
]


def run(backend: HFBackend, prompt: str, **opts: Any) -> tuple[list[TokenChunk], StreamEnd]:
    """Collect a stream (with the driver's stop strings and max_tokens); assert it ends with
    exactly one StreamEnd."""
    items = list(limited_stream(backend, prompt, GenOptions(**opts)))
    assert items, "empty stream"
    *chunks, end = items
    assert isinstance(end, StreamEnd)
    assert all(isinstance(c, TokenChunk) for c in chunks)
    return chunks, end


def check_chunk(backend: HFBackend, chunk: TokenChunk, k: int) -> None:
    assert 0 <= chunk.id < backend.vocab_size
    assert chunk.piece == backend.pieces[chunk.id]
    assert chunk.logprob is not None and chunk.logprob <= 1e-5
    assert chunk.rank is not None and chunk.rank >= 1
    assert chunk.entropy is not None and 0.0 <= chunk.entropy <= math.log(backend.vocab_size) + 1e-3
    assert len(chunk.top_ids) == len(chunk.top_logprobs) == len(chunk.top_pieces) == k
    assert chunk.top_logprobs == sorted(chunk.top_logprobs, reverse=True)
    assert sum(math.exp(v) for v in chunk.top_logprobs) <= 1.0 + 1e-4
    assert chunk.top_pieces == [backend.pieces[i] for i in chunk.top_ids]
    if chunk.rank <= k:
        assert chunk.top_ids[chunk.rank - 1] == chunk.id
        assert chunk.top_logprobs[chunk.rank - 1] == pytest.approx(chunk.logprob, abs=1e-5)
    else:
        assert chunk.id not in chunk.top_ids
        assert chunk.logprob <= chunk.top_logprobs[-1] + 1e-6


# --------------------------------------------------------------------------------------------
# loading and identity


def test_describe_gguf(hf_smollm2: HFBackend) -> None:
    info = hf_smollm2.describe()
    assert info["id"] == "smollm2-135m"
    assert info["backend"] == "hf"
    assert info["backend_version"] == transformers.__version__
    assert info["architecture"] == "llama"
    assert info["quantization"] == "Q4_1"
    assert len(info["sha256"]) == 64 and int(info["sha256"], 16) >= 0
    assert 100_000_000 < info["n_params"] < 200_000_000
    assert info["library_versions"]["torch"] == torch.__version__.split("+")[0] or info["library_versions"]["torch"]
    assert "transformers" in info["library_versions"]
    assert info["dtype"] == "float32" and info["device"] == "cpu"
    assert hf_smollm2.max_concurrency == 1


def test_samples_record_the_gguf_file_name_and_keep_their_ids(hf_smollm2: HFBackend) -> None:
    prompt = {"text": PROMPT}
    sample = generate_sample(hf_smollm2, prompt, GenOptions(max_tokens=2, seed=1))
    gguf = str(hf_smollm2.gguf_path)
    assert sample.model["file"] == hf_smollm2.gguf_path.name
    assert "path" not in sample.model and "source" not in sample.model and gguf not in sample.dumps().decode()
    # the id is still made of what it always was (the GGUF path is part of it for this backend)
    old_identity = {"id": "smollm2-135m", "sha256": sample.model["sha256"], "source": gguf, "backend": "hf"}
    assert sample.id == sample_id(old_identity, prompt, sample.settings, 1)
    full = generate_sample(hf_smollm2, prompt, GenOptions(max_tokens=2, seed=1), record_model_path=True)
    assert full.model["source"] == gguf and full.id == sample.id


def test_describe_gemma(hf_gemma: HFBackend) -> None:
    info = hf_gemma.describe()
    assert info["id"] == "gemma3-270m"
    assert info["architecture"].startswith("gemma3")
    assert info["quantization"] == "Q4_K_M"
    assert 200_000_000 < info["n_params"] < 400_000_000


# --------------------------------------------------------------------------------------------
# streaming


def test_greedy_fields_and_rank_one(hf_smollm2: HFBackend) -> None:
    chunks, end = run(hf_smollm2, PROMPT, max_tokens=12, temperature=0.0, top_logprobs=5)
    assert end.reason in {"length", "eos"}
    if end.reason == "length":
        assert len(chunks) == 12
    for c in chunks:
        check_chunk(hf_smollm2, c, 5)
        assert c.rank == 1
        assert c.id == c.top_ids[0]


def test_greedy_matches_generate(hf_smollm2: HFBackend) -> None:
    """Our KV-cache loop picks the same tokens as transformers' own greedy generate()."""
    chunks, _ = run(hf_smollm2, PROMPT, max_tokens=16, temperature=0.0, top_logprobs=0)
    ids = hf_smollm2.tokenize(PROMPT)
    with torch.inference_mode():
        out = hf_smollm2.model.generate(
            torch.tensor([ids]), max_new_tokens=16, do_sample=False, use_cache=True,
            attention_mask=torch.ones(1, len(ids), dtype=torch.long), pad_token_id=0,
        )
    expected = out[0, len(ids):].tolist()
    assert [c.id for c in chunks] == expected[: len(chunks)]
    assert all(c.top_ids == [] for c in chunks)


def test_repetition_penalty_matches_generate(hf_smollm2: HFBackend) -> None:
    prompt = "one two one two one two one two"
    chunks, _ = run(hf_smollm2, prompt, max_tokens=12, temperature=0.0, repetition_penalty=1.5)
    plain, _ = run(hf_smollm2, prompt, max_tokens=12, temperature=0.0)
    ids = hf_smollm2.tokenize(prompt)
    with torch.inference_mode():
        out = hf_smollm2.model.generate(
            torch.tensor([ids]), max_new_tokens=12, do_sample=False, repetition_penalty=1.5,
            attention_mask=torch.ones(1, len(ids), dtype=torch.long), pad_token_id=0,
        )
    assert [c.id for c in chunks] == out[0, len(ids):].tolist()[: len(chunks)]
    assert [c.id for c in chunks] != [c.id for c in plain]
    # the recorded distribution is the unmodified one: ranks > 1 appear where the penalty bit
    assert any(c.rank > 1 for c in chunks)


def test_score_matches_stream(hf_smollm2: HFBackend) -> None:
    """Teacher forcing the generated text gives the logprobs recorded while generating."""
    chunks, _ = run(hf_smollm2, PROMPT, max_tokens=10, temperature=0.0)
    text = b"".join(c.piece for c in chunks).decode("utf-8")
    scored = hf_smollm2.score(text, prompt=PROMPT)
    assert [s.id for s in scored] == [c.id for c in chunks]
    for s, c in zip(scored, chunks, strict=True):
        assert s.logprob == pytest.approx(c.logprob, abs=2e-3)
        assert s.rank == c.rank
        assert s.piece == c.piece
    assert hf_smollm2.score("", prompt=PROMPT) == []


def test_same_seed_same_text(hf_smollm2: HFBackend) -> None:
    a, _ = run(hf_smollm2, PROMPT, max_tokens=20, temperature=1.0, seed=1234)
    b, _ = run(hf_smollm2, PROMPT, max_tokens=20, temperature=1.0, seed=1234)
    c, _ = run(hf_smollm2, PROMPT, max_tokens=20, temperature=1.0, seed=98765)
    assert [x.id for x in a] == [x.id for x in b]
    assert [x.logprob for x in a] == [x.logprob for x in b]
    assert [x.id for x in a] != [x.id for x in c]
    for x in a:
        check_chunk(hf_smollm2, x, 5)
    assert any(x.rank > 1 for x in a + c)  # sampling at temperature 1 leaves the argmax sometimes


@pytest.mark.parametrize("opts", [{"top_k": 1}, {"min_p": 1.0}, {"top_p": 1e-6}])
def test_truncation_to_one_token_is_greedy(hf_smollm2: HFBackend, opts: dict[str, Any]) -> None:
    greedy, _ = run(hf_smollm2, PROMPT, max_tokens=8, temperature=0.0)
    sampled, _ = run(hf_smollm2, PROMPT, max_tokens=8, temperature=1.5, seed=7, **opts)
    assert [c.id for c in sampled] == [c.id for c in greedy]


def test_top_k_restricts_choices(hf_smollm2: HFBackend) -> None:
    chunks, _ = run(hf_smollm2, PROMPT, max_tokens=16, temperature=2.0, top_k=3, seed=3)
    assert all(c.rank <= 3 for c in chunks)
    wild, _ = run(hf_smollm2, PROMPT, max_tokens=16, temperature=2.0, seed=3)
    assert any(c.rank > 3 for c in wild)


def test_bos_added_like_tokenizer(hf_gemma: HFBackend) -> None:
    ids = hf_gemma._prompt_ids("Hello")
    assert ids == hf_gemma.tokenize("Hello")
    assert ids[0] == hf_gemma.tokenizer.bos_token_id


# --------------------------------------------------------------------------------------------
# exact text


@pytest.mark.parametrize("fixture", ["hf_smollm2", "hf_gemma"])
def test_pieces_are_exact_bytes(request: pytest.FixtureRequest, fixture: str) -> None:
    backend = request.getfixturevalue(fixture)
    split_seen = False
    for text in UNICODE_TEXTS:
        ids = backend.tokenize(text, add_special=False)
        pieces = [backend.pieces[i] for i in ids]
        assert b"".join(pieces) == text.encode("utf-8")
        scored = backend.score(text)
        assert [c.id for c in scored] == ids
        asm = TokenAssembler()
        for c in scored:
            asm.add(c.id, c.piece, c.logprob, c.rank, c.entropy, c.top_ids, c.top_logprobs, c.top_pieces)
        tokens, assembled, raw = asm.finish()
        assert assembled == text and raw is None
        assert tokens.offsets[-1] == len(text)
        for p in pieces:
            try:
                p.decode("utf-8")
            except UnicodeDecodeError:
                split_seen = True
    assert split_seen, "no token split a multi-byte character; the split case was not exercised"


@pytest.mark.parametrize("fixture", ["hf_smollm2", "hf_gemma"])
def test_generated_text_is_exact(request: pytest.FixtureRequest, fixture: str) -> None:
    backend = request.getfixturevalue(fixture)
    prompt = "日本語の文章：東京は"
    chunks, _ = run(backend, prompt, max_tokens=24, temperature=1.0, seed=11)
    asm = TokenAssembler()
    for c in chunks:
        asm.add(c.id, c.piece, c.logprob, c.rank, c.entropy, c.top_ids, c.top_logprobs, c.top_pieces)
    _, text, raw = asm.finish()
    joined = b"".join(c.piece for c in chunks)
    decoded = backend.tokenizer.decode([c.id for c in chunks], skip_special_tokens=False,
                                       clean_up_tokenization_spaces=False)
    if raw is None:
        assert text.encode("utf-8") == joined
    if "\ufffd" not in decoded:
        assert decoded.encode("utf-8") == joined


# --------------------------------------------------------------------------------------------
# finish reasons


def test_eos_finish(hf_smollm2: HFBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = run(hf_smollm2, PROMPT, max_tokens=3, temperature=0.0)
    monkeypatch.setattr(hf_smollm2, "eos_ids", {first[1].id})
    chunks, end = run(hf_smollm2, PROMPT, max_tokens=10, temperature=0.0)
    assert end.reason == "eos"
    assert [c.id for c in chunks] == [first[0].id, first[1].id]


def test_stop_string(hf_smollm2: HFBackend) -> None:
    greedy, _ = run(hf_smollm2, PROMPT, max_tokens=12, temperature=0.0)
    text = b"".join(c.piece for c in greedy).decode("utf-8")
    stop = text.strip().split()[1]
    chunks, end = run(hf_smollm2, PROMPT, max_tokens=12, temperature=0.0, stop=[stop])
    assert end.reason == "stop"
    got = b"".join(c.piece for c in chunks).decode("utf-8")
    assert stop in got and stop not in got[: -1]  # ended on the token that completed it


def test_context_finish_and_long_prompt(hf_smollm2: HFBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    n_prompt = len(hf_smollm2.tokenize(PROMPT))
    monkeypatch.setattr(hf_smollm2, "n_ctx", n_prompt + 4)
    chunks, end = run(hf_smollm2, PROMPT, max_tokens=20, temperature=0.0)
    assert end.reason == "context"
    assert len(chunks) == 4
    monkeypatch.setattr(hf_smollm2, "n_ctx", n_prompt)
    with pytest.raises(OptionError, match="prompt is .* tokens"):
        list(hf_smollm2.stream(PROMPT, GenOptions(max_tokens=4)))


def test_prompt_longer_than_real_context(hf_smollm2: HFBackend) -> None:
    prompt = "word " * (hf_smollm2.n_ctx + 10)
    gen = hf_smollm2.stream(prompt, GenOptions(max_tokens=2))
    with pytest.raises(OptionError) as info:
        next(gen)
    assert "\n" not in str(info.value) and "shorten the prompt" in str(info.value)


def test_cancel(hf_smollm2: HFBackend) -> None:
    cancel = threading.Event()
    cancel.set()
    items = list(hf_smollm2.stream(PROMPT, GenOptions(max_tokens=5), cancel))
    assert items == [StreamEnd("cancelled")]
    cancel = threading.Event()
    got: list[Any] = []
    for item in hf_smollm2.stream(PROMPT, GenOptions(max_tokens=20, temperature=0.0), cancel):
        got.append(item)
        if len(got) == 2:
            cancel.set()
    assert len(got) == 3 and got[-1] == StreamEnd("cancelled")


@pytest.mark.parametrize(
    "opts",
    [{"temperature": -1.0}, {"top_p": 0.0}, {"max_tokens": 0}, {"top_k": -2}, {"top_logprobs": 50}, {"seed": -1},
     {"min_p": 2.0}, {"repetition_penalty": 0.0}],
)
def test_invalid_options(hf_smollm2: HFBackend, opts: dict[str, Any]) -> None:
    with pytest.raises(OptionError):
        list(hf_smollm2.stream(PROMPT, GenOptions(**opts)))
    with pytest.raises(OptionError):
        list(hf_smollm2.stream_batch(PROMPT, [GenOptions(), GenOptions(**opts)]))


# --------------------------------------------------------------------------------------------
# batches


def collect_batch(backend: HFBackend, options: list[GenOptions]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {i: [] for i in range(len(options))}
    for index, item in limited_batch(backend, PROMPT, options):
        assert not (out[index] and isinstance(out[index][-1], StreamEnd)), "item after StreamEnd"
        out[index].append(item)
    return out


def test_batch(hf_smollm2: HFBackend) -> None:
    def options() -> list[GenOptions]:
        return [
            GenOptions(max_tokens=12, temperature=1.0, seed=1),
            GenOptions(max_tokens=5, temperature=1.0, seed=2, top_logprobs=2),
            GenOptions(max_tokens=12, temperature=0.0),
            GenOptions(max_tokens=9, temperature=0.8, top_p=0.9, seed=4, repetition_penalty=1.2),
        ]

    first = collect_batch(hf_smollm2, options())
    second = collect_batch(hf_smollm2, options())
    for i, opts in enumerate(options()):
        seq = first[i]
        *chunks, end = seq
        assert isinstance(end, StreamEnd) and end.reason in {"length", "eos"}
        assert sum(isinstance(x, StreamEnd) for x in seq) == 1
        assert len(chunks) <= opts.max_tokens
        if end.reason == "length":
            assert len(chunks) == opts.max_tokens
        for c in chunks:
            check_chunk(hf_smollm2, c, opts.top_logprobs)
        # determinism: same seeds -> same batch output
        assert [c.id for c in chunks] == [c.id for c in second[i][:-1]]
    # the greedy row follows the argmax of its own distribution
    assert all(c.rank == 1 for c in first[2][:-1])
    greedy, _ = run(hf_smollm2, PROMPT, max_tokens=12, temperature=0.0)
    assert [c.id for c in first[2][:-1]] == [c.id for c in greedy]
    # sequences differ from one another
    assert [c.id for c in first[0][:-1]] != [c.id for c in first[2][:-1]]


def test_batch_gemma_rows_drop_out(hf_gemma: HFBackend) -> None:
    """Gemma 3 mixes sliding-window and global layers; finished rows leave the KV cache."""
    opts = [GenOptions(max_tokens=3, temperature=0.0), GenOptions(max_tokens=7, temperature=0.0)]
    out: dict[int, list[Any]] = {0: [], 1: []}
    for index, item in limited_batch(hf_gemma, PROMPT, opts):
        out[index].append(item)
    assert out[0][-1] == StreamEnd("length") and len(out[0]) == 4
    assert out[1][-1] == StreamEnd("length") and len(out[1]) == 8
    greedy, _ = run(hf_gemma, PROMPT, max_tokens=7, temperature=0.0)
    assert [c.id for c in out[1][:-1]] == [c.id for c in greedy]
    assert [c.id for c in out[0][:-1]] == [c.id for c in greedy[:3]]


def test_batch_via_stream_many_and_cancel(hf_smollm2: HFBackend) -> None:
    cancel = threading.Event()
    seen: dict[int, list[Any]] = {0: [], 1: []}
    opts = [GenOptions(max_tokens=20, seed=5), GenOptions(max_tokens=20, seed=6)]
    for index, item in stream_many(hf_smollm2, PROMPT, opts, cancel):
        seen[index].append(item)
        if sum(len(v) for v in seen.values()) == 4:
            cancel.set()
    for seq in seen.values():
        assert seq[-1] == StreamEnd("cancelled")
        assert len(seq) == 3


# --------------------------------------------------------------------------------------------
# local folders and bad inputs


def _tiny_tokenizer() -> Any:
    """A byte-level BPE tokenizer with the 256 byte tokens, a few merges and an end token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|end|>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|end|>", bos_token="<|end|>")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (random) Llama model of 300 tokens saved as safetensors, without tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, vocab_size=300, max_position_embeddings=64, eos_token_id=259,
        bos_token_id=259,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    assert list(folder.glob("*.safetensors"))
    return folder


def test_folder_without_tokenizer(tiny_folder: Path) -> None:
    from lmread.backends.hf import HFBackend

    with pytest.raises(ModelError, match="no tokenizer") as info:
        HFBackend(tiny_folder)
    assert str(tiny_folder) in str(info.value)


def test_folder_with_tokenizer_loads_and_streams(tiny_folder: Path, tmp_path: Path) -> None:
    import shutil

    from lmread.backends.hf import HFBackend

    folder = tmp_path / "tiny-with-tok"
    shutil.copytree(tiny_folder, folder)
    _tiny_tokenizer().save_pretrained(folder)
    backend = HFBackend(folder, device="cpu", n_threads=1)
    info = backend.describe()
    assert info["architecture"] == "llama" and info["quantization"] == "float32"
    assert "sha256" not in info and info["source"] == str(folder.resolve())
    assert info["id"] == "tiny-with-tok"
    assert backend.pieces[vocab_id(backend, "Ġthe")] == b" the"
    text = "the café 🎉"
    ids = backend.tokenize(text, add_special=False)
    assert b"".join(backend.pieces[i] for i in ids) == text.encode("utf-8")
    chunks, end = run(backend, "the", max_tokens=6, temperature=1.0, seed=0)
    assert end.reason in {"length", "eos", "context"}
    for c in chunks:
        check_chunk(backend, c, 5)
    # float16 by request works too; a bad dtype or device is refused
    with pytest.raises(OptionError, match="--dtype"):
        HFBackend(folder, dtype="int3")
    if not torch.cuda.is_available():
        with pytest.raises(OptionError, match="not available"):
            HFBackend(folder, device="cuda")
    backend.close()


def vocab_id(backend: HFBackend, token: str) -> int:
    return int(backend.tokenizer.convert_tokens_to_ids(token))


def test_hf_cache_id(tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from lmread.backends.hf import HFBackend

    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = cache / "models--tiny-org--tiny-llama" / "snapshots" / commit
    shutil.copytree(tiny_folder, snap)
    _tiny_tokenizer().save_pretrained(snap)
    (cache / "models--tiny-org--tiny-llama" / "refs").mkdir()
    (cache / "models--tiny-org--tiny-llama" / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    backend = HFBackend("tiny-org/tiny-llama", device="cpu")
    info = backend.describe()
    assert info["revision"] == commit and info["id"] == "tiny-org/tiny-llama"
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        HFBackend("tiny-org/absent-model")


def test_missing_file(tmp_path: Path) -> None:
    from lmread.backends.hf import HFBackend

    with pytest.raises(ModelError, match="does not exist"):
        HFBackend(tmp_path / "nope.gguf")
    other = tmp_path / "weights.txt"
    other.write_text("hello")
    with pytest.raises(ModelError, match="not a GGUF file"):
        HFBackend(other)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x00garbage")
    with pytest.raises(ModelError, match="GGUF"):
        HFBackend(bad)


def test_folder_without_config(tmp_path: Path) -> None:
    from lmread.backends.hf import HFBackend

    with pytest.raises(ModelError, match="no config.json"):
        HFBackend(tmp_path)


def test_pickle_only_folder_refused(tmp_path: Path) -> None:
    from lmread.backends.hf import HFBackend

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ModelError, match="pickle checkpoint; pass --allow-pickle to load it"):
        HFBackend(tmp_path)
    (tmp_path / "pytorch_model.bin").unlink()
    with pytest.raises(ModelError, match="no weights"):
        HFBackend(tmp_path)


def test_unsupported_architecture(tmp_path: Path) -> None:
    from lmread.backends.hf import HFBackend

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "nonexistent-arch"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match="unsupported architecture 'nonexistent-arch'"):
        HFBackend(tmp_path)


def test_from_card(tiny_folder: Path, tmp_path: Path) -> None:
    import shutil

    from lmread.backends import open_backend
    from lmread.backends.hf import HFBackend
    from lmread.catalog import ModelCard

    folder = tmp_path / "carded"
    shutil.copytree(tiny_folder, folder)
    _tiny_tokenizer().save_pretrained(folder)
    card = ModelCard(id="tiny-card", name="Tiny card", family="tiny", backends=["hf"], source={"path": str(folder)})
    backend = open_backend(card, "hf", device="cpu", n_threads=1, n_gpu_layers=3)  # unknown options ignored
    assert backend.describe()["id"] == "tiny-card" and backend.describe()["name"] == "Tiny card"
    backend.close()
    remote = ModelCard(id="x", name="X", family="x", backends=["hf"], source={"url": "http://h", "model": "m"})
    with pytest.raises(ModelError, match="local"):
        open_backend(remote, "hf")
    with pytest.raises(OptionError, match="invalid option --ctx 1: must be a whole number >= 16"):
        open_backend(card, "hf", n_ctx=1)
    with pytest.raises(OptionError, match="invalid option --threads 0"):
        open_backend(card, "hf", n_threads=0)
    with pytest.raises(OptionError, match=r"invalid option --ctx 15: must be a whole number >= 16"):
        HFBackend(tmp_path / "no-such-model.gguf", n_ctx=15)  # checked before anything is loaded


def test_relative_paths_are_not_repo_ids() -> None:
    from lmread.backends.hf import _looks_like_repo_id

    assert _looks_like_repo_id("HuggingFaceTB/SmolLM2-135M")
    assert not _looks_like_repo_id("models/x.gguf")
    assert not _looks_like_repo_id("./a/b")
    assert not _looks_like_repo_id("a/b/c")


def test_sampler_distribution(hf_smollm2: HFBackend) -> None:
    """The on-device sampler draws from the processed distribution (fixed seed: deterministic)."""
    logits = torch.log(torch.tensor([0.5, 0.3, 0.2, 0.0]))
    gen = torch.Generator().manual_seed(0)

    def draws(n: int = 4000, **opts: Any) -> list[float]:
        counts = [0, 0, 0, 0]
        for _ in range(n):
            counts[int(hf_smollm2._sample(logits, GenOptions(**opts), gen, None))] += 1
        return [c / n for c in counts]

    freq = draws()
    assert freq[3] == 0.0
    assert freq[:3] == pytest.approx([0.5, 0.3, 0.2], abs=0.03)
    assert draws(600, top_p=0.6)[2:] == [0.0, 0.0]
    assert draws(600, min_p=0.5)[2:] == [0.0, 0.0]
    assert draws(300, top_k=1) == [1.0, 0.0, 0.0, 0.0]
    hot = draws(2000, temperature=2.0)  # flatter: the smallest nonzero gets more
    assert hot[2] > 0.23
