"""The restricted unpickler: arrays load, code payloads are refused without running."""

from __future__ import annotations

import builtins
import io
import os
import pickle

import numpy as np
import pytest

from cnnzoo.data import DataError, load_pickle, open_dataset

from .writers import py2_pickle, write_cifar


class Payload:
    """Unpickles as `function(*args)`: what a malicious pickle does."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def payloads(marker):
    return {
        "os.system": Payload(os.system, f"touch {marker}"),
        "builtins.open": Payload(builtins.open, str(marker), "w"),
        "builtins.exec": Payload(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
    }


def test_the_payloads_are_live(tmp_path):
    """Control: plain pickle.load runs the payload and creates the file."""
    marker = tmp_path / "created"
    pickle.loads(pickle.dumps(payloads(marker)["builtins.open"])).close()
    assert marker.exists()


@pytest.mark.parametrize("kind", ["os.system", "builtins.open", "builtins.exec"])
@pytest.mark.parametrize("protocol", [2, 4])
def test_payload_is_refused_and_not_run(tmp_path, kind, protocol):
    marker = tmp_path / "created"
    payload = payloads(marker)[kind]
    # str keys: under protocol 2, Python 3 writes bytes through _codecs.encode, itself refused.
    batch = {"data": payload, "labels": [0]}
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=protocol))

    with pytest.raises(DataError) as info:
        load_pickle(path)
    assert not marker.exists()
    message = str(info.value)
    assert str(path) in message and "refused" in message and "Nothing from it was run" in message
    # The global as written: e.g. posix.system, or __builtin__.exec under protocol 2.
    assert f".{payload.function.__name__}, which a CIFAR batch never contains" in message


def test_payload_in_a_cifar_folder_is_refused(tmp_path):
    written = write_cifar(tmp_path, "cifar10", "python")
    marker = tmp_path / "created"
    path = written.folder / "data_batch_5"
    path.write_bytes(pickle.dumps({b"data": payloads(marker)["os.system"], b"labels": []}))
    with pytest.raises(DataError, match="refused") as info:
        open_dataset(f"cifar10:{tmp_path}")
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_other_numpy_globals_are_refused(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(Payload(np.load, str(tmp_path / "x.npy"))))
    with pytest.raises(DataError, match="numpy.load"):
        load_pickle(path)


@pytest.mark.parametrize("writer", ["python 2 (official archives)", "protocol 3", "protocol 4"])
def test_arrays_dicts_lists_and_bytes_load(tmp_path, writer):
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    batch = {b"data": data, b"labels": [3, 7], b"filenames": [b"a.png", b"b.png"]}
    path = tmp_path / "batch"
    if writer.startswith("python 2"):
        path.write_bytes(py2_pickle(batch))
    else:
        path.write_bytes(pickle.dumps(batch, protocol=int(writer[-1])))
    loaded = load_pickle(path)
    np.testing.assert_array_equal(loaded[b"data"], data)
    assert loaded[b"labels"] == [3, 7] and loaded[b"filenames"] == [b"a.png", b"b.png"]


def test_official_layout_uses_only_the_allowed_globals():
    import pickletools

    stream = py2_pickle({b"data": np.zeros((1, 4), np.uint8)})
    names = {arg for op, arg, _ in pickletools.genops(io.BytesIO(stream)) if op.name == "GLOBAL"}
    assert names == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
