"""``lmread import``: texts and readings made elsewhere, as samples and marks of a study.

Formats (``--format``):

* ``jsonl`` (:mod:`lmread.importer.jsonl`): generations made elsewhere, or human controls;
* ``roft`` (:mod:`lmread.importer.roft`): RoFT's ``roft.csv`` of human boundary guesses;
* ``boundary`` (:mod:`lmread.importer.boundary`): any passage with a human-to-machine boundary
  (a character, word or sentence index) and optional reader guesses.

Every import is all or nothing: the whole file is checked before anything is written.
"""

from __future__ import annotations

from lmread.importer.jsonl import import_jsonl, read_import_file

FORMATS = ("jsonl", "roft", "boundary")

__all__ = ["FORMATS", "import_jsonl", "read_import_file"]
