"""The one table of per-operation formulas, keyed by the torch function a forward pass calls.

Conventions (units named explicitly):

- MACs (multiply-accumulates) are counted for convolutions and matrix products only (linear,
  matmul, einsum, attention): the papers' and the lecture's "ops". A convolution costs
  N * H_out * W_out * C_out * K_h * K_w * C_in / groups MACs; a linear layer
  N * in_features * out_features. Bias additions are not counted, as in
  `torch.utils.flop_counter`, so a layer's FLOPs are exactly 2 x its MACs.
- FLOPs of every other operation are counted separately: one per output element for element-wise
  arithmetic and activations (whatever the function: add, ReLU, tanh, ...); batch norm 2 per
  element (at inference it folds into a scale and a shift); layer/group/instance norm 5 per
  element (mean 1, variance 2, normalize 2) plus 2 with an affine transform; local response
  norm size + 4 per element (square 1, window sum size - 1, scale and shift 2, power 1,
  divide 1); max pooling K - 1 comparisons and average pooling K additions-or-divisions per
  output (K = window elements); softmax 3 per element; reductions (sum, mean) one per input
  element. Concatenation, padding, indexing, reshaping and dropout at inference cost 0 FLOPs.

An operation missing from the table is counted as 0 FLOPs and named in the report's notes.
"""

from __future__ import annotations

import enum
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from cnnzoo.analysis.receptive_field import RF, union


class Kind(enum.Enum):
    """What an operation does, which decides its cost and receptive-field rule."""

    CONV = "conv"
    CONV_TRANSPOSE = "conv_transpose"
    MATMUL = "matmul"  # linear layers and matrix products: MACs
    POOL = "pool"
    ADAPTIVE_POOL = "adaptive_pool"
    NORM = "norm"
    ELEMENTWISE = "elementwise"  # arithmetic on broadcast operands
    ACTIVATION = "activation"  # output shaped like the first input
    REDUCTION = "reduction"
    CONCAT = "concat"
    PAD = "pad"
    INDEX = "index"
    LAYOUT = "layout"  # views, reshapes, copies, dtype casts, dropout at inference
    PERMUTE = "permute"  # reorders dimensions


