"""Loading for the transformers backend: offline imports, model folders, GGUF files and the
cache of their float32 conversions, end-of-generation ids.

Loading is offline and safe by default: ``HF_HUB_OFFLINE=1`` is set before transformers is
imported, ids are resolved with ``local_files_only=True``, only safetensors weights are read
(pickle checkpoints need ``allow_pickle``), and ``trust_remote_code`` is always off.

A GGUF file is dequantized to float32 by transformers (slow: minutes for a large vocabulary);
the conversion is cached as safetensors (keyed by the file's sha256 and the transformers
version), so later loads take seconds.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from lmread.errors import ModelError, OptionError

#: File names that hold a tokenizer in a model folder.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "spiece.model", "vocab.json", "vocab.txt", "tiktoken.model")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_DTYPES = ("float32", "float16", "bfloat16")
#: special tokens that end a turn in common chat formats (ending a generation like EOS)
END_OF_TURN = frozenset({"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "<EOT>", "</s>"})


def import_torch_transformers() -> tuple[Any, Any]:
    """Import torch and transformers with the hub forced offline."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import torch
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError(
            f"the hf backend needs torch and transformers ({exc.name or exc} is missing); "
            "install them with: pip install 'lmread[hf]'"
        ) from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # no progress bars on the terminal (the TUI owns it)
    return torch, transformers


def model_sha256(path: Path) -> str:
    """The sha256 of a model file (cached by the catalogue)."""
    from lmread.catalog import file_sha256
    from lmread.config import load_settings

    return file_sha256(path, load_settings())  # the backend is not given settings: read them here


def gguf_file_type(path: Path) -> str | None:
    """The quantization type of a GGUF file read from its header (e.g. ``Q4_1``)."""
    from lmread.catalog.gguf import gguf_info

    try:
        quant = gguf_info(path).get("quantization")
    except Exception:  # an unreadable header only loses this field
        return None
    return str(quant) if quant else None


def hf_cache_snapshot(repo_id: str, revision: str | None) -> Path:
    """The local snapshot folder of ``repo_id`` in the HF cache (offline), or ModelError."""
    from lmread.catalog import hf_snapshot

    return hf_snapshot(repo_id, revision)


def one_line(exc: BaseException) -> str:
    """An exception as one short line (for error messages)."""
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


