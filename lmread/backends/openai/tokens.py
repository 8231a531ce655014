"""Tokens as servers send them, turned into :class:`~lmread.backends.base.TokenChunk` values, once.

Pure functions over the servers' JSON, shared by both protocols (:mod:`.completions`,
:mod:`.native`) and the scorer:

* :func:`token_bytes` - the bytes of a token string (``"bytes:\\xe6\\x97"`` spelled out);
* :func:`string_token` / :func:`object_token` - a token given as a string (parallel-array
  logprobs) or as an object (``{"id", "token", "bytes", "logprob"}``);
* :func:`clean_logprob` - a server's log-probability as a float (``-inf`` allowed; llama-server
  writes log(0) as the lowest float, read as ``-inf``), ``None`` when missing or malformed;
* :func:`compute_rank` and :func:`build_chunk` - the chunk of a chosen token and its listed
  alternatives (best ``k`` first; the rank only where the list lets it be known).
"""

from __future__ import annotations

import math
import re
from typing import Any

from lmread.backends.base import TokenChunk

_BYTES_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")
_TOKEN_ID = re.compile(r"token_id:(\d+)")

#: llama-server writes log(0) as the lowest float (JSON has no -inf); at or below this, -inf
LOWEST_FLOAT = -3.0e38

#: an alternative as the parsers collect it: (id or -1, bytes, logprob)
Alternative = tuple[int, bytes, float]


def token_bytes(token: str) -> tuple[bytes, bool]:
    """The bytes of a token string and whether they were spelled out explicitly.

    ``"bytes:\\xe6\\x97"`` (a partial UTF-8 character spelled with escapes, as OpenAI and vLLM
    send it) gives ``(b"\\xe6\\x97", True)``; any other string gives its UTF-8 encoding and
    ``False`` (it may be lossy: a partial character sent as U+FFFD).
    """
    if token.startswith("bytes:"):
        rest = token[6:]
        out = bytearray()
        pos = 0
        for m in _BYTES_ESCAPE.finditer(rest):
            out += rest[pos : m.start()].encode("utf-8")
            out.append(int(m.group(1), 16))
            pos = m.end()
        out += rest[pos:].encode("utf-8")
        return bytes(out), True
    return token.encode("utf-8"), False


def token_id(value: Any) -> int:
    """A token id as sent (a whole number >= 0), else ``-1`` (unknown)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else -1


def clean_logprob(value: Any) -> float | None:
    """A log-probability as float (``-inf`` allowed, the lowest float read as ``-inf``), or
    ``None`` for missing or malformed values (NaN, ``+inf``, not a number)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(out) or out == math.inf:
        return None
    return -math.inf if out <= LOWEST_FLOAT else out


def string_token(tok: str) -> tuple[int, bytes, bool]:
    """A token string -> ``(id, piece, explicit_bytes)``; ``token_id:N`` gives the id only."""
    m = _TOKEN_ID.fullmatch(tok)
    if m:
        return int(m.group(1)), b"", False
    piece, explicit = token_bytes(tok)
    return -1, piece, explicit


def object_token(item: dict[str, Any]) -> tuple[int, bytes | None, bool]:
    """A token object (``{"id", "token", "bytes"}``) -> ``(id, piece, explicit_bytes)``; the
    piece is ``None`` when the object gives neither bytes nor a token string."""
    tid = token_id(item.get("id"))
    raw = item.get("bytes")
    if isinstance(raw, list) and all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in raw):
        return tid, bytes(raw), True
    tok = item.get("token")
    if isinstance(tok, str):
        sid, piece, explicit = string_token(tok)
        return (tid if tid >= 0 else sid), piece, explicit
    return tid, None, False


def object_alternatives(entries: Any) -> list[Alternative]:
    """The listed alternatives of a token object (``top_logprobs: [{"id", "token", "bytes",
    "logprob"}]``), those with a usable log-probability and piece."""
    out: list[Alternative] = []
    for alt in entries if isinstance(entries, list) else []:
        if not isinstance(alt, dict):
            continue
        value = clean_logprob(alt.get("logprob"))
        aid, apiece, _ = object_token(alt)
        if value is not None and apiece is not None:
            out.append((aid, apiece, value))
    return out


def compute_rank(chosen_logprob: float | None, chosen_listed: bool, other_logprobs: list[float]) -> int | None:
    """Rank of the chosen token (1 = most likely) from the listed top-k alternatives.

    ``other_logprobs`` are the listed alternatives other than the chosen token;
    ``chosen_listed`` says whether the chosen token itself is among the listed top k.  Returns
    ``None`` when it cannot be known (no logprob, or the chosen token lies beyond the list).
    """
    if chosen_logprob is None:
        return None
    above = sum(1 for lp in other_logprobs if lp > chosen_logprob)
    if chosen_listed or above < len(other_logprobs):
        return 1 + above
    return None


def build_chunk(tid: int, piece: bytes, logprob: float | None, top: list[Alternative], k: int) -> TokenChunk:
    """The chunk of a chosen token and its alternatives (any order, any length): the best ``k``
    alternatives, best first; an alternative is the chosen token when the ids match (or, where
    an id is unknown, the pieces)."""
    top = sorted(top, key=lambda e: -e[2])[:k]

    def same(entry: Alternative) -> bool:
        if tid >= 0 and entry[0] >= 0:
            return entry[0] == tid
        return entry[1] == piece

    listed = any(same(e) for e in top)
    others = [e[2] for e in top if not same(e)]
    return TokenChunk(
        id=tid,
        piece=piece,
        logprob=logprob,
        rank=compute_rank(logprob, listed, others),
        entropy=None,
        top_ids=[e[0] for e in top],
        top_logprobs=[e[2] for e in top],
        top_pieces=[e[1] for e in top],
    )
