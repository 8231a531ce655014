"""What a stream leaves in the sample's optional ``server`` object (:class:`StreamReport`).

The server's own finish reason and token count (``usage.completion_tokens`` or llama-server's
``tokens_predicted``), whether the streamed token count disagrees with it, which tokens came
merged with the next ones (the server sent their bytes together) and which lack their own
distribution (no logprob of their own; nothing of another token's is put in their place).  The
report travels to the driver as :attr:`lmread.backends.base.StreamEnd.server`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lmread.backends.base import StreamEnd


@dataclass
class StreamReport:
    """What the server said about one stream, and where its tokens are not exact."""

    kind: str
    endpoint: str
    n_streamed: int = 0
    finish_reason: str | None = None
    completion_tokens: int | None = None
    #: ``[first_index, count]``: ``count`` tokens whose bytes the server sent together, all on
    #: the last of them (the others are recorded with empty pieces)
    merged: list[list[int]] = field(default_factory=list)
    #: indexes of tokens without a distribution of their own (no logprob, no alternatives)
    no_logprob: list[int] = field(default_factory=list)
    #: indexes of tokens without their own id (recorded as -1)
    no_id: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def merge(self, first: int, count: int, ids_known: bool, logprobs_known: bool) -> None:
        """Note ``count`` tokens from ``first`` on whose bytes came together on the last one;
        the ones before the last lack their own id and/or logprob as stated."""
        if count <= 1:
            return
        self.merged.append([first, count])
        earlier = list(range(first, first + count - 1))
        if not ids_known:
            self.no_id.extend(earlier)
        if not logprobs_known:
            self.no_logprob.extend(earlier)

    @property
    def mismatch(self) -> bool:
        return self.completion_tokens is not None and self.completion_tokens != self.n_streamed

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "endpoint": self.endpoint,
            "finish_reason": self.finish_reason,
            "completion_tokens": self.completion_tokens,
            "streamed_tokens": self.n_streamed,
            "count_mismatch": self.mismatch,
        }
        if self.merged:
            out["merged"] = self.merged
        if self.no_logprob:
            out["no_logprob"] = sorted(set(self.no_logprob))
        if self.no_id:
            out["no_id"] = sorted(set(self.no_id))
        out.update(self.extra)
        return out

    def end(self, end: StreamEnd) -> StreamEnd:
        """The stream's end with this report attached (as ``server``); a count disagreement is
        said in the detail."""
        detail = end.detail
        if self.mismatch:
            note = (f"the server counted {self.completion_tokens} tokens, {self.n_streamed} were streamed "
                    "(recorded in the sample's 'server' object)")
            detail = f"{detail}; {note}" if detail else note
        return StreamEnd(end.reason, detail, self.to_json())
