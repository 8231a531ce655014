"""What every detector shares: declared parameters, the finding it returns, and a per-sample
view of the token arrays as numpy (built once per sample and shared by all detectors).

A detector is deterministic: the same sample and parameters always give the same finding.  Its
``version`` changes whenever its rule changes, so marks written by an older rule are not taken
for the new rule's (see :mod:`lmread.detectors.annotate`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from lmread.errors import OptionError
from lmread.records import Sample

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Param:
    """One declared parameter: its default (which also fixes its type), a help line, and the
    allowed range (``minimum``) or values (``choices``)."""

    name: str
    default: int | float | str
    help: str
    minimum: float | None = None
    choices: tuple[str, ...] | None = None

    def parse(self, text: str, detector: str) -> int | float | str:
        """The value of ``--param NAME=text``, or a one-line :class:`OptionError`."""
        kind = type(self.default)
        try:
            value: int | float | str = kind(text)
        except ValueError:
            raise OptionError(
                f"--param {self.name}={text}: {detector} needs {kind.__name__} for {self.name} ({self.help})"
            ) from None
        if self.choices is not None and value not in self.choices:
            raise OptionError(f"--param {self.name}={text}: use one of {', '.join(self.choices)}")
        if self.minimum is not None and isinstance(value, (int, float)) and value < self.minimum:
            raise OptionError(f"--param {self.name}={text}: {detector} needs {self.name} >= {self.minimum:g}")
        return value


@dataclass
class Finding:
    """What a detector found on one sample.

    ``at`` is the fall token (``None``: no fall, censored at the sample's length); ``skip`` means
    the detector cannot read this sample (it writes a skip mark, which contributes nothing).
    """

    at: int | None
    category: str | None = None
    note: str | None = None
    skip: bool = False


class SampleView:
    """A sample's arrays as numpy, computed on first use and shared by every detector."""

    def __init__(self, sample: Sample) -> None:
        self.sample = sample
        self.n = sample.n_tokens
        self.text = sample.text

    @cached_property
    def ids(self) -> np.ndarray:
        return np.asarray(self.sample.tokens.ids, dtype=np.int64)

    @cached_property
    def token_codes(self) -> tuple[np.ndarray, str]:
        """``(codes, basis)``: one integer per token, equal exactly when the tokens are equal.

        Where every token has a real id (``>= 0``), the codes are the ids (``basis`` ``"ids"``).
        Imported text (``--tokenizer words`` / ``chars``) and tokens a server sent without an id
        carry id ``-1``, which says nothing about the token; then every token is coded by its
        exact bytes (``basis`` ``"text"``), cut from the sample's bytes by the recorded byte
        counts, so a token that only starts a multi-byte character is told apart too.
        """
        ids = self.ids
        if ids.size == 0 or int(ids.min()) >= 0:
            return ids, "ids"
        data = self.sample.raw if self.sample.raw is not None else self.text.encode("utf-8")
        ends = np.cumsum(np.asarray(self.sample.tokens.nbytes, dtype=np.int64)).tolist()
        vocab: dict[bytes, int] = {}
        codes = [vocab.setdefault(data[a:b], len(vocab)) for a, b in zip([0, *ends[:-1]], ends, strict=True)]
        return np.asarray(codes, dtype=np.int64), "text"

    @cached_property
    def offsets(self) -> np.ndarray:
        return np.asarray(self.sample.tokens.offsets, dtype=np.int64)

    def token_at_char(self, pos: np.ndarray | int) -> np.ndarray:
        """Index of the token whose span holds character ``pos`` (``offsets[i] <= pos < offsets[i+1]``)."""
        return np.searchsorted(self.offsets, pos, side="right") - 1

    @cached_property
    def words(self) -> tuple[np.ndarray, np.ndarray]:
        """``(word_ids, word_token)``: each word (a maximal run of non-whitespace) as an exact
        integer code (equal words, equal codes) and the token that holds its first character."""
        vocab: dict[str, int] = {}
        codes: list[int] = []
        starts: list[int] = []
        for m in _WORD.finditer(self.text):
            codes.append(vocab.setdefault(m.group(), len(vocab)))
            starts.append(m.start())
        return np.asarray(codes, dtype=np.int64), self.token_at_char(np.asarray(starts, dtype=np.int64))

    def distribution(self, name: str) -> np.ndarray | None:
        """The recorded per-token array ``logprob``, ``rank`` or ``entropy`` as floats (``nan`` for
        tokens without one), or ``None`` when the sample has none at all."""
        values = getattr(self.sample.tokens, name)
        if values is None or self.n == 0:
            return None
        arr = np.array(values, dtype=float)
        return None if np.all(np.isnan(arr)) else arr


class Detector:
    """Base of the detectors: ``name``, ``version``, ``category`` of its falls, declared
    ``params``, and :meth:`detect`."""

    name: str = ""
    version: str = "1"
    category: str | None = None
    params: tuple[Param, ...] = ()

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default."""
        return {p.name: p.default for p in self.params}

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def check(self, params: dict[str, Any]) -> None:
        """Raise :class:`OptionError` when the parameters do not go together (default: no rule)."""

    def detect(self, view: SampleView, params: dict[str, Any]) -> Finding:
        """The finding on one sample with fully resolved ``params``."""
        raise NotImplementedError
