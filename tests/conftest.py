"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest
import torch

ONNX_ROUNDTRIPS = "onnx_roundtrips"
_ROUNDTRIPS = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the analyzer's golden snapshots (tests/analysis/golden/) from current output",
    )


@pytest.fixture
def one_thread():
    """Run a test on one intra-op thread: for thousands of tiny forwards a second thread only
    adds synchronization."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _layer_count(name: str) -> int:
    from cnnzoo.analysis import meta_model

    return sum(not m._modules for m in meta_model(name).modules())


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: export only the selected models
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ONNX round-trip tests go last, and their models' exports start now, in the background
    (tests/onnx_roundtrip.py says why)."""
    waiting = [item for item in items if ONNX_ROUNDTRIPS in getattr(item, "fixturenames", ())]
    if not waiting:
        return
    waiting_ids = {id(item) for item in waiting}
    items[:] = [item for item in items if id(item) not in waiting_ids] + waiting
    from onnx_roundtrip import BackgroundRoundtrips

    names = sorted({item.callspec.params["name"] for item in waiting})
    config.stash[_ROUNDTRIPS] = BackgroundRoundtrips(names, estimated_cost=_layer_count)


@pytest.fixture(scope="session")
def onnx_roundtrips(request: pytest.FixtureRequest):
    return request.config.stash[_ROUNDTRIPS]


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    roundtrips = config.stash.get(_ROUNDTRIPS, None)
    if roundtrips is not None:
        for line in roundtrips.report(tolerance=1e-4):
            terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    roundtrips = config.stash.get(_ROUNDTRIPS, None)
    if roundtrips is not None:
        roundtrips.close()
