"""Trace one forward pass into per-layer records, without doing the arithmetic.

The model runs once, in eval mode (training mode when asked), with its parameters and buffers
swapped for meta-device twins (what `torch.func.functional_call` does, done directly: its
bookkeeping cost more than a ResNet's whole trace), so nothing is allocated, the time does not
depend on the input resolution or batch size, and the model's weights, batch-norm statistics and
device are never touched. The twins are kept with the model (weakly), so a second summary of it,
at another input size say, reuses them.
Two instruments watch the pass:

- forward hooks on the model's modules give the call structure: a module without children is a
  layer, a module with children is a block around the layers its forward runs;
- a `TorchFunctionMode` sees every torch function the forward calls, inside modules or not
  (``torch.cat``, ``+``, ``F.relu`` in a `forward` are layers of their own). Each call is looked
  up in `formulas.RULES` by the function itself; its MACs, FLOPs and window geometry are added to
  the layer it runs in, and the receptive field of its outputs is derived from its inputs'.
  Operations whose outputs are shaped like their inputs (normalization, activations,
  element-wise arithmetic) get their meta outputs from the table too (`OpRule.meta_output`),
  which is much faster than PyTorch's Python meta kernels for them; convolutions, linear layers
  and concatenations get theirs from their shapes here (`_fast_output`), and everything else runs
  PyTorch's own meta kernels.

Every row records its producers: the rows whose outputs it reads (`LayerRecord.producers`), so
the network's graph can be drawn from the records alone.

A model whose tensors are all on meta already (`meta_model`) runs as it is. The fallback for
networks that meta tensors cannot run (`real=True`) runs the model itself, under `no_grad`.

Parameters are attributed to the layer whose operation consumes them, so a module called twice or
a weight tied between two layers counts once, at its first use, and later uses are marked shared.
Hooks are removed and every module's mode is restored in `finally`.
"""

from __future__ import annotations

import gc
import math
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torch.overrides import TorchFunctionMode

from cnnzoo.analysis.formulas import (
    RULES,
    Kind,
    OpCall,
    OpCost,
    OpRule,
    Window,
    _empty,
    derive_rf,
    window_of,
)
from cnnzoo.analysis.receptive_field import RF
from cnnzoo.analysis.records import INPUT, BlockCall, Failure, LayerRecord, ParamRef


@dataclass
class TraceResult:
    """The raw outcome of one traced forward pass."""

    rows: tuple[LayerRecord, ...]
    parents: tuple[tuple[int, ...], ...]  # per row: indices into `blocks` of enclosing calls
    blocks: tuple[BlockCall | None, ...]  # None: a call that did not return (the failure)
    params: tuple[ParamRef, ...]
    input_bytes: int
    buffer_bytes: int
    output_rf: RF | None
    failure: Failure | None
    error: BaseException | None
    unknown_ops: Counter[str]


@dataclass(slots=True, eq=False)
class _Call:
    """A module call in progress."""

    name: str
    type: str
    depth: int
    leaf: bool
    inputs: tuple[Tensor, ...]
    first_row: int
    parents: tuple[int, ...]  # block ids of the enclosing block calls, outermost first
    chain: tuple[int, ...]  # `parents` for calls made inside this one
    block_id: int = -1
    row: int = -1  # the row of a finished leaf call
    macs: int = 0
    flops: int = 0
    windows: list[Window] = field(default_factory=list)
    used: dict[str, ParamRef] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    rf_stops: list[str] = field(default_factory=list)
    functions: dict[str, int] = field(default_factory=dict)  # calls of each function so far
    producers: dict[int | _Call, None] = field(default_factory=dict)


def _tensors(value: Any) -> tuple[Tensor, ...]:
    if isinstance(value, Tensor):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(t for t in value if isinstance(t, Tensor))
    return ()


def _tensor_args(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Tensor]:
    found: list[Tensor] = []
    for value in (*args, *kwargs.values()) if kwargs else args:
        if isinstance(value, Tensor):
            found.append(value)
        elif isinstance(value, list | tuple):
            found.extend(t for t in value if isinstance(t, Tensor))
    return found


