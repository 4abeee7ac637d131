"""Trace one forward pass into per-layer records, without doing the arithmetic.

The model runs once, in eval mode, with its parameters and buffers swapped for meta-device twins
(`torch.func.functional_call`), so nothing is allocated, the time does not depend on the input
resolution or batch size, and the model's weights, batch-norm statistics and device are never
touched. Two instruments watch the pass:

- forward hooks on the model's modules give the call structure: a module without children is a
  layer, a module with children is a block around the layers its forward runs;
- a `TorchFunctionMode` sees every torch function the forward calls, inside modules or not
  (``torch.cat``, ``+``, ``F.relu`` in a `forward` are layers of their own). Each call is looked
  up in `formulas.RULES` by the function itself; its MACs, FLOPs and window geometry are added to
  the layer it runs in, and the receptive field of its outputs is derived from its inputs'.
  Operations whose outputs are shaped like their inputs (normalization, activations,
  element-wise arithmetic) get their meta outputs from the table too (`OpRule.meta_output`),
  which is much faster than PyTorch's Python meta kernels for them; convolutions, pooling,
  linear layers and everything else run PyTorch's own meta kernels.

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
    Window,
    derive_rf,
    window_of,
)
from cnnzoo.analysis.receptive_field import RF
from cnnzoo.analysis.records import BlockCall, Failure, LayerRecord, ParamRef


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


@dataclass
class _Call:
    """A module call in progress."""

    name: str
    type: str
    depth: int
    leaf: bool
    inputs: tuple[Tensor, ...]
    first_row: int
    parents: tuple[int, ...]
    block_id: int = -1
    macs: int = 0
    flops: int = 0
    windows: list[Window] = field(default_factory=list)
    used: dict[str, ParamRef] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    rf_stops: list[str] = field(default_factory=list)
    functions: Counter[str] = field(default_factory=Counter)


def _tensors(value: Any) -> tuple[Tensor, ...]:
    if isinstance(value, Tensor):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(t for t in value if isinstance(t, Tensor))
    return ()


def _tensor_args(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Tensor]:
    found: list[Tensor] = []
    for value in (*args, *kwargs.values()):
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
    bases = [_base(t) for t in inputs]
    return sum(
        o.numel() * o.element_size() for o in outputs if not any(_base(o) is b for b in bases)
    )


def _shapes(tensors: Sequence[Tensor]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(t.shape) for t in tensors)


def _label(func: Callable[..., Any]) -> str:
    rule = RULES.get(func)
    return rule.label if rule is not None else getattr(func, "__name__", type(func).__name__)


class _Tracer(TorchFunctionMode):
    """Hooks and function mode of one traced forward pass."""

    def __init__(self, model: nn.Module, params: dict[int, ParamRef]) -> None:
        super().__init__()
        self.params = params  # id of the tensor the forward sees -> the parameter
        modules = list(model.named_modules())
        self.names = {id(m): name for name, m in modules}
        self.leaf = {id(m): not m._modules for _, m in modules}
        self.stack: list[_Call] = []
        self.rows: list[LayerRecord] = []
        self.parents: list[tuple[int, ...]] = []
        self.blocks: list[BlockCall | None] = []
        self.calls: Counter[str] = Counter()
        self.owner: dict[str, str] = {}  # parameter name -> the layer that counted it
        self.acts: dict[int, tuple[weakref.ref[Tensor], RF | None]] = {}
        self.aliases: dict[int, tuple[weakref.ref[Tensor], tuple[ParamRef, ...]]] = {}
        self.unknown_ops: Counter[str] = Counter()
        self.failure: Failure | None = None

    # -- tensor bookkeeping

    def mark_input(self, x: Tensor, rf: RF | None) -> None:
        self.acts[id(x)] = (weakref.ref(x), rf)

    def _activation(self, t: Tensor) -> tuple[bool, RF | None]:
        entry = self.acts.get(id(t))
        if entry is not None and entry[0]() is t:
            return True, entry[1]
        return False, None

    def rf_of(self, t: Tensor) -> RF | None:
        return self._activation(t)[1]

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
        try:
            if rule is not None and rule.meta_output is not None and _all_meta(args):
                out = rule.meta_output(args, kwargs, func)
            else:
                out = func(*args, **kwargs)
        except Exception as err:
            self._fail(func, args, kwargs, err)
            raise
        outputs = _tensors(out)
        if outputs:
            self._record(func, args, kwargs, outputs)
        return out

    def _record(
        self, func: Callable[..., Any], args: tuple, kwargs: dict, outputs: tuple[Tensor, ...]
    ) -> None:
        tensors = _tensor_args(args, kwargs)
        inputs: list[tuple[Tensor, RF | None]] = []
        used: dict[str, ParamRef] = {}
        for t in tensors:
            is_act, rf = self._activation(t)
            if is_act:
                inputs.append((t, rf))
            for ref in self._param_refs(t):
                used[ref.name] = ref
        top = self.stack[-1] if self.stack else None
        rule = RULES.get(func)
        if not inputs:
            # Weight preparation (w.t(), w.view(...)) or a constant: not a layer of its own, but
            # the result stands for the parameters it came from.
            if used:
                for o in outputs:
                    self.aliases[id(o)] = (weakref.ref(o), tuple(used.values()))
            if rule is None or rule.kind not in (Kind.MATMUL, Kind.CONV):
                return
        call = OpCall(func, args, kwargs, outputs)
        window = rule.window(args, kwargs, func) if rule is not None and rule.window else None
        cost = rule.cost(call, window) if rule is not None else OpCost(0, 0)
        stop = None
        if inputs:
            rf = derive_rf(rule, call, window, inputs)
            if isinstance(rf, str):  # the field stops here, for this reason
                stop, rf = f"receptive field stops here: {rf}", None
            for o in outputs:
                self.acts[id(o)] = (weakref.ref(o), rf)
        label = _label(func)
        if rule is None and inputs:
            self.unknown_ops[label] += 1
        if top is not None and top.leaf:
            top.macs += cost.macs
            top.flops += cost.flops
            top.used.update(used)
            if window is not None:
                top.windows.append(window)
            if rule is None and inputs:
                top.unknown.append(label)
            if stop is not None:
                top.rf_stops.append(stop)
            return
        if not inputs and not cost.macs:
            return
        self._function_row(top, func, label, rule is None, [t for t, _ in inputs], outputs,
                           cost, window, used, stop)  # fmt: skip

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
        stop: str | None = None,
    ) -> None:
        prefix = f"{owner.name}." if owner is not None and owner.name else ""
        count = 0
        if owner is not None:
            owner.functions[label] += 1
            count = owner.functions[label]
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
            parents=self._block_chain(),
        )

    def _block_chain(self) -> tuple[int, ...]:
        return tuple(c.block_id for c in self.stack if not c.leaf)

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
        rf = self.rf_of(outputs[0]) if outputs else None
        self.rows.append(
            LayerRecord(
                index=len(self.rows),
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
                rf=rf,
                inexact=any(_inexact(w) for w in windows),
                in_place=in_place,
                notes=notes,
            )
        )
        self.parents.append(parents)

    # -- module hooks

    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        qualified = self.names.get(id(module))
        if qualified is None:
            return  # a module of another model
        with torch._C.DisableTorchFunction():
            self.calls[qualified] += 1
            calls = self.calls[qualified]
            leaf = self.leaf[id(module)]
            call = _Call(
                name=f"{qualified}@{calls}" if calls > 1 else qualified,
                type=type(module).__name__,
                depth=qualified.count(".") + 1 if qualified else 0,
                leaf=leaf,
                inputs=tuple(_tensor_args(args, {})),  # keyword tensors are added on return
                first_row=len(self.rows),
                parents=self._block_chain(),
            )
            if not leaf:
                call.block_id = len(self.blocks)
                self.blocks.append(None)  # filled in when the call returns
            self.stack.append(call)

    def post_hook(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if id(module) not in self.names:
            return
        with torch._C.DisableTorchFunction():
            call = self.stack.pop()
            call.inputs = tuple(_tensor_args(args, kwargs))
            outputs = _tensors(output)
            if call.leaf:
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
                )
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
            inputs = [t for t in _tensor_args(args, kwargs) if self._activation(t)[0]]
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


def _twin(t: Tensor, dtype: torch.dtype) -> Tensor:
    return torch.empty(t.shape, dtype=dtype if t.is_floating_point() else t.dtype, device="meta")


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
        model: any module; it is neither modified nor moved.
        input_shape: (N, C, *spatial).
        dtype: dtype of the input and of the floating-point parameters.
        real: run the model as it is, on real tensors, instead of on meta twins (the fallback
            for networks that meta tensors cannot run).
        training: run in training mode, through `forward_with_aux` where the model has one.
    """
    named_params = list(model.named_parameters())
    named_buffers = list(model.named_buffers())
    if real:
        device = next((t.device for _, t in named_params + named_buffers), torch.device("cpu"))
        dtype = next((p.dtype for _, p in named_params if p.is_floating_point()), dtype)
        swapped: dict[str, Tensor] = {}
        seen = {name: p for name, p in named_params}
        buffers = {name: b for name, b in named_buffers}
    elif all(t.is_meta and (t.dtype == dtype or not t.is_floating_point())
             for _, t in named_params + named_buffers):  # fmt: skip
        device = torch.device("meta")  # already shapes only (e.g. `meta_model`): run it as is
        swapped = {}
        seen = {name: p for name, p in named_params}
        buffers = {name: b for name, b in named_buffers}
    else:
        device = torch.device("meta")
        seen = {name: _twin(p, dtype) for name, p in named_params}
        buffers = {name: _twin(b, dtype) for name, b in named_buffers}
        swapped = {**seen, **buffers}
    params = {
        id(seen[name]): ParamRef(
            name, p.numel(), p.requires_grad, p.numel() * seen[name].element_size()
        )
        for name, p in named_params
    }
    buffer_bytes = sum(b.numel() * b.element_size() for b in buffers.values())

    tracer = _Tracer(model, params)
    x = torch.zeros(input_shape, dtype=dtype, device=device)
    spatial = input_shape[2:]
    tracer.mark_input(x, RF.identity(len(spatial), spatial) if spatial else None)
    modes = [(m, m.training) for m in model.modules()]
    patched = training and hasattr(model, "forward_with_aux") and "forward" not in vars(model)
    handles = []
    error: BaseException | None = None
    output: Any = None
    # The trace makes tens of thousands of small objects and no garbage cycles; collector runs
    # in the middle of it cost more than the trace itself on deep networks.
    collecting = gc.isenabled()
    gc.disable()
    try:
        # Global hooks (filtered to this model's modules) cost one registration, not two per
        # module, which matters for networks of thousands of layers.
        handles.append(register_module_forward_pre_hook(tracer.pre_hook))
        handles.append(register_module_forward_hook(tracer.post_hook, with_kwargs=True))
        model.train(training)
        if patched:
            model.forward = model.forward_with_aux  # removed in `finally`
        with torch.no_grad(), tracer:
            if swapped:
                output = torch.func.functional_call(model, swapped, (x,), tie_weights=True)
            else:
                output = model(x)
    except Exception as err:  # reported as the failure of the layer that raised
        error = err
    finally:
        for handle in handles:
            handle.remove()
        if patched:
            del model.forward
        for m, was_training in modes:
            m.training = was_training
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
