"""``lmread import --format boundary``: any passage that turns machine-written at a known point,
with optional reader guesses, from JSONL (one passage a line)::

    {"text": "...", "boundary": 57, "boundary_kind": "word", "model": "gpt-x", "n_params": 1300000000,
     "guesses": [{"reader": "r17", "guess": 60}, {"reader": "r18", "guess": null}],
     "id": "...", "prompt_set": "reviews", "top_p": 0.9}

or ``"sentences": ["...", "..."]`` instead of ``text`` (joined with single spaces; the sentence
starts are recorded).  ``boundary`` is the index of the first machine-written unit, counted in
``boundary_kind``: ``char`` (characters), ``word`` (maximal runs of non-whitespace) or
``sentence`` (the given sentences, else lmread's splitter, :mod:`lmread.sentences`); ``null``
means all human (a human control).  A guess is the index (same kind) of the first unit the reader
took for machine-written, ``null`` for "all human".  ``text``/``sentences``, ``boundary``,
``boundary_kind`` and ``model`` are required.

Two layouts (``--as``):

* ``samples`` (default): as RoFT passages (:mod:`lmread.importer.passages`): the human part is
  the prompt (``prompt.human``), the machine part the sample's text, so it enters model curves;
  a guess inside the human part is a ``prompt_fall`` mark;
* ``controls``: the whole text is a splice-like control whose known onset is the token holding
  the boundary's first character (SemEval-2024 Task 8 subtask C's ``human_end_boundary`` word
  index, for instance), mixed into reading queues by ``lmread controls`` to check readers.

Every line is checked before anything is written; bad lines are counted per kind in one error.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from lmread.errors import OptionError, StudyError
from lmread.importer.passages import _assemble, _token_at, reader_record, write_import
from lmread.records import Mark, Sample, check_annotator, human_control, stable_id
from lmread.sentences import join_sentences, split_sentences

KINDS = ("char", "word", "sentence")
LAYOUTS = ("samples", "controls")
_FIELDS = {"text", "sentences", "boundary", "boundary_kind", "model", "n_params", "guesses", "id", "prompt_set",
           "top_p", "prompt"}
_WORD = re.compile(r"\S+")
BAD_KINDS = {
    "json": "line not a JSON object",
    "field": "missing or malformed field",
    "boundary": "boundary outside the text",
    "guess": "guess outside the text",
    "reader": "reader name not safe",
    "duplicate": "passage id repeated",
}


class _Bad(Exception):
    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.detail = detail


def _starts(text: str, kind: str, sentences: list[int] | None) -> list[int]:
    if kind == "char":
        return list(range(len(text)))
    if kind == "word":
        return [m.start() for m in _WORD.finditer(text)]
    return sentences if sentences is not None else split_sentences(text)


def _index(value: Any, starts: list[int], what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(starts):
        raise _Bad(what)
    return starts[value]


def _line(rec: Any) -> dict[str, Any]:
    if not isinstance(rec, dict):
        raise _Bad("json")
    if set(rec) - _FIELDS:
        raise _Bad("field", f"unknown field {sorted(set(rec) - _FIELDS)[0]!r}")
    has_text = isinstance(rec.get("text"), str)
    sents = rec.get("sentences")
    if has_text == (sents is not None):
        raise _Bad("field", "give 'text' or 'sentences'")
    if sents is not None and (not isinstance(sents, list) or not sents or not all(isinstance(s, str) and s.strip()
                                                                                    for s in sents)):
        raise _Bad("field", "'sentences' must be a list of non-empty strings")
    if rec.get("boundary_kind") not in KINDS:
        raise _Bad("field", f"'boundary_kind' must be one of {', '.join(KINDS)}")
    if sents is not None and rec["boundary_kind"] != "sentence":
        raise _Bad("field", "with 'sentences' the boundary_kind is sentence")
    if "boundary" not in rec:
        raise _Bad("field", "'boundary' is required (null: all human)")
    if not isinstance(rec.get("model"), str) or not rec["model"].strip():
        raise _Bad("field", "'model' is required")
    n = rec.get("n_params")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
        raise _Bad("field", "'n_params' must be a positive whole number")
    top_p = rec.get("top_p")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float))):
        raise _Bad("field", "'top_p' must be a number")
    for key in ("id", "prompt_set", "prompt"):
        if rec.get(key) is not None and not isinstance(rec[key], str):
            raise _Bad("field", f"'{key}' must be a string")
    guesses = rec.get("guesses") or []
    if not isinstance(guesses, list) or not all(isinstance(g, dict) and isinstance(g.get("reader"), str)
                                                and "guess" in g for g in guesses):
        raise _Bad("field", "'guesses' must be a list of {reader, guess}")
    return rec


def import_boundary(study_dir: Path, path: Path, n_params: dict[str, int] | None = None,
                    progress: Callable[[str], None] | None = None, layout: str = "samples") -> dict[str, Any]:
    """Import a boundary file (see the module notes) into ``study_dir``, all or nothing."""
    if layout not in LAYOUTS:
        raise OptionError(f"--as {layout!r}: use samples or controls")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StudyError(f"import file {path} does not exist") from None
    except OSError as exc:
        raise StudyError(f"cannot read import file {path}: {exc.strerror}") from None
    sizes = dict(n_params or {})
    for line in data.split(b"\n"):  # a size given on any line holds for every line of that model
        try:
            rec = orjson.loads(line) if line.strip() else None
        except orjson.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("model"), str) and isinstance(rec.get("n_params"), int):
            sizes.setdefault(rec["model"].strip(), rec["n_params"])
    bad: dict[str, list[tuple[int, str]]] = {}
    samples: list[Sample] = []
    marks: list[Mark] = []
    readers: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    kinds: Counter[str] = Counter()
    rows = 0
    for line_no, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        rows += 1
        try:
            try:
                rec = _line(orjson.loads(line))
            except orjson.JSONDecodeError:
                raise _Bad("json") from None
            built = _build(rec, sizes, layout)
        except _Bad as exc:
            bad.setdefault(exc.kind, []).append((line_no, exc.detail))
            continue
        sample, guess_marks, kind = built
        if sample.id in seen:
            bad.setdefault("duplicate", []).append((line_no, ""))
            continue
        seen.add(sample.id)
        kinds[kind] += 1
        samples.append(sample)
        marks.extend(guess_marks)
        for m in guess_marks:
            readers.setdefault(m.annotator, reader_record(m.annotator, "boundary", m.annotator, {}))
    if bad:
        parts = []
        for kind, hits in sorted(bad.items()):
            detail = f": {hits[0][1]}" if hits[0][1] else ""
            parts.append(f"{len(hits)} {BAD_KINDS[kind]} (first at line {hits[0][0]}{detail})")
        raise StudyError(f"{path}: {sum(map(len, bad.values()))} bad lines: {'; '.join(parts)}; nothing was imported")
    if not samples:
        raise StudyError(f"import file {path} has no lines to import")
    n_samples, n_marks = write_import(study_dir, samples, marks, list(readers.values()), progress)
    return {
        "study": str(study_dir),
        "format": "boundary",
        "layout": layout,
        "rows": rows,
        "passages": {"machine": kinds["machine"], "human": kinds["human"], "splice": kinds["splice"]},
        "samples_written": n_samples,
        "marks": n_marks,
        "mark_kinds": dict(sorted(Counter(m.kind for m in marks).items())),
        "readers": len(readers),
        "unsized_models": sorted({s.model["id"] for s in samples if s.control is None and not s.model["n_params"]}),
    }


def _build(rec: dict[str, Any], sizes: dict[str, int], layout: str) -> tuple[Sample, list[Mark], str]:
    kind = rec["boundary_kind"]
    given: list[int] | None = None
    if rec.get("sentences") is not None:
        text, given = join_sentences(rec["sentences"])
    else:
        text = rec["text"]
    starts = _starts(text, kind, given)
    cut = _index(rec["boundary"], starts, "boundary")
    if cut == 0 and layout == "samples":
        raise _Bad("boundary", "a boundary at 0 leaves no human text before it (import with --as controls)")
    label = rec["model"].strip()
    model = {"id": label, "name": label, "n_params": rec.get("n_params") or sizes.get(label), "source": "import-boundary"}
    settings: dict[str, Any] = {"tokenizer": "words"}
    if rec.get("top_p") is not None:
        settings["top_p"] = float(rec["top_p"])
    sid = rec.get("id") or stable_id("s_", "import-boundary", layout, label, text, rec["boundary"], kind)
    sentence_starts = given if given is not None else split_sentences(text)
    common: dict[str, Any] = {"id": sid, "model": model, "backend": "import", "settings": settings, "seed": None,
                              "finish_reason": "eos", "source": "imported"}
    if cut is None or layout == "controls":
        tokens, text = _assemble(text)
        if cut is None:
            control, what = human_control(), "human"
        else:
            onset = _token_at_text(tokens, cut)
            control, what = {"kind": "splice", "onset": onset, "category": "drift", "parts": [], "seed": 0}, "splice"
        sample = Sample(prompt={"text": rec.get("prompt") or "", "set": rec.get("prompt_set")}, text=text,
                        tokens=tokens, control=control, sentences=sentence_starts, **common)
        offset = 0
    else:
        human, rest = text[:cut], text[cut:]
        tokens, rest = _assemble(rest)
        rest_starts = [x - cut for x in sentence_starts if x >= cut]
        first = len(rest) - len(rest.lstrip())
        if rest.strip() and (not rest_starts or rest_starts[0] != first):
            rest_starts.insert(0, first)  # a boundary inside a sentence: the machine part starts one
        sample = Sample(prompt={"text": human, "set": rec.get("prompt_set"), "human": True,
                                "sentences": [x for x in sentence_starts if x < cut]},
                        text=rest, tokens=tokens, control=None, sentences=rest_starts, **common)
        what = "machine"
        offset = cut
    marks = []
    for k, g in enumerate(rec.get("guesses") or []):
        reader = g["reader"].strip()
        try:
            check_annotator(reader)
        except StudyError:
            raise _Bad("reader", repr(reader)) from None
        char = _index(g["guess"], starts, "guess")
        mid = stable_id("m_", "import-boundary-guess", sid, reader, k, g["guess"])
        where: dict[str, Any] = {"sample": sid, "annotator": reader, "id": mid, "client": "import"}
        if char is None:
            marks.append(Mark(kind="no_fall", read_to=sample.n_tokens, revealed=sample.n_tokens, **where))
        elif char < offset:
            marks.append(Mark(kind="prompt_fall", prompt_at=char, **where))
        else:
            if sample.n_tokens == 0:
                raise _Bad("guess")
            marks.append(Mark(kind="fall", at=_token_at(sample, char - offset), **where))
    return sample, marks, what


def _token_at_text(tokens: Any, char: int) -> int:
    offsets = tokens.offsets
    for i in range(len(offsets) - 1):
        if offsets[i + 1] > char:
            return i
    raise _Bad("boundary")
