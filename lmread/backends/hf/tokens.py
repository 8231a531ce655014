"""Token bytes for the transformers backend: the raw bytes of every token id, built once per vocabulary.

Byte-level BPE tokens go through GPT-2's byte decoder, sentencepiece pieces turn ``▁`` into a
space and ``<0xNN>`` byte-fallback tokens into that byte, added tokens are their content; so the
pieces of a stream concatenate to exactly the generated text.
"""

from __future__ import annotations

import json
import re
from typing import Any

_BYTE_TOKEN_RE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


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
