"""The transformers backend: safetensors folders, the offline HF cache, and GGUF files.

See :mod:`lmread.backends.hf` for the whole story; this module holds the class, its options,
its identity and its tokenizer front; loading and streaming live beside it.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmread import __version__
from lmread.backends.base import CONTEXT, THREADS, Backend, BackendOption, ModelIdentity
from lmread.backends.hf.loading import (
    LoadingMixin,
    gguf_file_type,
    hf_cache_snapshot,
    import_torch_transformers,
    looks_like_repo_id,
    model_sha256,
    snapshot_of,
)
from lmread.backends.hf.streaming import StreamingMixin
from lmread.backends.hf.tokens import token_bytes_table
from lmread.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from lmread.catalog import ModelCard

DEVICE = BackendOption("device", "--device", str, "Torch device, e.g. cpu or cuda",
                       rule="name a device such as cpu, cuda or cuda:1")
ALLOW_PICKLE = BackendOption("allow_pickle", "--allow-pickle", bool,
                             "Allow loading pickle checkpoints (only for files you trust)")


class HFBackend(LoadingMixin, StreamingMixin, Backend):
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
    options = (THREADS, CONTEXT, DEVICE, ALLOW_PICKLE)
    supports_batch = True
    supports_score = True
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
        torch, transformers = import_torch_transformers()
        self._convert_cache = convert_cache
        self._torch = torch
        self._transformers = transformers
        THREADS.check(n_threads)
        CONTEXT.check(n_ctx)
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
        elif looks_like_repo_id(text):
            self.hf_id = text
            folder = hf_cache_snapshot(text, revision)
        else:
            raise ModelError(f"model path {path} does not exist: give a GGUF file, a model folder or a cached HF id")
        self.folder = folder
        snapshot = snapshot_of(self.gguf_path or folder)
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

    def identity(self) -> ModelIdentity:
        """Model identity recorded with every sample: the GGUF file's sha256, the HF cache
        commit, or the model folder."""
        import importlib.metadata as md

        if self.gguf_path is not None and self._sha256 is None:
            self._sha256 = model_sha256(self.gguf_path)
        quant = self._quantization
        if quant is None:
            quant = gguf_file_type(self.gguf_path) if self.gguf_path is not None else None
            quant = quant or str(self.dtype).removeprefix("torch.")
            self._quantization = quant
        versions = {"lmread": __version__}
        for dist in ("torch", "transformers", "tokenizers", "safetensors", "gguf", "accelerate", "huggingface-hub"):
            try:
                versions[dist] = md.version(dist)
            except md.PackageNotFoundError:
                pass
        ident = ModelIdentity(
            id=self.model_id,
            name=self.model_name,
            n_params=self.n_params,
            quantization=quant,
            architecture=getattr(self.config, "model_type", None),
            backend=self.name,
            backend_version=self._transformers.__version__,
            library_versions=versions,
            details={"dtype": str(self.dtype).removeprefix("torch."), "device": str(self.device), "n_ctx": self.n_ctx},
        )
        where: tuple[str, ...]
        if self._sha256 is not None and self.gguf_path is not None:
            ident.sha256 = self._sha256
            ident.file, ident.path = self.gguf_path.name, str(self.gguf_path)
            ident.source, ident.source_is_path = str(self.gguf_path), True
            where = ("sha256", "file", "source")
        elif self.revision is not None:
            ident.revision = self.revision
            ident.source = f"hf:{self.hf_id}"
            where = ("revision", "source")
        else:
            ident.file, ident.path = self.folder.name, str(self.folder)
            ident.source, ident.source_is_path = str(self.folder), True
            where = ("file", "source")
        ident.layout = _LAYOUT + where
        return ident

    def close(self) -> None:
        """Drop the model and free its memory."""
        self.model = None
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()


#: the order of the identity's keys in a sample record (then where the model came from)
_LAYOUT = ("id", "name", "n_params", "quantization", "architecture", "backend", "backend_version",
           "library_versions", "dtype", "device", "n_ctx")
