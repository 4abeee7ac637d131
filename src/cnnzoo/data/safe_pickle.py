"""A restricted unpickler for the CIFAR Python batches.

Unpickling runs code: a pickle names any importable callable (`os.system`, `builtins.exec`) and
the unpickler calls it. CIFAR's batches only hold dicts, lists, bytes, ints and numpy arrays, and
an array needs exactly three globals to rebuild: `numpy.core.multiarray._reconstruct` (spelled
`numpy._core.multiarray._reconstruct` by NumPy 2), `numpy.ndarray` and `numpy.dtype`.
`find_class` hands out those three and refuses every other name before anything is called.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

try:  # NumPy >= 2 moved numpy.core to numpy._core; importing numpy.core warns there.
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct

from cnnzoo.data.errors import DataError

ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle asked for a global outside `ALLOWED_GLOBALS`."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only resolves the globals in `ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(f"{module}.{name}") from None


def load_pickle(path: Path) -> Any:
    """Unpickle a CIFAR Python batch with `RestrictedUnpickler`.

    Strings come back as bytes (`encoding="bytes"`), as the archives were written by Python 2;
    the dictionary keys are therefore `b"data"`, `b"labels"` and so on.

    Raises:
        DataError: the file asks for a forbidden global (nothing from it was run), or it is
            truncated or corrupt.
    """
    with open(path, "rb") as file:
        try:
            return RestrictedUnpickler(file, encoding="bytes").load()
        except ForbiddenGlobal as exc:
            raise DataError(
                f"{path}: refused to unpickle: the file asks to load {exc}, which a CIFAR batch "
                "never contains (only dicts, lists, bytes and numpy arrays), and a pickle that "
                "names a callable can run code. Nothing from it was run. Do not use this file; "
                "download the archive again from https://www.cs.toronto.edu/~kriz/cifar.html."
            ) from None
        except Exception as exc:  # a corrupt pickle fails in many ways: EOF, bad opcodes, ...
            raise DataError(
                f"{path}: corrupt or truncated pickle ({type(exc).__name__}: {exc}). Extract "
                "the file from the archive again (download it again if that does not help)."
            ) from exc
