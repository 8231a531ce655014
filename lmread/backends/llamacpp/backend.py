"""The llama.cpp backend: GGUF models through llama-cpp-python, streamed token by token.

Generation runs on llama.cpp's low-level API: the prompt is decoded in batches, then each step
asks llama.cpp's own sampler chain for the next token and reads the raw logits of the last
position (``llama_get_logits_ith(ctx, -1)``, viewed as a numpy array without a copy) to compute
the token's log-probability, rank, entropy and top-k alternatives over the *unmodified*
distribution (:func:`lmread.backends.base.distribution_fields`).  The context is created without
``logits_all``: llama.cpp only ever produces the logits of the rows asked for.

Tokens are reported as raw bytes (``llama_token_to_piece`` with special tokens rendered), so a
piece can be a fragment of a multi-byte UTF-8 character; the driver decodes incrementally.

Prompts are raw text continuations: BOS is added when the GGUF metadata asks for it, and
special-token text in the prompt (``<|im_start|>``, ``<start_of_turn>``) is parsed, so a prompt can
carry a chat template.

The backend composes the parts of this package: :mod:`~lmread.backends.llamacpp.loading`
(defaults, header facts), one :class:`~lmread.backends.llamacpp.context.LlamaContext` (the
low-level steps), :mod:`~lmread.backends.llamacpp.stream` (one sample, and how it samples),
:mod:`~lmread.backends.llamacpp.scoring` (teacher-forced scoring) and
:mod:`~lmread.backends.llamacpp.parallel` (many samples in one batch per step).
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmread.backends.base import (
    CONTEXT,
    THREADS,
    Backend,
    GenOptions,
    ModelIdentity,
    StreamEnd,
    TokenChunk,
    check_seed,
)
from lmread.backends.buildcheck import ensure_llama_build
from lmread.backends.llamacpp.context import LlamaContext
from lmread.backends.llamacpp.loading import (
    DEFAULT_CTX,
    GPU_LAYERS,
    LAYOUT,
    default_threads,
    kv_bytes_per_token,
    quiet_llama_log,
)
from lmread.backends.llamacpp.memory import check_parallel_memory
from lmread.backends.llamacpp.parallel import MAX_SEQ, ParallelDecoder, ParallelRequest
from lmread.backends.llamacpp.scoring import rows_in_spans, score_each, score_rows
from lmread.backends.llamacpp.stream import generate
from lmread.catalog.gguf import read_gguf
from lmread.errors import ModelError, OptionError

if TYPE_CHECKING:
    from lmread.catalog import ModelCard




class LlamaCppBackend(Backend):
    """A GGUF model loaded with llama-cpp-python.  One stream at a time (``max_concurrency``), or
    many samples decoded together in one batch per step (``stream_parallel``)."""

    name = "llamacpp"
    options = (THREADS, GPU_LAYERS, CONTEXT)
    supports_score = True
    scores_spans = True
    supports_parallel = True
    max_concurrency = 1

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        card: ModelCard | None = None,
        n_threads: int | None = None,
        n_gpu_layers: int | None = 0,
        n_ctx: int | None = None,
        seed: int | None = None,
        n_batch: int = 512,
    ) -> None:
        self.path = Path(path).expanduser()
        self.card = card
        header = read_gguf(self.path)  # ModelError: missing, not GGUF, corrupt header
        self.architecture: str | None = header.architecture
        self.file_quantization: str | None = header.quantization
        n_ctx_train = header.arch_value("context_length")
        self.kv_bytes_per_token = kv_bytes_per_token(header)
        CONTEXT.check(n_ctx)
        THREADS.check(n_threads)
        GPU_LAYERS.check(n_gpu_layers)
        check_seed(seed)
        self.n_threads = n_threads or default_threads()
        self.n_gpu_layers = int(n_gpu_layers or 0)  # -1: all layers
        self.default_seed = seed
        self.last_seed: int | None = None
        self._sha256: str | None = None

        try:
            import llama_cpp
        except ImportError:
            raise ModelError(
                "the llamacpp backend needs llama-cpp-python; install it with: pip install 'lmread[llamacpp]'"
            ) from None

        # a build with instructions this CPU cannot run dies with SIGILL: find out in a child first
        ensure_llama_build(self.path)
        self._lib = llama_cpp
        kwargs: dict[str, Any] = dict(
            model_path=str(self.path),
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            n_gpu_layers=self.n_gpu_layers,
            n_batch=n_batch,
            logits_all=False,
            verbose=False,
        )
        if seed is not None:
            kwargs["seed"] = seed
        if n_ctx is None:  # default: the training context, at most DEFAULT_CTX
            n_ctx = DEFAULT_CTX
            if isinstance(n_ctx_train, int) and 0 < n_ctx_train < DEFAULT_CTX:
                n_ctx = n_ctx_train
        kwargs["n_ctx"] = n_ctx
        try:
            with quiet_llama_log(llama_cpp):
                self._llama = llama_cpp.Llama(**kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise self._load_error(exc) from None
        self._context = LlamaContext(llama_cpp, self._llama, n_ctx, self.path)
        context = self._context
        # the handles the judge and the benchmarks drive the same loaded model with
        self._ctx = context.ctx
        self._model = context.model
        self._vocab = context.vocab
        self.n_ctx = context.n_ctx
        self.n_batch = context.n_batch
        self.n_vocab = context.n_vocab
        self.add_bos = context.add_bos
        self.bos_id = context.bos_id
        self._parallel: ParallelDecoder | None = None

    # ---------------------------------------------------------------- construction helpers

    @classmethod
    def from_card(
        cls,
        card: ModelCard | str | os.PathLike[str],
        *,
        n_threads: int | None = None,
        n_gpu_layers: int | None = 0,
        n_ctx: int | None = None,
        seed: int | None = None,
        **_ignored: Any,
    ) -> LlamaCppBackend:
        """Load the GGUF file of a catalogue card (or a plain path)."""
        if isinstance(card, (str, os.PathLike)):
            return cls(card, n_threads=n_threads, n_gpu_layers=n_gpu_layers, n_ctx=n_ctx, seed=seed)
        resolve = getattr(card, "resolve_path", None)
        if resolve is not None:
            path = resolve()
        elif "path" in card.source:
            path = card.source["path"]
        else:
            raise ModelError(f"model {card.id!r} has no local GGUF file; give its card a source path")
        return cls(path, card=card, n_threads=n_threads, n_gpu_layers=n_gpu_layers, n_ctx=n_ctx, seed=seed)

    def _load_error(self, exc: Exception) -> ModelError:
        import llama_cpp

        arch = self.architecture or "unknown"
        return ModelError(
            f"llama.cpp (llama-cpp-python {llama_cpp.__version__}) cannot load {self.path}: "
            f"architecture {arch!r} is unsupported or the file is corrupt; "
            "upgrade llama-cpp-python or use another backend"
        )

    # ---------------------------------------------------------------- identity

    def identity(self) -> ModelIdentity:
        """Model identity for sample records (sha256 of the file is computed once, lazily)."""
        import llama_cpp

        meta = self._llama.metadata
        card = self.card
        quant = self.file_quantization or (card.quantization if card is not None else None)
        return ModelIdentity(
            id=card.id if card is not None else self.path.stem,
            name=card.name if card is not None else meta.get("general.name", self.path.stem),
            family=card.family if card is not None else self.architecture,
            file=self.path.name,
            path=str(self.path),
            sha256=self.sha256(),
            n_params=int(llama_cpp.llama_model_n_params(self._model)),
            quantization=quant,
            architecture=self.architecture or (card.architecture if card is not None else None),
            backend=self.name,
            backend_version=llama_cpp.__version__,
            library_versions={"llama_cpp_python": llama_cpp.__version__, "numpy": np.__version__},
            details={"n_ctx": self.n_ctx, "n_vocab": self.n_vocab},
            layout=LAYOUT,
        )

    def sha256(self) -> str:
        """The SHA-256 of the model file (cached by the catalogue per path, size and mtime)."""
        if self._sha256 is None:
            from lmread.catalog import file_sha256
            from lmread.config import load_settings

            settings = getattr(self.card, "settings", None) or load_settings()  # a bare path comes without settings
            self._sha256 = file_sha256(self.path, settings)
        return self._sha256

    # ---------------------------------------------------------------- tokens

    def tokenize(self, text: str, *, as_prompt: bool = True) -> list[int]:
        """Token ids of ``text``: as a prompt (BOS when the model wants one, special-token text
        such as ``<|im_start|>`` parsed, so chat templates work) or, with ``as_prompt=False``,
        as a bare continuation (no BOS, special-token text kept as plain text)."""
        self._check_open()
        return list(self._llama.tokenize(text.encode("utf-8"), add_bos=as_prompt and self.add_bos, special=as_prompt))

    def piece(self, token_id: int) -> bytes:
        """The raw bytes of one token (special tokens rendered as their text)."""
        return self._context.piece(token_id)

    def _prompt_ids(self, prompt: str) -> list[int]:
        ids = self.tokenize(prompt, as_prompt=True)
        if not ids:
            if self.bos_id < 0:
                raise OptionError("the prompt is empty and this model has no BOS token; give a prompt")
            ids = [self.bos_id]
        return ids

    # ---------------------------------------------------------------- low-level decoding

    def _logits(self, index: int) -> np.ndarray:
        """The logits row ``index`` of the last decode (:meth:`LlamaContext.logits`)."""
        return self._context.logits(index)

    def _reset(self) -> None:
        self._context.reset()

    def _prefill(self, ids: list[int]) -> int:
        """Decode a prompt in batches; the status of the first failing decode or 0."""
        return self._context.prefill(ids)

    # ---------------------------------------------------------------- protocol

    def stream(
        self,
        prompt: str,
        options: GenOptions,
        cancel: threading.Event | None = None,
        *,
        ignore_eos: bool = False,
    ) -> Iterator[TokenChunk | StreamEnd]:
        """Generate from ``prompt`` (raw text continuation); see the module docstring.

        Errors in the prompt or options are raised when the stream is created, before any
        token is generated.  ``ignore_eos`` (benchmarks) keeps going past end-of-generation
        tokens, yielding them like any other token.
        """
        self._check_open()
        options.validate()
        ids = self._prompt_ids(prompt)
        if len(ids) > self.n_ctx:
            raise OptionError(
                f"prompt has {len(ids)} tokens, the context holds {self.n_ctx}; shorten it or raise --ctx"
            )
        seed = self._seed(options)
        self.last_seed = seed
        return generate(self._context, ids, options, seed, cancel, ignore_eos)

    def _seed(self, options: GenOptions) -> int:
        seed = options.seed if options.seed is not None else self.default_seed
        if seed is None:
            seed = secrets.randbits(32) & 0xFFFFFFFE  # 0xFFFFFFFF means "random" to llama.cpp
        return seed

    # ---------------------------------------------------------------- parallel decoding

    def prepare_parallel(self, prompts: Sequence[str], options: GenOptions, n_parallel: int) -> dict[str, str]:
        """Make (or keep) a context for ``n_parallel`` sequences, each holding the longest
        accepted prompt plus ``options.max_tokens`` (at most ``n_ctx``, the context of one
        sample); return the prompts refused (longer than ``n_ctx``) with the reason.

        :class:`OptionError` before anything is decoded when ``n_parallel`` is over llama.cpp's
        limit or the ``n_parallel`` KV caches would not fit in the memory available now.
        """
        self._check_open()
        options.validate()
        if not isinstance(n_parallel, int) or not 1 <= n_parallel <= MAX_SEQ:
            raise OptionError(f"invalid option --parallel {n_parallel!r}: must be a whole number in [1, {MAX_SEQ}]")
        refused: dict[str, str] = {}
        longest = 1
        for text in dict.fromkeys(prompts):
            try:
                n = len(self._prompt_ids(text))
            except OptionError as exc:
                refused[text] = str(exc)
                continue
            if n > self.n_ctx:
                refused[text] = f"prompt has {n} tokens, the context holds {self.n_ctx}; shorten it or raise --ctx"
            else:
                longest = max(longest, n)
        n_ctx_seq = min(self.n_ctx, longest + options.max_tokens)
        self._parallel_decoder(n_parallel, n_ctx_seq)
        return refused

    def _parallel_decoder(self, n_parallel: int, n_ctx_seq: int) -> ParallelDecoder:
        current = self._parallel
        if current is not None and current.n_seq == n_parallel and current.n_ctx_seq >= n_ctx_seq:
            return current
        check_parallel_memory(n_parallel, n_ctx_seq, self.kv_bytes_per_token)
        if current is not None:
            current.close()
            self._parallel = None
        with quiet_llama_log(self._lib):
            self._parallel = ParallelDecoder(self._lib, self._model, self._vocab, self._llama.context_params,
                                             n_seq=n_parallel, n_ctx_seq=n_ctx_seq, piece=self.piece)
        return self._parallel

    def stream_parallel(
        self,
        requests: Sequence[tuple[str, GenOptions]],
        n_parallel: int,
        cancel: threading.Event | None = None,
        done: Sequence[threading.Event] | None = None,
        started: Callable[[int], None] | None = None,
        *,
        ignore_eos: bool = False,
    ) -> Iterator[tuple[int, TokenChunk | StreamEnd]]:
        """Draw one sample per ``(prompt, options)`` request, ``n_parallel`` sequences decoded in
        one batch per step (:class:`~lmread.backends.llamacpp.parallel.ParallelDecoder`); see
        :meth:`lmread.backends.base.Backend.stream_parallel`.  Prompts and options are checked
        (:class:`OptionError`) before anything is decoded; the context is made by
        :meth:`prepare_parallel` unless a large enough one is there."""
        self._check_open()
        if not requests:
            return iter(())
        for _, opts in requests:
            opts.validate()
        texts = [text for text, _ in requests]
        longest_max = max(opts.max_tokens for _, opts in requests)
        refused = self.prepare_parallel(texts, replace(requests[0][1], max_tokens=longest_max), n_parallel)
        if refused:
            text, why = next(iter(refused.items()))
            raise OptionError(why)
        assert self._parallel is not None
        items = [ParallelRequest(self._prompt_ids(text), opts, self._seed(opts)) for text, opts in requests]
        return self._parallel.run(items, cancel, done, started, ignore_eos=ignore_eos)

    def score(
        self,
        text: str,
        prompt: str = "",
        top_logprobs: int = 5,
        *,
        spans: Sequence[tuple[int, int]] | None = None,
    ) -> list[TokenChunk]:
        """Teacher-forced pass: one chunk per token of ``text`` (tokenized on its own, see the
        module docstring), each with the distribution it was predicted from after ``prompt``.

        With ``spans`` (character ranges ``[start, end)`` of ``text``) only the tokens holding a
        character of a span get a distribution; the others come with ``logprob=None``.  That pass
        decodes the text in batches with logits for those rows only, many times faster for a
        long text read at a few places (batched rows differ from one-by-one decoding by about
        0.02 nats on average on quantized models, as llama.cpp picks other matmul kernels).
        """
        self._check_open()
        context = self._prompt_ids(prompt)
        target = self.tokenize(text, as_prompt=False)
        if not target:
            return []
        ids = context + target
        if len(ids) > self.n_ctx:
            raise OptionError(
                f"prompt and text have {len(ids)} tokens, the context holds {self.n_ctx}; "
                "shorten them or raise --ctx"
            )
        if spans is not None:
            rows = rows_in_spans([self.piece(t) for t in target], spans)
            return score_rows(self._context, context, target, rows, top_logprobs)
        return score_each(self._context, context, target, top_logprobs)

    def close(self) -> None:
        """Free the model, the context and the batch."""
        context = getattr(self, "_context", None)
        if context is None or context.closed:
            return
        context.closed = True
        with context.lock:
            context.epoch += 1
            if self._parallel is not None:
                self._parallel.close()
                self._parallel = None
            context.free()

    def _check_open(self) -> None:
        self._context.check_open()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
