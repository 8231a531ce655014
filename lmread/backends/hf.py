"""The transformers backend: safetensors folders, the offline HF cache, and GGUF files.

The model runs under our own decoding loop (a forward pass per step over a KV cache, not
``model.generate``) so every token carries the distribution it was drawn from: logprob, rank,
entropy and the top-k of the *unmodified* next-token distribution, computed on the device.
Sampling (repetition penalty, temperature, top-k, top-p, min-p) happens on the device too, with
a ``torch.Generator`` seeded from the options, so the same seed gives the same text.

Loading is offline and safe by default: ``HF_HUB_OFFLINE=1`` is set before transformers is
imported, ids are resolved with ``local_files_only=True``, only safetensors weights are read
(pickle checkpoints need ``allow_pickle``), and ``trust_remote_code`` is always off.

Token pieces are the raw bytes of each token (byte-level BPE through the byte decoder,
sentencepiece ``▁`` as a space, byte-fallback ``<0xNN>`` as one byte), from a table built once
per vocabulary, so the pieces of a stream concatenate to exactly the generated text.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmread import __version__
from lmread.backends.base import GenOptions, StreamEnd, TokenChunk
from lmread.errors import BackendError, ModelError, OptionError

if TYPE_CHECKING:  # pragma: no cover

    from lmread.catalog import ModelCard

#: File names that hold a tokenizer in a model folder.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "spiece.model", "vocab.json", "vocab.txt", "tiktoken.model")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_BYTE_TOKEN_RE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_DTYPES = ("float32", "float16", "bfloat16")
#: special tokens that end a turn in common chat formats (ending a generation like EOS)
END_OF_TURN = frozenset({"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "<EOT>", "</s>"})


def _import_torch_transformers() -> tuple[Any, Any]:
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


def _sha256(path: Path) -> str:
    """The sha256 of a model file (cached by the catalogue)."""
    from lmread.catalog import file_sha256
    from lmread.config import load_settings

    return file_sha256(path, load_settings())  # the backend is not given settings: read them here


def _gguf_file_type(path: Path) -> str | None:
    """The quantization type of a GGUF file read from its header (e.g. ``Q4_1``)."""
    from lmread.catalog.gguf import gguf_info

    try:
        quant = gguf_info(path).get("quantization")
    except Exception:  # an unreadable header only loses this field
        return None
    return str(quant) if quant else None


def _hf_cache_snapshot(repo_id: str, revision: str | None) -> Path:
    """The local snapshot folder of ``repo_id`` in the HF cache (offline), or ModelError."""
    from lmread.catalog import hf_snapshot

    return hf_snapshot(repo_id, revision)


# --------------------------------------------------------------------------------------------
# Token bytes


def _byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's byte-to-printable-unicode map used by byte-level BPE."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def _tokenizer_kind(tokenizer: Any) -> str:
    """``bytelevel`` for byte-level BPE, ``metaspace`` for sentencepiece-style vocabularies."""
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is not None:
        try:
            spec = json.loads(backend.to_str())
        except Exception:
            spec = {}

        def types(node: Any) -> list[str]:
            if not isinstance(node, dict):
                return []
            found = [str(node.get("type"))]
            for key in ("decoders", "pretokenizers"):
                for child in node.get(key) or []:
                    found += types(child)
            return found

        seen = types(spec.get("decoder")) + types(spec.get("pre_tokenizer"))
        if "ByteLevel" in seen:
            return "bytelevel"
        return "metaspace"
    return "metaspace"


def token_bytes_table(tokenizer: Any, size: int) -> list[bytes]:
    """The raw bytes of every token id ``0 .. size-1`` (ids past the vocabulary map to ``b""``).

    Byte-level BPE tokens go through the byte decoder; sentencepiece pieces turn ``▁`` into a
    space and ``<0xNN>`` byte-fallback tokens into that byte; added tokens are their content.
    """
    kind = _tokenizer_kind(tokenizer)
    decoder = _byte_decoder() if kind == "bytelevel" else {}
    added = {int(i): tok for i, tok in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items()}
    vocab_ids = tokenizer.convert_ids_to_tokens(list(range(min(size, len(tokenizer)))))
    table: list[bytes] = []
    for tid in range(size):
        tok = vocab_ids[tid] if tid < len(vocab_ids) else None
        if tok is None:
            table.append(b"")
            continue
        if tid in added:
            table.append(str(added[tid].content).encode("utf-8"))
            continue
        if kind == "bytelevel":
            try:
                table.append(bytes(decoder[ch] for ch in tok))
            except KeyError:
                table.append(tok.encode("utf-8"))
            continue
        match = _BYTE_TOKEN_RE.match(tok)
        if match:
            table.append(bytes([int(match.group(1), 16)]))
        else:
            table.append(tok.replace("▁", " ").encode("utf-8"))
    return table


# --------------------------------------------------------------------------------------------
# The backend


class HFBackend:
    """A causal language model run with transformers under lmread's own decoding loop.

    ``source`` is a GGUF file, a local folder (``config.json`` + ``*.safetensors`` + tokenizer) or
    a Hugging Face repo id resolved in the local cache.  ``device`` defaults to CUDA when available
    else CPU; ``dtype`` to float32 on CPU and the model's half type on GPU.  ``n_ctx`` caps the
    context below the model's ``max_position_embeddings``.

    A GGUF file is dequantized to float32 by transformers (slow: minutes for a large vocabulary);
    the conversion is cached as safetensors under ``convert_cache`` (default
    ``<data_dir>/cache/hf-gguf``, keyed by the file's sha256 and the transformers version; ``False``
    turns it off), so later loads take seconds.  The recorded identity stays the GGUF file's.
    """

    name = "hf"
    max_concurrency = 1

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        device: str | None = None,
        allow_pickle: bool = False,
        dtype: str | None = None,
        n_threads: int | None = None,
        n_ctx: int | None = None,
        revision: str | None = None,
        model_id: str | None = None,
        model_name: str | None = None,
        quantization: str | None = None,
        convert_cache: str | os.PathLike[str] | bool | None = None,
    ) -> None:
        torch, transformers = _import_torch_transformers()
        self._convert_cache = convert_cache
        self._torch = torch
        self._transformers = transformers
        if n_threads is not None and (not isinstance(n_threads, int) or n_threads < 1):
            raise OptionError(f"invalid option --n-threads {n_threads!r}: must be a whole number >= 1")
        if n_ctx is not None and (not isinstance(n_ctx, int) or n_ctx < 2):
            raise OptionError(f"invalid option --n-ctx {n_ctx!r}: must be a whole number >= 2")
        torch.set_num_threads(n_threads or os.cpu_count() or 1)

        self.revision: str | None = None
        self.gguf_path: Path | None = None
        self.hf_id: str | None = None
        text = os.fspath(source)
        path = Path(text).expanduser()
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise ModelError(f"model file {path} is not a GGUF file: give a .gguf file or a model folder")
            self.gguf_path = path.resolve()
            folder = self.gguf_path.parent
        elif path.is_dir():
            folder = path.resolve()
        elif path.exists():
            raise ModelError(f"model path {path} is neither a file nor a folder")
        elif _looks_like_repo_id(text):
            self.hf_id = text
            folder = _hf_cache_snapshot(text, revision)
        else:
            raise ModelError(f"model path {path} does not exist: give a GGUF file, a model folder or a cached HF id")
        self.folder = folder
        snapshot = _snapshot_of(self.gguf_path or folder)
        if snapshot is not None:  # inside the HF cache: record the commit
            self.hf_id = self.hf_id or snapshot[0]
            self.revision = snapshot[1]

        self.device = self._pick_device(device)
        self.dtype = self._pick_dtype(dtype)
        self.model_id = model_id or self.hf_id or (self.gguf_path.stem if self.gguf_path else folder.name)
        self.model_name = model_name or self.model_id
        self._quantization = quantization
        self._sha256: str | None = None

        if self.gguf_path is not None:
            self.model, self.tokenizer = self._load_gguf(self.gguf_path)
        else:
            self.model, self.tokenizer = self._load_folder(folder, allow_pickle)
        self.model.eval()
        self.config = self.model.config
        params = inspect.signature(self.model.forward).parameters
        # transformers 5 renamed ``past_key_values`` to ``cache``
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._has_logits_to_keep = "logits_to_keep" in params

        limit = int(getattr(self.config, "max_position_embeddings", 0) or 0) or 1 << 30
        self.n_ctx = min(limit, n_ctx) if n_ctx is not None else limit

        emb = self.model.get_output_embeddings()
        self.vocab_size = int(emb.weight.shape[0]) if emb is not None else int(self.config.vocab_size)
        self.pieces = token_bytes_table(self.tokenizer, self.vocab_size)
        self.eos_ids = self._eos_ids()
        self.n_params = int(sum(p.numel() for p in self.model.parameters()))

    # ---------------------------------------------------------------------------- loading

    @classmethod
    def from_card(
        cls,
        card: ModelCard,
        *,
        device: str | None = None,
        allow_pickle: bool = False,
        dtype: str | None = None,
        n_threads: int | None = None,
        n_ctx: int | None = None,
        convert_cache: str | os.PathLike[str] | bool | None = None,
        **_ignored: Any,
    ) -> HFBackend:
        """Load the model a catalogue card points to (a path, a package file or an HF id)."""
        source = card.source or {}
        if not any(key in source for key in ("path", "package", "hf")):
            raise ModelError(
                f"model {card.id!r} has no local source (path, package or hf); the hf backend runs local models only"
            )
        target = card.resolve_path()  # never downloads; ModelError with a hint when absent
        return cls(
            target,
            device=device,
            allow_pickle=allow_pickle,
            dtype=dtype,
            n_threads=n_threads,
            n_ctx=n_ctx,
            model_id=card.id,
            model_name=card.name,
            quantization=card.quantization,
            convert_cache=convert_cache,
        )

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
            raise ModelError(f"cannot read GGUF file {path}: {_one_line(exc)}; check the file") from None
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
            raise ModelError(f"cannot load GGUF file {path} with transformers: {_one_line(exc)}") from None
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
            digest = _sha256(path)
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
            raise ModelError(f"cannot read {config_file}: {_one_line(exc)}") from None
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
            raise ModelError(f"cannot load the tokenizer of {folder}: {_one_line(exc)}") from None
        try:
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(folder),
                dtype=self.dtype,
                local_files_only=True,
                trust_remote_code=False,
                use_safetensors=has_safetensors,
            )
        except Exception as exc:
            raise ModelError(f"cannot load the model in {folder}: {_one_line(exc)}") from None
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

    # ---------------------------------------------------------------------------- identity

    def describe(self) -> dict[str, Any]:
        """Model identity recorded with every sample."""
        import importlib.metadata as md

        if self.gguf_path is not None and self._sha256 is None:
            self._sha256 = _sha256(self.gguf_path)
        quant = self._quantization
        if quant is None:
            quant = _gguf_file_type(self.gguf_path) if self.gguf_path is not None else None
            quant = quant or str(self.dtype).removeprefix("torch.")
            self._quantization = quant
        versions = {"lmread": __version__}
        for dist in ("torch", "transformers", "tokenizers", "safetensors", "gguf", "accelerate", "huggingface-hub"):
            try:
                versions[dist] = md.version(dist)
            except md.PackageNotFoundError:
                pass
        out: dict[str, Any] = {
            "id": self.model_id,
            "name": self.model_name,
            "n_params": self.n_params,
            "quantization": quant,
            "architecture": getattr(self.config, "model_type", None),
            "backend": self.name,
            "backend_version": self._transformers.__version__,
            "library_versions": versions,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "n_ctx": self.n_ctx,
        }
        if self._sha256 is not None:
            out["sha256"] = self._sha256
            out["source"] = str(self.gguf_path)
        elif self.revision is not None:
            out["revision"] = self.revision
            out["source"] = f"hf:{self.hf_id}"
        else:
            out["source"] = str(self.folder)
        return out

    # ---------------------------------------------------------------------------- tokens

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Token ids of ``text``: as a prompt (``add_special``: the tokenizer's default BOS, and
        special-token text such as ``<|im_start|>`` parsed, so chat templates work) or as a bare
        continuation (no BOS, special-token text kept as plain text, like llama.cpp)."""
        if add_special:
            return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])
        return list(self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])

    def _prompt_ids(self, prompt: str) -> list[int]:
        ids = self.tokenize(prompt, add_special=True)
        if not ids:  # an empty prompt without BOS: condition on BOS (or EOS) like a new document
            start = getattr(self.tokenizer, "bos_token_id", None)
            if start is None:
                start = getattr(self.tokenizer, "eos_token_id", None)
            if start is None:
                raise OptionError("the prompt is empty and this tokenizer has no BOS token: give a prompt")
            ids = [int(start)]
        return ids

    def _check_prompt(self, ids: Sequence[int]) -> None:
        if len(ids) >= self.n_ctx:
            raise OptionError(
                f"prompt is {len(ids)} tokens, the context of {self.model_id} is {self.n_ctx}: shorten the prompt"
            )

    # ---------------------------------------------------------------------------- on-device maths

    def _forward(self, input_ids: Any, cache: Any, last_only: bool = True) -> tuple[Any, Any]:
        kwargs: dict[str, Any] = {"input_ids": input_ids, "use_cache": True}
        if cache is not None:
            kwargs[self._cache_arg] = cache
        if last_only and self._has_logits_to_keep:
            kwargs["logits_to_keep"] = 1
        out = self.model(**kwargs)
        new_cache = getattr(out, "cache", None)
        if new_cache is None:
            new_cache = getattr(out, "past_key_values", None)
        return out.logits[:, -1, :].float(), new_cache

    def _stats(self, logits: Any, chosen: Any, k: int) -> Any:
        """Per row: [logprob, entropy, rank, top_lp..., top_id...] as one float64 tensor."""
        torch = self._torch
        logp = torch.log_softmax(logits, dim=-1)
        lp = logp.gather(1, chosen.view(-1, 1))
        entropy = torch.special.entr(logp.exp()).sum(dim=-1, keepdim=True)
        chosen_logit = logits.gather(1, chosen.view(-1, 1))
        rank = (logits > chosen_logit).sum(dim=-1, keepdim=True) + 1
        parts = [lp.double(), entropy.double(), rank.double()]
        if k > 0:
            top = torch.topk(logp, min(k, logp.shape[-1]), dim=-1)
            parts += [top.values.double(), top.indices.double()]
        return torch.cat(parts, dim=1)

    def _sample(self, logits: Any, options: GenOptions, generator: Any, history: Any) -> Any:
        """One token id (0-d tensor) from a 1-D logits row with the options' processors."""
        torch = self._torch
        x = logits
        if options.repetition_penalty != 1.0 and history is not None and history.numel():
            seen = history
            vals = x.gather(0, seen)
            x = x.clone()
            x.scatter_(0, seen, torch.where(vals > 0, vals / options.repetition_penalty, vals * options.repetition_penalty))
        if options.temperature == 0.0:
            return torch.argmax(x)
        if options.temperature != 1.0:
            x = x / options.temperature
        if 0 < options.top_k < x.shape[0]:
            cut = torch.topk(x, options.top_k).values[-1]
            x = x.masked_fill(x < cut, float("-inf"))
        probs = torch.softmax(x, dim=-1)
        if options.top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            before = torch.cumsum(sorted_p, dim=0) - sorted_p
            drop = before >= options.top_p
            probs = probs.scatter(0, order, sorted_p.masked_fill(drop, 0.0))
        if options.min_p > 0.0:
            probs = probs.masked_fill(probs < options.min_p * probs.max(), 0.0)
        # inverse-CDF draw: one uniform number and a float64 cumulative sum; much cheaper than
        # torch.multinomial over a large vocabulary.  side="right" never lands on a zero-probability id.
        cdf = torch.cumsum(probs, dim=0, dtype=torch.float64)
        u = torch.rand(1, generator=generator, device=probs.device, dtype=torch.float64) * cdf[-1]
        return torch.searchsorted(cdf, u, right=True).clamp_(max=probs.shape[0] - 1)[0]

    def _generator(self, seed: int | None) -> Any:
        gen = self._torch.Generator(device=self.device)
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed))
        return gen

    def _chunk(self, token_id: int, row: list[float], k: int) -> TokenChunk:
        top_lp: list[float] = []
        top_ids: list[int] = []
        if k > 0:
            kk = (len(row) - 3) // 2
            top_lp = row[3 : 3 + kk]
            top_ids = [int(v) for v in row[3 + kk :]]
        return TokenChunk(
            id=token_id,
            piece=self.pieces[token_id] if token_id < len(self.pieces) else b"",
            logprob=row[0],
            rank=int(row[2]),
            entropy=max(row[1], 0.0),
            top_ids=top_ids,
            top_logprobs=top_lp,
            top_pieces=[self.pieces[i] if i < len(self.pieces) else b"" for i in top_ids],
        )

    # ---------------------------------------------------------------------------- generation

    def stream(
        self,
        prompt: str,
        options: GenOptions,
        cancel: threading.Event | None = None,
        *,
        ignore_eos: bool = False,
    ) -> Iterator[TokenChunk | StreamEnd]:
        """Generate from ``prompt``: one :class:`TokenChunk` per token, then one :class:`StreamEnd`.

        ``ignore_eos`` keeps generating past end-of-text tokens (benchmarks use it to force the length).
        """
        for _, item in self._decode(prompt, [options], cancel, ignore_eos=ignore_eos):
            yield item

    def stream_batch(
        self, prompt: str, options_list: Sequence[GenOptions], cancel: threading.Event | None = None
    ) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        """Draw ``len(options_list)`` samples of ``prompt`` in one batched forward per step.

        Each sequence has its own seed, records and finish; yields ``(index, item)``, and every
        sequence ends with exactly one :class:`StreamEnd`.
        """
        yield from self._decode(prompt, list(options_list), cancel)

    def _decode(
        self,
        prompt: str,
        options_list: list[GenOptions],
        cancel: threading.Event | None,
        ignore_eos: bool = False,
    ) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        torch = self._torch
        if not options_list:
            return
        for opts in options_list:
            opts.validate()
        ids = self._prompt_ids(prompt)
        self._check_prompt(ids)
        batch = len(options_list)
        gens = [self._generator(o.seed) for o in options_list]
        k_max = max(o.top_logprobs for o in options_list)
        needs_history = any(o.repetition_penalty != 1.0 for o in options_list)
        stops = [[s.encode("utf-8") for s in o.stop] for o in options_list]
        texts = [bytearray() for _ in options_list]
        histories: list[Any] = [None] * batch
        with torch.inference_mode():
            prompt_t = torch.tensor([ids], dtype=torch.long, device=self.device)
            if needs_history:
                unique_prompt = torch.unique(prompt_t[0])
                histories = [unique_prompt for _ in options_list]
            try:
                logits, cache = self._forward(prompt_t, None)
            except RuntimeError as exc:
                raise BackendError(f"{self.model_id}: the forward pass failed: {_one_line(exc)}") from None
            if batch > 1:
                logits = logits.expand(batch, -1)
                cache = _repeat_cache(cache, batch)
            alive = list(range(batch))  # original indices of the rows still in the batch
            produced = [0] * batch
            position = len(ids)
            while True:
                if cancel is not None and cancel.is_set():
                    for i in alive:
                        yield i, StreamEnd("cancelled")
                    return
                chosen = torch.stack([
                    self._sample(logits[row], options_list[i], gens[i], histories[i]) for row, i in enumerate(alive)
                ]).view(-1)
                stats = self._stats(logits, chosen, k_max).tolist()
                chosen_host = chosen.tolist()
                keep_rows: list[int] = []
                for row, i in enumerate(alive):
                    tid = int(chosen_host[row])
                    opts = options_list[i]
                    chunk = self._chunk(tid, stats[row], k_max)
                    if opts.top_logprobs < k_max:
                        n = opts.top_logprobs
                        chunk.top_ids, chunk.top_logprobs, chunk.top_pieces = (
                            chunk.top_ids[:n], chunk.top_logprobs[:n], chunk.top_pieces[:n])
                    yield i, chunk
                    produced[i] += 1
                    end: StreamEnd | None = None
                    if tid in self.eos_ids and not ignore_eos:
                        end = StreamEnd("eos")
                    else:
                        if stops[i]:
                            texts[i] += chunk.piece
                            hit = next((s for s in stops[i] if s in texts[i]), None)
                            if hit is not None:
                                end = StreamEnd("stop", hit.decode("utf-8"))
                        if end is None and produced[i] >= opts.max_tokens:
                            end = StreamEnd("length")
                        if end is None and position + 1 >= self.n_ctx:
                            end = StreamEnd("context", f"reached the context of {self.n_ctx} tokens")
                    if end is not None:
                        yield i, end
                    else:
                        keep_rows.append(row)
                        if needs_history:
                            histories[i] = torch.unique(torch.cat([histories[i], chosen[row : row + 1]]))
                if not keep_rows:
                    return
                if len(keep_rows) < len(alive):
                    index = torch.tensor(keep_rows, device=self.device)
                    chosen = chosen.index_select(0, index)
                    cache = _select_cache(cache, index)
                    alive = [alive[r] for r in keep_rows]
                position += 1
                try:
                    logits, cache = self._forward(chosen.view(-1, 1), cache)
                except RuntimeError as exc:
                    for i in alive:
                        yield i, StreamEnd("error", f"forward pass failed: {_one_line(exc)}")
                    return

    def score(self, text: str, prompt: str = "", top_logprobs: int = 5) -> list[TokenChunk]:
        """Teacher-forced pass over ``text`` after ``prompt``: one chunk per token of ``text``.

        The prompt is tokenized with the tokenizer's default specials (BOS), the text without;
        an empty prompt without BOS conditions on BOS/EOS.
        """
        torch = self._torch
        if not isinstance(top_logprobs, int) or not 0 <= top_logprobs <= 20:
            raise OptionError(f"invalid option --top-logprobs {top_logprobs!r}: must be a whole number in [0, 20]")
        context = self._prompt_ids(prompt)
        target = self.tokenize(text, add_special=False)
        if not target:
            return []
        ids = context + target
        if len(ids) > self.n_ctx:
            raise OptionError(
                f"prompt and text are {len(ids)} tokens, the context of {self.model_id} is {self.n_ctx}: shorten them"
            )
        with torch.inference_mode():
            input_t = torch.tensor([ids], dtype=torch.long, device=self.device)
            kwargs: dict[str, Any] = {"input_ids": input_t, "use_cache": False}
            if self._has_logits_to_keep:
                kwargs["logits_to_keep"] = len(target) + 1
            out = self.model(**kwargs)
            logits = out.logits[0, -(len(target) + 1) : -1, :].float()
            chosen = input_t[0, len(context) :]
            stats = self._stats(logits, chosen, top_logprobs).tolist()
        return [self._chunk(int(t), row, top_logprobs) for t, row in zip(target, stats, strict=True)]

    def close(self) -> None:
        """Drop the model and free its memory."""
        self.model = None
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------
# helpers


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


