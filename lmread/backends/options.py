"""Declared options: each option once, with its flag, help, range and "off" value.

An :class:`Option` is the single declaration of one setting; the command line builds its flag
from it (:mod:`lmread.cli.options`) and every check goes through :meth:`Option.check`, so an
error always names the flag the user typed.  Two sets are declared here:

* :class:`GenOptions` - the sampling options every backend takes; each field carries its
  :class:`Option` in the dataclass field's metadata (:func:`declared`,
  :func:`option_declarations`), so a new option is one new field;
* the options a backend takes when it loads a model, declared on the backend class
  (:attr:`lmread.backends.base.Backend.options`; :data:`THREADS` and :data:`CONTEXT` here are
  shared by several backends).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lmread.errors import OptionError

__all__ = [
    "CONTEXT", "MIN_CTX", "SEED_LIMIT", "THREADS", "BackendOption", "GenOptions", "Option", "check_seed", "declared",
    "gen_option_declarations", "option_declarations",
]

#: The smallest context (in tokens) any backend accepts.
MIN_CTX = 16

#: Seeds are unsigned 32-bit numbers on every backend.
SEED_LIMIT = 2**32


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: float) -> str:
    """A bound as written in a message: ``1``, ``0.5``, ``100`` (whole numbers without ``.0``)."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


@dataclass(frozen=True)
class Option:
    """One declared option.

    ``name`` is the keyword it is passed by (a :class:`GenOptions` field, or a keyword of a
    backend's ``from_card``), ``flag`` the command-line flag.  ``type`` is ``int``, ``float``,
    ``str`` or ``bool`` (a flag that is off by default).  ``help`` is one phrase without a final
    period.  Whole numbers and numbers are bounded by ``minimum``/``maximum`` (inclusive) and
    ``above`` (exclusive); ``off`` is the value that turns the option off; ``choices`` and
    ``prefixes`` restrict strings (a string of only spaces counts as empty unless ``blank_ok``);
    ``multiple`` options take a list (the flag may be repeated).  ``rule`` is what an error
    message says the value must be (built from the type and range when empty).
    ``default`` None means "not set" (a backend's own default).  ``command_line`` False keeps an
    option off the flags built from a declaration (the command line declares it otherwise).
    """

    name: str
    flag: str
    type: type
    help: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    off: Any = None
    choices: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    multiple: bool = False
    blank_ok: bool = False
    rule: str = ""
    command_line: bool = True

    def check(self, value: Any) -> Any:
        """``value`` if it is valid for this option (None: not set); else :class:`OptionError`
        naming the flag."""
        if value is None:
            return None
        if self.multiple:
            ok = isinstance(value, (list, tuple)) and all(self._valid(v) for v in value)
        else:
            ok = self._valid(value)
        if not ok:
            raise OptionError(f"invalid option {self.flag} {value!r}: {self.rule or self.default_rule(value)}")
        return value

    def _in_range(self, value: float) -> bool:
        return ((self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)
                and (self.above is None or value > self.above))

    def _valid(self, value: Any) -> bool:
        if self.type is bool:
            return isinstance(value, bool)
        if self.type is int:
            return _is_int(value) and self._in_range(value)
        if self.type is float:
            return _is_number(value) and self._in_range(value)
        if not isinstance(value, str) or not (value if self.blank_ok else value.strip()):
            return False
        return (not self.choices or value in self.choices) and (not self.prefixes or value.startswith(self.prefixes))

    def default_rule(self, value: Any = None) -> str:
        """What a valid value is, in words (from the declared type and range)."""
        if self.type is bool:
            return "must be true or false"
        if self.type is str:
            return f"use one of {', '.join(self.choices)}" if self.choices else "must not be empty"
        kind = "a whole number" if self.type is int else "a number"
        off = f" ({_num(self.off)} turns it off)" if self.off is not None else ""
        if (self.above is not None and _is_number(value) and not value > self.above
                and (self.minimum is None or value >= self.minimum)):
            return f"must be > {_num(self.above)}{off}"
        if self.minimum is not None and self.maximum is not None:
            return f"must be {kind} in [{_num(self.minimum)}, {_num(self.maximum)}]"
        if self.minimum is not None:
            return f"must be {kind} >= {_num(self.minimum)}{off}"
        if self.above is not None:
            return f"must be {kind} > {_num(self.above)}"
        return f"must be {kind}"


