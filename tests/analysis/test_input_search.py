"""The smallest input that passes: found on meta tensors, checked with real forward passes."""

from __future__ import annotations

import itertools

import torch
from torch import nn

import cnnzoo
from cnnzoo.analysis import input_search, summary


def test_paper_alexnet_passes_only_from_227_to_258() -> None:
    failure = summary("alexnet", (3, 100, 100)).failure
    assert failure is not None and failure.layer == "classifier.fc6"
    assert failure.smallest_input == (3, 227, 227)
    assert failure.largest_input == (3, 258, 258)
    assert "3x227x227 to 3x258x258" in failure.hint and "3x259x259 fails" in failure.hint
    # Real trials, not meta tensors: the boundaries are where the network says they are.
    torch.manual_seed(0)
    model = cnnzoo.create_model("alexnet").eval()
    passes = {}
    with torch.no_grad():
        for s in (226, 227, 258, 259):
            try:
                model(torch.zeros(1, 3, s, s))
                passes[s] = True
            except RuntimeError:
                passes[s] = False
    assert passes == {226: False, 227: True, 258: True, 259: False}


def test_the_search_has_no_ceiling() -> None:
    # A window of 3000 pixels: the old search gave up at 2**15 only by luck of its ceiling;
    # galloping and bisection land on the exact size whatever it is.
    model = nn.Sequential(nn.Conv2d(1, 1, 3001), nn.Flatten())
    failure = summary(model, (1, 64, 64)).failure
    assert failure is not None and failure.kind == "input too small"
    assert failure.smallest_input == (1, 3001, 3001)


class _EvenOnly(nn.Module):
    """Concatenates the even and odd columns: only an even map width passes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return torch.cat([y[..., ::2], y[..., 1::2]], dim=1)


def test_a_size_constraint_that_is_not_a_range() -> None:
    failure = summary(_EvenOnly(), (3, 7, 7)).failure
    assert failure is not None and failure.kind == "shape mismatch"
    assert failure.smallest_input == (3, 4, 4)  # conv output 2 wide: 1 + 1 columns
    # 5 fails again, but it is not the end of what passes: the hint says so.
    assert "3x5x5 fails again" in failure.hint and "passes again" in failure.hint
    assert "only" not in failure.hint
    with torch.no_grad():
        _EvenOnly()(torch.zeros(1, 3, 4, 4))


def test_a_search_cut_short_says_so_and_claims_nothing() -> None:
    ticks = itertools.count()
    model = cnnzoo.analysis.meta_model("alexnet")
    start = summary(model, (3, 100, 100)).failure
    assert start is not None
    failure = input_search.smallest_input(
        model, start, (3, 100, 100), seconds=5, clock=lambda: float(next(ticks))
    )
    assert failure.smallest_input is None
    assert "cut short by its 5 s time bound" in failure.hint
    assert "may still pass" in failure.hint and "no input" not in failure.hint


def test_a_search_cut_short_after_the_smallest_keeps_it() -> None:
    model = cnnzoo.analysis.meta_model("alexnet")
    start = summary(model, (3, 100, 100)).failure
    assert start is not None
    # Enough probes to find 227 (51 of them), too few to find where the passing run ends.
    ticks = itertools.count()
    failure = input_search.smallest_input(
        model, start, (3, 100, 100), seconds=55, clock=lambda: float(next(ticks))
    )
    assert failure.smallest_input == (3, 227, 227) and failure.largest_input is None
    assert "cut short" in failure.hint


def test_wrong_channels_are_not_a_size_problem() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    failure = summary(model, (1, 8, 8)).failure
    assert failure is not None and failure.smallest_input is None
    assert failure.hint.startswith("no size helps") and "first layer (0)" in failure.hint


class _Half(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.half())


def test_a_failure_the_size_does_not_change_is_not_searched_for_long() -> None:
    failure = summary(_Half(), (3, 8, 8), search_seconds=600).failure
    assert failure is not None and failure.smallest_input is None
    assert "no size helps" in failure.hint and "alike, conv fails" in failure.hint