def _looks_like_repo_id(text: str) -> bool:
    """``org/name`` (not a relative path such as ``models/x.gguf``)."""
    if text.lower().endswith((".gguf", ".safetensors", ".bin")) or text.startswith((".", "/", "~")):
        return False
    return bool(re.match(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$", text))


def _snapshot_of(path: Path) -> tuple[str, str] | None:
    """``(repo_id, commit)`` when ``path`` lies in an HF cache snapshot folder, else None."""
    parts = path.resolve().parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "snapshots" and parts[i - 1].startswith("models--") and i + 1 < len(parts):
            return parts[i - 1].removeprefix("models--").replace("--", "/"), parts[i + 1]
    return None


def _repeat_cache(cache: Any, batch: int) -> Any:
    """The prompt's KV cache repeated ``batch`` times along the batch axis."""
    if hasattr(cache, "batch_repeat_interleave"):
        cache.batch_repeat_interleave(batch)
        return cache
    raise BackendError("this transformers version cannot repeat a KV cache; upgrade transformers")


def _select_cache(cache: Any, index: Any) -> Any:
    """Keep only the batch rows ``index`` of a KV cache."""
    if hasattr(cache, "batch_select_indices"):
        cache.batch_select_indices(index)
        return cache
    raise BackendError("this transformers version cannot select KV cache rows; upgrade transformers")
