"""A study folder on disk (append-only, crash-safe) and merging study folders.

:mod:`lmread.study.folder` holds :class:`Study`; :mod:`lmread.study.settings` its checked
:class:`StudySettings`; :mod:`lmread.study.order` the reading order; :mod:`lmread.study.report` its
summary; :mod:`lmread.study.merge` the union of folders.
The file primitives live in :mod:`lmread.storage` (re-exported here for older imports).
"""

from lmread.storage import JsonlReader, append_lines, write_atomic
from lmread.study.folder import MARKS_DIR, META_FILE, SAMPLES_FILE, MarkState, Study, same_content
from lmread.study.merge import MergeReport, merge_studies
from lmread.study.settings import StudySettings

__all__ = [
    "MARKS_DIR",
    "META_FILE",
    "SAMPLES_FILE",
    "JsonlReader",
    "MarkState",
    "MergeReport",
    "Study",
    "StudySettings",
    "append_lines",
    "merge_studies",
    "same_content",
    "write_atomic",
]