def _all_meta(args: Sequence[Any]) -> bool:
    return all(a.is_meta for a in args if isinstance(a, Tensor))


def _base(t: Tensor) -> Tensor:
    return t._base if t._base is not None else t


def _new_bytes(outputs: Sequence[Tensor], inputs: Sequence[Tensor]) -> int:
    """Bytes of the outputs that are new allocations, not the inputs or views of them."""
    bases = {id(_base(t)) for t in inputs}
    return sum(o.numel() * o.element_size() for o in outputs if id(_base(o)) not in bases)


def _shapes(tensors: Sequence[Tensor]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(t.shape) for t in tensors)


def _label(func: Callable[..., Any]) -> str:
    rule = RULES.get(func)
    return rule.label if rule is not None else getattr(func, "__name__", type(func).__name__)


def _resolve(producer: int | _Call) -> int:
    return producer.row if isinstance(producer, _Call) else producer


# -- outputs from shapes alone, for the operations whose meta kernels are Python code ----------
#
# PyTorch's meta kernels for convolution and linear layers are Python (shape checks and, for
# `linear`, a decomposition): 50 us to 2 ms a call, most of the time of a trace. The output shape
# follows from the window formula the cost needs anyway. Anything unusual (a size below 1, a
# channel mismatch, unbatched 1-d input) runs PyTorch's kernel, which raises its own error.

_CONVS = {torch.conv1d: 1, torch.conv2d: 2, torch.conv3d: 3, F.conv1d: 1, F.conv2d: 2,
          F.conv3d: 3}  # fmt: skip


def _conv_output(x: Tensor, weight: Tensor, groups: int, window: Window) -> Tensor | None:
    n = len(window.out_size)
    if (
        x.dim() != n + 2
        or weight.dim() != n + 2
        or x.shape[1] != weight.shape[1] * groups
        or weight.shape[0] % groups
        or min(window.out_size) < 1
    ):
        return None
    return _empty(x, (x.shape[0], weight.shape[0], *window.out_size), x.dtype)


