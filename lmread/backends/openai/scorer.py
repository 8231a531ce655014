"""Teacher-forced scoring through ``/v1/completions`` with ``echo: true`` and ``max_tokens: 1``.

Servers that do not return prompt log-probabilities (llama-server), or whose echoed
log-probabilities are one token off (llama-cpp-python with models that add no BOS token),
raise ``BackendError("scoring not supported by this server ...")``.
"""

from __future__ import annotations

from typing import Any

from lmread.backends.base import TokenChunk
from lmread.backends.openai.completions import ENDPOINT, parse_choice
from lmread.backends.openai.discovery import ServerInfo
from lmread.errors import BackendError, OptionError


def score_echo(server: ServerInfo, text: str, prompt: str = "", top_logprobs: int = 5) -> list[TokenChunk]:
    """Log-probabilities of ``text`` after ``prompt`` as ``server`` echoes them for its served
    model: one chunk per token of ``text``.  A token straddling the prompt/text boundary is
    kept with only its part inside ``text``."""
    if not isinstance(text, str) or not isinstance(prompt, str):
        raise OptionError("invalid score input: give the text and prompt as strings")
    if not text:
        return []
    http = server.http
    k = top_logprobs
    full = prompt + text
    data = http.post_json(ENDPOINT, {
        "model": server.served_model(), "prompt": full, "max_tokens": 1, "echo": True,
        "logprobs": k, "temperature": 0.0, "stream": False,
    })
    unsupported = f"scoring not supported by this server ({http.url})"
    try:
        choice = data["choices"][0]
    except (KeyError, IndexError, TypeError):
        raise BackendError(f"{unsupported}: no choices in its answer") from None
    lp = choice.get("logprobs")
    if not isinstance(lp, dict) or not isinstance(lp.get("tokens"), list) or not isinstance(
        lp.get("text_offset"), list
    ):
        raise BackendError(f"{unsupported}: it returns no prompt log-probabilities with echo")
    tokens: list[Any] = lp["tokens"]
    offsets: list[Any] = lp["text_offset"]
    chunks = parse_choice({"logprobs": lp}, k)
    if len(chunks) != len(tokens) or len(offsets) != len(tokens):
        raise BackendError(f"{unsupported}: its echo log-probabilities are malformed")
    # Offsets are relative to the start of the echoed prompt.
    start = offsets[0] if offsets and isinstance(offsets[0], int) else 0
    rel = [int(o) - start if isinstance(o, int) else -1 for o in offsets]
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    n_prompt = usage.get("prompt_tokens")
    covers_generated = any(o >= len(full) for o in rel)
    bos_skipped = isinstance(n_prompt, int) and sum(1 for o in rel if o < len(full)) == n_prompt - 1
    if not covers_generated and not bos_skipped:
        raise BackendError(
            f"{unsupported}: its echoed log-probabilities cannot be aligned with the tokens "
            "(llama-cpp-python without a BOS token); score with the llamacpp backend instead"
        )
    out: list[TokenChunk] = []
    for i, chunk in enumerate(chunks):
        o = rel[i]
        end = rel[i + 1] if i + 1 < len(rel) else o + len(chunk.piece.decode("utf-8", errors="replace"))
        if o >= len(full) or end <= len(prompt):
            continue
        if o < len(prompt):  # token straddles the boundary: keep its part inside the text
            chunk.piece = full[len(prompt) : end].encode("utf-8")
        out.append(chunk)
    if b"".join(c.piece for c in out).decode("utf-8", errors="replace") != text:
        raise BackendError(f"{unsupported}: its echoed tokens do not add up to the text")
    return out
