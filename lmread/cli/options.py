"""Command-line flags built from declared options (:class:`lmread.backends.options.Option`).

Each option is declared once - the sampling options on :class:`~lmread.backends.options.GenOptions`,
a backend's load options on its class - and its flag, help, type and default come from that
declaration (:func:`click_option`); the values are checked by the same declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from lmread.backends import option_table
from lmread.backends.options import GenOptions, Option, option_declarations

_CLICK_TYPES: dict[type, Any] = {int: click.INT, float: click.FLOAT, str: click.STRING}


def click_option(option: Option, help_text: str | None = None,
                 show_default: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The click option of ``option``: its flag, passed to the command as ``option.name``;
    ``help_text`` replaces the declared help (else the help and a period)."""
    text = help_text if help_text is not None else f"{option.help}."
    if option.type is bool:
        return click.option(option.flag, option.name, is_flag=True, help=text)
    if option.multiple:
        return click.option(option.flag, option.name, type=_CLICK_TYPES[option.type], multiple=True, help=text)
    return click.option(option.flag, option.name, type=_CLICK_TYPES[option.type], default=option.default,
                        show_default=show_default and option.default is not None, help=text)


def declared_flags(cls: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding one flag per declared field of the dataclass ``cls`` (those with a
    command line), defaults shown."""

    def add(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(option_declarations(cls)):
            if option.command_line:
                command = click_option(option, show_default=True)(command)
        return command

    return add


#: one flag per sampling option (:class:`GenOptions`)
sampling_flags = declared_flags(GenOptions)


def backend_flags(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one flag per declared backend option (:func:`lmread.backends.option_table`), its help
    naming the backends that take it."""
    for option, names in reversed(option_table()):
        command = click_option(option, f"{option.help} ({', '.join(names)}).")(command)
    return command


def gen_options_from(values: dict[str, Any], convert: Callable[[str], str] = lambda s: s,
                     cls: type[GenOptions] = GenOptions) -> GenOptions:
    """The :class:`GenOptions` (or ``cls``) of the sampling flags in ``values`` (taken out of
    it), checked; ``convert`` turns each command-line string of a ``multiple`` option into its
    value (stop strings: escapes).  Options without a flag keep their defaults."""
    taken: dict[str, Any] = {}
    for option in option_declarations(cls):
        if option.command_line and option.name in values:
            value = values.pop(option.name)
            if option.multiple:
                value = [convert(v) for v in value]
            taken[option.name] = value
    return cls(**taken).validate()
