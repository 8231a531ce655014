"""OpenAI's ``POST /v1/completions`` (plain text completion, ``stream: true``): the protocol of
vLLM, llama-cpp-python's server, and llama-server when asked for it.

Two shapes of per-token log-probabilities are understood:

(a) parallel arrays (OpenAI's legacy format, vLLM, llama-cpp-python)::

        choices[0].logprobs = {"tokens": [...], "token_logprobs": [...],
                               "top_logprobs": [{token: logprob, ...}], "text_offset": [...]}

(b) llama-server's objects::

        choices[0].logprobs.content = [{"id", "token", "bytes", "logprob",
                                        "top_logprobs": [{"id", "token", "bytes", "logprob"}]}]

Finish reasons: ``"length"`` -> ``length`` (``context`` when fewer than ``max_tokens`` tokens
came, i.e. the context window was full); ``"stop"`` -> ``eos``, or ``stop`` when the server says
a stop string matched (vLLM's ``stop_reason``); when stop strings were requested and the server
does not say which, ``stop`` with a detail saying so.  ``top_k=0``, ``min_p=0`` and
``repetition_penalty=1`` are always sent, because the servers' own defaults are not "off";
``repetition_penalty`` is sent under both of its names (``repeat_penalty`` for llama.cpp,
``repetition_penalty`` for vLLM).
"""

from __future__ import annotations

from typing import Any

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk
from lmread.backends.openai.report import StreamReport
from lmread.backends.openai.tokens import (
    Alternative,
    build_chunk,
    clean_logprob,
    object_alternatives,
    object_token,
    string_token,
)
from lmread.errors import OptionError

ENDPOINT = "/v1/completions"


def parse_choice(choice: dict[str, Any], k: int) -> list[TokenChunk]:
    """The token chunks of one streamed ``choices[i]`` object (either logprob shape).

    ``k`` is the number of alternatives asked for.  A choice without log-probabilities gives one
    chunk for its text (id ``-1``), or none when the text is empty.
    """
    text = choice.get("text")
    text = text if isinstance(text, str) else None
    lp = choice.get("logprobs")
    parsed: list[tuple[TokenChunk, bool]] = []
    content = lp.get("content") if isinstance(lp, dict) else lp
    if isinstance(content, list):  # shape (b)
        for item in content:
            if not isinstance(item, dict):
                continue
            tid, piece, explicit = object_token(item)
            top = object_alternatives(item.get("top_logprobs"))
            chunk = build_chunk(tid, piece or b"", clean_logprob(item.get("logprob")), top, k)
            parsed.append((chunk, explicit))
    elif isinstance(lp, dict) and isinstance(lp.get("tokens"), list):  # shape (a)
        lps = lp.get("token_logprobs") or []
        tops = lp.get("top_logprobs") or []
        for i, tok in enumerate(lp["tokens"]):
            if not isinstance(tok, str):
                continue
            tid, spiece, explicit = string_token(tok)
            alts: list[Alternative] = []
            listed = tops[i] if i < len(tops) else None
            if isinstance(listed, dict):
                for atok, alp in listed.items():
                    value = clean_logprob(alp)
                    if isinstance(atok, str) and value is not None:
                        aid, apiece, _ = string_token(atok)
                        alts.append((aid, apiece, value))
            logprob = clean_logprob(lps[i]) if i < len(lps) else None
            parsed.append((build_chunk(tid, spiece, logprob, alts, k), explicit))
    elif text:
        return [TokenChunk(id=-1, piece=text.encode("utf-8"))]
    # A lone token whose bytes were not spelled out: the server's text is authoritative (a
    # partial character sent as U+FFFD, the last token cut at a stop string), so the pieces
    # always add up to exactly the text the server reported.
    if len(parsed) == 1 and text is not None:
        first, explicit = parsed[0]
        if not explicit and first.piece != text.encode("utf-8"):
            first.piece = text.encode("utf-8")
    elif len(parsed) > 1 and text and not any(explicit or chunk.piece for chunk, explicit in parsed):
        # several tokens keyed by id only (vLLM's return_tokens_as_token_ids): the text came
        # for all of them together; it goes on the last one (see merged_pieces)
        parsed[-1][0].piece = text.encode("utf-8")
    return [chunk for chunk, _ in parsed]


def merged_pieces(chunks: list[TokenChunk]) -> bool:
    """True when several chunks of one event share one piece (all bytes on the last one)."""
    return len(chunks) > 1 and bool(chunks[-1].piece) and not any(c.piece for c in chunks[:-1])


