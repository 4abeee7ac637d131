"""The one error type of the data package."""

from __future__ import annotations


class DataError(ValueError):
    """Bad or missing data. The message names the file or folder, says what is wrong with it and
    what to do about it, so a user can act on it without reading the code."""
