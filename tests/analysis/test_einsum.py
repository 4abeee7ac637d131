"""MACs of einsum and tensordot by the general rule, checked against torch.utils.flop_counter
(which counts the matrix products they become) where it counts them and against a hand count
where it does not; and no "no formula" note for operations without arithmetic."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnzoo.analysis import summary


class Fn(nn.Module):
    def __init__(self, fn, *weights: torch.Tensor) -> None:
        super().__init__()
        self.fn = fn
        self.w = nn.ParameterList(nn.Parameter(w) for w in weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, *self.w)


def _macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    report = summary(model, shape[1:], batch_size=shape[0])
    assert report.failure is None
    assert not any("no formula" in n for n in report.notes), report.notes
    return report.totals.macs


def _torch_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(shape))
    return counter.get_total_flops() // 2


CASES = [
    # (equation, input shape, weight shapes, hand count)
    ("...c,cd->...d", (2, 3, 5, 8), [(8, 6)], 2 * 3 * 5 * 8 * 6),
    ("bnc,cd->bnd", (2, 7, 8), [(8, 4)], 2 * 7 * 8 * 4),
    # Left to right: (bnc, cd -> bnd) then (bnd, de -> bne), b*n*d*(c + e); not b*n*c*d*e.
    ("bnc,cd,de->bne", (2, 7, 8), [(8, 4), (4, 5)], 2 * 7 * 4 * (8 + 5)),
    ("bhqd,bhkd->bhqk", (2, 3, 5, 4), [(2, 3, 6, 4)], 2 * 3 * 5 * 6 * 4),
    ("ij,jk", (5, 4), [(4, 3)], 5 * 4 * 3),  # implicit output ik
    ("bij,bjk->bik", (2, 5, 4), [(2, 4, 3)], 2 * 5 * 4 * 3),
]


@pytest.mark.parametrize(("equation", "shape", "weights", "hand"), CASES)
def test_einsum_macs_equal_the_matrix_products_torch_runs(equation, shape, weights, hand) -> None:
    model = Fn(lambda x, *w: torch.einsum(equation, x, *w), *(torch.randn(s) for s in weights))
    assert _macs(model, shape) == hand == _torch_macs(model, shape)


def test_einsum_without_a_summed_index_counts_its_multiplies() -> None:
    # flop_counter counts 0 here (torch runs a mul, not a bmm); the rule counts one multiply per
    # output element, which is what it costs.
    model = Fn(lambda x, w: torch.einsum("bi,bi->bi", x, w), torch.randn(3, 4))
    assert _macs(model, (3, 4)) == 12
    assert _torch_macs(model, (3, 4)) == 0


@pytest.mark.parametrize(
    ("dims", "shape", "weight", "hand"),
    [
        (1, (2, 3, 4), (4, 5), 2 * 3 * 4 * 5),
        (2, (2, 3, 4), (3, 4, 6), 2 * 3 * 4 * 6),
        (([1, 2], [1, 0]), (2, 3, 4), (4, 3, 5), 2 * 3 * 4 * 5),
    ],
)
def test_tensordot_macs(dims, shape, weight, hand) -> None:
    model = Fn(lambda x, w: torch.tensordot(x, w, dims=dims), torch.randn(weight))
    assert _macs(model, shape) == hand == _torch_macs(model, shape)


def test_operations_without_arithmetic_have_a_formula_of_zero() -> None:
    class Free(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mask = (x == 0) | (x != 1)
            y = torch.roll(x, 1, dims=1).type_as(x).reshape_as(x)
            return y + x.new_zeros(x.shape) + mask.to(x.dtype)

    report = summary(Free(), (4, 8, 8))
    assert report.failure is None
    assert not any("no formula" in n for n in report.notes), report.notes
    assert not any("no formula" in n for r in report.all_layers for n in r.notes)
    assert report.totals.macs == 0
    # the two adds are the only arithmetic: one FLOP per output element each
    assert report.totals.flops == 2 * 4 * 8 * 8
    assert report.output_rf is not None and report.output_rf.size == (1, 1)
