"""Options declared once (issue 17): each sampling option is a field of GenOptions with its flag,
help, range and "off" value, from which the command line builds its flag and every check is made;
backend options the same way from their classes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

import click
import pytest
from click.testing import CliRunner

from lmread.backends import backend_class, backend_names, option_table
from lmread.backends.options import GenOptions, Option, declared, gen_option_declarations, option_declarations
from lmread.cli import main
from lmread.cli.options import backend_flags, declared_flags, gen_options_from, sampling_flags
from lmread.errors import OptionError


@dataclass
class WithTypicalP(GenOptions):
    """GenOptions with one more sampling option, added in one place: its field."""

    typical_p: float = field(default=1.0, metadata=declared(Option(
        "typical_p", "--typical-p", float, "Typical sampling (1 = off)", default=1.0, minimum=0.0, maximum=1.0,
        above=0.0, off=1.0)))


def command_for(cls: type[GenOptions]) -> click.Command:
    """A command taking the declared flags of ``cls`` that prints the checked options."""

    @click.command()
    @declared_flags(cls)
    def show(**values: Any) -> None:
        try:
            options = gen_options_from(values, cls=cls)
        except OptionError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(repr(options.settings()))

    return show


def test_every_genoptions_field_is_declared_once_under_its_own_name() -> None:
    declared_names = [o.name for o in gen_option_declarations()]
    assert declared_names == [f.name for f in fields(GenOptions)]
    flags = [o.flag for o in gen_option_declarations()] + [o.flag for o, _ in option_table()]
    assert len(flags) == len(set(flags)), "a flag is declared twice"
    for o in gen_option_declarations():
        assert o.flag == "--" + o.name.replace("_", "-")
        assert o.help and not o.help.endswith(".")
        assert o.default is None or o.default == GenOptions().__getattribute__(o.name)


def test_an_option_added_as_one_field_becomes_a_flag_with_help_and_default() -> None:
    result = CliRunner().invoke(command_for(WithTypicalP), ["--help"])
    assert result.exit_code == 0
    help_text = " ".join(result.output.split())
    assert "--typical-p FLOAT Typical sampling (1 = off). [default: 1.0]" in help_text
    for o in gen_option_declarations():  # the inherited ones are there too
        assert (o.flag in help_text) == o.command_line
    ok = CliRunner().invoke(command_for(WithTypicalP), ["--typical-p", "0.9", "--top-k", "40"])
    assert ok.exit_code == 0, ok.output
    assert "'typical_p': 0.9" in ok.output and "'top_k': 40" in ok.output


@pytest.mark.parametrize(("value", "rule"), [
    ("1.5", "must be a number in [0, 1]"),
    ("-0.1", "must be a number in [0, 1]"),
    ("0", "must be > 0 (1 turns it off)"),
    ("nan", "must be a number in [0, 1]"),
])
def test_an_option_added_as_one_field_is_range_checked(value: str, rule: str) -> None:
    result = CliRunner().invoke(command_for(WithTypicalP), ["--typical-p", value])
    assert result.exit_code == 1
    assert f"invalid option --typical-p {float(value)!r}: {rule}" in result.output
    with pytest.raises(OptionError, match=re.escape(f"--typical-p {float(value)!r}: {rule}")):
        WithTypicalP(typical_p=float(value)).validate()


# the real sampling flags of `lmread generate`: a bad value is a one-line error naming the flag,
# raised before any model or study is touched
@pytest.mark.parametrize(("args", "message"), [
    (["--max-tokens", "0"], "invalid option --max-tokens 0: must be a whole number >= 1"),
    (["--temperature", "101"], "invalid option --temperature 101.0: must be a number in [0, 100]"),
    (["--top-p", "0"], "invalid option --top-p 0.0: must be > 0 (1 turns it off)"),
    (["--top-k", "-1"], "invalid option --top-k -1: must be a whole number >= 0 (0 turns it off)"),
    (["--min-p", "2"], "invalid option --min-p 2.0: must be a number in [0, 1]"),
    (["--repetition-penalty", "0"], "invalid option --repetition-penalty 0.0: must be > 0 (1 turns it off)"),
    (["--top-logprobs", "21"], "invalid option --top-logprobs 21: must be a whole number in [0, 20]"),
    (["--stop", ""], "invalid option --stop ['']: stop strings must be non-empty"),
])
def test_generate_checks_every_sampling_flag_by_its_declaration(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    code = main(["generate", "--study", str(tmp_path / "s"), "--model", "no-such-model", "--prompt", "Hi", *args])
    out, err = capsys.readouterr()
    assert code != 0 and err == f"lmread: error: {message}\n"
    assert not (tmp_path / "s").exists()


def test_generate_help_lists_every_declared_flag_with_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for o in gen_option_declarations():
        if o.command_line:
            assert o.flag in help_text and " ".join(f"{o.help}.".split())[:40] in help_text
    for o, names in option_table():
        assert o.flag in help_text and f"({', '.join(names)})." in help_text


def test_stop_strings_may_be_blank_but_not_empty() -> None:
    assert GenOptions(stop=["\n", " "]).validate().stop == ["\n", " "]
    with pytest.raises(OptionError, match="stop strings must be non-empty"):
        GenOptions(stop=["x", ""]).validate()


def test_seed_has_no_sampling_flag_but_is_checked() -> None:
    seed = next(o for o in gen_option_declarations() if o.name == "seed")
    assert not seed.command_line
    GenOptions(seed=2**32 - 1).validate()
    with pytest.raises(OptionError, match=r"^invalid option --seed 4294967296: must be a whole number in \[0, 2\^32\)$"):
        GenOptions(seed=2**32).validate()


def test_option_check_by_type() -> None:
    whole = Option("n", "--n", int, "N", minimum=1, maximum=3)
    assert whole.check(2) == 2 and whole.check(None) is None
    for bad in (0, 4, 2.0, True, "2"):
        with pytest.raises(OptionError, match=r"^invalid option --n .*: must be a whole number in \[1, 3\]$"):
            whole.check(bad)
    number = Option("x", "--x", float, "X", above=0.0, rule="must be a timeout in seconds > 0")
    assert number.check(0.5) == 0.5 and number.check(3) == 3
    for bad in (0, -1.0, math.inf, math.nan, False):
        with pytest.raises(OptionError, match="must be a timeout in seconds > 0"):
            number.check(bad)
    choice = Option("p", "--p", str, "P", choices=("a", "b"))
    assert choice.check("a") == "a"
    with pytest.raises(OptionError, match=r"^invalid option --p 'c': use one of a, b$"):
        choice.check("c")
    text = Option("t", "--t", str, "T")
    with pytest.raises(OptionError, match="must not be empty"):
        text.check("  ")
    many = Option("m", "--m", int, "M", minimum=0, multiple=True)
    assert many.check([0, 1]) == [0, 1]
    with pytest.raises(OptionError, match=r"^invalid option --m \[0, -1\]: must be a whole number >= 0$"):
        many.check([0, -1])


def test_backend_flags_come_from_the_backend_classes() -> None:
    @click.command()
    @backend_flags
    def show(**values: Any) -> None:
        click.echo(repr(sorted((k, v) for k, v in values.items() if v not in (None, False))))

    result = CliRunner().invoke(show, ["--help"])
    help_text = " ".join(result.output.split())
    table = {o.name: names for o, names in option_table()}
    for name in backend_names():
        for o in backend_class(name).options:
            assert name in table[o.name]
            assert " ".join(f"{o.help} ({', '.join(table[o.name])}).".split()) in help_text
    ran = CliRunner().invoke(show, ["--retries", "2", "--read-timeout", "2.5"])
    assert ran.output.strip() == "[('read_timeout_s', 2.5), ('retries', 2)]"
    assert sampling_flags is not None and option_declarations(GenOptions) == gen_option_declarations()


@pytest.mark.parametrize(("args", "message"), [
    (["--retries", "11"], "invalid option --retries 11: must be a whole number in [0, 10]"),
    (["--read-timeout", "0"], "invalid option --read-timeout 0.0: must be a timeout in seconds > 0"),
    (["--protocol", "grpc"], "invalid option --protocol 'grpc': use one of auto, openai, native"),
    (["--concurrency", "0"], "invalid option --concurrency 0: must be a whole number >= 1"),
])
def test_openai_flags_are_checked_by_their_declarations(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    code = main(["generate", "--study", str(tmp_path / "s"), "--model", "m", "--backend", "openai",
                 "--base-url", "http://127.0.0.1:9", "--prompt", "Hi", *args])
    _, err = capsys.readouterr()
    assert code != 0 and err == f"lmread: error: {message}\n"
    assert not (tmp_path / "s").exists()
