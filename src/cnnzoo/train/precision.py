"""`--precision auto`: train in bf16 autocast with channels-last where that is measured faster.

Whether bf16 helps a training step depends on the hardware (AMX or a GPU's tensor cores: often
2x; AVX512-BF16 alone: little, since autocast converts around every convolution and keeps batch
norm in fp32) and on the network (a small one is dominated by overheads bf16 does not shrink).
So the choice is measured, not assumed: a few training steps of each candidate on copies of the
model, on a random batch of the run's size, before training starts. The run keeps the choice (in
config.json, with the measurement as `precision_rule`), so a resume trains as it began.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from cnnzoo.bench.optimize import bf16_support
from cnnzoo.train import distributed
from cnnzoo.train.config import TrainConfig

#: bf16 is chosen when a step takes at most this share of the fp32 step's time.
GAIN_NEEDED = 1 / 1.1
STEPS, WARMUP = 3, 1


def resolve_auto_precision(
    config: TrainConfig,
    model: nn.Module,
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    input_size: tuple[int, ...],
    num_classes: int,
    ctx: distributed.DistContext,
) -> TrainConfig:
    """`config` with `precision="auto"` replaced by the measured choice (other configs as given).

    The model and the caller's random state are left as they were: the steps run on deep copies,
    inside `torch.random.fork_rng`. Under torchrun every process measures and the summed times
    decide, so that all of them choose alike.
    """
    if config.precision != "auto":
        return config
    device = ctx.device
    why_not = bf16_support(device)
    if why_not is None:
        rule = f"auto: fp32 (no native bf16 on {device.type}, where autocast would emulate it)"
        return replace(config, precision="fp32", precision_rule=rule)
    batch = config.batch_size // ctx.world_size
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        x = torch.randn(batch, *input_size, device=device)
        y = torch.randint(0, num_classes, (batch,), device=device)
        fp32 = _step_time(model, make_optimizer, x, y, None, channels_last=False)
        bf16 = _step_time(model, make_optimizer, x, y, torch.bfloat16, channels_last=True)
    fp32, bf16 = distributed.sum_across(ctx, [fp32, bf16])
    speedup = fp32 / bf16
    measured = (
        f"a bf16 autocast + channels-last step {speedup:.2f}x a fp32 step, median of {STEPS} "
        f"steps each at batch {batch} ({why_not})"
    )
    if bf16 <= fp32 * GAIN_NEEDED:
        rule = f"auto: bf16 autocast + channels-last; {measured}"
        return replace(config, precision="bf16", channels_last=True, precision_rule=rule)
    rule = f"auto: fp32; {measured}, under the {1 / GAIN_NEEDED:.1f}x needed"
    return replace(config, precision="fp32", precision_rule=rule)


def _step_time(
    model: nn.Module,
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    x: torch.Tensor,
    y: torch.Tensor,
    dtype: torch.dtype | None,
    *,
    channels_last: bool,
) -> float:
    """Median seconds of a training step (zero grads, forward, loss, backward, step) on a copy."""
    net = copy.deepcopy(model).train()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = make_optimizer(net)
    times = []
    for i in range(WARMUP + STEPS):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)  # note: a host sync, to time the step
        if i >= WARMUP:
            times.append(time.perf_counter() - start)
    return statistics.median(times)
