"""PyTorch distributed, as started by `torchrun`: gloo on CPU, NCCL on GPU."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_rank() -> int:
    """This process's rank as `torchrun` set it (0 when not launched by torchrun)."""
    return int(os.environ.get("RANK", "0"))


def setup() -> DistContext:
    """Join the process group that `torchrun` describes in the environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = launched_rank()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world_size, local_rank, device)


def teardown(ctx: DistContext, *, clean: bool) -> None:
    """Leave the process group so that no backend thread outlives the interpreter.

    A DistributedDataParallel reducer left for the garbage collector keeps the group (and gloo's
    worker threads) alive into interpreter shutdown, which aborts the process after its work is
    done; collecting first and meeting at a barrier makes every rank leave a finished group.
    After a failure the barrier is skipped: the other ranks may never reach it.
    """
    if not (ctx.enabled and dist.is_initialized()):
        return
    gc.collect()
    if clean:
        dist.barrier()
    dist.destroy_process_group()


def sum_across(ctx: DistContext, values: list[float]) -> list[float]:
    """Sum a few numbers over all processes (metrics); a no-op in a single process."""
    if not ctx.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor)
    return tensor.tolist()