@dataclass(frozen=True, slots=True)
class Window:
    """Geometry of a convolution or pooling window, per spatial axis.

    `padding` is the padding before the first element (PyTorch pads "same" convolutions with the
    odd pixel at the end). `in_size` and `out_size` are the operation's own spatial sizes.
    """

    op: str  # "conv", "conv_transpose", "max_pool", "avg_pool", "adaptive_avg_pool", ...
    kernel: tuple[int, ...]
    stride: tuple[int | float, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    in_size: tuple[int, ...]
    out_size: tuple[int, ...]
    in_channels: int
    out_channels: int
    groups: int | None = None
    ceil_mode: bool = False
    bias: bool = False

    @property
    def is_conv(self) -> bool:
        return self.op in ("conv", "conv_transpose")

    @property
    def is_adaptive(self) -> bool:
        return self.op in ("adaptive_avg_pool", "adaptive_max_pool")


@dataclass(frozen=True, slots=True)
class OpCall:
    """One call of a torch function on activations, as the tracer saw it."""

    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    outputs: tuple[Tensor, ...]


@dataclass(frozen=True, slots=True)
class OpCost:
    macs: int
    flops: int  # FLOPs of the operation; 2 x macs for convolutions and matrix products


@dataclass(frozen=True, slots=True)
class OpRule:
    """How to count one kind of torch function.

    Attributes:
        label: short name shown in reports ("conv2d", "add", "cat", ...).
        kind: decides the receptive-field rule.
        cost: MACs and FLOPs of one call, given its window (None for windowless operations).
        window: the window geometry from the call's arguments alone, for operations that have
            one; it predicts the output size before the operation runs.
        meta_output: the output on meta tensors built from shapes alone. PyTorch's meta kernels
            for normalization and element-wise ops run Python decompositions (about 1 ms for a
            batch norm); these outputs are trivially shaped, and building them directly is what
            makes a trace take milliseconds.
    """

    label: str
    kind: Kind
    cost: Callable[[OpCall, Window | None], OpCost]
    window: Callable[[tuple[Any, ...], dict[str, Any], Callable[..., Any]], Window] | None = None
    meta_output: Callable[[tuple[Any, ...], dict[str, Any], Callable[..., Any]], Any] | None = None


def output_size(n: int, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False) -> int:
    """PyTorch's output length of a window: floor((n + 2p - d(k - 1) - 1) / s) + 1.

    With `ceil_mode` the division rounds up (the last window may hang over the end of the
    input), except that a last window starting in the right padding is dropped. A result below 1
    means the input is too small.
    """
    span = n + 2 * p - d * (k - 1) - 1
    if not ceil_mode:
        return max(span // s + 1, 0)
    out = (span + s - 1) // s + 1
    if (out - 1) * s >= n + p:
        out -= 1
    return max(out, 0)


def window_of(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Window | None:
    """The window a convolution or pooling call would use, or None for other operations."""
    rule = RULES.get(func)
    if rule is None or rule.window is None:
        return None
    return rule.window(args, kwargs, func)


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, int | float):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    return value * n if len(value) == 1 else value


def _first(tensors: Sequence[Any]) -> Tensor:
    for t in tensors:
        if isinstance(t, Tensor):
            return t
        if isinstance(t, list | tuple) and t:
            return _first(t)
    raise ValueError("operation has no tensor argument")


def _elements(tensors: Sequence[Tensor]) -> int:
    return sum(t.numel() for t in tensors)


# -- argument binders: mirror the torch signatures, so positional and keyword calls both work --


def _conv_args(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return input, weight, bias, stride, padding, dilation, groups


def _conv_t_args(
    input,
    weight,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
):
    return input, weight, bias, stride, padding, output_padding, groups, dilation


def _max_pool_args(
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode=False,
    return_indices=False,
):
    return input, kernel_size, stride, padding, dilation, ceil_mode


def _avg_pool_args(input, kernel_size, stride=None, padding=0, ceil_mode=False, *_, **__):
    return input, kernel_size, stride, padding, 1, ceil_mode


def _adaptive_args(input, output_size, *_, **__):
    return input, output_size


# -- windows ------------------------------------------------------------------------------------


def _out_sizes(
    in_size: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    ceil_mode: bool = False,
) -> tuple[int, ...]:
    axes = zip(in_size, kernel, stride, padding, dilation, strict=True)
    return tuple(output_size(n, k, s, p, d, ceil_mode) for n, k, s, p, d in axes)


def _conv_window(args: tuple[Any, ...], kwargs: dict[str, Any], func: Any) -> Window:
    x, weight, bias, stride, padding, dilation, groups = _conv_args(*args, **kwargs)
    n = weight.dim() - 2
    kernel = tuple(weight.shape[2:])
    stride, dilation = _tuple(stride, n), _tuple(dilation, n)
    in_size = tuple(x.shape[-n:])
    same = padding == "same"
    if isinstance(padding, str):  # "valid", or "same" (which pads the odd pixel at the end)
        padding = tuple(
            0 if not same else d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True)
        )
    padding = _tuple(padding, n)
    out_size = in_size if same else _out_sizes(in_size, kernel, stride, padding, dilation)
    return Window(
        op="conv",
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        in_size=in_size,
        out_size=out_size,
        in_channels=x.shape[-n - 1],
        out_channels=weight.shape[0],
        groups=groups,
        bias=bias is not None,
    )


def _conv_transpose_window(args: tuple[Any, ...], kwargs: dict[str, Any], func: Any) -> Window:
    x, weight, bias, stride, padding, output_padding, groups, dilation = _conv_t_args(
        *args, **kwargs
    )
    n = weight.dim() - 2
    kernel, stride = tuple(weight.shape[2:]), _tuple(stride, n)
    padding, dilation = _tuple(padding, n), _tuple(dilation, n)
    extra = _tuple(output_padding, n)
    in_size = tuple(x.shape[-n:])
    out_size = tuple(
        (i - 1) * s - 2 * p + d * (k - 1) + e + 1
        for i, k, s, p, d, e in zip(in_size, kernel, stride, padding, dilation, extra, strict=True)
    )
    return Window(
        op="conv_transpose",
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        in_size=in_size,
        out_size=out_size,
        in_channels=weight.shape[0],
        out_channels=weight.shape[1] * groups,
        groups=groups,
        bias=bias is not None,
    )


def _pool_window(op: str, binder: Callable[..., tuple]) -> Callable[..., Window]:
    def window(args: tuple[Any, ...], kwargs: dict[str, Any], func: Any) -> Window:
        x, kernel_size, stride, padding, dilation, ceil_mode = binder(*args, **kwargs)
        n = _POOL_DIMS[func]
        kernel = _tuple(kernel_size, n)
        stride = _tuple(stride if stride not in (None, []) else kernel_size, n)
        padding, dilation = _tuple(padding, n), _tuple(dilation, n)
        in_size = tuple(x.shape[-n:])
        channels = x.shape[-n - 1] if x.dim() > n else 1
        out_size = _out_sizes(in_size, kernel, stride, padding, dilation, bool(ceil_mode))
        return Window(
            op=op,
            kernel=kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            in_size=in_size,
            out_size=out_size,
            in_channels=channels,
            out_channels=channels,
            ceil_mode=bool(ceil_mode),
        )

    return window


def adaptive_windows(n: int, m: int) -> list[int]:
    """Window lengths of adaptive pooling from n to m positions (PyTorch's start/end rule)."""
    return [-(-(i + 1) * n // m) - (i * n // m) for i in range(m)]


def _adaptive_window(op: str) -> Callable[..., Window]:
    def window(args: tuple[Any, ...], kwargs: dict[str, Any], func: Any) -> Window:
        x, size = _adaptive_args(*args, **kwargs)
        n = _POOL_DIMS[func]
        in_size = tuple(x.shape[-n:])
        size = (size,) * n if isinstance(size, int) else tuple(size)
        out_size = tuple(i if o is None else o for i, o in zip(in_size, size, strict=True))
        channels = x.shape[-n - 1] if x.dim() > n else 1
        return Window(
            op=op,
            kernel=tuple(
                max(adaptive_windows(a, b)) for a, b in zip(in_size, out_size, strict=True)
            ),
            stride=tuple(
                a // b if a % b == 0 else a / b for a, b in zip(in_size, out_size, strict=True)
            ),
            padding=(0,) * n,
            dilation=(1,) * n,
            in_size=in_size,
            out_size=out_size,
            in_channels=channels,
            out_channels=channels,
        )

    return window


# -- costs --------------------------------------------------------------------------------------


def _conv_cost(call: OpCall, window: Window | None) -> OpCost:
    weight = call.args[1] if len(call.args) > 1 else call.kwargs["weight"]
    # weight is (C_out, C_in / groups, *kernel): each output element takes C_in/groups * K MACs.
    macs = call.outputs[0].numel() * math.prod(weight.shape[1:])
    return OpCost(macs, 2 * macs)


def _conv_transpose_cost(call: OpCall, window: Window | None) -> OpCost:
    x = _first(call.args)
    weight = call.args[1] if len(call.args) > 1 else call.kwargs["weight"]
    # weight is (C_in, C_out / groups, *kernel): every input element is scattered into
    # C_out/groups * K outputs (the count torch.utils.flop_counter uses).
    macs = x.numel() * math.prod(weight.shape[1:])
    return OpCost(macs, 2 * macs)


def _pool_cost(call: OpCall, window: Window | None) -> OpCost:
    assert window is not None
    k = math.prod(window.kernel)
    per_output = k - 1 if window.op == "max_pool" else k
    return OpCost(0, call.outputs[0].numel() * per_output)


def _adaptive_cost(call: OpCall, window: Window | None) -> OpCost:
    assert window is not None
    out = call.outputs[0]
    windows = [adaptive_windows(a, b) for a, b in zip(window.in_size, window.out_size, strict=True)]
    # Sum of window elements over all outputs; max pooling compares one fewer per window.
    summed = out.numel() // math.prod(window.out_size) * math.prod(sum(w) for w in windows)
    return OpCost(0, summed - out.numel() if window.op == "adaptive_max_pool" else summed)


def _matmul_cost(contracted: Callable[..., int]) -> Callable[[OpCall, Window | None], OpCost]:
    def cost(call: OpCall, window: Window | None) -> OpCost:
        macs = call.outputs[0].numel() * contracted(*call.args, **call.kwargs)
        return OpCost(macs, 2 * macs)

    return cost


def _linear_k(input, weight, bias=None) -> int:
    return weight.shape[-1]


def _bilinear_k(input1, input2, weight, bias=None) -> int:
    return input1.shape[-1] * input2.shape[-1]


def _matmul_k(input, other, *_, **__) -> int:
    return input.shape[-1]


def _addmm_k(input, mat1, mat2, *_, **__) -> int:
    return mat1.shape[-1]


def _einsum_terms(call: OpCall) -> tuple[list[str], list[Tensor], str]:
    """An einsum's operand subscripts and output subscript, with `...` spelled out as capital
    letters (one per broadcast dimension, aligned from the right as broadcasting aligns them)
    and the implicit output (letters seen once, in order) made explicit."""
    equation, *operands = call.args
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = list(operands[0])
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    rank = max(
        (t.dim() - len(term.replace("...", "")) for term, t in zip(terms, operands, strict=True)),
        default=0,
    )
    batch = "".join(chr(0x3B1 + i) for i in range(rank))  # Greek: never a subscript letter
    expanded = [
        term.replace("...", batch[len(batch) - (t.dim() - len(term.replace("...", ""))) :])
        for term, t in zip(terms, operands, strict=True)
    ]
    if arrow:
        output = rhs.replace("...", batch)
    else:
        letters = "".join(expanded)
        output = batch + "".join(sorted(c for c in set(letters) - set(batch)
                                        if letters.count(c) == 1))  # fmt: skip
    return expanded, list(operands), output


def _einsum_cost(call: OpCall, window: Window | None) -> OpCost:
    """Contracted pairwise from the left, as torch.einsum does without opt_einsum: each step
    costs the product of the sizes of every index of its two operands, which is what the bmm
    it becomes costs (an index that only one operand has and nothing later needs is summed out
    before the product, an addition and not a MAC). A step with no index to sum over is an
    element-wise product, still one multiply per output, where torch.utils.flop_counter,
    which counts only the matrix products, counts 0."""
    terms, operands, output = _einsum_terms(call)
    sizes: dict[str, int] = {}
    for term, t in zip(terms, operands, strict=True):
        for letter, size in zip(term, t.shape, strict=True):
            sizes[letter] = max(sizes.get(letter, 1), size)
    macs = 0
    left = terms[0]
    for i, right in enumerate(terms[1:], start=1):
        later = set(output).union(*terms[i + 1 :])
        keep_left = {c for c in left if c in right or c in later}
        keep_right = {c for c in right if c in left or c in later}
        macs += math.prod(sizes[c] for c in keep_left | keep_right)
        left = "".join(c for c in dict.fromkeys(left + right) if c in later)
    return OpCost(macs, 2 * macs)


def _tensordot_dims(call: OpCall) -> tuple[Tensor, Tensor, list[int], list[int]]:
    """tensordot's operands and the dimensions of each that it contracts."""

    def bind(a, b, dims=2, out=None):
        return a, b, dims

    a, b, dims = bind(*call.args, **call.kwargs)
    if isinstance(dims, Tensor):
        dims = dims.tolist() if dims.dim() else int(dims)
    if isinstance(dims, int):
        return a, b, list(range(a.dim() - dims, a.dim())), list(range(dims))
    first, second = dims
    first = [first] if isinstance(first, int) else list(first)
    second = [second] if isinstance(second, int) else list(second)
    return a, b, [d % a.dim() for d in first], [d % b.dim() for d in second]


def _tensordot_cost(call: OpCall, window: Window | None) -> OpCost:
    """a's elements times b's free (not contracted) elements: the matrix product it becomes."""
    a, b, _, contracted = _tensordot_dims(call)
    macs = a.numel() * math.prod(s for i, s in enumerate(b.shape) if i not in contracted)
    return OpCost(macs, 2 * macs)


def _attention_args(query, key, value, *_, **__):
    return query, key, value


def _sdpa_cost(call: OpCall, window: Window | None) -> OpCost:
    """softmax(Q K^T) V: Q K^T and the product with V, N * L * S * (E + E_v) MACs."""
    q, k, v = _attention_args(*call.args, **call.kwargs)
    macs = math.prod(q.shape[:-1]) * k.shape[-2] * (q.shape[-1] + v.shape[-1])
    return OpCost(macs, 2 * macs)


def _mha_cost(call: OpCall, window: Window | None) -> OpCost:
    """nn.MultiheadAttention: Q, K, V projections, Q K^T, the product with V, out projection."""
    q, k, v = _attention_args(*call.args, **call.kwargs)
    embed = q.shape[-1]
    batch = q.shape[1] if q.dim() == 3 else 1
    targets, sources = q.shape[0], k.shape[0]
    projections = targets * embed * embed + sources * embed * (k.shape[-1] + v.shape[-1])
    attention = 2 * targets * sources * embed
    macs = batch * (projections + attention + targets * embed * embed)
    return OpCost(macs, 2 * macs)


def _per_output(flops_per_element: int) -> Callable[[OpCall, Window | None], OpCost]:
    def cost(call: OpCall, window: Window | None) -> OpCost:
        return OpCost(0, flops_per_element * _elements(call.outputs))

    return cost


def _per_input(call: OpCall, window: Window | None) -> OpCost:
    return OpCost(0, _first(call.args).numel())


def _free(call: OpCall, window: Window | None) -> OpCost:
    return OpCost(0, 0)


def _lrn_cost(call: OpCall, window: Window | None) -> OpCost:
    size = call.args[1] if len(call.args) > 1 else call.kwargs["size"]
    return OpCost(0, (size + 4) * _elements(call.outputs))


def _stat_norm_cost(call: OpCall, window: Window | None) -> OpCost:
    affine = any(isinstance(a, Tensor) for a in call.args[2:]) or any(
        isinstance(call.kwargs.get(k), Tensor) for k in ("weight", "bias")
    )
    return OpCost(0, (7 if affine else 5) * _elements(call.outputs))


# -- meta outputs -------------------------------------------------------------------------------

_INPLACE_ARG: dict[Callable[..., Any], int | None] = {}


def inplace(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a call writes into its first argument (`relu_`, `__iadd__`, `inplace=True`)."""
    name = getattr(func, "__name__", "")
    if (name.endswith("_") and not name.endswith("__")) or name.startswith("__i"):
        return True
    if "inplace" in kwargs:
        return bool(kwargs["inplace"])
    if func not in _INPLACE_ARG:
        try:
            names = list(inspect.signature(func).parameters)
            _INPLACE_ARG[func] = names.index("inplace") if "inplace" in names else None
        except (TypeError, ValueError):
            _INPLACE_ARG[func] = None
    position = _INPLACE_ARG[func]
    return position is not None and position < len(args) and bool(args[position])


def _empty(x: Tensor, shape: Sequence[int], dtype: torch.dtype) -> Tensor:
    channels_last = (
        x.dim() == 4
        and not x.is_contiguous()
        and x.is_contiguous(memory_format=torch.channels_last)
    )
    fmt = torch.channels_last if channels_last and len(shape) == 4 else torch.contiguous_format
    return torch.empty(shape, dtype=dtype, device=x.device, memory_format=fmt)


def _like_first(args: tuple[Any, ...], kwargs: dict[str, Any], func: Any) -> Tensor:
    x = _first(args) if args else _first(list(kwargs.values()))
    return x if inplace(func, args, kwargs) else _empty(x, x.shape, x.dtype)


_TRUE_DIVISIONS: set[Any] = set()


def _broadcast(args: tuple[Any, ...], kwargs: dict[str, Any], func: Any) -> Tensor:
    x = _first(args)
    if inplace(func, args, kwargs):
        torch.broadcast_shapes(x.shape, *(a.shape for a in args[1:] if isinstance(a, Tensor)))
        return x
    shapes = [a.shape for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
    operands = [a for a in args[:2] if isinstance(a, Tensor | int | float | bool)]
    dtype = torch.result_type(*operands) if len(operands) == 2 else x.dtype
    if func in _TRUE_DIVISIONS and "rounding_mode" not in kwargs and not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    return _empty(x, torch.broadcast_shapes(*shapes), dtype)


def _adaptive_avg_output(args: tuple[Any, ...], kwargs: dict[str, Any], func: Any) -> Tensor:
    x = _first(args)
    window = RULES[func].window(args, kwargs, func)  # type: ignore[misc]
    return _empty(x, (*x.shape[: -len(window.out_size)], *window.out_size), x.dtype)


# -- the table ----------------------------------------------------------------------------------

RULES: dict[Callable[..., Any], OpRule] = {}
_POOL_DIMS: dict[Callable[..., Any], int] = {}


def _add(
    funcs: Sequence[Any],
    label: str,
    kind: Kind,
    cost: Callable[[OpCall, Window | None], OpCost],
    window: Callable[..., Window] | None = None,
    meta_output: Callable[..., Any] | None = None,
) -> None:
    for func in funcs:
        if func is not None:
            RULES.setdefault(func, OpRule(label, kind, cost, window, meta_output))


def _variants(name: str) -> list[Any]:
    """torch.name, Tensor.name, in-place and operator forms, F.name."""
    owners = (torch, torch.Tensor, F, torch.special)
    names = (name, f"{name}_", f"__{name}__", f"__r{name}__", f"__i{name}__")
    found = (getattr(owner, n, None) for owner in owners for n in names)
    return [f for f in found if callable(f)]  # not `torch.__all__`, a list


for _n in (1, 2, 3):
    _add([getattr(torch, f"conv{_n}d")], f"conv{_n}d", Kind.CONV, _conv_cost, _conv_window)
    _add([getattr(torch, f"conv_transpose{_n}d")], f"conv_transpose{_n}d", Kind.CONV_TRANSPOSE,
         _conv_transpose_cost, _conv_transpose_window)  # fmt: skip
    for _func, _op, _binder in (
        (getattr(F, f"max_pool{_n}d"), "max_pool", _max_pool_args),
        (getattr(F, f"max_pool{_n}d_with_indices"), "max_pool", _max_pool_args),
        (getattr(F, f"avg_pool{_n}d"), "avg_pool", _avg_pool_args),
    ):
        _POOL_DIMS[_func] = _n
        _add([_func], f"{_op}{_n}d", Kind.POOL, _pool_cost, _pool_window(_op, _binder))
    for _func, _op in (
        (getattr(F, f"adaptive_avg_pool{_n}d"), "adaptive_avg_pool"),
        (getattr(F, f"adaptive_max_pool{_n}d"), "adaptive_max_pool"),
        (getattr(F, f"adaptive_max_pool{_n}d_with_indices"), "adaptive_max_pool"),
    ):
        _POOL_DIMS[_func] = _n
        _output = _adaptive_avg_output if _op == "adaptive_avg_pool" else None
        _add([_func], f"{_op}{_n}d", Kind.ADAPTIVE_POOL, _adaptive_cost, _adaptive_window(_op),
             _output)  # fmt: skip

_add([F.linear], "linear", Kind.MATMUL, _matmul_cost(_linear_k))
_add([F.bilinear], "bilinear", Kind.MATMUL, _matmul_cost(_bilinear_k))
for _name in ("matmul", "mm", "bmm"):
    _add(_variants(_name), _name, Kind.MATMUL, _matmul_cost(_matmul_k))
for _name in ("addmm", "baddbmm"):
    _add(_variants(_name), _name, Kind.MATMUL, _matmul_cost(_addmm_k))
_add([torch.einsum], "einsum", Kind.MATMUL, _einsum_cost)
_add([F.scaled_dot_product_attention], "scaled_dot_product_attention", Kind.MATMUL, _sdpa_cost)
_add([F.multi_head_attention_forward], "multi_head_attention", Kind.MATMUL, _mha_cost)

_add([F.batch_norm], "batch_norm", Kind.NORM, _per_output(2), meta_output=_like_first)
_add([F.local_response_norm], "local_response_norm", Kind.NORM, _lrn_cost, meta_output=_like_first)
for _func in (F.layer_norm, F.group_norm, F.instance_norm):
    _add([_func], _func.__name__, Kind.NORM, _stat_norm_cost, meta_output=_like_first)

for _name in (
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide",
    "remainder", "pow", "maximum", "minimum", "addcmul", "addcdiv", "lerp",
):  # fmt: skip
    _add(_variants(_name), _name, Kind.ELEMENTWISE, _per_output(1), meta_output=_broadcast)
_TRUE_DIVISIONS.update(f for n in ("div", "divide", "true_divide") for f in _variants(n) if f)
for _name in (
    "neg", "abs", "sqrt", "rsqrt", "square", "reciprocal", "exp", "log", "clamp", "clamp_min",
    "clamp_max", "clip", "relu", "relu6", "elu", "selu", "celu", "gelu", "silu", "mish",
    "hardswish", "hardsigmoid", "hardtanh", "leaky_relu", "prelu", "rrelu", "softplus", "sigmoid",
    "tanh", "logsigmoid", "threshold", "erf",
):  # fmt: skip
    _add(_variants(_name), _name, Kind.ACTIVATION, _per_output(1), meta_output=_like_first)
for _name in ("softmax", "log_softmax", "softmin"):
    _add(_variants(_name), _name, Kind.ACTIVATION, _per_output(3), meta_output=_like_first)
for _name in ("sum", "mean", "amax", "amin", "max", "min", "logsumexp", "std", "var", "norm"):
    _add(_variants(_name), _name, Kind.REDUCTION, _per_input)

_add([torch.cat, torch.concat, torch.concatenate, torch.stack], "cat", Kind.CONCAT, _free)
_add([F.pad, torch.constant_pad_nd], "pad", Kind.PAD, _free)
_add([torch.Tensor.__getitem__], "getitem", Kind.INDEX, _free)
for _name in ("permute", "transpose", "swapaxes", "movedim", "moveaxis"):
    _add(_variants(_name), _name, Kind.PERMUTE, _free)
for _name in (
    "flatten", "view", "reshape", "unsqueeze", "squeeze", "contiguous",
    "clone", "to", "float", "half", "double", "bfloat16", "type", "expand", "expand_as",
    "index_select", "narrow", "chunk", "split", "unbind", "detach", "dropout", "dropout1d",
    "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "channel_shuffle",
    "identity", "where", "masked_fill", "full_like", "zeros_like", "ones_like",
):  # fmt: skip
    _add(_variants(_name), _name, Kind.LAYOUT, _free)


_add([torch.tensordot], "tensordot", Kind.MATMUL, _tensordot_cost)
# No arithmetic: comparisons, logic, copies and constants of an input's shape (0 FLOPs).
for _name in (
    "eq", "ne", "lt", "le", "gt", "ge", "greater", "less", "greater_equal", "less_equal",
    "not_equal", "logical_and", "logical_or", "logical_not", "logical_xor", "isnan", "isinf",
    "isfinite", "bitwise_and", "bitwise_or", "bitwise_not", "and", "or", "xor", "invert",
):  # fmt: skip
    _add(_variants(_name), _name, Kind.ELEMENTWISE, _free)
for _name in ("roll", "flip", "fliplr", "flipud", "repeat", "tile", "type_as", "reshape_as",
              "view_as", "new_zeros", "new_ones", "new_full", "new_empty", "new_tensor",
              "empty_like", "rand_like", "randn_like", "zero", "fill", "copy", "masked_fill",
              "unflatten", "t"):  # fmt: skip
    _add(_variants(_name), _name, Kind.LAYOUT, _free)
_add([F.interpolate, F.upsample, F.upsample_nearest, F.upsample_bilinear, F.grid_sample],
     "interpolate", Kind.LAYOUT, _free)  # fmt: skip
for _name in ("all", "any"):
    _add(_variants(_name), _name, Kind.REDUCTION, _free)


# -- receptive-field rules ----------------------------------------------------------------------

# Operations whose later tensor arguments give only a shape or dtype, never values.
_SHAPE_ONLY_OTHERS: set[Any] = set()
# Operations whose output does not depend on the input's values (a constant of its shape).
_CONSTANT: set[Any] = set()
# Normalizations whose statistics span the spatial axes: every unit sees the whole map.
_SPATIAL_STATISTICS: set[Any] = {F.group_norm, F.instance_norm}
_SPATIAL_SOFTMAX: set[Any] = set()
_ROLLS: set[Any] = set()
_NORMS: set[Any] = set()
_FLIPS: set[Any] = set()
_RESAMPLE: set[Any] = {F.interpolate, F.upsample, F.upsample_nearest, F.upsample_bilinear,
                       F.grid_sample}  # fmt: skip
for _name, _into in (
    ("type_as", _SHAPE_ONLY_OTHERS), ("reshape_as", _SHAPE_ONLY_OTHERS),
    ("view_as", _SHAPE_ONLY_OTHERS), ("expand_as", _SHAPE_ONLY_OTHERS),
    ("new_zeros", _CONSTANT), ("new_ones", _CONSTANT), ("new_full", _CONSTANT),
    ("new_empty", _CONSTANT), ("new_tensor", _CONSTANT), ("zeros_like", _CONSTANT),
    ("ones_like", _CONSTANT), ("full_like", _CONSTANT), ("empty_like", _CONSTANT),
    ("rand_like", _CONSTANT), ("randn_like", _CONSTANT), ("softmax", _SPATIAL_SOFTMAX),
    ("log_softmax", _SPATIAL_SOFTMAX), ("softmin", _SPATIAL_SOFTMAX), ("roll", _ROLLS),
    ("norm", _NORMS), ("flip", _FLIPS), ("fliplr", _FLIPS), ("flipud", _FLIPS),
):  # fmt: skip
    _into.update(f for f in _variants(_name) if f is not None)


def propagate_rf(
    rule: OpRule | None,
    call: OpCall,
    window: Window | None,
    inputs: Sequence[tuple[Tensor, RF | None]],
) -> RF | None:
    """The receptive field of an operation's outputs from its activation inputs' fields.

    Args:
        rule: the table entry (None for an operation missing from the table).
        call: the call.
        window: its window geometry, for convolutions and pooling.
        inputs: activation inputs with their fields (None where unknown).

    Returns:
        The field, or None where it cannot be followed (`derive_rf` says why).
    """
    rf = derive_rf(rule, call, window, inputs)
    return rf if isinstance(rf, RF) else None


def derive_rf(
    rule: OpRule | None,
    call: OpCall,
    window: Window | None,
    inputs: Sequence[tuple[Tensor, RF | None]],
) -> RF | str | None:
    """`propagate_rf`, with the reason (a string) where the field stops at this call."""
    try:
        return _derive_rf(rule, call, window, inputs)
    except Exception as err:  # a rule that cannot read these arguments: say so, run on
        label = rule.label if rule is not None else getattr(call.func, "__name__", "?")
        return f"the receptive-field rule of `{label}` failed on this call ({err!r})"


def _derive_rf(
    rule: OpRule | None,
    call: OpCall,
    window: Window | None,
    inputs: Sequence[tuple[Tensor, RF | None]],
) -> RF | str | None:
    func = call.func
    if func in _SHAPE_ONLY_OTHERS:
        inputs = inputs[:1]
    fields = [rf for _, rf in inputs]
    if not fields or any(rf is None for rf in fields):
        return None
    out = call.outputs[0] if call.outputs else None
    if out is None:
        return None
    first_tensor, first = inputs[0][0], fields[0]
    assert first is not None
    if func in _CONSTANT:
        return RF((0,) * first.axes, first.jump, first.offset, extent=first.extent,
                  dims=first.dims)  # fmt: skip
    if all(not f.spatial for f in fields):  # type: ignore[union-attr]
        return union(fields)  # type: ignore[arg-type]  # global stays global
    kind = rule.kind if rule is not None else None
    if kind in _KEEPS_POSITION and _same_field_throughout(rule, call, fields, inputs, out):
        return first
    label = rule.label if rule is not None else getattr(func, "__name__", "?")
    if rule is None:
        return f"no receptive-field rule for `{label}`"
    if kind in (Kind.CONV, Kind.POOL, Kind.ADAPTIVE_POOL):
        return _window_rf(first, first_tensor, window, label)
    if kind is Kind.CONV_TRANSPOSE:
        return "a transposed convolution spreads each input unit over several outputs"
    if kind is Kind.PAD:
        return _pad_rf(call, first_tensor, first, out) if first.spatial else first
    if kind is Kind.INDEX:
        return _index_rf(call, first_tensor, first, out) if first.spatial else first
    if kind is Kind.PERMUTE:
        return _permute_rf(call, first_tensor, first) if first.spatial else first
    if kind is Kind.LAYOUT:
        return _layout_rf(call, inputs, out, label)
    if kind is Kind.CONCAT:
        dims = _dims_of(first, first_tensor)
        if first.spatial and _cat_dim(call, out) in dims:
            return "a concatenation along a spatial axis joins two maps side by side"
    return _pointwise_rf(rule, call, inputs, out, label)


_KEEPS_POSITION = frozenset((Kind.ELEMENTWISE, Kind.ACTIVATION, Kind.NORM))


def _same_field_throughout(
    rule: OpRule,
    call: OpCall,
    fields: Sequence[RF | None],
    inputs: Sequence[tuple[Tensor, RF | None]],
    out: Tensor,
) -> bool:
    """The common case of `_pointwise_rf`, decided before its general work (a quarter of a
    ResNet's trace): an activation, per-channel norm or element-wise operation on operands that
    are all shaped like its output and share one local field leaves that field as it is."""
    if _may_mix_spatial(rule, call):
        return False
    first = fields[0]
    if not first.spatial:  # type: ignore[union-attr]
        return False
    shape = out.shape
    return all(t.shape == shape for t, _ in inputs) and all(
        f is first or f == first for f in fields
    )


def _dims_of(rf: RF, t: Tensor) -> list[int]:
    """The positive tensor dimensions of `rf`'s spatial axes in `t`."""
    return [d % t.dim() for d in rf.tensor_dims]


def _units(rf: RF, t: Tensor) -> tuple[int, ...]:
    if not rf.spatial or t.dim() < rf.axes or any(-d > t.dim() for d in rf.tensor_dims):
        return (1,) * rf.axes
    return tuple(t.shape[d] for d in rf.tensor_dims)


def _global(rf: RF, t: Tensor) -> RF:
    return rf.global_(_units(rf, t))


def _window_rf(rf: RF, x: Tensor, window: Window | None, label: str) -> RF | str:
    if not rf.spatial:
        return rf
    if window is None or len(window.kernel) != rf.axes:
        return f"`{label}` windows {0 if window is None else len(window.kernel)} axes of a " \
               f"{rf.axes}-axis field"  # fmt: skip
    n = len(window.kernel)
    # The window's axis i is tensor dimension -n + i; the field's axis a sits at dims[a].
    order = [d + n for d in rf.tensor_dims]
    if sorted(order) != list(range(n)):
        return f"`{label}` slides over dimensions that are not the spatial axes"
    if window.is_adaptive:
        if all(o == 1 for o in window.out_size):
            return _global(rf, x)
        if any(i % o for i, o in zip(window.in_size, window.out_size, strict=True)):
            return (
                f"adaptive pooling from {window.in_size} to {window.out_size} uses windows of "
                "unequal sizes: units see fields of different sizes"
            )
    pick = [lambda v, a=a: v[order[a]] for a in range(rf.axes)]
    return rf.window(
        [p(window.kernel) for p in pick],
        [p(window.stride) for p in pick],
        [p(window.padding) for p in pick],
        [p(window.dilation) for p in pick],
    )


def _pointwise_rf(
    rule: OpRule,
    call: OpCall,
    inputs: Sequence[tuple[Tensor, RF | None]],
    out: Tensor,
    label: str,
) -> RF | str | None:
    """Operations that keep each unit's position: element-wise arithmetic (with broadcasting),
    activations, norms, reductions and matrix products over non-spatial dimensions; an operand
    broadcast over the spatial axes, or a spatial axis reduced, contracted or normalized over,
    makes the result global."""
    fields: list[RF] = []
    mixing = _may_mix_spatial(rule, call)
    for t, rf in inputs:
        assert rf is not None
        if not rf.spatial:
            fields.append(rf)
            continue
        mixed = _mixes_spatial(rule, call, t, rf, out) if mixing else False
        if isinstance(mixed, str):
            return mixed
        if mixed:
            fields.append(_global(rf, t))
            continue
        shape = tuple(t.shape)
        if t.dim() > out.dim() and rule.kind is Kind.REDUCTION:
            # The reduced dimensions are gone: the spatial ones move up by those before them.
            reduced = _reduced_dims(call, t)
            kept = [p - sum(1 for r in reduced if r < p) for p in _dims_of(rf, t)]
            rf = rf.moved([p - out.dim() for p in kept])
            shape = tuple(n for i, n in enumerate(shape) if i not in reduced)
        dims = rf.tensor_dims
        if len(shape) > out.dim() or any(-d > out.dim() for d in dims):
            return f"`{label}` drops dimensions in a way the analyzer does not model"
        if any(shape[d] != out.shape[d] for d in dims):
            if all(shape[d] == 1 for d in dims):  # broadcast over the map: x * gate
                fields.append(_global(rf, t))
                continue
            return (
                f"`{label}` changes the spatial size from "
                f"{'x'.join(str(shape[d]) for d in dims)} to {_at(out, dims)}"
            )
        fields.append(rf)
    if all(f.spatial for f in fields):
        return union(fields)
    return union(fields, [_units(rf, t) for t, rf in inputs])  # type: ignore[arg-type]


def _at(t: Tensor, dims: Sequence[int]) -> str:
    return "x".join(str(t.shape[d]) for d in dims)


def _may_mix_spatial(rule: OpRule, call: OpCall) -> bool:
    """Whether `_mixes_spatial` can be true for this call; where not, it is False for every
    operand and need not be asked."""
    func = call.func
    if rule.kind in (Kind.REDUCTION, Kind.MATMUL):
        return True
    if rule.kind is Kind.NORM:
        return (
            func in _SPATIAL_STATISTICS
            or func is F.layer_norm
            or (func is F.batch_norm and _batch_norm_training(call))
        )
    return rule.kind is Kind.ACTIVATION and func in _SPATIAL_SOFTMAX


def _mixes_spatial(rule: OpRule, call: OpCall, t: Tensor, rf: RF, out: Tensor) -> bool | str:
    """Whether the call combines all positions of `t`'s spatial axes (a string: only some)."""
    spatial = set(_dims_of(rf, t))
    if rule.kind is Kind.NORM:
        if call.func in _SPATIAL_STATISTICS:
            return True
        if call.func is F.layer_norm:
            shape = call.args[1] if len(call.args) > 1 else call.kwargs["normalized_shape"]
            normalized = set(range(t.dim() - len(tuple(shape)), t.dim()))
            return _some(spatial & normalized, spatial, "layer norm")
        return bool(call.func is F.batch_norm and _batch_norm_training(call))
    if rule.kind is Kind.REDUCTION:
        reduced = _reduced_dims(call, t)
        return _some(spatial & reduced, spatial, f"`{rule.label}`")
    if rule.kind is Kind.ACTIVATION and call.func in _SPATIAL_SOFTMAX:
        dim = call.args[1] if len(call.args) > 1 else call.kwargs.get("dim")
        over = set(range(t.dim())) if dim is None else {dim % t.dim()}
        return _some(spatial & over, spatial, f"`{rule.label}`")
    if rule.kind is Kind.MATMUL:
        return _some(spatial & _contracted_dims(call, t), spatial, f"`{rule.label}`")
    return False


def _some(hit: set[int], spatial: set[int], what: str) -> bool | str:
    if not hit:
        return False
    if hit == spatial:
        return True
    return f"{what} mixes some spatial axes but not the others"


def _batch_norm_training(call: OpCall) -> bool:
    def bind(input, running_mean, running_var, weight=None, bias=None, training=False, *_, **__):
        return running_mean is None or training

    return bind(*call.args, **call.kwargs)


def _reduced_dims(call: OpCall, t: Tensor) -> set[int]:
    position = 2 if call.func in _NORMS else 1  # torch.norm(input, p, dim)
    dim = call.kwargs.get("dim", call.args[position] if len(call.args) > position else None)
    if dim is None or (isinstance(dim, list | tuple) and not dim):
        return set(range(t.dim()))
    dims = dim if isinstance(dim, list | tuple) else (dim,)
    if not all(isinstance(d, int) for d in dims):
        return set(range(t.dim()))  # named dimensions: take it to be all of them
    return {d % t.dim() for d in dims}


def _contracted_dims(call: OpCall, t: Tensor) -> set[int]:
    """The dimensions of operand `t` that a matrix product sums over."""
    func, args = call.func, call.args
    n = t.dim()
    if func in (F.linear, F.bilinear):
        return {n - 1}
    if func is torch.einsum:
        return _einsum_contracted(call, t)
    if func is torch.tensordot:
        a, b, first, second = _tensordot_dims(call)
        return set(first) if t is a else set(second)
    if func is F.scaled_dot_product_attention:
        # Keys and values are summed over their positions (dimension -2); queries keep theirs.
        query = args[0] if args else call.kwargs.get("query")
        return {n - 1} if t is query else {n - 2, n - 1}
    if func is F.multi_head_attention_forward:  # (L, N, E): positions first
        query = args[0] if args else call.kwargs.get("query")
        return {n - 1} if t is query else {0, n - 1}
    operands = [a for a in args if isinstance(a, Tensor)]
    if len(operands) >= 2:
        a, b = operands[-2], operands[-1]  # addmm / baddbmm: (bias, a, b)
        if t is a:
            return {n - 1}
        if t is b:
            return {n - 2} if n >= 2 else {0}
    return {n - 1}


def _einsum_contracted(call: OpCall, t: Tensor) -> set[int]:
    terms, operands, output = _einsum_terms(call)
    for term, operand in zip(terms, operands, strict=True):
        if operand is t:
            return {i for i, label in enumerate(term) if label not in output}
    return set(range(t.dim()))


def _layout_rf(
    call: OpCall, inputs: Sequence[tuple[Tensor, RF | None]], out: Tensor, label: str
) -> RF | str | None:
    """Views, reshapes, copies, casts, dropout at inference: where did the spatial axes go?"""
    x, rf = inputs[0]
    assert rf is not None
    if len(inputs) > 1:
        return _pointwise_rf(RULES[call.func], call, inputs, out, label)
    if not rf.spatial:
        return rf
    dims = _dims_of(rf, x)
    if call.func in _RESAMPLE:
        return (
            f"resampling ({label}) from {_at(x, dims)} to {_at(out, dims)}: neighbouring "
            "output units see input fields of different sizes, so no one size is the field"
        )
    if call.func in _FLIPS and x.shape == out.shape:
        return "a flip reverses the order of the units on a spatial axis"
    if call.func in _ROLLS:
        shifts = call.args[2] if len(call.args) > 2 else call.kwargs.get("dims")
        rolled = set(range(x.dim())) if shifts is None else {
            d % x.dim() for d in (shifts if isinstance(shifts, list | tuple) else (shifts,))
        }  # fmt: skip
        if rolled & set(dims):
            return "a roll along a spatial axis wraps units around the edge of the map"
        return rf
    if x.shape == out.shape:
        return rf
    if x.numel() != out.numel() or x.numel() == 0:
        # chunk, split, narrow, unbind, index_select: fine while the spatial axes are untouched.
        if out.dim() >= -min(rf.tensor_dims) and all(
            x.shape[d] == out.shape[d - x.dim() + out.dim()] for d in dims
        ):
            return rf
        if all(x.shape[d] == 1 for d in dims):
            return _global(rf, x)  # a one-unit map expanded: its field everywhere
        return f"`{label}` changes the spatial axes from {_at(x, dims)} to " \
               f"{'x'.join(map(str, out.shape))}"  # fmt: skip
    moved = _reshaped_dims(tuple(x.shape), tuple(out.shape), dims)
    if isinstance(moved, str):
        return moved
    if moved is None:  # the spatial axes were merged (flatten): a unit mixes all positions
        return _global(rf, x)
    return rf.moved([d - out.dim() for d in moved])


def _reshaped_dims(
    before: tuple[int, ...], after: tuple[int, ...], dims: Sequence[int]
) -> list[int] | str | None:
    """Where a reshape puts the spatial dimensions `dims` of `before`: their new positions,
    None when they are merged with others (flatten), or why they cannot be followed."""
    groups = _reshape_groups(before, after)
    placed: list[int] = []
    for d in dims:
        if before[d] == 1:
            return None  # a one-unit axis: its one field is the union
        ins, outs = next((i, o) for i, o in groups if d in i)
        ins = [i for i in ins if before[i] != 1]
        outs = [o for o in outs if after[o] != 1]
        if ins == [d] and len(outs) == 1:
            placed.append(outs[0])
        elif ins == [d]:
            return (
                f"a view splits a spatial axis of {before[d]} units into "
                f"{'x'.join(str(after[o]) for o in outs)} (a window partition): the units of "
                "a window are no longer neighbours on one grid"
            )
        elif len(outs) == 1 and 0 not in ins:
            # flatten (of the spatial axes, or of channels and spatial axes before a linear
            # layer): a unit stands for several positions, and the layer after it mixes them.
            return None
        elif len(outs) == 1:
            return "a view merges a spatial axis into the batch axis"
        else:
            return "a view regroups the spatial axes with other axes"
    return placed


def _reshape_groups(
    before: tuple[int, ...], after: tuple[int, ...]
) -> list[tuple[list[int], list[int]]]:
    """Pairs of dimension runs with equal products, the smallest such runs, left to right."""
    groups: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(before) and j < len(after):
        ins, outs = [i], [j]
        a, b = before[i], after[j]
        i, j = i + 1, j + 1
        while a != b:
            if a < b:
                a *= before[i]
                ins.append(i)
                i += 1
            else:
                b *= after[j]
                outs.append(j)
                j += 1
        groups.append((ins, outs))
    # Trailing one-sized dimensions join the last run.
    if groups:
        groups[-1][0].extend(range(i, len(before)))
        groups[-1][1].extend(range(j, len(after)))
    return groups


def _cat_dim(call: OpCall, out: Tensor) -> int:
    dim = call.args[1] if len(call.args) > 1 else call.kwargs.get("dim", 0)
    return dim % out.dim()


def _pad_rf(call: OpCall, x: Tensor, rf: RF, out: Tensor) -> RF:
    pad = call.args[1] if len(call.args) > 1 else call.kwargs["pad"]
    # F.pad lists (left, right) pairs starting from the last dimension.
    lefts = [-pad[2 * i] for i in range(len(pad) // 2)][::-1]
    lefts = [0] * (x.dim() - len(lefts)) + lefts
    return rf.shifted([lefts[d] for d in _dims_of(rf, x)], (1,) * rf.axes)


def _permute_rf(call: OpCall, x: Tensor, rf: RF) -> RF:
    """Follow the spatial axes to their new dimensions."""
    n = x.dim()
    # Replay the call on a meta tensor whose dimension sizes name the dimensions.
    probe = torch.empty(tuple(range(2, n + 2)), device="meta")
    order = [size - 2 for size in call.func(probe, *call.args[1:], **call.kwargs).shape]
    return rf.moved([order.index(d) - n for d in _dims_of(rf, x)])


def _index_rf(call: OpCall, x: Tensor, rf: RF, out: Tensor) -> RF | str:
    index = call.args[1] if len(call.args) > 1 else None
    index = index if isinstance(index, tuple) else (index,)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (x.dim() - len(index) + 1) + index[at + 1 :]
    dims = _dims_of(rf, x)
    simple = all(isinstance(i, slice | int) for i in index) and len(index) <= x.dim()
    if not simple:
        if out.dim() == x.dim() and all(x.shape[d] == out.shape[d] for d in dims):
            return rf  # indexing the channels only (x[:, mask])
        return "indexing with tensors or None moves the spatial axes"
    index = index + (slice(None),) * (x.dim() - len(index))
    starts, steps = [], []
    for d in dims:
        i = index[d]
        if isinstance(i, int):
            return "an integer index picks one row of the map"
        start, _, step = i.indices(x.shape[d])
        starts.append(start)
        steps.append(step)
    dropped = sum(1 for i in index if isinstance(i, int))
    after = [d - sum(1 for k in range(d) if isinstance(index[k], int)) for d in dims]
    return rf.shifted(starts, steps).moved([d - (x.dim() - dropped) for d in after])
