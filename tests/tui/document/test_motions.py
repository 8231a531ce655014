"""The top layer alone: :class:`DocumentNavigator` moves over the wrapped document it holds, using
only the public API of that layer and of its spans; and the layers are composed, not inherited."""

from __future__ import annotations

import ast
from pathlib import Path

import lmread.tui.document as document_package
from lmread.tui.document import DocumentNavigator, TokenSpans, WrappedDocument

from .test_wrap import PublicSpans


class PublicWrapped:
    """Only the public API of :class:`WrappedDocument`."""

    __slots__ = ("_inner",)

    def __init__(self, inner: WrappedDocument) -> None:
        object.__setattr__(self, "_inner", inner)

    def __getattr__(self, name: str):
        assert not name.startswith("_"), f"the navigator read a private field: {name}"
        return getattr(object.__getattribute__(self, "_inner"), name)


def navigator(text: str, offsets: list[int], width: int = 80, revealed: int | None = None) -> DocumentNavigator:
    spans = PublicSpans(TokenSpans(text, offsets, revealed))
    return DocumentNavigator(PublicWrapped(WrappedDocument(spans, width=width)))  # type: ignore[arg-type]


def test_motions_through_the_public_api_only() -> None:
    text = "One fish. Two fish, red fish!\nBlue fish."
    offsets = [0, 3, 9, 13, 19, 23, 29, 30, 34, 40]
    nav = navigator(text, offsets, width=12)
    assert nav.move(0, "token", 1) == 1 and nav.move(1, "token", -1) == 0
    assert nav.move(0, "sentence", 1) == 2 and nav.move(5, "sentence", -1) == 2
    assert nav.move(3, "word", 1) == 4 and nav.move(0, "edge", 1) == 8
    assert nav.move(0, "line", 1) == 2 and nav.move(2, "line", -1) == 0
    assert nav.move(0, "page", 1, page_lines=10) == 7  # the last line, at the column of token 0


def test_motions_see_only_revealed_tokens() -> None:
    nav = navigator("aa bb cc", [0, 2, 5, 8], revealed=2)
    assert nav.move(0, "edge", 1) == 1 and nav.move(1, "token", 1) == 1 and nav.move(0, "sentence", 1) == 0
    assert navigator("", [0]).move(0, "word", 1) == 0


def test_layers_are_composed_not_inherited() -> None:
    """No class of the document package subclasses another one, and no module reads another
    object's private fields (``x._name`` with ``x`` not ``self``)."""
    folder = Path(document_package.__file__).parent
    classes: dict[str, list[str]] = {}
    bad: list[str] = []
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                classes[node.name] = [b.id for b in node.bases if isinstance(b, ast.Name)]
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                bad.append(f"{path.name}:{node.lineno} reads .{node.attr}")
    own = set(classes)
    assert {"TokenSpans", "WrappedDocument", "DocumentNavigator"} <= own
    assert [(name, bases) for name, bases in classes.items() if set(bases) & own] == []
    assert bad == []
