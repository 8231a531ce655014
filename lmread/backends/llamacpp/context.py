"""The loaded model's one llama.cpp context, as the single stream and the scorer use it.

:class:`LlamaContext` holds the context, the batch, the vocabulary's pieces and the view of the
logits, and the low-level steps on them (decode a prompt in batches, decode one token, read a
row of logits, clear the KV cache).  Its ``lock`` and ``epoch`` let one stream or score own the
context at a time: whoever starts bumps the epoch, and a stream that finds the epoch moved ends
as superseded.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Any

import numpy as np

from lmread.errors import BackendError


class LlamaContext:
    """The context of a loaded ``llama_cpp.Llama`` (``llama``), limited to ``n_ctx`` tokens (the
    number the user asked for: llama.cpp may round the context up)."""

    def __init__(self, lib: Any, llama: Any, n_ctx: int, path: Path) -> None:
        self.lib = lib
        self.llama = llama
        self.path = path
        self.ctx = llama.ctx
        self.model = llama.model
        self.vocab = lib.llama_model_get_vocab(self.model)
        self.n_ctx = min(int(lib.llama_n_ctx(self.ctx)), int(n_ctx))
        self.n_batch = int(lib.llama_n_batch(self.ctx))  # Llama caps it at n_ctx
        self.n_vocab = int(lib.llama_vocab_n_tokens(self.vocab))
        self.add_bos = bool(lib.llama_vocab_get_add_bos(self.vocab))
        self.bos_id = int(lib.llama_vocab_bos(self.vocab))
        self.memory = lib.llama_get_memory(self.ctx)
        self.batch = lib.llama_batch_init(self.n_batch, 0, 1)
        self.pieces: dict[int, bytes] = {}
        self._piece_buf = ctypes.create_string_buffer(256)
        self._logits_type = ctypes.POINTER(ctypes.c_float * self.n_vocab)
        self._view_address = 0
        self._view = np.empty(0, dtype=np.float32)
        self.lock = threading.Lock()
        self.epoch = 0
        self.closed = False

    def check_open(self) -> None:
        """:class:`BackendError` once the model was closed."""
        if self.closed:
            raise BackendError(f"the llama.cpp model {self.path.name} was closed; load it again")

    def piece(self, token_id: int) -> bytes:
        """The raw bytes of one token (special tokens rendered as their text)."""
        cached = self.pieces.get(token_id)
        if cached is not None:
            return cached
        lib = self.lib
        buf = self._piece_buf
        n = lib.llama_token_to_piece(self.vocab, token_id, buf, len(buf), 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lib.llama_token_to_piece(self.vocab, token_id, buf, len(buf), 0, True)
        out: bytes = buf.raw[: max(n, 0)]
        self.pieces[token_id] = out
        return out

    def decode(self, ids: list[int], start: int) -> int:
        """Decode ``ids`` at positions ``start...`` with logits for the last row only; returns
        llama_decode's status (0 = ok, 1 = no room in the KV cache)."""
        batch = self.batch
        n = len(ids)
        batch.n_tokens = n
        for i, tid in enumerate(ids):
            batch.token[i] = tid
            batch.pos[i] = start + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == n - 1
        return int(self.lib.llama_decode(self.ctx, batch))

    def decode_one(self, token_id: int, pos: int) -> int:
        """Decode one token at position ``pos``, with its logits; llama_decode's status."""
        batch = self.batch
        batch.n_tokens = 1
        batch.token[0] = token_id
        batch.pos[0] = pos
        batch.n_seq_id[0] = 1
        batch.seq_id[0][0] = 0
        batch.logits[0] = 1
        return int(self.lib.llama_decode(self.ctx, batch))

    def logits(self, index: int) -> np.ndarray:
        """The logits row ``index`` of the last decode, as a float32 view (no copy; the view of
        the last address is kept, as llama.cpp writes each decode's row to the same place)."""
        ptr = self.lib.llama_get_logits_ith(self.ctx, index)
        if not ptr:
            raise BackendError(f"llama.cpp returned no logits for output row {index}")
        address = ctypes.addressof(ptr.contents)
        if address != self._view_address:
            self._view = np.ctypeslib.as_array(ctypes.cast(ptr, self._logits_type).contents)
            self._view_address = address
        return self._view

    def reset(self) -> None:
        """Clear the KV cache."""
        self.lib.llama_memory_clear(self.memory, True)
        self.llama.reset()  # keep llama-cpp-python's own bookkeeping in step

    def prefill(self, ids: list[int]) -> int:
        """Decode a prompt in batches; returns the status of the first failing decode or 0."""
        for start in range(0, len(ids), self.n_batch):
            status = self.decode(ids[start : start + self.n_batch], start)
            if status != 0:
                return status
        return 0

    def free(self) -> None:
        """Free the batch and the model (the caller holds ``lock`` and has marked it closed)."""
        self.lib.llama_batch_free(self.batch)
        self.llama.close()
