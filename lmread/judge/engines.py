"""Where a judge runs: in-process llama.cpp, or any OpenAI-compatible chat endpoint.

Both engines take chat messages and :class:`JudgeSettings` and return a :class:`Reply` (the raw
answer text, tokens in and out, finish reason, seconds).  Both constrain the answer to
:data:`~lmread.judge.answer.ANSWER_SCHEMA`: in process with llama.cpp's grammar sampler on the
grammar llama-cpp-python builds from the schema (what ``create_chat_completion(response_format=
{"type": "json_object", "schema": ...})`` does, checked token-first, see :class:`LlamaCppJudge`),
and on a server with ``response_format={"type": "json_schema", ...}`` (llama-server, vLLM's
guided decoding, OpenAI).  The answer is parsed the same way whether or not the engine honoured
the constraint.

A prompt that does not fit the judge's context raises
:class:`~lmread.judge.http.ContextTooLong` (the runner skips that sample and goes on).
"""

from __future__ import annotations

import ctypes
import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lmread.errors import BackendError, ModelError, OptionError
from lmread.judge.answer import ANSWER_SCHEMA
from lmread.judge.http import ChatClient, ContextTooLong

if TYPE_CHECKING:
    from lmread.backends.llamacpp import LlamaCppBackend
    from lmread.backends.openai import OpenAIBackend

#: tokens kept free for the answer when checking that a prompt fits the context
ANSWER_ROOM = 48

