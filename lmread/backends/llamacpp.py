"""The llama.cpp backend: GGUF models through llama-cpp-python, streamed token by token.

Generation runs on llama.cpp's low-level API: the prompt is decoded in batches, then each step
asks llama.cpp's own sampler chain for the next token and reads the raw logits of the last
position (``llama_get_logits_ith(ctx, -1)``, viewed as a numpy array without a copy) to compute
the token's log-probability, rank, entropy and top-k alternatives over the *unmodified*
distribution (:func:`lmread.backends.base.distribution_fields`).  The context is created without
``logits_all``: llama.cpp only ever produces the logits of the rows asked for.

Tokens are reported as raw bytes (``llama_token_to_piece`` with special tokens rendered), so a
piece can be a fragment of a multi-byte UTF-8 character; the driver decodes incrementally.

Sampling: pure sampling (temperature 1, no top-k/top-p/min-p, no repetition penalty) draws from
the very softmax the distribution fields are computed from (:func:`~lmread.backends.base.
sample_unmodified`, seeded numpy PCG64), and greedy (temperature 0) takes the first argmax: both
are cheaper than llama.cpp's sampler on a 262k vocabulary.  Any other setting goes through a
seeded llama.cpp sampler chain in the order of :func:`lmread.backends.base.sample_token` and
transformers: repetition penalty (the prompt counts), temperature, top-k, top-p, min-p, draw.
The same seed, prompt and options give the same tokens.

Prompts are raw text continuations: BOS is added when the GGUF metadata asks for it, and
special-token text in the prompt (``<|im_start|>``, ``<start_of_turn>``) is parsed, so a prompt can
carry a chat template.

``score(text, prompt)`` tokenizes ``prompt`` as a prompt (with BOS when the model wants one) and
``text`` on its own as a continuation (no BOS, no special-token parsing) and appends the two
token lists: the scored ids are exactly ``tokenize(text)`` of the model's tokenizer, and their
pieces concatenate to ``text``'s bytes.  When the prompt gives no tokens at all, the model's BOS
token is used as the context, so every text token has a distribution.  The text is evaluated one
token per decode, exactly like generation, so scoring a generated text gives back the logprobs it
was streamed with.
"""

from __future__ import annotations

import bisect
import codecs
import contextlib
import ctypes
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
    BackendOption,
    GenOptions,
    ModelIdentity,
    StreamEnd,
    TokenChunk,
    check_seed,
    distribution_fields,
    sample_unmodified,
)
from lmread.backends.buildcheck import ensure_llama_build
from lmread.backends.llamacpp_parallel import (
    MAX_SEQ,
    ParallelDecoder,
    ParallelRequest,
    padded_ctx,
    sampler_chain,
    sampling_mode,
)
from lmread.catalog.gguf import read_gguf
from lmread.errors import BackendError, ModelError, OptionError

if TYPE_CHECKING:
    from lmread.catalog import ModelCard

#: Context size when neither the caller nor a smaller training context says otherwise.
DEFAULT_CTX = 4096

GPU_LAYERS = BackendOption("n_gpu_layers", "--gpu-layers", int, "Layers offloaded to the GPU, -1 = all",
                           minimum=-1, rule="must be >= 0, or -1 for all layers")


