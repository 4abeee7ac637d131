"""The construction argument of the ResNet paper, made runnable.

He et al. 2015 (arXiv 1512.03385, Sec. 1): "There exists a solution by construction to the
deeper model: the added layers are identity mapping, and the other layers are copied from the
learned shallower model. The existence of this constructed solution indicates that a deeper
model should produce no higher training error than its shallower counterpart." So when SGD
leaves plain-56 above plain-20 in training error, the fault is the optimization, not the
capacity.

`deepen_plain` builds that solution: plain-20's blocks go into the first blocks of each stage of
plain-56, and every extra conv-BN-ReLU becomes an identity (a Dirac kernel, batch norm with
weight 1, bias 0, running mean 0 and running variance 1 - eps, so that (x - 0) / sqrt(1 - eps +
eps) = x; ReLU is the identity on its input, which follows a ReLU and is non-negative).
`verify_construction` checks that the two networks' logits agree and raises if they do not.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError, UsageError
from cnnzoo.layers.residual import ResidualBlock
from cnnzoo.registry import create_model

LOGIT_TOLERANCE = 1e-5  # max abs logit difference allowed between the shallow and the deep net


class ConstructionError(CnnzooError, RuntimeError):
    """The constructed network does not compute the shallow network's function."""


def deepen_plain(shallow: nn.Module, deep: str | nn.Module = "plain56_cifar") -> nn.Module:
    """A deeper plain network that computes exactly what `shallow` computes.

    Args:
        shallow: a trained plain network (a `ResNet` built with `residual=False`, e.g.
            plain20_cifar).
        deep: the deeper plain network to fill (its weights are overwritten), or its registered
            name; it needs at least as many blocks in every stage, with the same widths.

    Returns:
        `deep`, in eval mode: every parameter and buffer of `shallow` copied to the same name
        (the stem, the classifier, and block b of stage s into block b of stage s), every
        further block an identity.

    Raises:
        UsageError: either network is not plain (it has shortcuts or pre-activation), or their
            stages do not match.
    """
    if isinstance(deep, str):
        deep = create_model(deep, num_classes=shallow.fc.out_features, in_chans=shallow.in_chans)
    for net, role in ((shallow, "shallow"), (deep, "deep")):
        _check_plain(net, role)
    if shallow.num_stages != deep.num_stages:
        raise UsageError(
            f"the shallow network has {shallow.num_stages} stages and the deep one "
            f"{deep.num_stages}; the construction copies stage by stage"
        )
    state = deep.state_dict()
    for name, tensor in shallow.state_dict().items():
        if name not in state or state[name].shape != tensor.shape:
            raise UsageError(
                f"{name} of the shallow network has no counterpart of shape "
                f"{tuple(tensor.shape)} in the deep one; build both with the same stage widths"
            )
        state[name] = tensor.clone()
    deep.load_state_dict(state)
    for index in range(1, deep.num_stages + 1):
        copied = len(getattr(shallow, f"layer{index}"))
        for block in list(getattr(deep, f"layer{index}"))[copied:]:
            make_identity(block)
    return deep.eval()


def make_identity(block: ResidualBlock) -> None:
    """Turn a plain block (conv-BN-ReLU ... conv-BN-ReLU, no shortcut) into the identity on
    non-negative inputs.

    Raises:
        UsageError: the block changes the resolution or the channel count.
    """
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        if conv.stride != (1, 1) or conv.in_channels != conv.out_channels or conv.groups != 1:
            raise UsageError(
                "an identity block needs stride 1 and as many output channels as input "
                f"channels; this one has a {conv.in_channels}->{conv.out_channels} convolution "
                f"with stride {conv.stride}"
            )
    with torch.no_grad():
        for conv in convs:
            nn.init.dirac_(conv.weight)
            if conv.bias is not None:
                conv.bias.zero_()
        for bn in (m for m in block.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.weight.fill_(1.0)
            bn.bias.zero_()
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)


def max_logit_difference(a: nn.Module, b: nn.Module, batches: Iterable[Tensor]) -> float:
    """The largest absolute difference between the logits of `a` and `b` over `batches` of
    model inputs, both in eval mode (their modes are restored)."""
    modes = a.training, b.training
    a.eval()
    b.eval()
    worst = 0.0
    try:
        with torch.no_grad():
            for x in batches:
                worst = max(worst, (a(x) - b(x)).abs().max().item())
    finally:
        a.train(modes[0])
        b.train(modes[1])
    return worst


def verify_construction(
    shallow: nn.Module,
    deep: nn.Module,
    batches: Iterable[Tensor],
    tolerance: float = LOGIT_TOLERANCE,
) -> float:
    """The max abs logit difference between the networks (eval mode) over `batches`.

    Raises:
        ConstructionError: it exceeds `tolerance`: the deep network is not the shallow one's
            function, and its errors would not be the shallow network's.
    """
    difference = max_logit_difference(shallow, deep, batches)
    if not difference <= tolerance:  # also catches NaN
        raise ConstructionError(
            f"the constructed network's logits differ from the shallow network's by up to "
            f"{difference:.3g} (allowed: {tolerance:g}); the construction is broken"
        )
    return difference


def _check_plain(net: nn.Module, role: str) -> None:
    blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
    if not blocks or not hasattr(net, "num_stages"):
        raise UsageError(f"the {role} network is not a ResNet-style stack of blocks")
    for block in blocks:
        if block.add is not None or block.preact:
            raise UsageError(
                f"the {role} network has shortcuts or pre-activation blocks; the construction "
                "is for plain networks (plain20_cifar, plain56_cifar, ...)"
            )
