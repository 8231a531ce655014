"""llama.cpp's ``llama-server`` native protocol: ``POST /completion`` with ``n_probs`` and ``return_tokens``.

Why not ``/v1/completions``: both endpoints stream one event per *sent* piece of text, and
llama-server holds back a token that ends inside a UTF-8 character until a later token completes
it; the event then carries the bytes of all of them, the id and distribution of the last one only.
Read from its source (``tools/server/server-context.cpp``, ``process_token`` and
``send_partial_response``; ``server-task.cpp``, ``probs_vector_to_json``), each streamed event
of the native endpoint is::

    {"index": 0, "content": "<text sent>", "tokens": [<id of the last token>], "stop": false,
     "id_slot": -1, "tokens_predicted": <tokens generated so far>, "tokens_evaluated": <prompt tokens>,
     "completion_probabilities": [{"id", "token", "bytes": [...], "logprob",
                                   "top_logprobs": [{"id", "token", "bytes", "logprob"}, ...]}]}

and the last one ``{"stop": true, "stop_type": "eos"|"limit"|"word"|"none", "stopping_word",
"truncated", "tokens_predicted", "timings": {"predicted_n", "predicted_per_second", ...}, ...}``
(its ``content`` and ``tokens`` are empty in stream mode).  ``tokens_predicted`` counts every
generated token, held back or not, so the number of tokens an event stands for is the growth of
that count.  This module turns an event standing for ``g`` tokens into ``g`` chunks: ``g - 1``
with id ``-1``, no bytes and no distribution (their ids and logprobs are not in the stream), then
the last token with its own id, logprob and alternatives and the bytes of the whole group.  The
stream's :class:`~lmread.backends.openai.report.StreamReport` says which tokens those are.
Tokens still held back when generation stops (the limit reached inside a character) are never
sent: they are appended without bytes, so the token count still equals the server's.  The
end-of-text token is one of the tokens the server counts: it comes as an event with no text, and
is recorded as a token with an empty piece (with its id and logprob).

The distribution: with ``post_sampling_probs`` false (the default, never sent), ``logprob`` and
``top_logprobs`` are a softmax of the raw logits, i.e. the unmodified distribution lmread records.
"""

from __future__ import annotations

from typing import Any

from lmread.backends.base import GenOptions, StreamEnd, TokenChunk
from lmread.backends.openai.report import StreamReport
from lmread.backends.openai.tokens import build_chunk, clean_logprob, object_alternatives, token_id

ENDPOINT = "/completion"

#: llama-server's ``stop_type`` -> lmread finish reason (``limit`` is refined by ``truncated``)
_STOP_TYPES = {"eos": "eos", "word": "stop", "limit": "length"}


def native_body(prompt: str, options: GenOptions, n_ctx: int | None = None) -> dict[str, Any]:
    """The ``/completion`` request for ``prompt``: the sampling options with llama-server's own
    defaults turned off, ``n_probs`` alternatives per token, token ids, streamed.

    Stop strings are not sent (the driver cuts the text at them; the server would remove them
    from the text it sends).  ``cache_prompt`` is off: a cached prefix can change the logits
    (llama-server's README), and the same command must give the same samples.  The repetition
    penalty looks at the whole context (``repeat_last_n`` = the server's ``n_ctx``; llama-server
    refuses -1), as the llamacpp backend's does; with no penalty it looks at nothing.
    """
    body: dict[str, Any] = {
        "prompt": prompt,
        "stream": True,
        "n_predict": options.max_tokens,
        "temperature": options.temperature,
        "top_p": options.top_p,
        "top_k": options.top_k,
        "min_p": options.min_p,
        "typical_p": 1.0,
        "repeat_penalty": options.repetition_penalty,
        "repeat_last_n": 0 if options.repetition_penalty == 1.0 else (n_ctx or 4096),
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "dry_multiplier": 0.0,
        "xtc_probability": 0.0,
        "mirostat": 0,
        "n_probs": options.top_logprobs,
        "return_tokens": True,
        "cache_prompt": False,
        "seed": -1 if options.seed is None else options.seed,
    }
    return body


