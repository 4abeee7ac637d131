"""The lecture's worked examples, answered by the analyzer."""

from __future__ import annotations

import torch
from torch import nn

import cnnzoo
from cnnzoo.analysis import summary


def _layer(report, name):
    return next(r for r in report.all_layers if r.name == name)


def test_alexnet_conv1_and_pool1() -> None:
    report = cnnzoo.summary(cnnzoo.create_model("alexnet"))
    conv1 = _layer(report, "features.conv1")
    assert conv1.output_shape == (1, 96, 55, 55)  # (227 - 11) / 4 + 1 = 55
    assert conv1.params == 34_944  # (11*11*3 + 1) * 96, "35K"
    assert conv1.macs == 55 * 55 * 96 * 11 * 11 * 3 == 105_415_200
    assert (conv1.kernel, conv1.stride, conv1.padding, conv1.groups) == (
        (11, 11),
        (4, 4),
        (0, 0),
        1,
    )
    pool1 = _layer(report, "features.pool1")
    assert pool1.output_shape == (1, 96, 27, 27)
    assert pool1.params == 0
    assert pool1.macs == 0 and pool1.flops == 27 * 27 * 96 * 8


def test_alexnet_explain_writes_out_the_arithmetic() -> None:
    text = cnnzoo.summary("alexnet").explain()
    assert "(227 + 2*0 - 11) / 4 + 1 = 55" in text
    assert "(11*11*3 + 1) * 96 = 34,944 params" in text
    assert "55*55*96 outputs x 11*11*3 MACs each = 105,415,200 MACs" in text
    assert "(5*5*96/2 + 1) * 256 = 307,456 params" in text  # CONV2 sees one tower
    assert "params: 0 (pooling has no parameters)" in text


def test_fc_layers_hold_the_parameters_and_early_convs_the_memory() -> None:
    tops = cnnzoo.summary("alexnet").highlights(1)
    ((name, params, share),) = tops["params"]
    assert name == "classifier.fc6" and params == 9216 * 4096 + 4096 and share > 0.6
    assert tops["activations"][0][0] == "features.conv1"


def test_zfnet_inexact_divisions_are_flagged_with_the_input_that_fixes_them() -> None:
    report = cnnzoo.summary("zfnet", find_exact_inputs=True)
    conv1 = _layer(report, "features.conv1")
    assert conv1.inexact and conv1.output_shape == (1, 96, 110, 110)  # (224 + 2 - 7) / 2 + 1
    assert not _layer(report, "features.conv2").inexact
    exact, _ = report.exact_inputs()
    assert exact["features.conv1"] == (3, 225, 225)
    text = report.explain()
    assert "(224 + 2*1 - 7) / 2 + 1 = 110.5 -> 110, floored" in text
    assert "input 3x225x225 makes it exact" in text


def test_three_stacked_3x3_convs_see_7x7() -> None:
    model = nn.Sequential(*(nn.Conv2d(8, 8, 3, padding=1) for _ in range(3)))
    report = summary(model, (8, 32, 32))
    assert [r.rf_size for r in report.layers] == [(3, 3), (5, 5), (7, 7)]
    assert report.output_rf is not None and report.output_rf.size == (7, 7)
    # ...with fewer parameters than one 7x7 conv: 3 * (3*3*C*C) vs 7*7*C*C
    assert report.totals.params == 3 * (9 * 64 + 8)


def test_receptive_fields_of_the_classics() -> None:
    def rf(name: str, layer: str) -> int:
        report = cnnzoo.summary(name)
        (row,) = [r for r in report.all_layers if r.name == layer]
        assert row.rf is not None and row.rf.size[0] == row.rf.size[1]
        return row.rf.size[0]

    # Araujo et al. 2019 ("Computing Receptive Fields of CNNs", Distill), Table 1: AlexNet 195,
    # VGG-16 212 at pool5 (196 at conv5_3); torchvision's ResNet-50 (stride in the 3x3): 427.
    assert rf("alexnet", "features.pool3") == 195
    assert rf("vgg16", "features.29") == 196
    assert rf("vgg16", "features.30") == 212
    assert rf("resnet50_tv", "final_relu") == 427
    # The paper's ResNet-50 strides in the first 1x1, so its later 3x3s see more: 483.
    assert rf("resnet50", "final_relu") == 483


def test_naive_inception_costs_more_than_the_bottlenecked_one() -> None:
    from cnnzoo.layers import Inception, InceptionChannels, NaiveInception

    naive = summary(NaiveInception(256, 128, 192, 96), (256, 28, 28))
    reduced = summary(Inception(256, InceptionChannels(128, 64, 192, 16, 96, 64)), (256, 28, 28))
    # The lecture's numbers: 854M ops for the naive module, 358M with 1x1 bottlenecks.
    assert naive.totals.macs == 854_196_224
    assert reduced.totals.macs < naive.totals.macs / 2
    assert naive.layers[-1].output_shape == (1, 672, 28, 28)  # depth only grows


