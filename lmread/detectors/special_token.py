"""``special-token``: a control or special token written into running text.

A model that writes its own control vocabulary as text has left the text: Gemma 3 270M
continuing a bread recipe wrote ``<start_of_image>`` at token 7 and never recovered.  The rule
reads the generated text (the concatenation of the token pieces, so it works for every backend
and for imported text) and finds the first match of any of these patterns:

* ``<|...|>`` markers (``<|im_start|>``, ``<|im_end|>``, ``<|endoftext|>``, ``<|eot_id|>``, ...);
* Gemma/PaLM style ``<start_of_...>`` / ``<end_of_...>`` (``<start_of_turn>``, ``<end_of_image>``),
  ``<image_soft_token>``, ``<unusedN>``;
* ``<eos>``, ``<bos>``, ``<pad>``, ``<unk>``, ``<mask>``, ``<sep>``, ``<cls>``, ``<s>``, ``</s>``;
* ``[INST]`` / ``[/INST]``, ``<<SYS>>``, ``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``.

The fall is the token holding the first character of the match (category ``other``).  An
end-of-text or end-of-turn marker (``<|endoftext|>``, ``<|im_end|>``, ``<|eot_id|>``,
``<end_of_turn>``, ``<eos>``, ``</s>``) followed by nothing but whitespace is how a model stops,
not a fall, and is ignored unless ``final=1``.  ``extra`` adds a literal string to look for
(e.g. ``extra=<think>``).
"""

from __future__ import annotations

import re
from typing import Any

from lmread.detectors.base import Detector, Finding, Param, SampleView

_PATTERN = re.compile(
    r"<\|[A-Za-z0-9_.:-]{1,40}\|>"
    r"|<(?:start|end)_of_[a-z_]{1,20}>|<image_soft_token>|<unused\d{1,4}>"
    r"|</?s>|<(?:eos|bos|pad|unk|mask|sep|cls)>"
    r"|\[/?INST\]|<</?SYS>>|\[(?:PAD|UNK|CLS|SEP|MASK)\]"
)
_STOPS = {"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<eos>", "</s>"}


class SpecialToken(Detector):
    name = "special-token"
    version = "1"
    category = "other"
    params = (
        Param("final", 0, "1: also count an end-of-text marker that ends the generation", minimum=0),
        Param("extra", "", "one more literal string that counts as a special token"),
    )

    def detect(self, view: SampleView, params: dict[str, Any]) -> Finding:
        text = view.text
        hits = []
        if "<" in text or "[" in text:
            for m in _PATTERN.finditer(text):
                if not params["final"] and m.group() in _STOPS and not text[m.end():].strip():
                    break
                hits.append((m.start(), m.group()))
                break
        extra = params["extra"]
        if extra:
            pos = text.find(extra)
            if pos >= 0:
                hits.append((pos, extra))
        if not hits:
            return Finding(None)
        pos, found = min(hits)
        at = int(view.token_at_char(pos))
        return Finding(at, self.category, f"special token {found!r} in the text at character {pos}")


DETECTOR = SpecialToken()