def default_threads() -> int:
    """The number of CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _quiet_llama_log(llama_cpp: Any) -> Iterator[None]:
    """Silence llama.cpp's own log while a model loads (``verbose=False`` still lets warnings
    such as the SWA-cache note through); lmread reports failures itself, on one line."""

    @llama_cpp.llama_log_callback
    def drop(level: int, text: bytes, user_data: Any) -> None:
        return None

    llama_cpp.llama_log_set(drop, ctypes.c_void_p(0))
    try:
        yield
    finally:
        restore = getattr(getattr(llama_cpp, "_logger", None), "llama_log_callback", None)
        llama_cpp.llama_log_set(restore, ctypes.c_void_p(0))


# --------------------------------------------------------------------------------------------
# The backend


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
        self.kv_bytes_per_token = _kv_bytes_per_token(header)
        CONTEXT.check(n_ctx)
        THREADS.check(n_threads)
        GPU_LAYERS.check(n_gpu_layers)
        check_seed(seed)
        self.n_threads = n_threads or default_threads()
        self.n_gpu_layers = int(n_gpu_layers or 0)  # -1: all layers
        self.default_seed = seed
        self.last_seed: int | None = None
        self._sha256: str | None = None
        self._lock = threading.Lock()
        self._epoch = 0

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
            with _quiet_llama_log(llama_cpp):
                self._llama = llama_cpp.Llama(**kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise self._load_error(exc) from None
        self._ctx = self._llama.ctx
        self._model = self._llama.model
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        # llama.cpp may round the context up (e.g. 64 -> 256); the limit is what the user asked for
        self.n_ctx = min(int(llama_cpp.llama_n_ctx(self._ctx)), int(n_ctx))
        self.n_batch = int(llama_cpp.llama_n_batch(self._ctx))  # Llama caps it at n_ctx
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self.bos_id = int(llama_cpp.llama_vocab_bos(self._vocab))
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self._pieces: dict[int, bytes] = {}
        self._piece_buf = ctypes.create_string_buffer(256)
        self._logits_type = ctypes.POINTER(ctypes.c_float * self.n_vocab)
        self._parallel: ParallelDecoder | None = None
        self._view_address = 0
        self._view = np.empty(0, dtype=np.float32)
        self._closed = False

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
            layout=_LAYOUT,
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
        cached = self._pieces.get(token_id)
        if cached is not None:
            return cached
        lib = self._lib
        buf = self._piece_buf
        n = lib.llama_token_to_piece(self._vocab, token_id, buf, len(buf), 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lib.llama_token_to_piece(self._vocab, token_id, buf, len(buf), 0, True)
        out = buf.raw[: max(n, 0)]
        self._pieces[token_id] = out
        return out

    def _prompt_ids(self, prompt: str) -> list[int]:
        ids = self.tokenize(prompt, as_prompt=True)
        if not ids:
            if self.bos_id < 0:
                raise OptionError("the prompt is empty and this model has no BOS token; give a prompt")
            ids = [self.bos_id]
        return ids

    # ---------------------------------------------------------------- low-level decoding

    def _decode(self, ids: list[int], start: int) -> int:
        """Decode ``ids`` at positions ``start...`` with logits for the last row only; returns
        llama_decode's status (0 = ok, 1 = no room in the KV cache)."""
        batch = self._batch
        n = len(ids)
        batch.n_tokens = n
        for i, tid in enumerate(ids):
            batch.token[i] = tid
            batch.pos[i] = start + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == n - 1
        return int(self._lib.llama_decode(self._ctx, batch))

    def _decode_one(self, token_id: int, pos: int) -> int:
        batch = self._batch
        batch.n_tokens = 1
        batch.token[0] = token_id
        batch.pos[0] = pos
        batch.n_seq_id[0] = 1
        batch.seq_id[0][0] = 0
        batch.logits[0] = 1
        return int(self._lib.llama_decode(self._ctx, batch))

    def _logits(self, index: int) -> np.ndarray:
        """The logits row ``index`` of the last decode, as a float32 view (no copy; the view of
        the last address is kept, as llama.cpp writes each decode's row to the same place)."""
        ptr = self._lib.llama_get_logits_ith(self._ctx, index)
        if not ptr:
            raise BackendError(f"llama.cpp returned no logits for output row {index}")
        address = ctypes.addressof(ptr.contents)
        if address != self._view_address:
            self._view = np.ctypeslib.as_array(ctypes.cast(ptr, self._logits_type).contents)
            self._view_address = address
        return self._view

    def _reset(self) -> None:
        self._lib.llama_memory_clear(self._memory, True)
        self._llama.reset()  # keep llama-cpp-python's own bookkeeping in step

    def _prefill(self, ids: list[int]) -> int:
        """Decode a prompt in batches; returns the status of the first failing decode or 0."""
        for start in range(0, len(ids), self.n_batch):
            status = self._decode(ids[start : start + self.n_batch], start)
            if status != 0:
                return status
        return 0

    def _sampler(self, options: GenOptions, seed: int) -> Any:
        return sampler_chain(self._lib, self.n_vocab, options, seed)

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
        return self._generate(ids, options, seed, cancel, ignore_eos)

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
        with _quiet_llama_log(self._lib):
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
        one batch per step (:class:`~lmread.backends.llamacpp_parallel.ParallelDecoder`); see
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

    def _generate(
        self,
        ids: list[int],
        options: GenOptions,
        seed: int,
        cancel: threading.Event | None,
        ignore_eos: bool = False,
    ) -> Iterator[TokenChunk | StreamEnd]:
        lib = self._lib
        ctx = self._ctx
        vocab = self._vocab
        k = options.top_logprobs
        n_ctx = self.n_ctx
        piece = self.piece
        pieces = self._pieces
        lock = self._lock
        superseded = StreamEnd("error", "another stream or score started on this model")
        if cancel is not None and cancel.is_set():
            yield StreamEnd("cancelled")
            return
        with lock:
            self._check_open()
            self._epoch += 1
            epoch = self._epoch
            self._reset()
            status = self._prefill(ids)
        if status != 0:
            yield StreamEnd("error", f"llama_decode failed on the prompt (status {status})")
            return
        # Pure sampling (temperature 1, nothing truncated or penalised) draws from the softmax
        # the distribution fields need anyway, and greedy takes its argmax: both skip llama.cpp's
        # sampler, which would build and normalise the whole vocabulary a second time.  Other
        # settings go through llama.cpp's seeded sampler chain.
        pure, greedy = sampling_mode(options)
        chain = None if pure or greedy else self._sampler(options, seed)
        draw = np.random.Generator(np.random.PCG64(seed)).random
        try:
            if chain is not None:
                for tid in ids:  # the prompt counts for the repetition penalty, as in transformers
                    lib.llama_sampler_accept(chain, tid)
            n_past = len(ids)
            while True:
                if cancel is not None and cancel.is_set():
                    yield StreamEnd("cancelled")
                    return
                with lock:
                    if self._epoch != epoch:
                        end: StreamEnd | None = superseded
                    else:
                        end = None
                        logits = self._logits(-1)
                        if pure:
                            tid, logprob, rank, entropy, top_ids, top_lps = sample_unmodified(logits, k, draw())
                        else:
                            if greedy:
                                tid = int(logits.argmax())
                            else:
                                tid = lib.llama_sampler_sample(chain, ctx, -1)
                            logprob, rank, entropy, top_ids, top_lps = distribution_fields(logits, tid, k)
                        if not ignore_eos and lib.llama_vocab_is_eog(vocab, tid):
                            end = StreamEnd("eos")
                if end is not None:
                    yield end
                    return
                top = top_ids.tolist()
                text = pieces.get(tid) or piece(tid)
                yield TokenChunk(
                    id=tid,
                    piece=text,
                    logprob=logprob,
                    rank=rank,
                    entropy=entropy,
                    top_ids=top,
                    top_logprobs=top_lps.tolist(),
                    top_pieces=[pieces.get(t) or piece(t) for t in top],
                )
                # the driver sets ``cancel`` when the sample is done (stop string, max_tokens)
                if cancel is not None and cancel.is_set():
                    yield StreamEnd("cancelled")
                    return
                if n_past >= n_ctx:
                    yield StreamEnd("context")
                    return
                with lock:
                    status = self._decode_one(tid, n_past) if self._epoch == epoch else -100
                if status == -100:
                    yield superseded
                    return
                if status == 1:  # no room left in the KV cache
                    yield StreamEnd("context")
                    return
                if status != 0:
                    yield StreamEnd("error", f"llama_decode failed (status {status})")
                    return
                n_past += 1
        finally:
            if chain is not None:
                lib.llama_sampler_free(chain)

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
            return self._score_rows(context, target, _rows_in_spans([self.piece(t) for t in target], spans),
                                    top_logprobs)
        chunks: list[TokenChunk] = []
        with self._lock:
            self._epoch += 1
            self._reset()
            # The same path as generation: the prompt in batches, then one token per decode, so a
            # generated text scores to the logprobs it was streamed with.  (Batched rows differ
            # by up to ~0.2 nats on quantized models: llama.cpp picks other matmul kernels.)
            status = self._prefill(context)
            pos = len(context)
            for i, tid in enumerate(target):
                if status != 0:
                    break
                lp, rank, ent, top_ids, top_lps = distribution_fields(self._logits(-1), tid, top_logprobs)
                top = top_ids.tolist()
                chunks.append(TokenChunk(
                    id=tid, piece=self.piece(tid), logprob=lp, rank=rank, entropy=ent,
                    top_ids=top, top_logprobs=top_lps.tolist(), top_pieces=[self.piece(t) for t in top],
                ))
                if i + 1 < len(target):
                    status = self._decode_one(tid, pos)
                    pos += 1
        if status != 0:
            raise BackendError(f"llama_decode failed while scoring (status {status})")
        return chunks

    def _score_rows(self, context: list[int], target: list[int], rows: set[int], k: int) -> list[TokenChunk]:
        """Score ``target`` after ``context`` in batches, with distributions for ``rows`` only."""
        ids = context + target
        first = len(context)
        wanted = {first + r - 1 for r in rows}  # the input position whose logits predict text token r
        found: dict[int, tuple[float, int, float, list[int], list[float]]] = {}
        lib, batch = self._lib, self._batch
        status = 0
        with self._lock:
            self._epoch += 1
            self._reset()
            for start in range(0, len(ids) - 1, self.n_batch):
                part = ids[start : min(start + self.n_batch, len(ids) - 1)]
                batch.n_tokens = len(part)
                for i, tid in enumerate(part):
                    batch.token[i] = tid
                    batch.pos[i] = start + i
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = 0
                    batch.logits[i] = (start + i) in wanted
                status = int(lib.llama_decode(self._ctx, batch))
                if status != 0:
                    break
                for i in range(len(part)):
                    if start + i in wanted:
                        lp, rank, ent, top_ids, top_lps = distribution_fields(self._logits(i), ids[start + i + 1], k)
                        found[start + i + 1 - first] = (lp, rank, ent, top_ids.tolist(), top_lps.tolist())
        if status != 0:
            raise BackendError(f"llama_decode failed while scoring (status {status})")
        chunks: list[TokenChunk] = []
        for r, tid in enumerate(target):
            if r in found:
                lp, rank, ent, top, top_lp = found[r]
                chunks.append(TokenChunk(id=tid, piece=self.piece(tid), logprob=lp, rank=rank, entropy=ent, top_ids=top,
                                         top_logprobs=top_lp, top_pieces=[self.piece(t) for t in top]))
            else:
                chunks.append(TokenChunk(id=tid, piece=self.piece(tid)))
        return chunks

    def close(self) -> None:
        """Free the model, the context and the batch."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        with self._lock:
            self._epoch += 1
            if self._parallel is not None:
                self._parallel.close()
                self._parallel = None
            self._lib.llama_batch_free(self._batch)
            self._llama.close()

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError(f"the llama.cpp model {self.path.name} was closed; load it again")

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


def _kv_bytes_per_token(header: Any) -> int | None:
    """Bytes of KV cache one token takes (f16 keys and values in every layer), from the GGUF
    metadata; None when the file does not say."""

    def whole(value: Any) -> int | None:
        if isinstance(value, list):  # per-layer counts: the largest
            value = max(value) if value else None
        return int(value) if isinstance(value, int) and value > 0 else None

    layers = whole(header.arch_value("block_count"))
    heads = whole(header.arch_value("attention.head_count"))
    kv_heads = whole(header.arch_value("attention.head_count_kv")) or heads
    embd = whole(header.arch_value("embedding_length"))
    head_dim = embd // heads if embd and heads else None
    k_len = whole(header.arch_value("attention.key_length")) or head_dim
    v_len = whole(header.arch_value("attention.value_length")) or head_dim
    if not (layers and kv_heads and k_len and v_len):
        return None
    return 2 * layers * kv_heads * (k_len + v_len)


def available_memory() -> int | None:
    """Bytes of memory available to new allocations now (Linux ``MemAvailable``; else the free
    physical pages); None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def check_parallel_memory(n_parallel: int, n_ctx_seq: int, kv_bytes_per_token: int | None,
                          available: int | None = None) -> None:
    """:class:`OptionError` (one line) when ``n_parallel`` KV caches of ``n_ctx_seq`` tokens
    (as llama.cpp pads them) would take more than the memory available (``available``, default
    :func:`available_memory`)."""
    if kv_bytes_per_token is None:
        return
    cells = padded_ctx(n_ctx_seq) * n_parallel
    need = cells * kv_bytes_per_token
    avail = available_memory() if available is None else available
    if avail is not None and need > avail:
        fit = max(avail // (padded_ctx(n_ctx_seq) * kv_bytes_per_token), 0)
        raise OptionError(
            f"--parallel {n_parallel} needs {n_parallel} x {padded_ctx(n_ctx_seq)} tokens of KV cache "
            f"({need / 2**30:.1f} GiB), more than the {avail / 2**30:.1f} GiB of memory available; "
            f"use --parallel {fit} or less, or lower --max-tokens" if fit >= 1 else
            f"--parallel {n_parallel} needs {n_parallel} x {padded_ctx(n_ctx_seq)} tokens of KV cache "
            f"({need / 2**30:.1f} GiB), more than the {avail / 2**30:.1f} GiB of memory available; "
            "lower --max-tokens"
        )


#: the order of the identity's keys in a sample record
_LAYOUT = ("id", "name", "family", "file", "path", "sha256", "n_params", "quantization", "architecture",
           "n_ctx", "n_vocab", "backend", "backend_version", "library_versions")

def _rows_in_spans(pieces: Sequence[bytes], spans: Sequence[tuple[int, int]]) -> set[int]:
    """Indexes of the tokens holding a byte of a character in one of ``spans`` (character ranges
    of the text the ``pieces`` spell; a character belongs to the token holding its last byte, and
    a token that only starts a character holds a byte of it too)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    offsets = [0]
    for p in pieces:
        offsets.append(offsets[-1] + len(decoder.decode(p)))
    offsets[-1] += len(decoder.decode(b"", final=True))
    rows: set[int] = set()
    for a, b in spans:
        lo = bisect.bisect_right(offsets, a) - 1
        while lo > 0 and offsets[lo] == a and offsets[lo - 1] == a:
            lo -= 1
        j = max(lo, 0)
        while j < len(pieces) and offsets[j] < b:
            rows.add(j)
            j += 1
    return rows
