"""Every registered model: the analyzer's counts against PyTorch's own and the spec's."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.analysis import meta_model, summary

NAMES = cnnzoo.list_models()


@pytest.mark.parametrize("name", NAMES)
def test_macs_params_and_row_sums(name: str) -> None:
    spec = cnnzoo.get_spec(name)
    model = meta_model(name)
    # FlopCounterMode counts the aten convolutions and matrix products that actually run, below
    # the torch functions whose formulas the analyzer applies. It watches a plain meta forward of
    # its own: the analyzer builds some outputs from shapes alone, so inside its trace the
    # counter would not see every kernel.
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, *spec.input_size, device="meta"))
    report = summary(model, spec.input_size)
    assert report.failure is None
    t = report.totals
    assert 2 * t.macs == counter.get_total_flops()
    assert t.macs == spec.macs
    assert t.params == sum(p.numel() for p in model.parameters())
    assert t.params == spec.num_params
    layers = report.all_layers
    assert sum(r.params for r in layers) + t.unused_params == t.params
    assert sum(r.macs for r in layers) == t.macs
    assert sum(r.flops for r in layers) == t.flops == 2 * t.macs + t.other_flops
    assert sum(r.activation_bytes for r in layers) == t.activation_bytes
    assert report.layers[-1].output_shapes == ((1, spec.num_classes),)
    assert not any("no formula" in note for note in report.notes), report.notes


def test_count_macs_uses_the_analyzer() -> None:
    from cnnzoo.analysis import count_macs

    assert count_macs(meta_model("vgg16"), (3, 224, 224)) == cnnzoo.get_spec("vgg16").macs
    assert count_macs(meta_model("resnet20_cifar"), (3, 32, 32), batch_size=4) == (
        4 * cnnzoo.get_spec("resnet20_cifar").macs
    )
