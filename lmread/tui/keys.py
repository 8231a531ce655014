"""Keys in the order they were typed.

Textual checks an app's (non-priority) bindings only once a key event has bubbled up from the
focused widget to the app, while a widget's or screen's ``on_key`` runs on the way up.  A key
acted on by a binding can therefore be acted on after the next key has already passed the
screen: a fall's category typed right after ``f`` into a prompt that was not yet on screen was
lost that way.  A screen that must see every key in order (the reader) handles them all in its
``on_key`` and runs the bindings itself, looked up with :func:`key_table`.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.binding import Binding, BindingType
from textual.dom import DOMNode

__all__ = ["key_table"]


def key_table(*groups: tuple[DOMNode, Iterable[BindingType]]) -> dict[str, tuple[DOMNode, str]]:
    """Key -> (namespace, action) of the bindings of each ``(namespace, bindings)`` group; a later
    group wins a key both bind."""
    out: dict[str, tuple[DOMNode, str]] = {}
    for node, bindings in groups:
        for binding in bindings:
            if isinstance(binding, Binding):
                for key in binding.key.split(","):
                    out[key.strip()] = (node, binding.action)
    return out
