"""A faster, equivalent model for inference.

`optimize_for_inference` copies a model and applies the rewrites that keep its function but cut
its cost at inference time:

1. Batch-norm folding. In eval mode a batch norm right after a convolution is an affine map per
   output channel, so it folds into the convolution's weight and bias
   (w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta) and disappears. The
   conv -> batch-norm pairs are found on the `torch.fx` graph (the batch norm's only input is the
   convolution's output and nothing else reads it), never by module names.
2. Channels-last memory format, the layout oneDNN's (CPU) and cuDNN's convolutions prefer.
3. bf16 weights and activations, where the hardware computes in bf16 natively: a CUDA GPU that
   supports it, or a CPU with AVX512-BF16 or AMX (oneDNN's bf16 kernels; without them bf16 is
   emulated and slower than fp32, so it is refused).
4. Optionally `torch.compile` with Inductor's weight freezing.

The result takes the same input as the original (fp32, any layout) and returns fp32 logits.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from cnnzoo.errors import UsageError

__all__ = [
    "FoldedPair",
    "InferenceModel",
    "bf16_support",
    "fold_batch_norms",
    "optimize_for_inference",
]

Precision = Literal["fp32", "bf16"]
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
_CONV_BN = ((nn.Conv1d, nn.BatchNorm1d), (nn.Conv2d, nn.BatchNorm2d), (nn.Conv3d, nn.BatchNorm3d))
# Operations without a bf16 CPU kernel in PyTorch (LRN's avg_pool3d): they run in fp32.
_FP32_ONLY = (nn.LocalResponseNorm,)


def bf16_support(device: torch.device | str = "cpu") -> str | None:
    """Why bf16 is fast on `device`, or None when it is not natively supported there.

    Returns:
        A short description ("CUDA <name>", "CPU AMX", "CPU AVX512-BF16"), or None.
    """
    device = torch.device(device)
    if device.type == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False):
            return f"CUDA {torch.cuda.get_device_name(device)}"
        return None
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return None
    if torch.cpu._is_amx_tile_supported():
        return "CPU AMX"
    if torch.cpu._is_avx512_bf16_supported():
        return "CPU AVX512-BF16"
    return None


@dataclass(frozen=True)
class FoldedPair:
    """One batch norm folded into the convolution before it (qualified module names)."""

    conv: str
    batch_norm: str


def fold_batch_norms(model: nn.Module) -> list[FoldedPair]:
    """Fold every batch norm that directly follows a convolution into it, in place.

    The model must be in eval mode (folding uses the running statistics) and `torch.fx`
    traceable. A pair is folded only when the graph shows the convolution's output goes to the
    batch norm and nowhere else, and each module is called at exactly one place; the
    convolution is replaced by the fused one and the batch norm by `nn.Identity`, so the
    module's own class, methods and `forward` are kept.

    Returns:
        The folded pairs.
    """
    if model.training:
        raise ValueError("fold_batch_norms needs a model in eval mode (it uses running stats)")
    graph = fx.symbolic_trace(model).graph
    modules = dict(model.named_modules(remove_duplicate=False))
    calls: dict[int, int] = {}  # by module identity: a module shared under two names counts twice
    for node in graph.nodes:
        if node.op == "call_module":
            key = id(modules[node.target])
            calls[key] = calls.get(key, 0) + 1

    folded = []
    for node in graph.nodes:
        if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
            continue
        source = node.args[0]
        if not isinstance(source, fx.Node) or source.op != "call_module":
            continue
        conv, bn = modules[source.target], modules[node.target]
        if not any(isinstance(conv, c) and isinstance(bn, b) for c, b in _CONV_BN):
            continue
        if len(source.users) != 1 or calls[id(conv)] != 1 or calls[id(bn)] != 1:
            continue
        if not bn.track_running_stats or bn.running_mean is None:
            continue
        _set_submodule(model, source.target, fuse_conv_bn_eval(conv, bn))
        _set_submodule(model, node.target, nn.Identity())
        folded.append(FoldedPair(source.target, node.target))
    return folded


def _set_submodule(model: nn.Module, qualified_name: str, module: nn.Module) -> None:
    parent_name, _, child = qualified_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


class Float32(nn.Module):
    """Runs `module` in fp32 inside a lower-precision network, casting back afterwards."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        return self.module(x.float()).to(x.dtype)


