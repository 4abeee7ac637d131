"""Fuzzing: random networks for the analyzer, random and mutated bytes for the data readers.

The analyzer either reports (a failure included) or raises the documented `ValueError` /
`TypeError` for bad arguments; the readers either read or raise `DataError`. Nothing else, and
nothing that hangs: every example runs under a time limit.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from cnnzoo import cliargs
from cnnzoo.analysis import summary
from cnnzoo.data import DataError, open_dataset
from data.writers import write_cifar  # tests/data/writers.py (tests/ is on sys.path)

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure here is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the body runs longer than `seconds`."""

    def hang(*_: object) -> None:
        raise AssertionError(f"no answer within {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- the analyzer -------------------------------------------------------------------------------


@st.composite
def networks(draw: st.DrawFn) -> tuple[nn.Module, tuple[int, ...]]:
    """A conv/pool stack, perhaps with a classifier, and an input: often a valid pair, often not
    (too small, wrong channel count, a classifier of the wrong width, wrong input rank)."""
    channels = draw(st.integers(1, 4))
    layers: list[nn.Module] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv", "max", "avg", "relu", "bn", "drift"]))
        k, s = draw(st.integers(1, 7)), draw(st.integers(1, 3))
        if kind == "conv":
            out = draw(st.integers(1, 4))
            layers.append(nn.Conv2d(channels, out, k, s, draw(st.integers(0, k // 2))))
            channels = out
        elif kind == "max":
            layers.append(nn.MaxPool2d(k, s, ceil_mode=draw(st.booleans())))
        elif kind == "avg":
            layers.append(nn.AvgPool2d(k, s))
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "bn":
            layers.append(nn.BatchNorm2d(channels))
        else:  # a conv expecting another channel count: a shape mismatch
            layers.append(nn.Conv2d(channels + draw(st.integers(1, 3)), channels, 1))
    if draw(st.booleans()):
        width = draw(st.integers(1, 64))
        layers += [nn.Flatten(), nn.Linear(width, draw(st.integers(1, 10)))]
    rank = draw(st.sampled_from([3, 3, 3, 3, 1, 2, 4]))
    in_channels = layers[0].in_channels if isinstance(layers[0], nn.Conv2d) else channels
    size = (draw(st.sampled_from([in_channels, in_channels + 1])),)
    size += tuple(draw(st.integers(1, 48)) for _ in range(rank - 1))
    return nn.Sequential(*layers), size


@settings(FUZZ, max_examples=25)
@given(networks(), st.integers(1, 3))
def test_analyzer_reports_or_raises_the_documented_error(
    network: tuple[nn.Module, tuple[int, ...]], batch: int
) -> None:
    model, size = network
    with time_limit(20):
        try:
            report = summary(model, size, batch_size=batch)
        except (ValueError, TypeError) as err:  # documented: arguments it cannot use
            assert str(err)
            return
    if report.failure is not None:
        f = report.failure
        assert f.layer and f.message and f.kind in ("input too small", "shape mismatch", "error")
        if f.kind == "input too small":
            assert f.hint  # the smallest input that passes, or why none does
    else:
        assert report.layers and report.totals.params == sum(p.numel() for p in model.parameters())
    report.to_markdown()  # every renderer copes with a failed report too
    report.to_json()


# -- the data readers ---------------------------------------------------------------------------


def mutate(data: bytes, draw: st.DrawFn) -> bytes:
    """Random bytes, or `data` truncated, with bytes flipped, or with a run of bytes inserted."""
    how = draw(st.sampled_from(["random", "truncate", "flip", "insert", "flip-header"]))
    if how == "random":
        return draw(st.binary(max_size=4096))
    if how == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    out = bytearray(data)
    if how == "insert":
        at = draw(st.integers(0, len(out)))
        return bytes(out[:at] + draw(st.binary(min_size=1, max_size=64)) + out[at:])
    limit = min(len(out), 64) if how == "flip-header" else len(out)
    for _ in range(draw(st.integers(1, 8))):
        out[draw(st.integers(0, limit - 1))] ^= draw(st.integers(1, 255))
    return bytes(out)


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    write_cifar(root / "python", "cifar10", "python", per_batch=2)
    write_cifar(root / "binary", "cifar10", "binary", per_batch=2)
    folder = root / "images"
    rng = np.random.default_rng(0)
    for fmt, mode in (("png", "RGB"), ("jpeg", "L"), ("bmp", "RGB"), ("gif", "P"), ("png", "RGBA")):
        pixels = rng.integers(0, 256, (12, 12, 4 if mode == "RGBA" else 3), dtype=np.uint8)
        image = Image.fromarray(pixels[..., :3]).convert(mode)
        path = folder / ("a" if mode != "L" else "b") / f"{mode.lower()}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        image.save(buffer, format=fmt.upper())
        path.write_bytes(buffer.getvalue())
    return {"python": root / "python", "binary": root / "binary", "images": folder}


def _read_everything(spec: str) -> None:
    splits = open_dataset(spec, input_size=(3, 8, 8), validation="none")
    for i in range(len(splits.train)):
        splits.train[i]
    if splits.test is not None:
        for i in range(len(splits.test)):
            splits.test[i]


def _fuzz_file(path: Path, data: bytes, spec: str) -> None:
    original = path.read_bytes()
    path.write_bytes(data)
    try:
        with time_limit(20):
            _read_everything(spec)
    except DataError as err:
        assert str(err)  # the documented error, with a message
    finally:
        path.write_bytes(original)


FILES = {
    "python": ("cifar-10-batches-py/data_batch_1", "cifar10"),
    "python-meta": ("cifar-10-batches-py/batches.meta", "cifar10"),
    "binary": ("cifar-10-batches-bin/data_batch_1.bin", "cifar10"),
    "binary-meta": ("cifar-10-batches-bin/batches.meta.txt", "cifar10"),
}


@pytest.mark.parametrize("which", sorted(FILES))
@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_cifar_readers_only_raise_data_error(
    archives: dict[str, Path], which: str, data: st.DataObject
) -> None:
    relative, variant = FILES[which]
    folder = archives[which.split("-")[0]]
    path = folder / relative
    _fuzz_file(path, mutate(path.read_bytes(), data.draw), f"{variant}:{folder}")


@pytest.mark.parametrize("name", ["a/rgb.png", "b/l.jpeg", "a/rgb.bmp", "a/p.gif", "a/rgba.png"])
@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_image_folder_reader_only_raises_data_error(
    archives: dict[str, Path], name: str, data: st.DataObject
) -> None:
    path = archives["images"] / name
    _fuzz_file(path, mutate(path.read_bytes(), data.draw), f"imagefolder:{archives['images']}")


def test_the_fuzzed_folders_are_valid_before_mutation(archives: dict[str, Path]) -> None:
    """The mutations start from data that reads: a DataError above comes from the damage."""
    for spec in ("python", "binary"):
        _read_everything(f"cifar10:{archives[spec]}")
    _read_everything(f"imagefolder:{archives['images']}")


# -- the command line's argument types ----------------------------------------------------------

ARGUMENT_TYPES = {
    "positive_int": (cliargs.positive_int, lambda v: isinstance(v, int) and v >= 1),
    "non_negative_int": (cliargs.non_negative_int, lambda v: isinstance(v, int) and v >= 0),
    "positive_int_list": (
        cliargs.positive_int_list,
        lambda v: v and all(isinstance(i, int) and i >= 1 for i in v),
    ),
    "float_list": (cliargs.float_list, lambda v: v and all(isinstance(f, float) for f in v)),
    "input_size": (cliargs.input_size, lambda v: len(v) == 3 and min(v) >= 1),
}


@pytest.mark.parametrize("kind", sorted(ARGUMENT_TYPES))
@settings(FUZZ, max_examples=200)
@given(text=st.one_of(st.text(max_size=12), st.from_regex(r"-?[0-9x, ]{0,10}", fullmatch=True)))
def test_argument_types_parse_or_say_what_they_expected(kind: str, text: str) -> None:
    """Any text gives a valid value or an `ArgumentTypeError` whose message argparse prints as
    is (never a ValueError, which argparse would report with the function's internal name)."""
    parse, valid = ARGUMENT_TYPES[kind]
    try:
        value = parse(text)
    except argparse.ArgumentTypeError as err:
        assert str(err) and parse.__name__ not in str(err)
    else:
        assert valid(value), value
