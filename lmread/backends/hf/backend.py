"""The transformers backend: safetensors folders, the offline HF cache, and GGUF files.

See :mod:`lmread.backends.hf` for the whole story; this module holds the class, its options,
its identity and its tokenizer front; loading and streaming live beside it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmread import __version__
from lmread.backends import memory as backend_memory
from lmread.backends.base import (
    CONTEXT,
    THREADS,
    Backend,
    BackendOption,
    GenOptions,
    ModelIdentity,
    StreamEnd,
    TokenChunk,
)
from lmread.backends.hf.loading import gguf_file_type, load_model, model_sha256
from lmread.backends.hf.streaming import Decoder
from lmread.backends.memory import check_kv_memory
from lmread.errors import ModelError, OptionError

if TYPE_CHECKING:  # pragma: no cover
    from lmread.catalog import ModelCard

DEVICE = BackendOption("device", "--device", str, "Torch device, e.g. cpu or cuda",
                       rule="name a device such as cpu, cuda or cuda:1")
ALLOW_PICKLE = BackendOption("allow_pickle", "--allow-pickle", bool,
                             "Allow loading pickle checkpoints (only for files you trust)")


class HFBackend(Backend):
    """A causal language model run with transformers under lmread's own decoding loop.

    ``source`` is a GGUF file, a local folder (``config.json`` + ``*.safetensors`` + tokenizer) or
    a Hugging Face repo id resolved in the local cache.  ``device`` defaults to CUDA when available
    else CPU; ``dtype`` to float32 on CPU and the model's half type on GPU.  ``n_ctx`` caps the
    context below the model's ``max_position_embeddings``.

    A GGUF file is dequantized to float32 by transformers (slow: minutes for a large vocabulary);
    the conversion is cached as safetensors under ``convert_cache`` (default
    ``<data_dir>/cache/hf-gguf``, keyed by the file's sha256 and the transformers version; ``False``
    turns it off), so later loads take seconds.  The recorded identity stays the GGUF file's.

    Composed of two parts: :func:`~lmread.backends.hf.loading.load_model` gives a
    :class:`~lmread.backends.hf.loading.LoadedModel` (``loaded``), and a
    :class:`~lmread.backends.hf.streaming.Decoder` (``decoder``) streams, batches and scores on it.
    """

    name = "hf"
    options = (THREADS, CONTEXT, DEVICE, ALLOW_PICKLE)
    supports_batch = True
    supports_score = True
    supports_parallel = True
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
        THREADS.check(n_threads)
        CONTEXT.check(n_ctx)
        self.loaded = load_model(source, device=device, allow_pickle=allow_pickle, dtype=dtype, n_threads=n_threads,
                                 n_ctx=n_ctx, revision=revision, convert_cache=convert_cache)
        loaded = self.loaded
        self.model_id = model_id or loaded.hf_id or (loaded.gguf_path.stem if loaded.gguf_path else loaded.folder.name)
        self.model_name = model_name or self.model_id
        self._quantization = quantization
        self.decoder = Decoder(loaded, self.model_id)

    # ---------------------------------------------------------------- the loaded model

    @property
    def model(self) -> Any:
        """The transformers model (None once closed)."""
        return self.loaded.model

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    @property
    def config(self) -> Any:
        return self.loaded.config

    @property
    def device(self) -> Any:
        return self.loaded.device

    @property
    def dtype(self) -> Any:
        return self.loaded.dtype

    @property
    def n_ctx(self) -> int:
        return self.loaded.n_ctx

    @n_ctx.setter
    def n_ctx(self, value: int) -> None:
        self.loaded.n_ctx = value

    @property
    def vocab_size(self) -> int:
        return self.loaded.vocab_size

    @property
    def pieces(self) -> list[bytes]:
        return self.loaded.pieces

    @property
    def eos_ids(self) -> set[int]:
        return self.loaded.eos_ids

    @eos_ids.setter
    def eos_ids(self, value: set[int]) -> None:
        self.loaded.eos_ids = value

    @property
    def n_params(self) -> int:
        return self.loaded.n_params

    @property
    def gguf_path(self) -> Path | None:
        return self.loaded.gguf_path

    @property
    def _torch(self) -> Any:
        return self.loaded.torch

    # ---------------------------------------------------------------- generating (the decoder)

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Token ids of ``text`` (see :meth:`Decoder.tokenize <lmread.backends.hf.streaming.Decoder.tokenize>`)."""
        return self.decoder.tokenize(text, add_special)

    def _prompt_ids(self, prompt: str) -> list[int]:
        return self.decoder._prompt_ids(prompt)

    def _sample(self, logits: Any, options: GenOptions, generator: Any, history: Any) -> Any:
        return self.decoder._sample(logits, options, generator, history)

    def stream(
        self,
        prompt: str,
        options: GenOptions,
        cancel: threading.Event | None = None,
        *,
        ignore_eos: bool = False,
    ) -> Iterator[TokenChunk | StreamEnd]:
        """Generate from ``prompt``: one :class:`TokenChunk` per token, then one :class:`StreamEnd`
        (see :meth:`lmread.backends.hf.streaming.Decoder.stream`)."""
        return self.decoder.stream(prompt, options, cancel, ignore_eos=ignore_eos)

    def stream_batch(
        self,
        prompt: str,
        options_list: Sequence[GenOptions],
        cancel: threading.Event | None = None,
        done: Sequence[threading.Event] | None = None,
        *,
        ignore_eos: bool = False,
    ) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        """Draw ``len(options_list)`` samples of ``prompt`` in one batched forward per step
        (see :meth:`lmread.backends.hf.streaming.Decoder.stream_batch`)."""
        return self.decoder.stream_batch(prompt, options_list, cancel, done, ignore_eos=ignore_eos)

    def prepare_parallel(self, prompts: Sequence[str], options: GenOptions, n_parallel: int) -> dict[str, str]:
        """The prompts refused for ``--parallel`` (as long as the context or longer), with the
        reason; :class:`OptionError` (one line) when ``n_parallel`` rows of the longest prompt and
        ``--max-tokens`` would need more KV cache than the memory available."""
        options.validate()
        if not isinstance(n_parallel, int) or isinstance(n_parallel, bool) or n_parallel < 1:
            raise OptionError(f"invalid option --parallel {n_parallel!r}: must be a whole number >= 1")
        refused: dict[str, str] = {}
        longest = 1
        for text in dict.fromkeys(prompts):
            try:
                longest = max(longest, self.decoder.check_prompt(text))
            except OptionError as exc:
                refused[text] = str(exc)
        # left-padded rows: every row of a batch holds the longest prompt's width plus what it generates
        per_row = min(self.loaded.n_ctx, longest + options.max_tokens)
        check_kv_memory(n_parallel, per_row, self.loaded.kv_bytes_per_token, backend_memory.available_memory())
        return refused

    def stream_parallel(
        self,
        requests: Sequence[tuple[str, GenOptions]],
        n_parallel: int,
        cancel: threading.Event | None = None,
        done: Sequence[threading.Event] | None = None,
        started: Callable[[int], None] | None = None,
    ) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        """One sample per request, ``n_parallel`` left-padded rows per batch (see
        :meth:`lmread.backends.hf.streaming.Decoder.stream_parallel`)."""
        return self.decoder.stream_parallel(requests, n_parallel, cancel, done, started)

    def score(self, text: str, prompt: str = "", top_logprobs: int = 5) -> list[TokenChunk]:
        """Teacher-forced pass over ``text`` after ``prompt``: one chunk per token of ``text``."""
        return self.decoder.score(text, prompt, top_logprobs)

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

        loaded = self.loaded
        if loaded.gguf_path is not None and loaded.sha256 is None:
            loaded.sha256 = model_sha256(loaded.gguf_path)
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
            backend_version=loaded.transformers.__version__,
            library_versions=versions,
            details={"dtype": str(self.dtype).removeprefix("torch."), "device": str(self.device), "n_ctx": self.n_ctx},
        )
        where: tuple[str, ...]
        if loaded.sha256 is not None and loaded.gguf_path is not None:
            ident.sha256 = loaded.sha256
            ident.file, ident.path = loaded.gguf_path.name, str(loaded.gguf_path)
            ident.source, ident.source_is_path = str(loaded.gguf_path), True
            where = ("sha256", "file", "source")
        elif loaded.revision is not None:
            ident.revision = loaded.revision
            ident.source = f"hf:{loaded.hf_id}"
            where = ("revision", "source")
        else:
            ident.file, ident.path = loaded.folder.name, str(loaded.folder)
            ident.source, ident.source_is_path = str(loaded.folder), True
            where = ("file", "source")
        ident.layout = _LAYOUT + where
        return ident

    def close(self) -> None:
        """Drop the model and free its memory."""
        self.loaded.model = None
        self.decoder.model = None
        if self.loaded.device.type == "cuda":
            self.loaded.torch.cuda.empty_cache()


#: the order of the identity's keys in a sample record (then where the model came from)
_LAYOUT = ("id", "name", "n_params", "quantization", "architecture", "backend", "backend_version",
           "library_versions", "dtype", "device", "n_ctx")