def _keep_fp32(model: nn.Module) -> None:
    for name, module in list(model.named_modules()):
        if isinstance(module, _FP32_ONLY):
            _set_submodule(model, name, Float32(module))


class InferenceModel(nn.Module):
    """An optimized copy of a model that takes and returns what the original does.

    Inputs are cast to the model's dtype and memory format; outputs come back as fp32.

    Attributes:
        model: the rewritten (possibly compiled) network.
        precision: "fp32" or "bf16".
        channels_last: whether the weights and inputs are channels-last.
        folded: the conv -> batch-norm pairs that were folded.
        compiled: whether `torch.compile` wraps the network.
    """

    def __init__(
        self,
        model: nn.Module | Callable[[Tensor], Tensor],
        precision: Precision,
        channels_last: bool,
        folded: list[FoldedPair],
        compiled: bool,
    ) -> None:
        super().__init__()
        self.model = model
        self.precision = precision
        self.dtype = _DTYPES[precision]
        self.channels_last = channels_last
        self.folded = tuple(folded)
        self.compiled = compiled

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.to(dtype=self.dtype, memory_format=torch.channels_last)
        else:
            x = x.to(dtype=self.dtype)
        with torch.inference_mode():
            out = self.model(x)
        return out.float()

    def extra_repr(self) -> str:
        return (
            f"precision={self.precision}, channels_last={self.channels_last}, "
            f"folded={len(self.folded)} batch norms, compiled={self.compiled}"
        )


def optimize_for_inference(
    model: nn.Module,
    precision: Precision = "fp32",
    compile: bool = False,
    channels_last: bool = True,
    device: torch.device | str | None = None,
) -> InferenceModel:
    """An equivalent eval-mode model that runs faster; the caller's model is not modified.

    Args:
        model: any `torch.fx`-traceable module (every cnnzoo model is); models that do not
            trace are optimized without batch-norm folding.
        precision: "fp32", or "bf16" where the device computes bf16 natively (raises
            ValueError otherwise; see `bf16_support`).
        compile: wrap the network in `torch.compile` (the first calls compile it).
        channels_last: store weights and inputs channels-last (NHWC).
        device: where to run; defaults to the device of the model's parameters.

    Returns:
        An `InferenceModel` taking the original input and returning fp32 outputs.
    """
    if precision not in _DTYPES:
        raise UsageError(f"precision must be one of {', '.join(_DTYPES)}, got {precision!r}")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    if precision == "bf16" and bf16_support(device) is None:
        raise UsageError(
            f"bf16 is not natively supported on {device} (no AVX512-BF16/AMX CPU or CUDA bf16); "
            "it would be emulated and slower than fp32: use precision='fp32'"
        )

    copied = copy.deepcopy(model).eval().to(device)
    try:
        folded = fold_batch_norms(copied)
    except (fx.proxy.TraceError, TypeError, NotImplementedError):
        folded = []  # data-dependent control flow: keep the batch norms
    for p in copied.parameters():
        p.requires_grad_(False)
    copied = copied.to(dtype=_DTYPES[precision])
    if precision != "fp32":
        _keep_fp32(copied)
    if channels_last:
        copied = copied.to(memory_format=torch.channels_last)
    # Inductor's freezing treats the weights as constants: it folds them and pre-packs them
    # into oneDNN's blocked layout once, instead of on every call.
    network = torch.compile(copied, options={"freezing": True}) if compile else copied
    return InferenceModel(network, precision, channels_last, folded, compile)
