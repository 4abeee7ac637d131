"""Every zoo model through ONNX and onnxruntime, compared with PyTorch, in background worker
processes (a plain module, so that a spawned worker can import it).

Exporting runs `torch.export` and its decompositions, whose cost grows with the number of traced
operations: ResNet-1202 (about 3,600) takes 80-120 s, the whole zoo about 10 minutes of one core.
So the conftest starts the exports when the session starts, in one worker per core at the lowest
CPU priority: they use the cores the rest of the suite leaves idle (subprocesses, file I/O,
Python overhead), and the ONNX tests run last and wait for their model's result.

Batch-norm statistics are calibrated on random batches first: at initialization the running
statistics are (0, 1) and a deep residual network's logits reach 1e6, where float32 rounding
alone differs by more than 1e-4; calibrated, the logits are of order 1, as a trained model's are.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import cnnzoo
from cnnzoo.export import export_model


@dataclass(frozen=True)
class Roundtrip:
    name: str
    input_size: tuple[int, ...]
    expected_shape: tuple[int, ...]
    onnx_shape: tuple[int, ...]
    max_abs_diff: float  # onnxruntime vs PyTorch, both float32
    torch_fp32_error: float  # PyTorch float32 vs PyTorch float64: the network's own noise floor
    max_abs_logit: float
    seconds: float


def small_input(name: str) -> tuple[int, ...]:
    """64x64 where the network allows it (adaptive pooling), else the spec's input."""
    channels, *spatial = cnnzoo.get_spec(name).input_size
    small = (channels, *(min(s, 64) for s in spatial))
    return small if cnnzoo.summary(name, small).failure is None else (channels, *spatial)


def calibrated(name: str, size: tuple[int, ...], **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    model = cnnzoo.create_model(name, **overrides)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # running statistics = the average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, *size))
    return model.eval()


def run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


def roundtrip(name: str, out_dir: str) -> Roundtrip:
    """Export `name` with cnnzoo's exporter, run it in onnxruntime, compare with PyTorch."""
    torch.set_num_threads(1)  # each worker holds one core; tracing is single-threaded anyway
    started = time.perf_counter()
    size = small_input(name)
    model = calibrated(name, size)
    path = Path(out_dir) / f"{name}.onnx"
    exported = export_model(model, input_size=size, out=path)
    x = torch.randn(1, *size)
    with torch.no_grad():
        expected = model(x).numpy()
        exact = model.double()(x.double()).numpy()
    got = run_onnx(exported.path, x)
    path.unlink()  # VGG's files are 0.5 GB each; keep the disk free for the next
    return Roundtrip(
        name=name,
        input_size=size,
        expected_shape=expected.shape,
        onnx_shape=got.shape,
        max_abs_diff=float(np.abs(got - expected).max()) if got.shape == expected.shape else np.inf,
        torch_fp32_error=float(np.abs(expected - exact).max()),
        max_abs_logit=float(np.abs(expected).max()),
        seconds=time.perf_counter() - started,
    )


def _worker_setup() -> None:
    os.nice(19)  # the lowest CPU priority: only the time the rest of the suite leaves idle
    _build_onnx_registry_once()


def _build_onnx_registry_once() -> None:
    """torch.onnx rebuilds its table of ATen-to-ONNX functions for every export (0.6-1.3 s); a
    worker that exports dozens of models builds it once. This reaches into a torch.onnx
    internal, so where that has moved the workers just rebuild it as users do."""
    try:
        from torch.onnx._internal.exporter import _registration
    except ImportError:
        return
    registry = getattr(_registration, "ONNXRegistry", None)
    build = getattr(registry, "from_torchlib", None)
    if build is not None:
        registry.from_torchlib = staticmethod(functools.cache(build))


class BackgroundRoundtrips:
    """Round trips of the given models, computed by worker processes from the moment it is made;
    `result(name)` waits for one."""

    def __init__(self, names: list[str], estimated_cost) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="cnnzoo-onnx-")
        workers = max(1, min(4, len(os.sched_getaffinity(0))))
        # spawn, not fork: a forked copy of a process whose torch thread pools run can hang.
        self._pool = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_setup
        )
        self._futures: dict[str, Future[Roundtrip]] = {
            name: self._pool.submit(roundtrip, name, self._dir.name)
            for name in sorted(names, key=estimated_cost, reverse=True)  # largest first
        }

    def result(self, name: str, timeout: float = 1800) -> Roundtrip:
        return self._futures[name].result(timeout=timeout)

    def report(self, tolerance: float) -> list[str]:
        """The finished round trips that differ by more than `tolerance`, with their figures."""
        done = [f.result() for f in self._futures.values() if f.done() and not f.exception()]
        beyond = sorted((r for r in done if r.max_abs_diff > tolerance), key=lambda r: r.name)
        if not beyond:
            return []
        lines = [f"ONNX round trips beyond {tolerance:g} ({len(beyond)} of {len(done)}):"]
        lines += [
            f"  {r.name}: onnxruntime - PyTorch {r.max_abs_diff:.2e}, PyTorch float32 - float64 "
            f"{r.torch_fp32_error:.2e}, logits up to {r.max_abs_logit:.3g}"
            for r in beyond
        ]
        return lines

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._dir.cleanup()