#: The options a backend takes when it loads a model are :class:`Option` values too.
BackendOption = Option

#: Options shared by several backends (each backend lists the ones it takes).
THREADS = Option("n_threads", "--threads", int, "CPU threads", minimum=1)
CONTEXT = Option("n_ctx", "--ctx", int, "Context size in tokens", minimum=MIN_CTX)

_SEED = Option("seed", "--seed", int, "Seed of one sample", minimum=0, maximum=SEED_LIMIT - 1,
               rule="must be a whole number in [0, 2^32)", command_line=False)


def check_seed(value: Any, flag: str = "--seed") -> int | None:
    """``value`` if it is None or a whole number in [0, 2^32); else :class:`OptionError`."""
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value < SEED_LIMIT:
        raise OptionError(f"invalid option {flag} {value!r}: {_SEED.rule}")
    return int(value)


def declared(option: Option) -> dict[str, Option]:
    """The metadata of a dataclass field declared by ``option``:
    ``field(default=..., metadata=declared(Option(...)))``."""
    return {"option": option}


def option_declarations(cls: type) -> tuple[Option, ...]:
    """The declaration of every field of the dataclass ``cls`` (those declared with
    :func:`declared`), in field order."""
    return tuple(f.metadata["option"] for f in fields(cls) if "option" in f.metadata)


@dataclass
class GenOptions:
    """Sampling options shared by every backend, each field declared once with its flag, help,
    range and "off" value (:func:`gen_option_declarations`): ``top_k=0``, ``top_p=1``,
    ``min_p=0`` and ``repetition_penalty=1`` mean "off"; ``temperature=0`` means greedy.
    ``max_tokens`` and ``stop`` are applied by the driver (a server backend also sends them with
    its request).  The seed of one sample is derived by the driver from the command's base
    ``--seed``, so it has no flag of its own here."""

    max_tokens: int = field(default=256, metadata=declared(Option(
        "max_tokens", "--max-tokens", int, "Tokens per sample at most", default=256, minimum=1)))
    temperature: float = field(default=1.0, metadata=declared(Option(
        "temperature", "--temperature", float, "Sampling temperature (0 = greedy)", default=1.0,
        minimum=0.0, maximum=100.0)))
    top_p: float = field(default=1.0, metadata=declared(Option(
        "top_p", "--top-p", float, "Nucleus sampling (1 = off)", default=1.0, minimum=0.0, maximum=1.0,
        above=0.0, off=1.0)))
    top_k: int = field(default=0, metadata=declared(Option(
        "top_k", "--top-k", int, "Top-k sampling (0 = off)", default=0, minimum=0, off=0)))
    min_p: float = field(default=0.0, metadata=declared(Option(
        "min_p", "--min-p", float, "Min-p sampling (0 = off)", default=0.0, minimum=0.0, maximum=1.0, off=0.0)))
    repetition_penalty: float = field(default=1.0, metadata=declared(Option(
        "repetition_penalty", "--repetition-penalty", float, "Repetition penalty (1 = off)", default=1.0,
        minimum=0.0, maximum=100.0, above=0.0, off=1.0)))
    seed: int | None = field(default=None, metadata=declared(_SEED))
    stop: list[str] = field(default_factory=list, metadata=declared(Option(
        "stop", "--stop", str,
        "Stop string (repeatable; \\n and \\t are understood). The sample ends once its text contains it",
        multiple=True, blank_ok=True, rule="stop strings must be non-empty")))
    top_logprobs: int = field(default=5, metadata=declared(Option(
        "top_logprobs", "--top-logprobs", int, "Alternatives recorded per token (0-20)", default=5,
        minimum=0, maximum=20)))

    def validate(self) -> GenOptions:
        """Raise :class:`OptionError` naming the first invalid option (by its flag); return self."""
        for option in option_declarations(type(self)):
            value = getattr(self, option.name)
            if value is None and option.name != "seed":
                raise OptionError(f"invalid option {option.flag} None: {option.rule or option.default_rule()}")
            option.check(value)
        return self

    def settings(self) -> dict[str, Any]:
        """The options as recorded in a sample (without the seed, which is recorded apart)."""
        out = asdict(self)
        out.pop("seed")
        return out


def gen_option_declarations() -> tuple[Option, ...]:
    """The declaration of every :class:`GenOptions` field, in field order."""
    return option_declarations(GenOptions)
