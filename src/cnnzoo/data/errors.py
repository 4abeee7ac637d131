"""The one error type of the data package."""

from __future__ import annotations

from cnnzoo.errors import DataError

__all__ = ["DataError"]
