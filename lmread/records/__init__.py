"""The data model: samples with their token arrays, mark events, and their JSON codec.

Every record carries a ``schema`` field ``"lmread.<kind>/<version>"``.  Readers accept any version
up to the one they know and refuse newer ones with :class:`SchemaVersionError`.

Token spans follow one rule: a character belongs to the token that holds its *last* byte.  So a
token that only starts a multi-byte character has an empty span, and the token that completes it
carries the whole character.  ``offsets`` has ``n + 1`` entries; token ``i`` spans
``text[offsets[i]:offsets[i + 1]]`` and the spans tile the text exactly.

The model is a package of modules named for what they hold: :mod:`~lmread.records.names` (schema
versions, categories, kinds, identity keys, the word rule and the shared checks),
:mod:`~lmread.records.tokens`, :mod:`~lmread.records.prompt`, :mod:`~lmread.records.sample` (with
the control records) and :mod:`~lmread.records.mark`.  Every name is imported from here.
"""

from __future__ import annotations

from lmread.records.mark import (
    Mark,
)
from lmread.records.names import (
    CATEGORIES,
    CATEGORY_KEYS,
    CONTROL_CATEGORY,
    CONTROL_KINDS,
    ID_FIELDS,
    MACHINE_PREFIX,
    MARK_KINDS,
    MARK_SCHEMA,
    MARK_SCHEMA_PROMPT,
    MODEL_IDENTITY_KEYS,
    SAMPLE_SCHEMA,
    SAMPLE_SCHEMA_CONTROL,
    STUDY_SCHEMA,
    SURVIVAL_SCHEMA,
    WORD_RE,
    check_annotator,
    check_category,
    check_person,
    is_machine,
    new_mark_id,
    schema_version,
    stable_id,
    utc_now,
)
from lmread.records.prompt import (
    PROMPT_FIELDS,
    Prompt,
)
from lmread.records.sample import (
    Sample,
    check_control,
    control_category,
    control_kind,
    control_onset,
    human_control,
    is_control,
    sample_id,
    without_top_k,
)
from lmread.records.tokens import (
    TokenAssembler,
    Tokens,
)

__all__ = [
    "CATEGORIES",
    "CATEGORY_KEYS",
    "CONTROL_CATEGORY",
    "CONTROL_KINDS",
    "ID_FIELDS",
    "MACHINE_PREFIX",
    "MARK_KINDS",
    "MARK_SCHEMA",
    "MARK_SCHEMA_PROMPT",
    "MODEL_IDENTITY_KEYS",
    "PROMPT_FIELDS",
    "SAMPLE_SCHEMA",
    "SAMPLE_SCHEMA_CONTROL",
    "STUDY_SCHEMA",
    "SURVIVAL_SCHEMA",
    "WORD_RE",
    "Mark",
    "Prompt",
    "Sample",
    "TokenAssembler",
    "Tokens",
    "check_annotator",
    "check_category",
    "check_control",
    "check_person",
    "control_category",
    "control_kind",
    "control_onset",
    "human_control",
    "is_control",
    "is_machine",
    "new_mark_id",
    "sample_id",
    "schema_version",
    "stable_id",
    "utc_now",
    "without_top_k",
]
