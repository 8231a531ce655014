"""Header summaries of model paths (GGUF files, Hugging Face folders) without loading weights."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lmread.catalog.gguf import gguf_info, safetensors_dtypes
from lmread.errors import ModelError

#: the shard part of a split GGUF file name (``-00001-of-00003.gguf``)
SHARD_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")


def _safetensors_files(folder: Path) -> list[Path]:
    """The weight files of an HF folder: the shards named by the index, else model.safetensors, else all."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
            names = sorted(set(weight_map.values()))
        except (OSError, ValueError, AttributeError):
            names = []
        if names:
            return [folder / n for n in names]
    if (folder / "model.safetensors").is_file():
        return [folder / "model.safetensors"]
    return sorted(folder.glob("*.safetensors"))


def hf_folder_info(folder: str | Path) -> dict[str, Any]:
    """A summary of a Hugging Face model folder read from ``config.json`` and safetensors headers.

    Keys: ``path``, ``format`` ("hf"), ``architecture``, ``n_params`` (None without safetensors),
    ``quantization`` (quantization method or weight dtype), ``context_length``, ``vocab_size``,
    ``bos_token_id``, ``eos_token_id``, ``has_chat_template``, ``revision`` (snapshot name).
    """
    p = Path(folder)
    config_file = p / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{p} has no config.json, so it is not a Hugging Face model folder; give a model folder or a .gguf file")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{config_file} is not valid JSON ({exc}); re-download the model") from None
    if not isinstance(config, dict):
        raise ModelError(f"{config_file} is not a JSON object; re-download the model")
    text_cfg: dict[str, Any] = config["text_config"] if isinstance(config.get("text_config"), dict) else {}

    def cfg(key: str) -> Any:
        return config.get(key, text_cfg.get(key))

    n_params: int | None = None
    dtypes: dict[str, int] = {}
    files = _safetensors_files(p)
    if files:
        n_params = 0
        for f in files:
            counts = safetensors_dtypes(f)
            n_params += sum(counts.values())
            for k, v in counts.items():
                dtypes[k] = dtypes.get(k, 0) + v
    quant = config.get("quantization_config")
    if isinstance(quant, dict) and quant.get("quant_method"):
        bits = quant.get("bits") or quant.get("w_bit")
        quantization: str | None = str(quant["quant_method"]) + (f"-{bits}bit" if bits else "")
    elif dtypes:
        quantization = max(dtypes, key=dtypes.__getitem__)
    else:
        quantization = cfg("torch_dtype") or cfg("dtype")
    archs = config.get("architectures")
    tokenizer_cfg = p / "tokenizer_config.json"
    has_template = (p / "chat_template.jinja").is_file() or (p / "chat_template.json").is_file()
    if not has_template and tokenizer_cfg.is_file():
        try:
            has_template = bool(json.loads(tokenizer_cfg.read_text(encoding="utf-8")).get("chat_template"))
        except (OSError, ValueError, AttributeError):
            has_template = False

    def _int(v: Any) -> int | None:
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    eos = cfg("eos_token_id")
    return {
        "path": str(p),
        "format": "hf",
        "architecture": config.get("model_type") or (archs[0] if isinstance(archs, list) and archs else None),
        "architectures": archs if isinstance(archs, list) else [],
        "n_params": n_params,
        "quantization": str(quantization) if quantization else None,
        "context_length": _int(cfg("max_position_embeddings")),
        "vocab_size": _int(cfg("vocab_size")),
        "bos_token_id": _int(cfg("bos_token_id")),
        "eos_token_id": eos if isinstance(eos, list) else _int(eos),
        "has_chat_template": has_template,
        "revision": p.name if p.parent.name == "snapshots" else None,
    }


def model_file_info(path: str | Path) -> dict[str, Any]:
    """Header summary of a model path: a GGUF file (:func:`lmread.catalog.gguf.gguf_info`) or an HF folder."""
    p = Path(path)
    if p.is_dir():
        return hf_folder_info(p)
    info = gguf_info(p)
    shard = SHARD_RE.search(p.name)
    if shard and int(shard.group(1)) == 1 and int(shard.group(2)) > 1:
        # a split GGUF: count the tensors of every shard
        total = 0
        for i in range(1, int(shard.group(2)) + 1):
            part = p.with_name(SHARD_RE.sub(f"-{i:05d}-of-{shard.group(2)}.gguf", p.name))
            total += gguf_info(part)["n_params"] if part.is_file() else 0
        info["n_params"] = total
    return info
