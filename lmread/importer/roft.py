"""``lmread import --format roft``: RoFT's human boundary guesses (Dugan et al., AAAI 2023).

Input is the released ``roft.csv`` (or JSONL with the same fields, one object per line), in the
layout of ``data/README.md`` of ``liamdugan/human-detection``: one row per (annotator, passage)
with ``model, dataset, annotator, group, dec_strat_value, predicted_boundary_index,
true_boundary_index, points, reason, prompt, prompt_body, generation, gen_body`` and the survey
answers.  Sentences are separated by ``_SEP_``; a boundary index is the 0-based index of the
*last human* sentence (9: all human); readers saw at most 10 sentences, so ``gen_body`` is cut
to ``9 - true_boundary_index`` sentences.

What becomes of a row (see :mod:`lmread.importer.passages` for the layout):

* one sample per passage, deduplicated by ``prompt``, ``generation`` and ``model`` (within its
  ``dataset``: the indexes count each dataset's own prompts and generations); the model
  carries its public size (:data:`ROFT_SIZES`, or ``--n-params NAME=N``), ``dec_strat_value`` is
  the sample's ``top_p`` (so ``--by model+decoding`` separates it) and ``dataset`` its prompt set;
  all-human passages (boundary 9) are human controls and ``baseline`` passages splice controls;
* one mark per row under the reader ``roft-<annotator id>``, with the reasons mapped to lmread's
  categories (:data:`REASON_CATEGORY`; the first mapped reason; free text is ``other``) and the
  original kept in the note, and the row's ``date`` as the mark's time;
* the group and survey answers of each reader in ``readers.jsonl`` (``lmread.reader/1``).

Every row is checked before anything is written; bad rows are counted per kind and reported in
one line, and then nothing is imported.  The import recomputes every row's points by RoFT's rule
and reports the rows where the file's ``points`` disagree.
"""

from __future__ import annotations

import ast
import csv
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from lmread.errors import OptionError, StudyError
from lmread.importer.passages import (
    Guess,
    Passage,
    guess_mark,
    passage_sample,
    reader_record,
    roft_points,
    write_import,
)
from lmread.records import Mark

#: public parameter counts of RoFT's generators
ROFT_SIZES: dict[str, int] = {
    "gpt2": 124_000_000,
    "gpt2-xl": 1_500_000_000,
    "ctrl": 1_630_000_000,
    # the released file names its CTRL runs by control code: "ctrl-Politics" and "ctrl-nocode"
    "ctrl-politics": 1_630_000_000,
    "ctrl-nocode": 1_630_000_000,
    "davinci": 175_000_000_000,
    "finetuned": 1_500_000_000,
}
#: RoFT's reasons -> lmread failure categories
REASON_CATEGORY: dict[str, str] = {
    "grammar": "grammar",
    "repetition": "repetition",
    "irrelevant": "drift",
    "contradicts_sentence": "contradiction",
    "contradicts_knowledge": "factual",
    "common_sense": "commonsense",
    "coreference": "contradiction",
    "generic": "other",
}
REQUIRED = ("model", "dataset", "annotator", "predicted_boundary_index", "true_boundary_index", "points",
            "prompt", "prompt_body", "generation", "gen_body")
FAMILIARITY = ("recipe_familiarity", "news_familiarity", "stories_familiarity", "gen_familiarity")
SEP = "_SEP_"
LAST = 9  # readers see sentences 0..9; boundary 9 = all human
BASELINE = "baseline"
READER_PREFIX = "roft-"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,58}$")
_MISSING = {"", "nan", "none", "null", "n/a"}

BAD_KINDS = {
    "number": "unparseable number",
    "boundary": "boundary outside 0-9",
    "sentences": "fewer sentences than the boundary",
    "guess": "guess beyond the passage's sentences",
    "reader": "reader id not a safe name",
    "passage": "rows of one passage that disagree on its text or boundary",
}


