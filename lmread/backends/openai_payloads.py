"""What an OpenAI-compatible server tells about itself and about each stream, as lmread records it.

Pure functions over the servers' JSON (no HTTP here), shared by :mod:`lmread.backends.openai` and
:mod:`lmread.backends.openai_llamaserver`:

* :func:`server_kind` recognizes the server from its ``/v1/models`` entry: llama.cpp's
  ``llama-server`` (``owned_by: "llamacpp"`` with a ``meta`` object), vLLM (``owned_by: "vllm"``),
  llama-cpp-python's server (``owned_by: "me"``), else a generic OpenAI-compatible one.
* :func:`server_identity` takes the model identity the server publishes: llama-server's
  ``meta = {n_params, n_vocab, n_ctx, n_ctx_train, size, ftype}`` and ``/props``
  (``model_path``, ``build_info``, ``total_slots``); vLLM's ``max_model_len``, ``root``.
* :class:`StreamReport` is what a stream leaves in the sample's optional ``server`` object: the
  server's own finish reason and token count (``usage.completion_tokens`` or llama-server's
  ``tokens_predicted``), whether the streamed token count disagrees with it, which tokens came
  merged with the next ones (the server sent their bytes together) and which lack their own
  distribution (no logprob of their own; nothing of another token's is put in their place).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from lmread.backends.base import StreamEnd

#: server kinds :func:`server_kind` can tell apart
SERVER_KINDS = ("llama-server", "vllm", "llama-cpp-python", "openai")

#: vLLM's ``--max-logprobs`` default: the most alternatives it returns per token
VLLM_MAX_LOGPROBS = 20


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def server_kind(entry: dict[str, Any] | None) -> str:
    """Which server published this ``/v1/models`` entry (one of :data:`SERVER_KINDS`)."""
    entry = entry or {}
    owner = entry.get("owned_by")
    if owner == "llamacpp" or (isinstance(entry.get("meta"), dict) and "n_vocab" in entry["meta"]):
        return "llama-server"
    if owner == "vllm" or "max_model_len" in entry:
        return "vllm"
    if owner == "me":
        return "llama-cpp-python"
    return "openai"


def server_identity(entry: dict[str, Any] | None, props: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model identity a server publishes, by lmread's names (``None`` where it says nothing).

    Keys: ``n_params``, ``n_vocab``, ``n_ctx`` (the context a request gets), ``n_ctx_train``,
    ``quantization``, ``size_bytes``, ``max_model_len`` (vLLM), ``file`` (llama-server's model
    file name, from ``/props``), ``server_build`` and ``server_slots``.
    """
    entry = entry or {}
    props = props or {}
    meta: dict[str, Any] = entry["meta"] if isinstance(entry.get("meta"), dict) else {}
    ftype = meta.get("ftype") if isinstance(meta.get("ftype"), str) else props.get("model_ftype")
    path = props.get("model_path")
    max_len = _int(entry.get("max_model_len"))
    return {
        "n_params": _int(meta.get("n_params")),
        "n_vocab": _int(meta.get("n_vocab")),
        "n_ctx": _int(meta.get("n_ctx")) or max_len,
        "n_ctx_train": _int(meta.get("n_ctx_train")),
        "quantization": ftype if isinstance(ftype, str) and ftype else None,
        "size_bytes": _int(meta.get("size")),
        "max_model_len": max_len,
        "file": os.path.basename(path) if isinstance(path, str) and path else None,
        "server_build": props.get("build_info") if isinstance(props.get("build_info"), str) else None,
        "server_slots": _int(props.get("total_slots")),
    }


@dataclass(slots=True)
class ServerStreamEnd(StreamEnd):
    """A :class:`StreamEnd` that also carries the stream's :class:`StreamReport` as a dict
    (recorded by the driver as the sample's ``server`` object)."""

    server: dict[str, Any] | None = None


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

    def end(self, end: StreamEnd) -> ServerStreamEnd:
        """The stream's end with this report attached; a count disagreement is said in the detail."""
        detail = end.detail
        if self.mismatch:
            note = (f"the server counted {self.completion_tokens} tokens, {self.n_streamed} were streamed "
                    "(recorded in the sample's 'server' object)")
            detail = f"{detail}; {note}" if detail else note
        return ServerStreamEnd(end.reason, detail, self.to_json())
