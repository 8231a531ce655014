"""One error tree for lmread.

Every error a user can cause is an :class:`LmreadError`; the CLI prints its message on one line
and exits non-zero.  Anything else escaping is a bug.
"""

from __future__ import annotations


class LmreadError(Exception):
    """Base of every error lmread reports to a user (one line, names the thing and the fix)."""

    exit_code = 2

    def __str__(self) -> str:  # keep it on one line whatever the caller passed
        text = super().__str__()
        return " ".join(text.split())


class ConfigError(LmreadError):
    """A bad settings file, environment variable or path."""


class ModelError(LmreadError):
    """A model that cannot be found, read or loaded, or a bad model card."""


class OptionError(LmreadError):
    """An invalid generation or command option."""


class BackendError(LmreadError):
    """A backend failed while generating (server refused, connection dropped, bad key...)."""


class StudyError(LmreadError):
    """A study folder or one of its files is missing, corrupt or of an unknown schema."""


class SchemaVersionError(StudyError):
    """A file was written by a newer lmread (a schema version this one does not know)."""


class MarkError(StudyError):
    """A mark that cannot be recorded (unknown sample, index out of range, bad category...)."""


class DiskFullError(StudyError):
    """A write failed for lack of space or a file-size limit; the file was left as it was."""


class MergeConflict(StudyError):
    """Two studies hold the same id with different content."""