def finish_of(reason: str, stop_reason: Any, has_stop_reason: bool, options: GenOptions, n_tokens: int) -> StreamEnd:
    """Map a server finish reason to a :class:`StreamEnd`."""
    if reason == "length":
        if n_tokens < options.max_tokens:
            return StreamEnd("context", f"the server stopped after {n_tokens} of {options.max_tokens} tokens")
        return StreamEnd("length")
    if reason == "stop":
        if has_stop_reason:
            if isinstance(stop_reason, str) and stop_reason:
                return StreamEnd("stop", f"stop string {stop_reason!r}")
            return StreamEnd("eos")
        if options.stop:
            return StreamEnd("stop", "end of text or a stop string (the server does not say which)")
        return StreamEnd("eos")
    return StreamEnd("error", f"server finish reason {reason!r}")


class CompletionsParser:
    """The events of one ``/v1/completions`` stream (choice 0) -> chunks and a stream end."""

    incomplete = ("without a finish reason (it failed or was interrupted; llama-cpp-python's server needs "
                  "--interrupt_requests false for concurrent streams); the sample is incomplete")
    #: a completions stream is read to its ``[DONE]`` (the usage count may come after the finish)
    done = False

    def __init__(self, options: GenOptions, kind: str) -> None:
        self.options = options
        self.report = StreamReport(kind=kind, endpoint=ENDPOINT)
        self.count = 0
        self.reason: str | None = None
        self.stop_reason: Any = None
        self.has_stop_reason = False

    @property
    def finished(self) -> bool:
        return self.reason is not None

    def final(self, event: dict[str, Any]) -> bool:
        return False

    def feed(self, event: dict[str, Any]) -> list[TokenChunk]:
        usage = event.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.report.completion_tokens = int(usage["completion_tokens"])
        out: list[TokenChunk] = []
        for choice in event.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            chunks = parse_choice(choice, self.options.top_logprobs)
            if merged_pieces(chunks):
                self.report.merge(self.count, len(chunks), ids_known=True, logprobs_known=True)
            self.count += len(chunks)
            out += chunks
            if choice.get("finish_reason"):
                self.reason = str(choice["finish_reason"])
                self.stop_reason, self.has_stop_reason = choice.get("stop_reason"), "stop_reason" in choice
        return out

    def end(self) -> StreamEnd:
        assert self.reason is not None
        self.report.n_streamed = self.count
        self.report.finish_reason = self.reason
        counted = self.report.completion_tokens if self.report.completion_tokens is not None else self.count
        return self.report.end(finish_of(self.reason, self.stop_reason, self.has_stop_reason, self.options, counted))


class CompletionsProtocol:
    """Streams from ``/v1/completions`` of a server of kind ``kind`` serving ``model``.

    ``max_logprobs`` is the most alternatives a vLLM server returns (its ``--max-logprobs``).
    """

    endpoint = ENDPOINT

    def __init__(self, model: str, kind: str, max_logprobs: int, url: str) -> None:
        self.model = model
        self.kind = kind
        self.max_logprobs = max_logprobs
        self.url = url

    def check(self, options: GenOptions) -> None:
        if self.kind == "vllm" and options.top_logprobs > self.max_logprobs:
            raise OptionError(
                f"invalid option --top-logprobs {options.top_logprobs}: the vLLM server at {self.url} returns at most "
                f"{self.max_logprobs} (its --max-logprobs); ask for fewer, or give --max-logprobs N if the server "
                "was started with a higher limit"
            )

    def body(self, prompt: str, options: GenOptions) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "stream": True,
            "echo": False,
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            # 0 / 1 mean "off" for vLLM, llama-server and llama-cpp-python alike; sent explicitly
            # because the servers' own defaults are not "off" (llama-cpp-python: top_k 40...).
            "top_k": options.top_k,
            "min_p": options.min_p,
            "repeat_penalty": options.repetition_penalty,
            "repetition_penalty": options.repetition_penalty,
            "logprobs": options.top_logprobs,
        }
        if options.seed is not None:
            body["seed"] = options.seed
        if options.stop:
            body["stop"] = list(options.stop)
        if self.kind in ("vllm", "llama-server"):
            body["stream_options"] = {"include_usage": True}
        if self.kind == "vllm":
            # top-k entries keyed "token_id:N": two tokens that decode alike cannot collide
            body["return_tokens_as_token_ids"] = True
        return body

    def parser(self, options: GenOptions) -> CompletionsParser:
        return CompletionsParser(options, self.kind)
