"""Token arrays and the incremental assembler that turns raw token bytes into exact text with
character spans (a character belongs to the token that holds its last byte)."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Any

from lmread.errors import StudyError

# --------------------------------------------------------------------------------------------
# Tokens


@dataclass(slots=True)
class Tokens:
    """Parallel per-token arrays of one sample.

    ``logprob``/``rank``/``entropy``/``top_*`` are ``None`` as a whole when the source gave no
    distribution (imported text), and hold ``None`` entries for single tokens without one.
    """

    ids: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=lambda: [0])
    nbytes: list[int] = field(default_factory=list)
    logprob: list[float | None] | None = None
    rank: list[int | None] | None = None
    entropy: list[float | None] | None = None
    top_ids: list[list[int]] | None = None
    top_logprobs: list[list[float]] | None = None
    top_pieces: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ids": self.ids, "offsets": self.offsets, "bytes": self.nbytes}
        out["logprob"] = self.logprob
        out["rank"] = self.rank
        out["entropy"] = self.entropy
        out["top"] = (
            None
            if self.top_ids is None
            else {"ids": self.top_ids, "logprobs": self.top_logprobs, "pieces": self.top_pieces}
        )
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> Tokens:
        if not isinstance(data, dict):
            raise StudyError(f"{where}: 'tokens' must be an object")
        try:
            top = data.get("top")
            toks = cls(
                ids=list(data["ids"]),
                offsets=list(data["offsets"]),
                nbytes=list(data["bytes"]),
                logprob=data.get("logprob"),
                rank=data.get("rank"),
                entropy=data.get("entropy"),
                top_ids=top["ids"] if top else None,
                top_logprobs=top["logprobs"] if top else None,
                top_pieces=top["pieces"] if top else None,
            )
        except (KeyError, TypeError) as exc:
            raise StudyError(f"{where}: malformed 'tokens' ({exc})") from None
        n = len(toks.ids)
        if len(toks.offsets) != n + 1 or len(toks.nbytes) != n:
            raise StudyError(f"{where}: token arrays have inconsistent lengths")
        for name in ("logprob", "rank", "entropy", "top_ids", "top_logprobs", "top_pieces"):
            arr = getattr(toks, name)
            if arr is not None and len(arr) != n:
                raise StudyError(f"{where}: token array {name!r} has {len(arr)} entries, not {n}")
        return toks


class TokenAssembler:
    """Accumulate raw token bytes into exact text and per-token arrays, decoding incrementally.

    Feed tokens with :meth:`add`; each call returns the text that token completed (possibly empty
    when it only starts a multi-byte character).  :meth:`finish` flushes incomplete trailing bytes
    (as U+FFFD, keeping the raw bytes in ``raw``) and returns the :class:`Tokens` and the text.
    """

    def __init__(self, with_distribution: bool = True) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parts: list[str] = []
        self._raw: list[bytes] = []
        self._length = 0
        self.tokens = Tokens()
        if with_distribution:
            self.tokens.logprob = []
            self.tokens.rank = []
            self.tokens.entropy = []
            self.tokens.top_ids = []
            self.tokens.top_logprobs = []
            self.tokens.top_pieces = []
        self._finished = False

    def __len__(self) -> int:
        return len(self.tokens.ids)

    @property
    def text_length(self) -> int:
        """Characters decoded so far."""
        return self._length

    @property
    def text(self) -> str:
        """The text decoded so far (complete characters only)."""
        if len(self._parts) > 1:
            self._parts[:] = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def add(
        self,
        token_id: int,
        piece: bytes,
        logprob: float | None = None,
        rank: int | None = None,
        entropy: float | None = None,
        top_ids: list[int] | None = None,
        top_logprobs: list[float] | None = None,
        top_pieces: list[bytes] | None = None,
    ) -> str:
        """Append one token; return the characters it completed."""
        if self._finished:
            raise RuntimeError("TokenAssembler.add after finish")
        text = self._decoder.decode(piece)
        toks = self.tokens
        toks.ids.append(int(token_id))
        toks.nbytes.append(len(piece))
        self._raw.append(piece)
        if text:
            self._parts.append(text)
            self._length += len(text)
        toks.offsets.append(self._length)
        if toks.logprob is not None:
            toks.logprob.append(None if logprob is None else float(logprob))
            toks.rank.append(None if rank is None else int(rank))  # type: ignore[union-attr]
            toks.entropy.append(None if entropy is None else float(entropy))  # type: ignore[union-attr]
            toks.top_ids.append([int(x) for x in top_ids or []])  # type: ignore[union-attr]
            toks.top_logprobs.append([float(x) for x in top_logprobs or []])  # type: ignore[union-attr]
            toks.top_pieces.append(  # type: ignore[union-attr]
                [p.decode("utf-8", errors="backslashreplace") for p in top_pieces or []]
            )
        return text

    def finish(self) -> tuple[Tokens, str, bytes | None]:
        """Flush and return ``(tokens, text, raw)``; ``raw`` is the byte string when it was not
        valid UTF-8 (so no byte is ever lost), else ``None``."""
        if not self._finished:
            tail = self._decoder.decode(b"", final=True)
            if tail:
                self._parts.append(tail)
                self._length += len(tail)
                if len(self.tokens.offsets) > 1:
                    self.tokens.offsets[-1] = self._length
            self._finished = True
        raw = b"".join(self._raw)
        try:
            raw.decode("utf-8")
            keep = None
        except UnicodeDecodeError:
            keep = raw
        return self.tokens, self.text, keep
