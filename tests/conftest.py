"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest
import torch


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
