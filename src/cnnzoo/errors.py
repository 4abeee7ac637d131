"""cnnzoo's error vocabulary.

Every error a user can fix derives from `CnnzooError`; the command line prints those as one or two
lines and exits 2. Anything else that escapes is a bug in cnnzoo and is shown with its traceback.
The families keep their historical base classes (`ValueError`, `KeyError`, `TypeError`,
`RuntimeError`) so that library callers who caught those keep working.
"""

from __future__ import annotations


class CnnzooError(Exception):
    """A problem the user can act on. The message names what is wrong and the fix."""

    def __str__(self) -> str:
        # One message, printed as written: KeyError's own __str__ would quote it.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class UsageError(CnnzooError, ValueError):
    """A bad argument, flag, name or size: the caller asked for something that cannot be done."""


class UnknownNameError(UsageError, KeyError):
    """A name that is not registered (model, recipe, experiment, data set); the message suggests
    the closest ones. A `KeyError` too, as the registry's lookups always raised."""


class OptionError(UsageError, TypeError):
    """An option a builder does not take, or of the wrong type. A `TypeError` too, as a Python
    call with a bad keyword raises."""


class DataError(CnnzooError, ValueError):
    """Bad or missing data. The message names the file or folder, says what is wrong with it and
    what to do about it, so a user can act on it without reading the code."""


class CheckpointError(CnnzooError, RuntimeError):
    """A checkpoint is missing, incomplete, corrupt or of another format."""


class RunDirError(CnnzooError, RuntimeError):
    """A run directory cannot be used as asked (already holds a run, locked, not a run)."""


class ExportError(CnnzooError, ValueError):
    """A model cannot be exported as asked."""
