"""cnnzoo's error vocabulary.

Every error a user can fix derives from `CnnzooError`; the command line prints those as one or two
lines and exits 2. Anything else that escapes is a bug in cnnzoo and is shown with its traceback.
The families keep their historical base classes (`ValueError`, `RuntimeError`) so that library
callers who caught those keep working.
"""

from __future__ import annotations


class CnnzooError(Exception):
    """A problem the user can act on. The message names what is wrong and the fix."""


class UsageError(CnnzooError, ValueError):
    """A bad argument, flag, name or size: the caller asked for something that cannot be done."""


class DataError(CnnzooError, ValueError):
    """Bad or missing data. The message names the file or folder, says what is wrong with it and
    what to do about it, so a user can act on it without reading the code."""


class CheckpointError(CnnzooError, RuntimeError):
    """A checkpoint is missing, incomplete, corrupt or of another format."""


class RunDirError(CnnzooError, RuntimeError):
    """A run directory cannot be used as asked (already holds a run, locked, not a run)."""


class ExportError(CnnzooError, ValueError):
    """A model cannot be exported as asked."""
