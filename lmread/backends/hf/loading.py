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
from dataclasses import dataclass
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


@dataclass
class LoadedModel:
    """A transformers model loaded for lmread's decoding loop: what :func:`load_model` returns
    and :class:`~lmread.backends.hf.streaming.Decoder` works on.

    ``source`` says where it came from: ``gguf_path`` (a GGUF file, ``sha256`` once known),
    ``folder`` (the model folder, or the GGUF file's), ``hf_id`` and ``revision`` (an HF cache
    snapshot).  ``n_ctx`` is the context lmread allows (at most ``max_position_embeddings``);
    ``pieces`` the raw bytes of every token id; ``eos_ids`` the ids that end a generation.
    """

    torch: Any
    transformers: Any
    model: Any
    tokenizer: Any
    device: Any
    dtype: Any
    folder: Path
    gguf_path: Path | None
    hf_id: str | None
    revision: str | None
    sha256: str | None
    n_ctx: int
    vocab_size: int
    pieces: list[bytes]
    eos_ids: set[int]
    n_params: int
    #: the forward keyword of the KV cache (transformers 5 renamed ``past_key_values`` to ``cache``)
    cache_arg: str
    has_logits_to_keep: bool

    @property
    def config(self) -> Any:
        """The model's transformers config."""
        return self.model.config

    @property
    def kv_bytes_per_token(self) -> int | None:
        """Bytes of KV cache one token of one sequence takes (keys and values of every layer, in
        the model's dtype), from the config; None when the config does not say.  An upper bound
        for models whose sliding-window layers keep fewer tokens."""
        config = self.config
        layers = getattr(config, "num_hidden_layers", None)
        heads = getattr(config, "num_attention_heads", None)
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        head_dim = getattr(config, "head_dim", None)
        hidden = getattr(config, "hidden_size", None)
        if not head_dim and hidden and heads:
            head_dim = hidden // heads
        if not (isinstance(layers, int) and isinstance(kv_heads, int) and isinstance(head_dim, int)
                and min(layers, kv_heads, head_dim) > 0):
            return None
        element = int(self.torch.tensor([], dtype=self.dtype).element_size())
        return 2 * layers * kv_heads * head_dim * element


def load_model(
    source: str | os.PathLike[str],
    *,
    device: str | None = None,
    allow_pickle: bool = False,
    dtype: str | None = None,
    n_threads: int | None = None,
    n_ctx: int | None = None,
    revision: str | None = None,
    convert_cache: str | os.PathLike[str] | bool | None = None,
) -> LoadedModel:
    """Load ``source`` (a GGUF file, a model folder or a cached HF repo id) offline; see
    :class:`~lmread.backends.hf.HFBackend` for the options.  :class:`ModelError` or
    :class:`OptionError` on one line when it cannot."""
    import inspect

    from lmread.backends.hf.tokens import token_bytes_table

    torch, transformers = import_torch_transformers()
    torch.set_num_threads(n_threads or os.cpu_count() or 1)
    gguf_path: Path | None = None
    hf_id: str | None = None
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"model file {path} is not a GGUF file: give a .gguf file or a model folder")
        gguf_path = path.resolve()
        folder = gguf_path.parent
    elif path.is_dir():
        folder = path.resolve()
    elif path.exists():
        raise ModelError(f"model path {path} is neither a file nor a folder")
    elif looks_like_repo_id(text):
        hf_id = text
        folder = hf_cache_snapshot(text, revision)
    else:
        raise ModelError(f"model path {path} does not exist: give a GGUF file, a model folder or a cached HF id")
    found_revision: str | None = None
    snapshot = snapshot_of(gguf_path or folder)
    if snapshot is not None:  # inside the HF cache: record the commit
        hf_id = hf_id or snapshot[0]
        found_revision = snapshot[1]

    loader = ModelLoader(torch, transformers, device, dtype, convert_cache)
    if gguf_path is not None:
        model, tokenizer = loader.load_gguf(gguf_path)
    else:
        model, tokenizer = loader.load_folder(folder, allow_pickle)
    model.eval()
    params = inspect.signature(model.forward).parameters
    limit = int(getattr(model.config, "max_position_embeddings", 0) or 0) or 1 << 30
    emb = model.get_output_embeddings()
    vocab_size = int(emb.weight.shape[0]) if emb is not None else int(model.config.vocab_size)
    return LoadedModel(
        torch=torch, transformers=transformers, model=model, tokenizer=tokenizer, device=loader.device,
        dtype=loader.dtype, folder=folder, gguf_path=gguf_path, hf_id=hf_id, revision=found_revision,
        sha256=loader.sha256, n_ctx=min(limit, n_ctx) if n_ctx is not None else limit, vocab_size=vocab_size,
        pieces=token_bytes_table(tokenizer, vocab_size), eos_ids=eos_ids(model, tokenizer, vocab_size),
        n_params=int(sum(p.numel() for p in model.parameters())),
        cache_arg="cache" if "cache" in params else "past_key_values",
        has_logits_to_keep="logits_to_keep" in params,
    )


class ModelLoader:
    """Device, dtype, weights and tokenizer of one load (and the GGUF conversion cache)."""

    def __init__(self, torch: Any, transformers: Any, device: str | None, dtype: str | None,
                 convert_cache: str | os.PathLike[str] | bool | None) -> None:
        self._torch = torch
        self._transformers = transformers
        self._convert_cache = convert_cache
        #: the GGUF file's sha256 once the conversion cache has needed it
        self.sha256: str | None = None
        self.device = self._pick_device(device)
        self.dtype = self._pick_dtype(dtype)

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

    def load_gguf(self, path: Path) -> tuple[Any, Any]:
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
        self.sha256 = digest
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

    def load_folder(self, folder: Path, allow_pickle: bool) -> tuple[Any, Any]:
        """Load a transformers model folder (safetensors; pickle only with ``allow_pickle``)."""
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


def eos_ids(model: Any, tokenizer: Any, vocab_size: int) -> set[int]:
    """The token ids that end a generation: the model's and tokenizer's EOS, and end-of-turn
    special tokens (as llama.cpp's end-of-generation set)."""
    ids: set[int] = set()

    def add(value: Any) -> None:
        if value is None:
            return
        if isinstance(value, (list, tuple, set)):
            for v in value:
                add(v)
        elif isinstance(value, int) and 0 <= value < vocab_size:
            ids.add(int(value))

    gen = getattr(model, "generation_config", None)
    add(getattr(gen, "eos_token_id", None))
    add(getattr(model.config, "eos_token_id", None))
    add(getattr(tokenizer, "eos_token_id", None))
    for tid, tok in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items():
        if getattr(tok, "special", False) and str(tok.content) in END_OF_TURN:
            add(int(tid))
    return ids