class NativeStreamParser:
    """Turns the events of one ``/completion`` stream into token chunks and a stream end."""

    incomplete = "without stopping (it failed or was stopped); the sample is incomplete"

    def __init__(self, options: GenOptions, kind: str = "llama-server") -> None:
        self.options = options
        self.k = options.top_logprobs
        self.report = StreamReport(kind=kind, endpoint=ENDPOINT)
        self._end: StreamEnd | None = None
        self.timings: dict[str, Any] | None = None
        self._counted = 0  # tokens accounted for (chunks yielded)

    @property
    def finished(self) -> bool:
        """Whether the server has said why the stream ends (its ``stop`` event came)."""
        return self._end is not None

    @property
    def done(self) -> bool:
        """Nothing comes after the ``stop`` event."""
        return self._end is not None

    def final(self, event: dict[str, Any]) -> bool:
        """Whether ``event`` is the ``stop`` event."""
        return bool(event.get("stop"))

    def end(self) -> StreamEnd:
        """The stream's end (once :attr:`finished`), with its report."""
        assert self._end is not None
        return self._end

    def _chunk(self, event: dict[str, Any], text: str) -> TokenChunk:
        probs = event.get("completion_probabilities")
        entry = probs[-1] if isinstance(probs, list) and probs and isinstance(probs[-1], dict) else None
        tokens = event.get("tokens")
        tid = token_id(tokens[-1]) if isinstance(tokens, list) and tokens else -1
        # the event's text is authoritative for the bytes (it is what the server generated)
        piece = text.encode("utf-8")
        if entry is None:
            return TokenChunk(id=tid, piece=piece)
        if tid < 0:
            tid = token_id(entry.get("id"))
        top = object_alternatives(entry.get("top_logprobs"))
        return build_chunk(tid, piece, clean_logprob(entry.get("logprob")), top, self.k)

    def _placeholders(self, count: int) -> list[TokenChunk]:
        out = [TokenChunk(id=-1, piece=b"") for _ in range(count)]
        self._counted += count
        return out

    def feed(self, event: dict[str, Any]) -> list[TokenChunk]:
        """The chunks of one streamed event (several when it stands for several tokens)."""
        chunks: list[TokenChunk] = []
        predicted = event.get("tokens_predicted")
        predicted = predicted if isinstance(predicted, int) and not isinstance(predicted, bool) else None
        content = event.get("content")
        text = content if isinstance(content, str) else ""
        tokens = event.get("tokens")
        has_tokens = isinstance(tokens, list) and bool(tokens)
        if event.get("stop"):  # in stream mode the last event carries no token
            carries_token = bool(text) or has_tokens
        else:
            carries_token = bool(text) or has_tokens or bool(event.get("completion_probabilities"))
        if carries_token:
            group = 1 if predicted is None else max(1, predicted - self._counted)
            first = self._counted
            if group > 1:
                chunks += self._placeholders(group - 1)
                self.report.merge(first, group, ids_known=False, logprobs_known=False)
            chunks.append(self._chunk(event, text))
            self._counted += 1
        if event.get("stop"):
            chunks += self._finish(event, predicted)
        self.report.n_streamed = self._counted
        return chunks

    def _finish(self, event: dict[str, Any], predicted: int | None) -> list[TokenChunk]:
        chunks: list[TokenChunk] = []
        stop_type = event.get("stop_type")
        self.report.finish_reason = str(stop_type) if stop_type is not None else None
        self.report.completion_tokens = predicted
        if isinstance(event.get("timings"), dict):
            self.timings = event["timings"]
            self.report.extra["timings"] = {
                k: event["timings"].get(k) for k in ("predicted_n", "predicted_ms", "predicted_per_second")
                if k in event["timings"]
            }
        if predicted is not None and predicted > self._counted:
            # tokens held back when generation stopped (inside a character): never sent
            first = self._counted
            chunks += self._placeholders(predicted - self._counted)
            self.report.extra["unsent"] = [first, predicted - first]
            self.report.no_id.extend(range(first, predicted))
            self.report.no_logprob.extend(range(first, predicted))
        self.report.n_streamed = self._counted
        reason = _STOP_TYPES.get(str(stop_type))
        if reason is None:
            end = StreamEnd("error", f"llama-server stop_type {stop_type!r}")
        elif reason == "length" and event.get("truncated"):
            end = StreamEnd("context", f"the context window was full after {self._counted} tokens")
        elif reason == "length" and self._counted < self.options.max_tokens:
            end = StreamEnd("context", f"the server stopped after {self._counted} of {self.options.max_tokens} tokens")
        elif reason == "stop":
            word = event.get("stopping_word")
            end = StreamEnd("stop", f"stop string {word!r}" if word else "")
        else:
            end = StreamEnd(reason)
        self._end = self.report.end(end)
        return chunks


class NativeProtocol:
    """Streams from llama-server's native ``/completion``; ``n_ctx`` is the context a request
    gets (the repetition penalty's window)."""

    endpoint = ENDPOINT

    def __init__(self, kind: str = "llama-server", n_ctx: int | None = None) -> None:
        self.kind = kind
        self.n_ctx = n_ctx

    def check(self, options: GenOptions) -> None:
        """Every option is honoured."""

    def body(self, prompt: str, options: GenOptions) -> dict[str, Any]:
        return native_body(prompt, options, self.n_ctx)

    def parser(self, options: GenOptions) -> NativeStreamParser:
        return NativeStreamParser(options, self.kind)
