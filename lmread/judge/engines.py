"""Where a judge runs: in-process llama.cpp, or any OpenAI-compatible chat endpoint.

Both engines take chat messages and :class:`JudgeSettings` and return a :class:`Reply` (the raw
answer text, tokens in and out, finish reason, seconds).  Both constrain the answer to
:data:`~lmread.judge.answer.ANSWER_SCHEMA`: llama-cpp-python's ``create_chat_completion`` with
``response_format={"type": "json_object", "schema": ...}`` (a grammar built from the schema),
and the server with ``response_format={"type": "json_schema", ...}`` (llama-server, vLLM's
guided decoding, OpenAI).  The answer is parsed the same way whether or not the engine honoured
the constraint.

A prompt that does not fit the judge's context raises
:class:`~lmread.judge.http.ContextTooLong` (the runner skips that sample and goes on).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lmread.errors import BackendError, OptionError
from lmread.judge.answer import ANSWER_SCHEMA
from lmread.judge.http import ChatClient, ContextTooLong

if TYPE_CHECKING:
    from lmread.backends.llamacpp import LlamaCppBackend
    from lmread.backends.openai import OpenAIBackend

#: tokens kept free for the answer when checking that a prompt fits the context
ANSWER_ROOM = 48


@dataclass(frozen=True)
class JudgeSettings:
    """Sampling settings of a judge (recorded with every mark): greedy by default."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 200
    seed: int = 0

    def check(self) -> JudgeSettings:
        """Raise :class:`OptionError` unless the settings are usable."""
        if not 0.0 <= self.temperature <= 5.0:
            raise OptionError(f"invalid option --temperature {self.temperature!r}: must be in [0, 5]")
        if not 0.0 < self.top_p <= 1.0:
            raise OptionError(f"invalid option --top-p {self.top_p!r}: must be in (0, 1]")
        if not 16 <= self.max_tokens <= 8192:
            raise OptionError(f"invalid option --max-tokens {self.max_tokens!r}: must be in [16, 8192]")
        if not 0 <= self.seed < 2**32:
            raise OptionError(f"invalid option --seed {self.seed!r}: must be a whole number in [0, 2^32)")
        return self

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Reply:
    """One answer: its raw text, tokens in (prompt) and out (answer), why it ended, how long it took."""

    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str
    seconds: float


class LlamaCppJudge:
    """A judge on a GGUF model loaded in this process (a :class:`LlamaCppBackend`, composed).

    One answer at a time; the chat template comes from the GGUF file.  ``owns``: close the
    backend with the judge.
    """

    name = "llamacpp"
    max_concurrency = 1

    def __init__(self, backend: LlamaCppBackend, owns: bool = False) -> None:
        self.backend = backend
        self.owns = owns
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        """The judge model's identity, as samples record model identity."""
        return self.backend.identity().record()

    @property
    def n_ctx(self) -> int:
        return int(self.backend.n_ctx)

    def chat(self, messages: list[dict[str, str]], settings: JudgeSettings) -> Reply:
        """Answer ``messages`` with a schema-constrained completion."""
        content = "\n".join(m["content"] for m in messages)
        with self._lock:
            n_text = len(self.backend.tokenize(content, as_prompt=False))
            if n_text + ANSWER_ROOM > self.n_ctx:
                raise ContextTooLong(f"the judge's prompt has {n_text} tokens, more than its context of "
                                     f"{self.n_ctx} leaves room for (give --judge-context more)")
            llama = self.backend._llama  # the loaded model; the backend resets it before it streams again
            start = time.perf_counter()
            try:
                out = llama.create_chat_completion(
                    messages=messages,
                    response_format={"type": "json_object", "schema": ANSWER_SCHEMA},
                    temperature=settings.temperature, top_p=settings.top_p, top_k=0, min_p=0.0,
                    repeat_penalty=1.0, max_tokens=settings.max_tokens, seed=settings.seed,
                )
            except ValueError as exc:
                if "context" in str(exc).lower():
                    raise ContextTooLong(f"the judge's context is too small for this sample: {exc}") from None
                raise BackendError(f"llama.cpp could not answer: {exc}") from None
            seconds = time.perf_counter() - start
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return Reply(text=str(choice["message"].get("content") or ""),
                     tokens_in=int(usage.get("prompt_tokens") or 0),
                     tokens_out=int(usage.get("completion_tokens") or 0),
                     finish_reason=str(choice.get("finish_reason") or ""), seconds=seconds)

    def close(self) -> None:
        """Close the backend if this judge loaded it (``owns``)."""
        if self.owns:
            self.backend.close()


class ChatServerJudge:
    """A judge behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    ``identity_backend`` (an :class:`OpenAIBackend` on the same server) says who the model is;
    requests go through a :class:`ChatClient`.
    """

    name = "openai"

    def __init__(self, client: ChatClient, identity_backend: OpenAIBackend, model: str | None,
                 concurrency: int = 4, constrain: bool = True) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise OptionError(f"invalid option --concurrency {concurrency!r}: must be a whole number >= 1")
        self.client = client
        self.ident = identity_backend
        self.model = model
        self.max_concurrency = concurrency
        self.constrain = constrain
        self._served: str | None = None

    def identity(self) -> dict[str, Any]:
        """The served model's identity (what the server publishes; never the API key)."""
        record = self.ident.identity().record()
        self._served = self.model or self.ident.served_model()
        return record

    def chat(self, messages: list[dict[str, str]], settings: JudgeSettings) -> Reply:
        """POST one chat completion and return its answer."""
        body: dict[str, Any] = {
            "model": self._served or self.model or self.ident.served_model(),
            "messages": messages,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_tokens": settings.max_tokens,
            "seed": settings.seed,
            "stream": False,
        }
        if self.constrain:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "lmread_verdict", "schema": ANSWER_SCHEMA}}
        start = time.perf_counter()
        data = self.client.post_json("/v1/chat/completions", body)
        seconds = time.perf_counter() - start
        try:
            choice = data["choices"][0]
            message = choice.get("message") or {}
        except (KeyError, IndexError, TypeError, AttributeError):
            raise BackendError(f"the server at {self.client.base_url} sent a chat answer without choices; "
                               "is it OpenAI-compatible?") from None
        text = message.get("content")
        if not isinstance(text, str):
            refusal = message.get("refusal")
            text = str(refusal) if refusal else ""
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return Reply(text=text, tokens_in=int(usage.get("prompt_tokens") or 0),
                     tokens_out=int(usage.get("completion_tokens") or 0),
                     finish_reason=str(choice.get("finish_reason") or ""), seconds=seconds)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()
        self.ident.close()
