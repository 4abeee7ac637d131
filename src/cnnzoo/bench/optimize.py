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

`precision="auto"` chooses for the caller: it builds the candidate paths (fp32 contiguous, fp32
channels-last, and bf16 channels-last where the device computes bf16 natively), times each briefly
on the caller's input shape, checks each against the original fp32 model on one fixed batch, and
keeps the fastest that agrees. Agreement (`agreement`) means: the largest logit difference is at
most `LOGIT_TOLERANCE[precision]` times the largest fp32 logit magnitude, and every image keeps
its fp32 top-1 class except in a near tie: fp32's own margin between the two classes is at most
half that tolerance (untrained networks have many such ties). A change with a wider fp32 margin
is a disagreement even when the logits are within the tolerance.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from cnnzoo.bench.timing import median_seconds
from cnnzoo.errors import UsageError

__all__ = [
    "LOGIT_TOLERANCE",
    "Agreement",
    "AutoChoice",
    "Candidate",
    "FoldedPair",
    "InferenceModel",
    "agreement",
    "bf16_support",
    "fold_batch_norms",
    "native_bf16_isa",
    "optimize_for_inference",
    "prepare",
]

Precision = Literal["fp32", "bf16", "auto"]
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# Largest logit difference allowed against fp32, as a fraction of the largest fp32 logit
# magnitude. fp32 paths only reorder sums (batch-norm folding, another layout): 1e-4 relative
# is what the tests of folding hold every zoo model to, with 10x room. bf16 keeps 8 mantissa
# bits (relative rounding 2^-9 per operation); over a deep network the logits move by up to a
# few percent of their range (3% on the zoo's models in tests/bench/test_optimize.py).
LOGIT_TOLERANCE = {"fp32": 1e-3, "bf16": 0.05}
# How `precision="auto"` times each candidate: untimed calls, then the median of timed ones.
_AUTO_WARMUP = 1
_AUTO_REPEAT = 3
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
    isa = native_bf16_isa()
    return None if isa is None else f"CPU {isa}"