#: chat templates for GGUF files that carry none, by architecture (Gemma's turn format; the
#: bundled Gemma 3 270M file has no template in its metadata)
FALLBACK_TEMPLATES = {
    arch: ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' "
           "else 'user' }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}<start_of_turn>model\n")
    for arch in ("gemma", "gemma2", "gemma3")
}


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

    The chat is rendered with the GGUF file's own chat template (llama-cpp-python's Jinja
    formatter, as ``create_chat_completion`` does), evaluated on the backend's loaded model
    (reusing the prefix shared with the previous answer, the template's opening), and decoded
    under a grammar built from :data:`ANSWER_SCHEMA`.  Decoding checks the grammar on the token it
    picked first and masks the whole vocabulary only when that token is refused: the same
    distribution as masking first (greedy picks the best allowed token; sampling is rejection
    sampling), at a fraction of the cost, since checking ~50k-260k candidates at every step is
    most of a constrained answer's time otherwise.  One answer at a time.  ``owns``: close the
    backend with the judge.
    """

    name = "llamacpp"
    max_concurrency = 1
    interruptible = False

    def __init__(self, backend: LlamaCppBackend, owns: bool = False) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        self.backend = backend
        self.owns = owns
        #: reuse the cached prefix shared with the previous answer (off: evaluate every prompt whole)
        self.reuse_prefix = True
        self._lock = threading.Lock()
        self._lib = llama_cpp
        llm = backend._llama  # the loaded model; the backend resets it before it streams again
        self._llm = llm
        template = llm.metadata.get("tokenizer.chat_template") or FALLBACK_TEMPLATES.get(backend.architecture or "")
        if not template:
            raise ModelError(f"{backend.path.name} has no chat template in its GGUF metadata; "
                             "a judge needs an instruction-tuned (chat) model")
        self.chat_template = "gguf" if llm.metadata.get("tokenizer.chat_template") else "lmread fallback"
        vocab = backend._vocab
        eos = int(llama_cpp.llama_vocab_eos(vocab))
        self._formatter = Jinja2ChatFormatter(
            template=template, eos_token=backend.piece(eos).decode("utf-8", "replace"),
            bos_token=backend.piece(backend.bos_id).decode("utf-8", "replace"), stop_token_ids=[eos])
        self._gbnf = json_schema_to_gbnf(json.dumps(ANSWER_SCHEMA)).encode("utf-8")
        self._vocab = vocab
        self.n_vocab = int(backend.n_vocab)
        self._all = (llama_cpp.llama_token_data * self.n_vocab)()
        self._one = (llama_cpp.llama_token_data * 1)()
        self._logits_type = ctypes.POINTER(ctypes.c_float * self.n_vocab)
        self._eog = np.array([bool(llama_cpp.llama_vocab_is_eog(vocab, t)) for t in range(self.n_vocab)])

    def identity(self) -> dict[str, Any]:
        """The judge model's identity, as samples record model identity, and where its chat
        template came from (``gguf`` or ``lmread fallback``)."""
        return {**self.backend.identity().record(), "chat_template": self.chat_template}

    @property
    def n_ctx(self) -> int:
        return int(self.backend.n_ctx)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The token ids of ``messages`` rendered with the model's chat template."""
        rendered = self._formatter(messages=messages)
        return list(self._llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special,
                                       special=True))

    def chat(self, messages: list[dict[str, str]], settings: JudgeSettings) -> Reply:
        """Answer ``messages`` under the answer schema's grammar (see the class notes)."""
        with self._lock:
            start = time.perf_counter()
            ids = self.prompt_ids(messages)
            if len(ids) + ANSWER_ROOM > self.n_ctx:
                raise ContextTooLong(f"the judge's prompt has {len(ids)} tokens, more than its context of "
                                     f"{self.n_ctx} leaves room for (give --judge-context more)")
            text, n_out, reason = self._answer(ids, settings)
            seconds = time.perf_counter() - start
        return Reply(text=text, tokens_in=len(ids), tokens_out=n_out, finish_reason=reason, seconds=seconds)

    def _logits(self) -> np.ndarray:
        ptr = self._lib.llama_get_logits_ith(self._llm.ctx, -1)
        if not ptr:
            raise BackendError("llama.cpp returned no logits")
        return np.ctypeslib.as_array(ctypes.cast(ptr, self._logits_type).contents)

    def _eval(self, ids: list[int]) -> None:
        llm = self._llm
        keep = 0
        cached = llm.input_ids[: llm.n_tokens]
        limit = min(len(cached), len(ids) - 1) if self.reuse_prefix else 0
        while keep < limit and cached[keep] == ids[keep]:
            keep += 1
        llm.n_tokens = keep  # eval drops the cache from here on
        llm.eval(ids[keep:])

    def _allowed(self, grammar: Any, token: int, logit: float) -> bool:
        lib = self._lib
        self._one[0].id, self._one[0].logit, self._one[0].p = token, logit, 0.0
        arr = lib.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        lib.llama_sampler_apply(grammar, ctypes.byref(arr))
        return bool(np.isfinite(self._one[0].logit))

    def _masked(self, grammar: Any, logits: np.ndarray) -> np.ndarray:
        """``logits`` with every token the grammar refuses at -inf."""
        lib = self._lib
        view = np.ctypeslib.as_array(self._all).view(np.dtype([("id", np.int32), ("logit", np.float32),
                                                                ("p", np.float32)]))
        view["id"] = np.arange(self.n_vocab, dtype=np.int32)
        view["logit"] = logits
        view["p"] = 0.0
        arr = lib.llama_token_data_array(data=self._all, size=self.n_vocab, selected=-1, sorted=False)
        lib.llama_sampler_apply(grammar, ctypes.byref(arr))
        out = np.full(self.n_vocab, -np.inf, dtype=np.float32)
        ok = np.isfinite(view["logit"])
        out[view["id"][ok]] = view["logit"][ok]
        return out

    def _pick(self, logits: np.ndarray, settings: JudgeSettings, rng: np.random.Generator) -> int:
        if settings.temperature == 0.0:
            return int(np.argmax(logits))
        z = logits.astype(np.float64) / settings.temperature
        z -= np.max(z)
        p = np.exp(z)
        if settings.top_p < 1.0:
            order = np.argsort(-p)
            cum = np.cumsum(p[order]) / p.sum()
            cut = order[np.searchsorted(cum, settings.top_p) + 1:]
            p[cut] = 0.0
        p /= p.sum()
        return int(rng.choice(self.n_vocab, p=p))

    def _answer(self, ids: list[int], settings: JudgeSettings) -> tuple[str, int, str]:
        lib = self._lib
        rng = np.random.default_rng(settings.seed)
        grammar = lib.llama_sampler_init_grammar(self._vocab, self._gbnf, b"root")
        if not grammar:
            raise BackendError("llama.cpp could not build the answer grammar")
        pieces: list[bytes] = []
        reason = "length"
        try:
            self._eval(ids)
            for _ in range(settings.max_tokens):
                logits = self._logits()
                token = self._pick(logits, settings, rng)
                if not self._allowed(grammar, token, float(logits[token])):
                    masked = self._masked(grammar, logits)
                    if not np.isfinite(masked).any():
                        reason = "stop"  # the grammar allows nothing more: the answer is complete
                        break
                    token = self._pick(masked, settings, rng)
                if self._eog[token]:
                    reason = "stop"
                    break
                lib.llama_sampler_accept(grammar, token)
                pieces.append(self.backend.piece(token))
                if self._llm.n_tokens + 1 >= self.n_ctx:
                    break
                self._llm.eval([token])
        finally:
            lib.llama_sampler_free(grammar)
        return b"".join(pieces).decode("utf-8", errors="replace"), len(pieces), reason

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
    interruptible = True

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
