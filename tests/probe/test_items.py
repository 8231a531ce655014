"""Splitting list texts into items (exact character offsets) and the built-in lists."""

from __future__ import annotations

import pytest

from lmread.errors import OptionError
from lmread.probe.items import split_items, split_lines, split_regex
from lmread.probe.lists import LISTS, builtin_list


def check_offsets(text: str, items: list) -> None:
    for i, item in enumerate(items):
        assert item.index == i
        assert text[item.start : item.end] == item.text
        assert text[item.start : item.word_end] == item.first_word
        assert item.text == item.text.strip() and item.text


def test_lines_skip_blank_lines_and_trim_space() -> None:
    text = "  Alpha one\n\n\tBeta two  \r\nGamma\n   \n"
    items = split_lines(text)
    check_offsets(text, items)
    assert [i.text for i in items] == ["Alpha one", "Beta two", "Gamma"]
    assert [i.start for i in items] == [2, 14, 26]
    assert [i.first_word for i in items] == ["Alpha", "Beta", "Gamma"]


def test_first_word_rules() -> None:
    text = "O'Brien, Pat\nJean-Luc Picard\n(aside) text\n1789 – 1797\nÉmile Zola\n"
    items = split_lines(text)
    check_offsets(text, items)
    assert [i.first_word for i in items] == ["O'Brien", "Jean-Luc", "(aside)", "1789", "Émile"]


def test_regex_marks_item_starts_and_keeps_a_preamble_out() -> None:
    text = "Presidents: 1. George Washington, 2. John Adams, 3. Thomas Jefferson."
    items = split_regex(text, r"\d+\. ")
    check_offsets(text, items)
    assert [i.text for i in items] == ["1. George Washington,", "2. John Adams,", "3. Thomas Jefferson."]
    # a lookbehind makes the name itself the item start
    items = split_regex(text, r"(?<=\d\. )\w")
    check_offsets(text, items)
    assert [i.first_word for i in items] == ["George", "John", "Thomas"]
    assert items[1].start == text.index("John")
    # multi-line mode: ^ is the start of each line
    lines = "a: x\n b: y\nc: z"
    assert [i.text for i in split_regex(lines, r"^\s*\w:")] == ["a: x", "b: y", "c: z"]


def test_errors_are_one_line_option_errors() -> None:
    with pytest.raises(OptionError, match="is empty"):
        split_items(" \n\n", source="file x.txt")
    with pytest.raises(OptionError, match="has 1 item, a probe needs at least 2"):
        split_items("only one line\n", source="file x.txt")
    with pytest.raises(OptionError, match=r"--item-regex 'zz' matches 0 items"):
        split_items("a b c\nd e f\n", item_regex="zz")
    with pytest.raises(OptionError, match="invalid option --item-regex"):
        split_items("a\nb\n", item_regex="(")


def test_builtin_lists() -> None:
    presidents = builtin_list("presidents").splitlines()
    assert len(presidents) == 47
    assert presidents[0] == "George Washington, April 30, 1789 – March 4, 1797"
    assert presidents[1] == "John Adams, March 4, 1797 – March 4, 1801"
    assert presidents[15] == "Abraham Lincoln, March 4, 1861 – April 15, 1865"
    assert presidents[21].startswith("Grover Cleveland") and presidents[23].startswith("Grover Cleveland")
    # each term starts where the previous one ended
    ends = [line.split(" – ")[1] for line in presidents[:-1]]
    starts = [line.split(", ", 1)[1].split(" – ")[0] for line in presidents[1:]]
    assert ends == starts
    elements = builtin_list("elements").splitlines()
    assert len(elements) == 118 and elements[0] == "Hydrogen" and elements[25] == "Iron" and elements[-1] == "Oganesson"
    assert len(set(elements)) == 118
    assert builtin_list("months").splitlines()[8] == "September"
    assert builtin_list("planets").splitlines() == ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn",
                                                    "Uranus", "Neptune"]
    for name in LISTS:
        text = builtin_list(name)
        assert len(split_items(text)) == len(text.splitlines())
    with pytest.raises(OptionError, match="unknown list 'kings': use one of presidents, elements, months, planets"):
        builtin_list("kings")
