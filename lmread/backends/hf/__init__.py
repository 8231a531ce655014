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

- :mod:`lmread.backends.hf.backend`: :class:`HFBackend`, its options and identity;
- :mod:`lmread.backends.hf.loading`: imports, folders, GGUF files and the conversion cache;
- :mod:`lmread.backends.hf.tokens`: the byte table;
- :mod:`lmread.backends.hf.streaming`: the decoding loop, batches and scoring.
"""

from lmread.backends.hf.backend import ALLOW_PICKLE, DEVICE, HFBackend
from lmread.backends.hf.loading import END_OF_TURN, PICKLE_SUFFIXES, TOKENIZER_FILES
from lmread.backends.hf.loading import looks_like_repo_id as _looks_like_repo_id
from lmread.backends.hf.loading import snapshot_of as _snapshot_of
from lmread.backends.hf.tokens import token_bytes_table

__all__ = [
    "ALLOW_PICKLE", "DEVICE", "END_OF_TURN", "PICKLE_SUFFIXES", "TOKENIZER_FILES", "HFBackend",
    "_looks_like_repo_id", "_snapshot_of", "token_bytes_table",
]