class _Bad(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def parse_size(text: str) -> int:
    """A parameter count: ``124000000``, ``124M``, ``1.5B``, ``350K``, ``1.2T``."""
    value = text.strip().upper().replace("_", "").replace(",", "")
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}.get(value[-1:], 1.0)
    number = value[:-1] if value[-1:] in "KMBT" and value else value
    try:
        n = float(number) * scale
    except ValueError:
        raise OptionError(f"parameter count {text!r} is not a number (use e.g. 124M, 1.5B or 124000000)") from None
    if not n >= 1:
        raise OptionError(f"parameter count {text!r} must be positive")
    return int(round(n))


def parse_n_params(items: tuple[str, ...] | list[str]) -> dict[str, int]:
    """``--n-params NAME=N`` options as a dict (N as :func:`parse_size`)."""
    out: dict[str, int] = {}
    for item in items:
        name, eq, size = item.partition("=")
        if not eq or not name.strip():
            raise OptionError(f"--n-params {item!r}: use NAME=N, e.g. gpt2-xl=1.5B")
        out[name.strip()] = parse_size(size)
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or (
        isinstance(value, str) and value.strip().lower() in _MISSING)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Bad("number")
    if isinstance(value, int):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        raise _Bad("number") from None
    if not number.is_integer():
        raise _Bad("number")
    return int(number)


def _opt_float(value: Any) -> float | None:
    if _missing(value):
        return None
    try:
        number = float(str(value).strip()) if not isinstance(value, (int, float)) or isinstance(value, bool) else value
    except ValueError:
        raise _Bad("number") from None
    if isinstance(number, bool) or number != number:
        raise _Bad("number")
    return float(number)


def _opt_int(value: Any) -> int | None:
    if _missing(value):
        return None
    n = _int(value)
    return None if n < 0 else n  # -1: no response


def _text(value: Any) -> str:
    return "" if _missing(value) else str(value)


def _sentences(body: Any) -> list[str]:
    return [s.strip() for s in _text(body).split(SEP) if s.strip()]


def reason_category(reason: str) -> str | None:
    """The lmread category of a RoFT ``reason`` cell: the first listed reason that maps,
    ``other`` for free text, None when empty."""
    text = reason.strip()
    if not text:
        return None
    names: list[str] = []
    if text.startswith("["):
        try:
            parsed = ast.literal_eval(text)  # a list literal of strings (never code)
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, list):
            names = [str(x).strip().lower() for x in parsed]
    if not names:
        names = [x for x in re.split(r"[\s,;|]+", text.lower()) if x]
    for name in names:
        if name in REASON_CATEGORY:
            return REASON_CATEGORY[name]
    return "other"