def _cat_output(args: tuple, kwargs: dict) -> Tensor | None:
    tensors = args[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    if len(args) > 2 or set(kwargs) - {"dim"} or not isinstance(dim, int) or not tensors:
        return None
    first = tensors[0]
    if not isinstance(first, Tensor) or first.dim() == 0:
        return None
    shape = list(first.shape)
    axis = dim % len(shape)
    total = 0
    for t in tensors:
        if not isinstance(t, Tensor) or not t.is_meta or t.dtype != first.dtype:
            return None  # type promotion, or a real tensor: PyTorch's kernel
        if t.dim() != len(shape) or any(
            a != b for i, (a, b) in enumerate(zip(t.shape, shape, strict=True)) if i != axis
        ):
            return None
        total += t.shape[axis]
    shape[axis] = total
    return _empty(first, shape, first.dtype)


def _fast_output(func: Callable[..., Any], args: tuple, kwargs: dict, window: Window | None):
    """The meta output of a convolution, linear layer or concatenation, or None to run
    PyTorch's kernel."""
    if func in _CATS:
        return _cat_output(args, kwargs) if args and isinstance(args[0], list | tuple) else None
    if kwargs or len(args) < 2:
        return None
    x, weight = args[0], args[1]
    if not (isinstance(x, Tensor) and isinstance(weight, Tensor) and x.is_meta and weight.is_meta):
        return None
    if x.dtype != weight.dtype:
        return None  # PyTorch raises; let it
    if func is F.linear:
        bias = args[2] if len(args) > 2 else None
        if weight.dim() != 2 or x.dim() < 1 or x.shape[-1] != weight.shape[1]:
            return None
        if bias is not None and (bias.dim() != 1 or bias.shape[0] != weight.shape[0]):
            return None
        return torch.empty((*x.shape[:-1], weight.shape[0]), dtype=x.dtype, device="meta")
    groups = args[6] if len(args) > 6 else 1
    if (
        window is None
        or not isinstance(groups, int)
        or (len(args) > 4 and isinstance(args[4], str))
    ):
        return None  # string padding: PyTorch checks what it allows
    return _conv_output(x, weight, groups, window)


_CATS = frozenset((torch.cat, torch.concat, torch.concatenate))
_FAST = frozenset((*_CONVS, F.linear, *_CATS))


class _Tracer(TorchFunctionMode):
    """Hooks and function mode of one traced forward pass."""

    def __init__(self, modules: dict[int, tuple[str, str, int, bool]], params: dict[int, ParamRef]):
        super().__init__()
        self.params = params  # id of the tensor the forward sees -> the parameter
        self.modules = modules  # id of a module -> (qualified name, class name, depth, leaf)
        self.stack: list[_Call] = []
        self.rows: list[LayerRecord] = []
        self.parents: list[tuple[int, ...]] = []
        self.blocks: list[BlockCall | None] = []
        self.calls: Counter[str] = Counter()
        self.owner: dict[str, str] = {}  # parameter name -> the layer that counted it
        # id of an activation -> (a weak reference to it, its field, the row that produced it)
        self.acts: dict[int, tuple[weakref.ref[Tensor], RF | None, int | _Call]] = {}
        self.aliases: dict[int, tuple[weakref.ref[Tensor], tuple[ParamRef, ...]]] = {}
        self.unknown_ops: Counter[str] = Counter()
        self.failure: Failure | None = None

    # -- tensor bookkeeping

    def mark_input(self, x: Tensor, rf: RF | None) -> None:
        self.acts[id(x)] = (weakref.ref(x), rf, INPUT)

    def _activation(self, t: Tensor) -> tuple[weakref.ref[Tensor], RF | None, int | _Call] | None:
        entry = self.acts.get(id(t))
        return entry if entry is not None and entry[0]() is t else None

    def rf_of(self, t: Tensor) -> RF | None:
        entry = self._activation(t)
        return entry[1] if entry is not None else None

    def _param_refs(self, t: Tensor) -> tuple[ParamRef, ...]:
        ref = self.params.get(id(t))
        if ref is not None:
            return (ref,)
        entry = self.aliases.get(id(t))
        if entry is not None and entry[0]() is t:
            return entry[1]
        return ()

    # -- torch functions

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        rule = RULES.get(func)
        window = None
        try:
            if rule is not None and rule.window is not None:
                window = rule.window(args, kwargs, func)
            out = _fast_output(func, args, kwargs, window) if func in _FAST else None
            if out is None:
                if rule is not None and rule.meta_output is not None and _all_meta(args):
                    out = rule.meta_output(args, kwargs, func)
                else:
                    out = func(*args, **kwargs)
        except Exception as err:
            self._fail(func, args, kwargs, err)
            raise
        outputs = _tensors(out)
        if outputs:
            self._record(func, rule, window, args, kwargs, outputs)
        return out

    def _record(
        self,
        func: Callable[..., Any],
        rule: OpRule | None,
        window: Window | None,
        args: tuple,
        kwargs: dict,
        outputs: tuple[Tensor, ...],
    ) -> None:
        inputs: list[tuple[Tensor, RF | None]] = []
        producers: dict[int | _Call, None] = {}
        used: dict[str, ParamRef] = {}
        for t in _tensor_args(args, kwargs):
            entry = self._activation(t)
            if entry is not None:
                inputs.append((t, entry[1]))
                producers[entry[2]] = None
            for ref in self._param_refs(t):
                used[ref.name] = ref
        top = self.stack[-1] if self.stack else None
        if not inputs:
            # Weight preparation (w.t(), w.view(...)) or a constant: not a layer of its own, but
            # the result stands for the parameters it came from.
            if used:
                for o in outputs:
                    self.aliases[id(o)] = (weakref.ref(o), tuple(used.values()))
            if rule is None or rule.kind not in (Kind.MATMUL, Kind.CONV):
                return
        call = OpCall(func, args, kwargs, outputs)
        cost = rule.cost(call, window) if rule is not None else OpCost(0, 0)
        in_leaf = top is not None and top.leaf
        stop = None
        if inputs:
            rf = derive_rf(rule, call, window, inputs)
            if isinstance(rf, str):  # the field stops here, for this reason
                stop, rf = f"receptive field stops here: {rf}", None
            # Inside a leaf module the outputs belong to the module's row, written on return.
            producer: int | _Call = top if in_leaf else len(self.rows)  # type: ignore[assignment]
            for o in outputs:
                self.acts[id(o)] = (weakref.ref(o), rf, producer)
        if in_leaf:
            top.macs += cost.macs
            top.flops += cost.flops
            top.used.update(used)
            top.producers.update(producers)
            if window is not None:
                top.windows.append(window)
            if rule is None and inputs:
                label = _label(func)
                self.unknown_ops[label] += 1
                top.unknown.append(label)
            if stop is not None:
                top.rf_stops.append(stop)
            return
        label = _label(func)
        if rule is None and inputs:
            self.unknown_ops[label] += 1
        if not inputs and not cost.macs:
            return
        self._function_row(top, func, label, rule is None, [t for t, _ in inputs], outputs,
                           cost, window, used, producers, stop)  # fmt: skip

    def _function_row(
        self,
        owner: _Call | None,
        func: Callable[..., Any],
        label: str,
        unknown: bool,
        inputs: list[Tensor],
        outputs: tuple[Tensor, ...],
        cost: OpCost,
        window: Window | None,
        used: dict[str, ParamRef],
        producers: dict[int | _Call, None],
        stop: str | None = None,
    ) -> None:
        prefix = f"{owner.name}." if owner is not None and owner.name else ""
        count = 0
        if owner is not None:
            count = owner.functions[label] = owner.functions.get(label, 0) + 1
        name = f"{prefix}{label}()" + (f"@{count}" if count > 1 else "")
        in_place = any(o is i for o in outputs for i in inputs)
        self._add_row(
            name=name,
            type=f"{getattr(func, '__module__', None) or 'Tensor'}.{label}".replace(
                "torch.nn.functional", "F"
            ),
            depth=(owner.depth + 1) if owner is not None else 0,
            kind="function",
            inputs=inputs,
            outputs=outputs,
            used=used,
            macs=cost.macs,
            flops=cost.flops,
            windows=[window] if window is not None else [],
            in_place=in_place,
            notes=((f"no formula for `{label}`; counted as 0 FLOPs",) if unknown else ())
            + ((stop,) if stop else ()),
            parents=owner.chain if owner is not None else (),
            producers=producers,
        )

    def _add_row(
        self,
        *,
        name: str,
        type: str,
        depth: int,
        kind: str,
        inputs: Sequence[Tensor],
        outputs: Sequence[Tensor],
        used: dict[str, ParamRef],
        macs: int,
        flops: int,
        windows: list[Window],
        in_place: bool,
        notes: tuple[str, ...],
        parents: tuple[int, ...],
        producers: dict[int | _Call, None],
    ) -> None:
        counted = trainable = shared = 0
        shared_with: list[str] = []
        for ref in used.values():
            owner = self.owner.get(ref.name)
            if owner is None:
                self.owner[ref.name] = name
                counted += ref.numel
                trainable += ref.numel if ref.trainable else 0
            else:
                shared += ref.numel
                if owner not in shared_with:
                    shared_with.append(owner)
        window = windows[0] if len(windows) == 1 else None
        index = len(self.rows)
        fed_by = tuple(dict.fromkeys(p for p in map(_resolve, producers) if p != index))
        self.rows.append(
            LayerRecord(
                index=index,
                name=name,
                type=type,
                depth=depth,
                kind=kind,
                input_shapes=_shapes(inputs),
                output_shapes=_shapes(outputs),
                params=counted,
                trainable_params=trainable,
                frozen_params=counted - trainable,
                shared_params=shared,
                shared_with=tuple(shared_with),
                macs=macs,
                flops=flops,
                activation_bytes=_new_bytes(outputs, inputs),
                window=window,
                rf=self.rf_of(outputs[0]) if outputs else None,
                inexact=any(_inexact(w) for w in windows),
                in_place=in_place,
                notes=notes,
                producers=fed_by,
            )
        )
        self.parents.append(parents)

    # -- module hooks

    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        info = self.modules.get(id(module))
        if info is None:
            return  # a module of another model
        qualified, type_name, depth, leaf = info
        calls = self.calls[qualified] = self.calls[qualified] + 1
        top = self.stack[-1] if self.stack else None
        parents = top.chain if top is not None else ()
        call = _Call(
            name=f"{qualified}@{calls}" if calls > 1 else qualified,
            type=type_name,
            depth=depth,
            leaf=leaf,
            inputs=tuple(_tensor_args(args, {})),  # keyword tensors are added on return
            first_row=len(self.rows),
            parents=parents,
            chain=parents,
        )
        if not leaf:
            call.block_id = len(self.blocks)
            call.chain = (*parents, call.block_id)
            self.blocks.append(None)  # filled in when the call returns
        self.stack.append(call)

    def post_hook(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if id(module) not in self.modules:
            return
        with torch._C.DisableTorchFunction():
            call = self.stack.pop()
            if kwargs:  # the positional tensors were collected when the call began
                call.inputs = tuple(_tensor_args(args, kwargs))
            outputs = _tensors(output)
            if call.leaf:
                for t in call.inputs:
                    entry = self._activation(t)
                    if entry is not None:
                        call.producers[entry[2]] = None
                call.row = len(self.rows)
                unknown = tuple(dict.fromkeys(call.unknown))
                self._add_row(
                    name=call.name,
                    type=call.type,
                    depth=call.depth,
                    kind="module",
                    inputs=call.inputs,
                    outputs=outputs,
                    used=call.used,
                    macs=call.macs,
                    flops=call.flops,
                    windows=call.windows,
                    in_place=any(o is i for o in outputs for i in call.inputs),
                    notes=tuple(f"no formula for `{u}`; counted as 0 FLOPs" for u in unknown)
                    + tuple(dict.fromkeys(call.rf_stops)),
                    parents=call.parents,
                    producers=call.producers,
                )
                # What the layer returns is its output, even when it is its input (Identity).
                for o in outputs:
                    entry = self._activation(o)
                    if entry is not None:
                        self.acts[id(o)] = (entry[0], entry[1], call.row)
            else:
                self.blocks[call.block_id] = BlockCall(
                    name=call.name,
                    type=call.type,
                    depth=call.depth,
                    input_shapes=_shapes(call.inputs),
                    output_shapes=_shapes(outputs),
                    rf=self.rf_of(outputs[0]) if outputs else None,
                    first=call.first_row,
                    end=len(self.rows),
                    parents=call.parents,
                )

    # -- failures

    def _fail(self, func: Callable[..., Any], args: tuple, kwargs: dict, err: Exception) -> None:
        if self.failure is not None:
            return
        with torch._C.DisableTorchFunction():
            kind = failure_kind(err)
            try:
                window = window_of(func, args, kwargs)
            except Exception:  # arguments the formula cannot read: not a window
                window = None
            if window is not None and min(window.out_size, default=1) < 1:
                kind = "input too small"
            inputs = [t for t in _tensor_args(args, kwargs) if self._activation(t) is not None]
            self.failure = self.describe_failure(err, kind, _label(func), inputs)

    def describe_failure(
        self, err: BaseException, kind: str, op: str | None, tensors: Sequence[Tensor] = ()
    ) -> Failure:
        """The failure at the innermost module call in progress."""
        call = self.stack[-1] if self.stack else None
        if call is not None and not call.leaf and op is not None:
            layer = f"{call.name}.{op}()" if call.name else f"{op}()"
        else:
            layer = call.name if call is not None else ""
        shapes = _shapes(tensors) if tensors else _shapes(call.inputs) if call else ()
        return Failure(
            layer=layer or (f"(model {call.type})" if call is not None else "(model)"),
            type=call.type if call is not None else "",
            op=op,
            input_shapes=shapes,
            message=str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__,
            kind=kind,
        )


def meta_problem(err: BaseException) -> bool:
    """Errors that come from meta tensors or devices, not from the network's shapes."""
    text = str(err).lower()
    return isinstance(err, NotImplementedError) or "meta" in text or "device" in text


def failure_kind(err: BaseException) -> str:
    """ "shape mismatch" for the RuntimeErrors of operations given wrong shapes, else "error"
    (a window too small for its input is recognized before this, from the window's formula)."""
    if isinstance(err, RuntimeError) and not meta_problem(err):
        return "shape mismatch"
    return "error"


def _inexact(window: Window) -> bool:
    if window.op not in ("conv", "max_pool", "avg_pool"):
        return False
    return any(
        (n + 2 * p - d * (k - 1) - 1) % s != 0
        for n, k, s, p, d in zip(
            window.in_size, window.kernel, window.stride, window.padding, window.dilation,
            strict=True,
        )
    )  # fmt: skip


class _Twins:
    """Meta twins of one model's parameters and buffers, kept between traces.

    A second trace of the same module (at another input size, say) reuses them instead of
    allocating a meta tensor per parameter again. A twin is reused only for the same tensor
    object with the same shape and dtype, so a model changed in between gets new twins.
    """

    def __init__(self) -> None:
        self.by_id: dict[int, tuple[weakref.ref[Tensor], tuple[int, ...], torch.dtype, Tensor]] = {}

    def of(self, t: Tensor, dtype: torch.dtype) -> Tensor:
        want = dtype if t.is_floating_point() else t.dtype
        entry = self.by_id.get(id(t))
        if entry is not None and entry[0]() is t and entry[1] == t.shape and entry[2] is want:
            return entry[3]
        twin = torch.empty(t.shape, dtype=want, device="meta")
        self.by_id[id(t)] = (weakref.ref(t), t.shape, want, twin)
        return twin


_TWINS: weakref.WeakKeyDictionary[nn.Module, _Twins] = weakref.WeakKeyDictionary()


@dataclass
class _Slot:
    """Where the forward finds one parameter or buffer: `table[key]` of its module."""

    table: dict[str, Any]
    key: str
    tensor: Tensor


# Where torch marks the global forward hooks registered `with_kwargs` (private; {} if it moves).
_GLOBAL_HOOK_KWARGS_MARKS: dict = getattr(
    torch.nn.modules.module, "_global_forward_hooks_with_kwargs", {}
)


def _named_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """`model.named_modules()` (pre-order, a shared module once, under its first name) without
    its recursive generators, which cost a yield per level for every module of a deep network."""
    found: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()
    stack: list[tuple[str, nn.Module]] = [("", model)]
    while stack:
        name, m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        found.append((name, m))
        prefix = f"{name}." if name else ""
        children = [(prefix + key, c) for key, c in m._modules.items() if c is not None]
        stack.extend(reversed(children))
    return found


def _walk(
    model: nn.Module,
) -> tuple[dict[int, tuple[str, str, int, bool]], list[nn.Module], list[_Slot], list[_Slot],
           dict[int, str]]:  # fmt: skip
    """One pass over the modules: their names, and every slot holding a parameter or buffer.

    Names follow `named_modules` / `named_parameters`: a shared module or tensor is named where
    it first appears.
    """
    modules: dict[int, tuple[str, str, int, bool]] = {}
    order: list[nn.Module] = []
    params: list[_Slot] = []
    buffers: list[_Slot] = []
    param_names: dict[int, str] = {}
    for qualified, m in _named_modules(model):
        depth = qualified.count(".") + 1 if qualified else 0
        modules[id(m)] = (qualified, type(m).__name__, depth, not m._modules)
        order.append(m)
        prefix = f"{qualified}." if qualified else ""
        for key, p in m._parameters.items():
            if p is not None:
                params.append(_Slot(m._parameters, key, p))
                param_names.setdefault(id(p), prefix + key)
        for key, b in m._buffers.items():
            if b is not None:
                buffers.append(_Slot(m._buffers, key, b))
    return modules, order, params, buffers, param_names


def trace(
    model: nn.Module,
    input_shape: tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    *,
    real: bool = False,
    training: bool = False,
) -> TraceResult:
    """Run `model` once on an input of `input_shape` (batch included) and record every layer.

    Args:
        model: any module; it is neither modified nor moved (its parameters are swapped for
            meta twins during the pass and put back in `finally`).
        input_shape: (N, C, *spatial).
        dtype: dtype of the input and of the floating-point parameters.
        real: run the model as it is, on real tensors, instead of on meta twins (the fallback
            for networks that meta tensors cannot run).
        training: run in training mode, through `forward_with_aux` where the model has one.
    """
    modules, order, param_slots, buffer_slots, param_names = _walk(model)
    tensors = [s.tensor for s in param_slots] + [s.tensor for s in buffer_slots]
    if real:
        device = next((t.device for t in tensors), torch.device("cpu"))
        dtype = next((s.tensor.dtype for s in param_slots if s.tensor.is_floating_point()), dtype)
        swap: dict[int, Tensor] = {}
    elif all(t.is_meta and (t.dtype == dtype or not t.is_floating_point()) for t in tensors):
        device = torch.device("meta")  # already shapes only (e.g. `meta_model`): run it as is
        swap = {}
    else:
        device = torch.device("meta")
        twins = _TWINS.get(model)
        if twins is None:
            twins = _TWINS[model] = _Twins()
        swap = {id(t): twins.of(t, dtype) for t in tensors}
    unique = {id(s.tensor): s.tensor for s in param_slots}  # in `named_parameters` order
    params: dict[int, ParamRef] = {}
    for p in unique.values():
        twin = swap.get(id(p), p)
        params[id(twin)] = ParamRef(
            param_names[id(p)], p.numel(), p.requires_grad, p.numel() * twin.element_size()
        )
    unique_buffers = {id(s.tensor): swap.get(id(s.tensor), s.tensor) for s in buffer_slots}
    buffer_bytes = sum(b.numel() * b.element_size() for b in unique_buffers.values())

    tracer = _Tracer(modules, params)
    x = torch.zeros(input_shape, dtype=dtype, device=device)
    spatial = input_shape[2:]
    tracer.mark_input(x, RF.identity(len(spatial), spatial) if spatial else None)
    modes = [m.training for m in order]
    patched = training and hasattr(model, "forward_with_aux") and "forward" not in vars(model)
    handles = []
    error: BaseException | None = None
    output: Any = None
    # The trace makes tens of thousands of small objects and no garbage cycles; collector runs
    # in the middle of it cost more than the trace itself on deep networks.
    collecting = gc.isenabled()
    gc.disable()
    swapped = False
    try:
        # Global hooks (filtered to this model's modules) cost one registration, not two per
        # module, which matters for networks of thousands of layers.
        handles.append(register_module_forward_pre_hook(tracer.pre_hook))
        handles.append(register_module_forward_hook(tracer.post_hook, with_kwargs=True))
        for m in order:
            m.__dict__["training"] = training  # what `model.train(training)` sets, flat
        if patched:
            model.forward = model.forward_with_aux  # removed in `finally`
        if swap:
            # What `torch.func.functional_call` does, without its per-call bookkeeping: every
            # slot holding a parameter or buffer gets its twin (a tied weight: one twin).
            swapped = True
            for slot in (*param_slots, *buffer_slots):
                slot.table[slot.key] = swap[id(slot.tensor)]
        with torch.no_grad(), tracer:
            output = model(x)
    except Exception as err:  # reported as the failure of the layer that raised
        error = err
    finally:
        if swapped:
            for slot in (*param_slots, *buffer_slots):
                slot.table[slot.key] = slot.tensor
        for handle in handles:
            handle.remove()
            # `remove` leaves the `with_kwargs` mark of a global forward hook behind (torch 2.x),
            # and `torch.compile` then sees a global hook for the rest of the process.
            _GLOBAL_HOOK_KWARGS_MARKS.pop(handle.id, None)
        if patched:
            del model.forward
        for m, was_training in zip(order, modes, strict=True):
            m.__dict__["training"] = was_training
        if collecting:
            gc.enable()
    failure = tracer.failure
    if error is not None and failure is None:
        failure = tracer.describe_failure(error, failure_kind(error), None)
    outputs = _tensors(output)
    return TraceResult(
        rows=tuple(tracer.rows),
        parents=tuple(tracer.parents),
        blocks=tuple(tracer.blocks),
        params=tuple(params.values()),
        input_bytes=math.prod(input_shape) * x.element_size(),
        buffer_bytes=buffer_bytes,
        output_rf=tracer.rf_of(outputs[0]) if outputs else None,
        failure=failure,
        error=error,
        unknown_ops=tracer.unknown_ops,
    )