def looks_like_repo_id(text: str) -> bool:
    """``org/name`` (not a relative path such as ``models/x.gguf``)."""
    if text.lower().endswith((".gguf", ".safetensors", ".bin")) or text.startswith((".", "/", "~")):
        return False
    return bool(re.match(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$", text))


def snapshot_of(path: Path) -> tuple[str, str] | None:
    """``(repo_id, commit)`` when ``path`` lies in an HF cache snapshot folder, else None."""
    parts = path.resolve().parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "snapshots" and parts[i - 1].startswith("models--") and i + 1 < len(parts):
            return parts[i - 1].removeprefix("models--").replace("--", "/"), parts[i + 1]
    return None


class LoadingMixin:
    """The loading half of :class:`~lmread.backends.hf.HFBackend` (device, dtype, weights,
    tokenizer, conversion cache, end-of-generation ids)."""

    _torch: Any
    _transformers: Any
    _convert_cache: str | os.PathLike[str] | bool | None
    _sha256: str | None
    device: Any
    dtype: Any
    model: Any
    config: Any
    tokenizer: Any
    vocab_size: int

    def _pick_device(self, device: str | None) -> Any:
        torch = self._torch
        if device is None:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise OptionError(f"invalid option --device {device!r}: use cpu, cuda or cuda:N") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise OptionError(f"device {device!r} is not available (no CUDA here): use --device cpu")
        if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise OptionError(f"device {device!r} is not available here: use --device cpu")
        return dev

    def _pick_dtype(self, dtype: str | None) -> Any:
        torch = self._torch
        if dtype in (None, "auto"):
            if self.device.type == "cpu":
                return torch.float32
            if self.device.type == "cuda" and torch.cuda.is_bf16_supported():
                return torch.bfloat16
            return torch.float16
        if dtype not in _DTYPES:
            raise OptionError(f"invalid option --dtype {dtype!r}: use one of {', '.join(_DTYPES)} or auto")
        return getattr(torch, dtype)

    def _check_architecture(self, model_type: str | None, where: str) -> None:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        if not model_type:
            raise ModelError(f"{where} names no model_type: it is not a transformers model folder")
        if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            raise ModelError(
                f"unsupported architecture {model_type!r} in {where}: transformers "
                f"{self._transformers.__version__} has no causal LM for it (remote code is never run); "
                "use a supported model or the llamacpp backend"
            )

    def _load_gguf(self, path: Path) -> tuple[Any, Any]:
        """Dequantize a GGUF file with transformers, or reuse its cached conversion."""
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

        from lmread.catalog.gguf import gguf_info

        transformers = self._transformers
        try:
            arch = gguf_info(path).get("architecture")
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"cannot read GGUF file {path}: {one_line(exc)}; check the file") from None
        if arch not in GGUF_SUPPORTED_ARCHITECTURES:
            raise ModelError(
                f"unsupported architecture {arch!r} in {path}: transformers {transformers.__version__} cannot load "
                "it from GGUF; use the llamacpp backend"
            )
        cached = self._conversion_folder(path)
        if cached is not None and (cached / "config.json").is_file():
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(
                    str(cached), local_files_only=True, trust_remote_code=False
                )
                model = transformers.AutoModelForCausalLM.from_pretrained(
                    str(cached), dtype=self.dtype, local_files_only=True, trust_remote_code=False,
                    use_safetensors=True,
                )
                return model.to(self.device), tokenizer
            except Exception:  # a damaged cache entry: convert again below
                pass
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(path.parent), gguf_file=path.name, local_files_only=True, trust_remote_code=False
            )
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(path.parent),
                gguf_file=path.name,
                dtype=self._torch.float32,
                local_files_only=True,
                trust_remote_code=False,
            )
        except (ValueError, KeyError, OSError, RuntimeError, TypeError) as exc:
            raise ModelError(f"cannot load GGUF file {path} with transformers: {one_line(exc)}") from None
        if cached is not None:
            self._save_conversion(model, tokenizer, cached)
        return model.to(self.device, self.dtype), tokenizer

    def _conversion_folder(self, path: Path) -> Path | None:
        """Where the float32 conversion of GGUF ``path`` is cached (None: caching is off)."""
        if self._convert_cache is False:
            return None
        if self._convert_cache is None or self._convert_cache is True:
            from lmread.catalog import cache_dir
            from lmread.config import load_settings

            root = cache_dir(load_settings()) / "hf-gguf"
        else:
            root = Path(self._convert_cache).expanduser()
        try:
            digest = model_sha256(path)
        except ModelError:
            return None
        self._sha256 = digest
        return root / f"{digest[:24]}-transformers-{self._transformers.__version__}"

    def _save_conversion(self, model: Any, tokenizer: Any, target: Path) -> None:
        """Write the converted model + tokenizer to ``target`` atomically; failures only cost time."""
        import shutil
        import tempfile

        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        except OSError:
            return
        try:
            # save_pretrained refuses GGUF-flagged models: write the float32 weights ourselves
            from safetensors.torch import save_model

            config = model.config.to_dict()
            config.pop("quantization_config", None)
            (tmp / "config.json").write_text(json.dumps(config, indent=1, default=str), encoding="utf-8")
            model.generation_config.save_pretrained(tmp)
            save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
            tokenizer.save_pretrained(tmp)
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        except Exception:
            shutil.rmtree(tmp, ignore_errors=True)

    def _load_folder(self, folder: Path, allow_pickle: bool) -> tuple[Any, Any]:
        transformers = self._transformers
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise ModelError(f"model folder {folder} has no config.json: give a transformers model folder or a GGUF file")
        try:
            raw = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read {config_file}: {one_line(exc)}") from None
        if not isinstance(raw, dict):
            raise ModelError(f"{config_file} is not a JSON object")
        self._check_architecture(raw.get("model_type"), str(config_file))

        names = [p.name for p in folder.iterdir() if p.is_file()]
        has_safetensors = any(n.endswith(".safetensors") for n in names)
        has_pickle = any(n.endswith(PICKLE_SUFFIXES) and not n.startswith("training_args") for n in names)
        if not has_safetensors:
            if not has_pickle:
                raise ModelError(f"model folder {folder} has no weights (*.safetensors): add them or give a GGUF file")
            if not allow_pickle:
                raise ModelError(
                    f"model folder {folder} has only a pickle checkpoint; pass --allow-pickle to load it "
                    "(pickle files can run code: only for checkpoints you trust)"
                )
        if not any((folder / n).is_file() for n in TOKENIZER_FILES):
            raise ModelError(
                f"model folder {folder} has no tokenizer (none of {', '.join(TOKENIZER_FILES[:4])}): "
                "copy the tokenizer files of the model into it"
            )
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(folder), local_files_only=True, trust_remote_code=False
            )
        except Exception as exc:
            raise ModelError(f"cannot load the tokenizer of {folder}: {one_line(exc)}") from None
        try:
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(folder),
                dtype=self.dtype,
                local_files_only=True,
                trust_remote_code=False,
                use_safetensors=has_safetensors,
            )
        except Exception as exc:
            raise ModelError(f"cannot load the model in {folder}: {one_line(exc)}") from None
        return model.to(self.device), tokenizer

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()

        def add(value: Any) -> None:
            if value is None:
                return
            if isinstance(value, (list, tuple, set)):
                for v in value:
                    add(v)
            elif isinstance(value, int) and 0 <= value < self.vocab_size:
                ids.add(int(value))

        gen = getattr(self.model, "generation_config", None)
        add(getattr(gen, "eos_token_id", None))
        add(getattr(self.config, "eos_token_id", None))
        add(getattr(self.tokenizer, "eos_token_id", None))
        # end-of-turn special tokens end a generation too (as llama.cpp's end-of-generation set)
        for tid, tok in (getattr(self.tokenizer, "added_tokens_decoder", None) or {}).items():
            if getattr(tok, "special", False) and str(tok.content) in END_OF_TURN:
                add(int(tid))
        return ids