def _iso_time(value: Any) -> str | None:
    if _missing(value):
        return None
    try:
        when = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, row)`` of a RoFT CSV or JSONL file (JSONL when the name ends in .jsonl/.json or
    the first character is ``{``); raises a one-line error for a missing required column."""
    try:
        head = path.read_bytes()[:1]
    except FileNotFoundError:
        raise StudyError(f"import file {path} does not exist") from None
    except OSError as exc:
        raise StudyError(f"cannot read import file {path}: {exc.strerror}") from None
    if path.suffix.lower() in (".jsonl", ".json") or head == b"{":
        yield from _jsonl_rows(path)
        return
    csv.field_size_limit(sys.maxsize)
    with path.open(encoding="utf-8-sig", newline="") as handle:  # -sig: a spreadsheet's byte-order mark
        reader = csv.DictReader(handle)
        try:
            columns = reader.fieldnames or []
        except (csv.Error, UnicodeDecodeError) as exc:
            raise StudyError(f"{path}: the header is not readable as UTF-8 CSV ({exc})") from None
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise StudyError(f"{path}: missing required column {missing[0]!r} (a RoFT file has "
                             f"{', '.join(REQUIRED)}, ...)")
        try:
            for row in reader:
                yield reader.line_num, row
        except (csv.Error, UnicodeDecodeError) as exc:
            raise StudyError(f"{path}: line {reader.line_num}: not readable as CSV ({exc})") from None


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for line_no, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise StudyError(f"{path}: line {line_no} is not valid JSON") from None
        if not isinstance(row, dict):
            raise StudyError(f"{path}: line {line_no}: expected a JSON object with RoFT's fields")
        missing = [c for c in REQUIRED if c not in row]
        if missing:
            raise StudyError(f"{path}: line {line_no}: missing required field {missing[0]!r}")
        yield line_no, row


def _passage(row: dict[str, Any], sizes: dict[str, int]) -> tuple[Passage, int]:
    """The passage of a row (without guesses) and its true boundary."""
    b = _int(row["true_boundary_index"])
    if not 0 <= b <= LAST:
        raise _Bad("boundary")
    model = _text(row["model"]).strip()
    human = _sentences(row["prompt_body"])
    machine = _sentences(row["gen_body"])
    if len(human) < b + 1:
        raise _Bad("sentences")
    human = human[: b + 1]
    machine = machine[: LAST - b]
    top_p = _opt_float(row.get("dec_strat_value"))
    prompt_set = _text(row["dataset"]).strip() or None
    # prompt and generation are indexes into each dataset's own lists: the dataset is part of the key
    key = ("roft", prompt_set, _text(row["prompt"]).strip(), _text(row["generation"]).strip(), model)
    settings = {} if top_p is None else {"top_p": top_p}
    if b == LAST:
        kind, label, n_params = "human", "human", None
    elif model.lower() == BASELINE:
        kind, label, n_params = "splice", BASELINE, None
    else:
        kind, label, n_params = "machine", model, sizes.get(model, sizes.get(model.lower()))
    if kind != "human" and not machine:
        raise _Bad("sentences")
    info: dict[str, Any] = {"id": label, "name": label, "n_params": n_params, "source": "import-roft"}
    if kind == "human" and model:
        info["roft_model"] = model
    return Passage(human + machine, None if kind == "human" else b, kind, info, settings, prompt_set, key), b


def import_roft(study_dir: Path, path: Path, n_params: dict[str, int] | None = None,
                progress: Callable[[str], None] | None = None, models: list[str] | None = None,
                groups: list[str] | None = None) -> dict[str, Any]:
    """Import a RoFT file into the study at ``study_dir`` (created if missing), all or nothing;
    returns a summary (counts, unsized models, rows whose points disagree with RoFT's rule).

    ``models``: import only these generators' machine passages (all-human and spliced passages
    are kept: they check the readers), e.g. one family's size ladder.  ``groups``: import only
    the rows of readers in these groups (RoFT's notebook leaves group C, the GPT-3 study, out of
    its means)."""
    sizes = {**ROFT_SIZES, **(n_params or {})}
    wanted = None if not models else {m.strip() for m in models if m.strip()}
    wanted_groups = None if not groups else {g.strip() for g in groups if g.strip()}
    skipped = 0
    passages: dict[tuple[Any, ...], Passage] = {}
    bad: dict[str, list[int]] = {}
    disagree: list[int] = []
    readers: dict[str, dict[str, Any]] = {}
    differing_readers: set[str] = set()
    unparsed_dates = rows = 0
    read_pairs: set[tuple[str, tuple[Any, ...]]] = set()
    repeated = 0
    seen_models: set[str] = set()
    seen_groups: set[str] = set()
    for line, row in read_rows(path):
        rows += 1
        model, group = _text(row.get("model")).strip(), _text(row.get("group")).strip()
        seen_models.add(model)
        seen_groups.add(group)
        if wanted is not None and model not in wanted | {BASELINE} \
                and _text(row.get("true_boundary_index")).strip() not in (str(LAST), f"{LAST}.0"):
            skipped += 1
            continue
        if wanted_groups is not None and group not in wanted_groups:
            skipped += 1
            continue
        try:
            passage, b = _passage(row, sizes)
            g = _int(row["predicted_boundary_index"])
            if not 0 <= g <= LAST:
                raise _Bad("boundary")
            if g < LAST and g + 1 >= len(passage.sentences):
                raise _Bad("guess")
            points = _int(row["points"])
            rid = _text(row["annotator"]).strip()
            if rid.endswith(".0") and rid[:-2].isdigit():
                rid = rid[:-2]  # an id written as a float by a spreadsheet
            if not _SAFE_ID.match(rid):
                raise _Bad("reader")
            meta = {"group": _text(row.get("group")).strip() or None,
                    "familiarity": {k.removesuffix("_familiarity"): _opt_int(row.get(k)) for k in FAMILIARITY},
                    "native_speaker": _text(row.get("native_speaker")).strip() or None,
                    "read_guide": _text(row.get("read_guide")).strip() or None}
        except _Bad as exc:
            bad.setdefault(exc.kind, []).append(line)
            continue
        old = passages.get(passage.key)
        if old is None:
            passages[passage.key] = old = passage
        elif old.sentences != passage.sentences or old.boundary != passage.boundary:
            bad.setdefault("passage", []).append(line)
            continue
        if points != roft_points(g, b):
            disagree.append(line)
        name = READER_PREFIX + rid
        if (name, old.key) in read_pairs:
            repeated += 1  # one reading per reader and sample stands: the later row
        read_pairs.add((name, old.key))
        record = reader_record(name, "roft", rid, meta)
        if name not in readers:
            readers[name] = record
        elif readers[name] != record:
            differing_readers.add(name)
        reason = _text(row.get("reason")).strip()
        time = _iso_time(row.get("date"))
        if time is None and not _missing(row.get("date")):
            unparsed_dates += 1
        old.guesses.append(Guess(name, None if g == LAST else g, reason_category(reason),
                                 f"RoFT reason: {reason}" if reason else None, time, None,
                                 (rows, _text(row.get("date")), g)))  # the row's number: same in CSV and JSONL
    for option, asked, seen in (("--models", wanted, seen_models), ("--groups", wanted_groups, seen_groups)):
        missing = sorted((asked or set()) - seen)
        if missing:  # a misspelt name would otherwise import the controls alone, or nothing
            have = ", ".join(sorted(v for v in seen if v)) or "none"
            raise StudyError(f"{option} {', '.join(missing)}: not in {path} (it has {have}); nothing was imported")
    if bad:
        parts = [f"{len(lines)} {BAD_KINDS[kind]} (first at line {lines[0]})" for kind, lines in sorted(bad.items())]
        raise StudyError(f"{path}: {sum(map(len, bad.values()))} bad rows: {'; '.join(parts)}; nothing was imported")
    if not passages:
        raise StudyError(f"import file {path} has no rows to import")
    if progress:
        progress(f"read {rows} rows: {len(passages)} passages, {len(readers)} readers")
    samples = []
    marks: list[Mark] = []
    order: dict[str, list[tuple[str, int, int]]] = {}
    for passage in passages.values():
        sample = passage_sample(passage)
        samples.append(sample)
        for k, guess in enumerate(passage.guesses):
            order.setdefault(guess.reader, []).append((guess.time or "", guess.key[0], len(marks) + k))
        marks.extend(guess_mark(passage, sample, guess) for guess in passage.guesses)
    for entries in order.values():  # queue position: the reader's rows by date, then file order
        for pos, (_, _, index) in enumerate(sorted(entries)):
            marks[index].queue_pos = pos
    n_samples, n_marks = write_import(study_dir, samples, marks, list(readers.values()), progress)
    kinds = Counter(p.kind for p in passages.values())
    unsized = sorted({p.model["id"] for p in passages.values() if p.kind == "machine" and p.model["n_params"] is None})
    short = sum(len(p.sentences) < LAST + 1 for p in passages.values())
    return {
        "study": str(study_dir),
        "format": "roft",
        "rows": rows - skipped,
        "rows_skipped": skipped,
        "passages": {"machine": kinds["machine"], "human": kinds["human"], "splice": kinds["splice"]},
        "samples_written": n_samples,
        "marks": n_marks,
        "mark_kinds": dict(sorted(Counter(m.kind for m in marks).items())),
        "readers": len(readers),
        "readers_with_differing_answers": sorted(differing_readers),
        "unsized_models": unsized,
        "unparsed_dates": unparsed_dates,
        "repeated_readings": repeated,
        "short_passages": short,
        "points_disagree": {"n": len(disagree), "lines": disagree[:20]},
    }
