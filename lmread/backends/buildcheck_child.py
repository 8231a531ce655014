"""The build check's child process: load a model, prefill a prompt, generate and score, print one JSON object.

Run as ``python -m lmread.backends.buildcheck_child --backend NAME (--model ID | --path FILE)`` by
:mod:`lmread.backends.buildcheck`, which reads the result.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

from lmread.backends.buildcheck import PROBE_PROMPT, PROBE_SCORE_TEXT, PROBE_TOKENS


def _child(backend: str, model: str | None, path: str | None) -> dict[str, Any]:
    from lmread.backends import open_backend
    from lmread.backends.base import GenOptions, StreamEnd
    from lmread.catalog import card_for_path, load_catalog
    from lmread.config import load_settings

    settings = load_settings()
    steps: dict[str, Any] = {}
    t0 = time.monotonic()
    card = load_catalog(settings).get(model) if model else card_for_path(str(path), settings)
    options: dict[str, Any] = {"n_ctx": 256} if backend in ("llamacpp", "hf") else {}
    engine = open_backend(card, backend, **options)
    steps["load_s"] = round(time.monotonic() - t0, 3)
    try:
        t1 = time.monotonic()
        pieces: list[bytes] = []
        reason = ""
        # a backend streams until told to stop (max_tokens is the driver's): cancel after the tokens
        cancel = threading.Event()
        for item in engine.stream(PROBE_PROMPT, GenOptions(max_tokens=PROBE_TOKENS, temperature=0.0, seed=1), cancel):
            if isinstance(item, StreamEnd):
                reason = "length" if item.reason == "cancelled" and cancel.is_set() else item.reason
                break
            pieces.append(item.piece)
            if len(pieces) >= PROBE_TOKENS:
                cancel.set()
        steps["generate_s"] = round(time.monotonic() - t1, 3)
        steps["tokens"] = len(pieces)
        steps["finish_reason"] = reason
        steps["text"] = b"".join(pieces).decode("utf-8", errors="replace")
        if not pieces:
            return {"ok": False, "message": f"generated no token (finish reason {reason!r})", "steps": steps}
        t2 = time.monotonic()
        scored = engine.score(PROBE_SCORE_TEXT, prompt=PROBE_PROMPT)
        steps["score_s"] = round(time.monotonic() - t2, 3)
        steps["scored_tokens"] = len(scored)
        if not scored or any(c.logprob is None for c in scored):
            return {"ok": False, "message": "scoring gave no log-probabilities", "steps": steps}
    finally:
        engine.close()
    return {"ok": True, "message": "ok", "steps": steps}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the probe child; prints one JSON object."""
    from lmread.errors import LmreadError

    parser = argparse.ArgumentParser(prog="python -m lmread.backends.buildcheck_child")
    parser.add_argument("--backend", required=True)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--model")
    where.add_argument("--path")
    args = parser.parse_args(argv)
    try:
        out = _child(args.backend, args.model, args.path)
    except LmreadError as exc:
        out = {"ok": False, "message": str(exc)}
    except Exception as exc:  # a bug or a library failure: still one line for the parent
        out = {"ok": False, "message": " ".join(f"{type(exc).__name__}: {exc}".split())[:500]}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0 if out.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
