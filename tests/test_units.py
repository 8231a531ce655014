"""Numbers for people: the one parameter-count formatter."""

from __future__ import annotations

from lmread.units import format_params


def test_format_params() -> None:
    assert format_params(134_515_008) == "135M" and format_params(268_098_176) == "268M"
    assert format_params(1_700_000_000) == "1.7B" and format_params(850_000) == "850K"
    assert format_params(12) == "12" and format_params(None) == "?" and format_params(0) == "?"
    assert format_params(999_999) == "1M" and format_params(1_234) == "1.23K" and format_params(9_000_000) == "9M"
    assert format_params(2.5e12) == "2.5T"