def test_vgg16_memory_is_in_the_early_layers() -> None:
    report = cnnzoo.summary("vgg16")
    early = sum(r.activation_bytes for r in report.all_layers if r.name.startswith("features.")
                and r.output_shape[-1] == 224)  # fmt: skip
    assert early > 0.3 * report.totals.activation_bytes
    assert report.totals.param_bytes == 4 * 138_357_544
    assert torch.float32.itemsize == 4


def test_explain_covers_every_layer_and_ends_with_the_totals() -> None:
    report = cnnzoo.summary("alexnet")
    text = report.explain()
    for row in report.all_layers:  # every layer has its paragraph, not only conv and pool
        assert f"\n{row.name} ({row.type}): " in text
    # The lecture's point about AlexNet: fc6 alone holds 62% of the parameters.
    assert "(9216 + 1) * 4096 = 37,752,832 params (61.9% of all)" in text
    assert "4096 outputs x 9216 MACs each = 37,748,736 MACs" in text
    assert "memory: 96*55*55 = 290,400 values = 1.11 MiB" in text
    assert "96*27*27 values x 9 FLOPs each = 629,856 FLOPs" in text  # LRN
    assert "classifier.dropout6 (Dropout): 4096 -> 4096\n  passes its input through" in text
    totals = text.split("\nTotals:\n")[1]
    assert (
        "Parameters: 60,965,224 (61.0M)" in totals and "MACs (conv + linear): 724,406,816" in totals
    )


def test_explain_writes_out_norms_and_merges() -> None:
    text = cnnzoo.summary("resnet18").explain()
    assert "params: 2*64 = 128 params (a scale and a shift per channel; 0.0% of all)" in text
    assert "layer1.0.add (Add): 64x56x56; 64x56x56 -> 64x56x56" in text
    assert (
        "64*56*56 values x 1 FLOP each = 200,704 FLOPs, an element-wise merge of 2 inputs" in text
    )
    assert "concatenates 64 + 128 + 32 + 32 = 256 channels" in cnnzoo.summary("googlenet").explain()


def test_memory_per_image_in_values_and_bytes_with_its_definition() -> None:
    from cnnzoo.analysis import meta_model
    from cnnzoo.analysis.memory import activation_memory

    # The oracle, counted without the analyzer: the input plus every leaf module's output that is
    # a new tensor (not its input written in place, not a view of it), on a meta forward pass.
    model = meta_model("vgg16").eval()
    counted = [3 * 224 * 224]

    def hook(module, args, output):
        if output is not args[0] and output._base is None:
            counted.append(output.numel())

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        model(torch.empty(1, 3, 224, 224, device="meta"))
    finally:
        for h in handles:
            h.remove()
    for batch in (1, 4):  # per image, whatever the batch
        memory = activation_memory(cnnzoo.summary("vgg16", batch_size=batch))
        assert memory.values == sum(counted) == 15_262_696
        assert memory.bytes == 4 * memory.values and memory.input_values == 150_528
    table = cnnzoo.summary("vgg16").to_table(100)
    assert "Activations per image (forward, input included): 15,262,696 values = 58.2 MiB" in table


def test_training_mode_shows_googlenets_auxiliary_heads_and_their_cost() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    inference = cnnzoo.summary("googlenet")
    training = cnnzoo.summary("googlenet", mode="train", depth=1)
    heads = {r.name: r for r in training.layers if r.name in ("aux1", "aux2")}
    assert set(heads) == {"aux1", "aux2"} and all(r.type == "AuxClassifier" for r in heads.values())
    # The parameters the inference forward leaves unused are exactly the heads'.
    assert sum(r.params for r in heads.values()) == inference.totals.unused_params > 0
    assert training.totals.unused_params == 0
    assert training.totals.macs == inference.totals.macs + sum(r.macs for r in heads.values())
    # The real training forward, counted by PyTorch's own FLOP counter, agrees.
    model = cnnzoo.create_model("googlenet").train()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.forward_with_aux(torch.zeros(1, 3, 224, 224))
    assert counter.get_total_flops() == 2 * training.totals.macs
    assert model.training and "forward" not in vars(model)  # nothing left behind
    text = training.to_table(100)
    assert "training mode" in text.splitlines()[0] and "aux2" in text
    assert "dropout" in text  # a training-mode dropout draws a mask: it is no pass-through
