"""``lmread import --format jsonl`` (the default): generations made elsewhere, and human-written controls.

Input is JSONL, one object per line::

    {"text": "...", "model": "label", "prompt": "...", "n_params": 135000000, "id": "...",
     "prompt_set": "story"}

``text`` and ``model`` are required.  Text is split into tokens by ``words`` (a word with the
whitespace before it), ``chars`` (one character each) or a model id from the catalogue (that
model's tokenizer, with its teacher-forced logprobs recorded).  Every line is checked before
anything is written; the samples are then appended in one write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from lmread.backends.scripted import split_text
from lmread.config import Settings
from lmread.errors import MergeConflict, OptionError, StudyError
from lmread.records import Sample, TokenAssembler, human_control, stable_id
from lmread.study import Study

_FIELDS = {"text", "model", "prompt", "n_params", "id", "prompt_set"}


def _check_line(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise StudyError(f"{where}: expected a JSON object with 'text' and 'model'")
    unknown = set(record) - _FIELDS
    if unknown:
        raise StudyError(f"{where}: unknown field {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(_FIELDS))})")
    if not isinstance(record.get("text"), str):
        raise StudyError(f"{where}: 'text' is required and must be a string")
    if not isinstance(record.get("model"), str) or not record["model"].strip():
        raise StudyError(f"{where}: 'model' is required and must be a non-empty string (a label)")
    if "prompt" in record and not isinstance(record["prompt"], str):
        raise StudyError(f"{where}: 'prompt' must be a string")
    n_params = record.get("n_params")
    if n_params is not None and (not isinstance(n_params, int) or isinstance(n_params, bool) or n_params <= 0):
        raise StudyError(f"{where}: 'n_params' must be a positive whole number")
    if "id" in record and (not isinstance(record["id"], str) or not record["id"].strip()):
        raise StudyError(f"{where}: 'id' must be a non-empty string")
    if "prompt_set" in record and not isinstance(record["prompt_set"], str):
        raise StudyError(f"{where}: 'prompt_set' must be a string")
    return record


def read_import_file(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Parse and check every line of an import file; raise naming the first bad line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StudyError(f"import file {path} does not exist") from None
    except OSError as exc:
        raise StudyError(f"cannot read import file {path}: {exc.strerror}") from None
    rows: list[tuple[int, dict[str, Any]]] = []
    for line_no, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}: line {line_no}"
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise StudyError(f"{where} is not valid JSON") from None
        rows.append((line_no, _check_line(record, where)))
    if not rows:
        raise StudyError(f"import file {path} has no lines to import")
    return rows


def _tokenize(text: str, prompt: str, tokenizer: str, scorer: Any) -> TokenAssembler:
    if scorer is None:
        assembler = TokenAssembler(with_distribution=False)
        for piece in split_text(text, tokenizer):
            assembler.add(-1, piece)
        return assembler
    assembler = TokenAssembler(with_distribution=True)
    for chunk in scorer.score(text, prompt):
        assembler.add(chunk.id, chunk.piece, chunk.logprob, chunk.rank, chunk.entropy,
                      chunk.top_ids, chunk.top_logprobs, chunk.top_pieces)
    return assembler


def import_jsonl(study_dir: Path, path: Path, tokenizer: str = "words", settings: Settings | None = None,
                 control: str | None = None) -> list[Sample]:
    """Import ``path`` into the study at ``study_dir`` (created if missing); return the new samples.

    With ``control="human"`` the texts become human controls (right answer: no fall; written
    with schema lmread.sample/2): they join the study's pool of human controls, from which
    ``lmread controls make`` picks some into the reading queue, and never enter model curves.
    A line whose id is already in the study, or repeated in the file, is an error and nothing is
    written.
    """
    if control not in (None, "human"):
        raise OptionError(f"--control {control!r}: only human-written texts are imported as controls (--control human)")
    rows = read_import_file(path)
    scorer = None
    if tokenizer not in ("words", "chars"):
        from lmread.backends import open_backend
        from lmread.catalog import load_catalog

        if settings is None:
            raise TypeError("a model tokenizer needs the settings (where the model catalogue lives)")
        card = load_catalog(settings).get(tokenizer)
        scorer = open_backend(card)
    study = Study.open(study_dir) if (study_dir / "study.toml").exists() else None
    existing = study.samples if study is not None else {}
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    try:
        for line_no, rec in rows:
            where = f"{path}: line {line_no}"
            prompt = rec.get("prompt", "")
            label = rec["model"].strip()
            if control is None:
                sid = rec.get("id") or stable_id("s_", "import", label, prompt, rec["text"])
            else:
                sid = rec.get("id") or stable_id("s_", "import-control", control, label, prompt, rec["text"])
            if sid in existing:
                raise MergeConflict(f"{where}: sample {sid} is already in the study (duplicate import); nothing was imported")
            if sid in seen:
                raise MergeConflict(f"{where}: sample {sid} repeats line {seen[sid]}; nothing was imported")
            seen[sid] = line_no
            assembler = _tokenize(rec["text"], prompt, tokenizer, scorer)
            tokens, text, raw = assembler.finish()
            if text != rec["text"] and scorer is not None:
                raise StudyError(f"{where}: the tokenizer of {tokenizer} does not reproduce the text exactly")
            model: dict[str, Any] = {"id": label, "name": label, "n_params": rec.get("n_params"), "source": "import"}
            samples.append(Sample(
                id=sid,
                model=model,
                backend="import",
                prompt={"text": prompt, "set": rec.get("prompt_set")},
                settings={"tokenizer": tokenizer},
                seed=None,
                text=text,
                tokens=tokens,
                finish_reason="eos",
                source="imported",
                raw=raw,
                control=None if control is None else human_control(),
            ))
    finally:
        if scorer is not None:
            scorer.close()
    if study is None:
        study = Study.create(study_dir)
    return study.add_samples(samples)