def native_bf16_isa() -> str | None:
    """The CPU instruction set oneDNN computes bf16 with ("AMX", "AVX512-BF16"), or None.

    PyTorch's own checks, which also ask whether the OS enabled the AMX tiles.
    """
    if torch.cpu._is_amx_tile_supported():
        return "AMX"
    if torch.cpu._is_avx512_bf16_supported():
        return "AVX512-BF16"
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
        choice: with `precision="auto"`, the candidates measured and why this one was kept.
    """

    def __init__(
        self,
        model: nn.Module | Callable[[Tensor], Tensor],
        precision: str,
        channels_last: bool,
        folded: Sequence[FoldedPair],
        compiled: bool,
        choice: AutoChoice | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.precision = precision
        self.dtype = _DTYPES[precision]
        self.channels_last = channels_last
        self.folded = tuple(folded)
        self.compiled = compiled
        self.choice = choice

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


@dataclass(frozen=True)
class Agreement:
    """How a candidate's logits compare with the fp32 model's on one fixed batch.

    Attributes:
        max_logit_diff: the largest absolute logit difference.
        scale: the largest fp32 logit magnitude.
        tolerance: the allowed `max_logit_diff / scale`.
        top1_changed: images whose top-1 class changed outside a near tie.
        images: images in the batch.
    """

    max_logit_diff: float
    scale: float
    tolerance: float
    top1_changed: int
    images: int

    @property
    def ok(self) -> bool:
        return self.max_logit_diff <= self.tolerance * self.scale and self.top1_changed == 0

    def describe(self) -> str:
        relative = self.max_logit_diff / self.scale if self.scale else 0.0
        return (
            f"max logit difference {relative:.2%} of the largest logit (tolerance "
            f"{self.tolerance:.2%}), top-1 changed on {self.top1_changed} of {self.images} images"
        )


def agreement(reference: Tensor, candidate: Tensor, tolerance: float) -> Agreement:
    """Compare a candidate's logits with the fp32 reference's (both [batch, classes]).

    A changed top-1 class counts unless it is a near tie: fp32's own margin between its top-1
    class and the candidate's is at most `tolerance / 2` times the largest fp32 logit. (A bound
    tied to the observed difference would excuse every change: flipping a margin m needs a
    logit difference of at least m / 2.)
    """
    reference, candidate = reference.float(), candidate.float()
    diff = (candidate - reference).abs().max().item()
    scale = reference.abs().max().item()
    want, have = reference.argmax(1), candidate.argmax(1)
    margin = reference.gather(1, want[:, None]) - reference.gather(1, have[:, None])
    changed = int(((want != have) & (margin[:, 0] > tolerance / 2 * scale)).sum())
    return Agreement(diff, scale, tolerance, changed, reference.shape[0])


@dataclass(frozen=True)
class Candidate:
    """One path `precision="auto"` considered.

    Attributes:
        precision, channels_last: what the path is.
        median_s: its median time per batch (None: not run).
        agreement: its logits against fp32 (None: not run).
        note: why it was not run, when it was not.
    """

    precision: str
    channels_last: bool
    median_s: float | None = None
    agreement: Agreement | None = None
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.precision} {'channels-last' if self.channels_last else 'contiguous'}"


@dataclass(frozen=True)
class AutoChoice:
    """What `precision="auto"` measured and kept.

    Attributes:
        candidates: every path considered, in the order tried.
        chosen: the index of the kept one in `candidates`.
        input_shape: the batch shape the candidates were timed on.
    """

    candidates: tuple[Candidate, ...]
    chosen: int
    input_shape: tuple[int, ...]

    def describe(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        lines = [f"precision='auto' on input {shape}: kept {self.candidates[self.chosen].name}"]
        for i, c in enumerate(self.candidates):
            mark = "*" if i == self.chosen else " "
            if c.median_s is None:
                lines.append(f" {mark} {c.name}: not tried ({c.note})")
                continue
            verdict = "agrees" if c.agreement.ok else "DISAGREES"
            lines.append(
                f" {mark} {c.name}: {1e3 * c.median_s:.2f} ms, {verdict}: {c.agreement.describe()}"
            )
        return "\n".join(lines)


def optimize_for_inference(
    model: nn.Module,
    precision: Precision = "fp32",
    compile: bool = False,
    channels_last: bool = True,
    device: torch.device | str | None = None,
    example: Tensor | Sequence[int] | None = None,
) -> InferenceModel:
    """An equivalent eval-mode model that runs faster; the caller's model is not modified.

    Args:
        model: any `torch.fx`-traceable module (every cnnzoo model is); models that do not
            trace are optimized without batch-norm folding.
        precision: "fp32"; "bf16" where the device computes bf16 natively (a `UsageError`
            otherwise, saying why; see `bf16_support`); or "auto": time the candidate paths on
            `example` and keep the fastest that agrees with fp32 (see the module docstring;
            `channels_last` is then chosen too, and the result's `choice` says what was
            measured).
        compile: wrap the network in `torch.compile` (the first calls compile it).
        channels_last: store weights and inputs channels-last (NHWC).
        device: where to run; defaults to the device of the model's parameters.
        example: for "auto": the input batch to time and check on, or its shape
            (batch, C, H, W), for which a fixed random batch (seed 0) is drawn.

    Returns:
        An `InferenceModel` taking the original input and returning fp32 outputs.
    """
    if precision not in (*_DTYPES, "auto"):
        raise UsageError(f"precision must be one of fp32, bf16, auto, got {precision!r}")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    if precision == "auto":
        return _auto(model, compile, device, example)
    if precision == "bf16" and bf16_support(device) is None:
        raise UsageError(_no_bf16(device))
    return prepare(model, precision, compile, channels_last, device)


def _no_bf16(device: torch.device) -> str:
    return (
        f"bf16 is not natively supported on {device} (no AVX512-BF16/AMX CPU or CUDA bf16); "
        "it would be emulated and slower than fp32: use precision='fp32'"
    )


def prepare(
    model: nn.Module,
    precision: str,
    compile: bool,
    channels_last: bool,
    device: torch.device | str,
    fold: bool = True,
) -> InferenceModel:
    """A copy of `model` for inference in `precision` and layout, batch norms folded if `fold`.

    The one code path every inference case goes through, optimized or not, so that two cases
    differ only in what their settings say. No check of the device's bf16 support.
    """
    device = torch.device(device)
    copied = copy.deepcopy(model).eval().to(device)
    folded: list[FoldedPair] = []
    if fold:
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


def _auto(
    model: nn.Module,
    compile: bool,
    device: torch.device,
    example: Tensor | Sequence[int] | None,
) -> InferenceModel:
    if example is None:
        raise UsageError(
            "precision='auto' times the candidates on your input: pass example= a batch "
            "(or its shape, e.g. (16, 3, 224, 224))"
        )
    if isinstance(example, Tensor):
        x = example.to(device)
    else:
        x = torch.randn(*example, generator=torch.Generator().manual_seed(0)).to(device)
    reference_model = copy.deepcopy(model).eval().to(device)
    with torch.inference_mode():
        reference = reference_model(x.float()).float()
    del reference_model

    paths = [("fp32", False), ("fp32", True), ("bf16", True)]
    tried: list[Candidate] = []
    built: list[InferenceModel | None] = []
    for precision, channels_last in paths:
        if precision == "bf16" and bf16_support(device) is None:
            tried.append(Candidate(precision, channels_last, note=_no_bf16(device)))
            built.append(None)
            continue
        candidate = prepare(model, precision, compile, channels_last, device)
        check = agreement(reference, candidate(x), LOGIT_TOLERANCE[precision])
        seconds = median_seconds(lambda c=candidate: c(x), _AUTO_REPEAT, _AUTO_WARMUP, device)
        tried.append(Candidate(precision, channels_last, seconds, check))
        built.append(candidate)
    agreeing = [i for i, c in enumerate(tried) if c.agreement is not None and c.agreement.ok]
    if not agreeing:  # not even an fp32 path agrees: the model is not deterministic
        report = AutoChoice(tuple(tried), 0, tuple(x.shape)).describe()
        raise UsageError(f"no candidate path agrees with the fp32 model:\n{report}")
    best = min(agreeing, key=lambda i: tried[i].median_s)
    chosen = built[best]
    chosen.choice = AutoChoice(tuple(tried), best, tuple(x.shape))
    return chosen
