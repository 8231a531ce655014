"""Shards of a generation plan: ``lmread generate --shard I/N`` on N machines fills one study.

Each sample of a plan (model, prompt, sample index) belongs to exactly one of the N shards,
chosen by a hash of the model id, the prompt text and the sample index.  So the split does not
depend on the order of ``--model`` or of the prompts, nor on which machine runs it, and adding
prompts later leaves every existing sample in its shard.  The shards' studies are joined with
``lmread merge``: sample ids are the same as in the unsharded run, so the union is that run.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from lmread.errors import OptionError

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)`` (1-based: shards 1/4 .. 4/4); ``None`` -> ``None``.

    Raises :class:`OptionError` naming ``--shard`` when it is not ``I/N`` with 1 <= I <= N.
    """
    if text is None:
        return None
    m = _SHARD.match(str(text))
    if not m:
        raise OptionError(f"invalid option --shard {text!r}: write I/N, e.g. 1/4 for the first of 4 machines")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 1 <= index <= count:
        raise OptionError(f"invalid option --shard {text!r}: I/N needs 1 <= I <= N (shards are numbered from 1)")
    return index, count


def shard_of(model_id: str, prompt: dict[str, Any], index: int, count: int) -> int:
    """The shard (1..count) that sample ``index`` of ``prompt`` for ``model_id`` belongs to."""
    blob = orjson.dumps(["lmread-shard", str(model_id), str(prompt.get("text", "")), int(index)])
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "big") % count + 1


def in_shard(shard: tuple[int, int] | None, model_id: str, prompt: dict[str, Any], index: int) -> bool:
    """Whether the sample belongs to ``shard`` (always, when there is no shard)."""
    if shard is None or shard[1] == 1:
        return True
    return shard_of(model_id, prompt, index, shard[1]) == shard[0]
