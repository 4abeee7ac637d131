"""`--explain`: the lecture's arithmetic, written out for every layer, then the totals.

    features.conv1 (Conv2d): 3x227x227 -> 96x55x55
      output: (227 + 2*0 - 11) / 4 + 1 = 55
      params: (11*11*3 + 1) * 96 = 34,944 params (0.1% of all)
      MACs:   55*55*96 outputs x 11*11*3 MACs each = 105,415,200 MACs
      memory: 96*55*55 = 290,400 values = 1.11 MiB

    classifier.fc6 (Linear): 9216 -> 4096
      params: (9216 + 1) * 4096 = 37,752,832 params (61.9% of all)
      MACs:   4096 outputs x 9216 MACs each = 37,748,736 MACs

Convolutions and pooling show their output-size division; matrix products (linear layers) their
weights and MACs; everything else (normalization, activations, merges) its FLOPs per output
value; every layer the memory its output allocates. Each line is derived from the record's
shapes and checked against the record's own count, which is printed instead where they differ.
A division that is not exact is flagged with the rounding PyTorch applies, and the report names
the input size that would make it exact.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING

from cnnzoo.analysis.formulas import Window, output_size
from cnnzoo.analysis.records import LayerRecord
from cnnzoo.analysis.render import nbytes, passes_through, shape, totals_lines

if TYPE_CHECKING:
    from cnnzoo.analysis.records import Analysis as Report


def explain(report: Report) -> str:
    """The arithmetic of every layer of `report`, the exact input sizes, then the totals."""
    rows = report.all_layers
    exact, overall = report.exact_inputs() if report.exact is not None else ({}, None)
    size = "x".join(map(str, report.input_size))
    lines = [f"{report.model}: input {report.batch_size} x {size}, arithmetic per layer"]
    total_params = report.totals.params
    itemsize = report.dtype.itemsize
    for row in rows:
        lines.append("")
        if row.window is not None:
            lines += layer_lines(row, report.batch_size, exact.get(row.name), total_params)
        else:
            lines += other_lines(row, report.batch_size, total_params)
        lines += _memory_lines(row, itemsize)
    if not rows:
        lines.append("(no layers)")
    flagged = [r.name for r in rows if r.inexact and r.window is not None]
    if flagged:
        lines.append("")
        if report.exact is None:
            lines.append(
                f"{len(flagged)} division(s) not exact; summary(..., find_exact_inputs=True) "
                "finds the input that makes them exact."
            )
        elif overall is not None:
            lines.append(
                f"{len(flagged)} division(s) not exact; an input of {'x'.join(map(str, overall))} "
                "makes every division exact."
            )
        else:
            lines.append(
                f"{len(flagged)} division(s) not exact; no input up to 64 pixels larger makes "
                "every division exact while the network still runs."
            )
    lines += ["", "Totals:"]
    lines += [
        f"  {line}" for line in totals_lines(report) if not line.startswith(("FAILED", "Hint"))
    ]
    if report.failure is not None:
        lines += ["", f"FAILED at {report.failure.layer}: {report.failure.message}"]
        if report.failure.hint:
            lines.append(f"Hint: {report.failure.hint}")
    return "\n".join(lines)


def _heading(row: LayerRecord) -> str:
    ins = "; ".join(shape(s) for s in row.input_shapes) or "?"
    outs = "; ".join(shape(s) for s in row.output_shapes) or "?"
    return f"{row.name or '(model)'} ({row.type}): {ins} -> {outs}"


def _with_share(text: str, params: int, total: int) -> str:
    """'34,944 params (0.1% of all)'; a closing remark takes the share inside its brackets."""
    if not params or not total:
        return text
    share = f"{params / total:.1%} of all"
    return f"{text[:-1]}; {share})" if text.endswith(")") else f"{text} ({share})"


def _memory_lines(row: LayerRecord, itemsize: int) -> list[str]:
    """The values the layer's output allocates: 96*55*55 = 290,400 values = 1.11 MiB."""
    if row.activation_bytes == 0:
        return []
    values = row.activation_bytes // itemsize
    outs = [s[1:] for s in row.output_shapes if len(s) > 1]
    per_image = sum(math.prod(s) for s in outs)
    batch = row.output_shapes[0][0] if row.output_shapes and row.output_shapes[0] else 1
    if len(outs) == 1 and len(outs[0]) > 1 and per_image * batch == values:
        prefix = f"{batch} x " if batch > 1 else ""
        return [f"  memory: {prefix}{_product(outs[0])} = {values:,} values = "
                f"{nbytes(row.activation_bytes)}"]  # fmt: skip
    return [f"  memory: {values:,} values = {nbytes(row.activation_bytes)}"]


def other_lines(row: LayerRecord, batch: int, total_params: int = 0) -> list[str]:
    """The explanation of a layer without a window: a matrix product, a merge, an element-wise
    operation, a reshape or a pass-through."""
    lines = [_heading(row)]
    if passes_through(row):
        return [*lines, "  passes its input through: no arithmetic, no new memory"]
    out = row.output_shapes[0] if row.output_shapes else ()
    ins = row.input_shapes
    if row.macs:
        return lines + _matmul_lines(row, batch, total_params)
    if row.params:
        lines.append("  params: " + _with_share(_norm_params(row), row.params, total_params))
    if len(ins) > 1 and out and _concatenates(ins, out):
        channels = " + ".join(str(s[1]) for s in ins)
        lines.append(f"  concatenates {channels} = {out[1]} channels: no arithmetic")
        return lines
    if row.flops == 0:
        lines.append("  no arithmetic" + (" (a view: no new memory)" if not row.activation_bytes
                                          else ""))  # fmt: skip
        return lines
    values = math.prod(out) if out else 0
    merge = f", an element-wise merge of {len(ins)} inputs" if len(ins) > 1 else ""
    in_place = " (in place: no new memory)" if row.in_place else ""
    if values and row.flops % values == 0:
        each = _flops(row.flops // values)
        lines.append(f"  FLOPs:  {_each(batch, out[1:], 'values', each, row.flops, 'FLOPs')}"
                     f"{merge}{in_place}")  # fmt: skip
    else:
        lines.append(f"  FLOPs:  {row.flops:,} FLOPs{merge}{in_place}")
    return lines


def _each(batch: int, dims: tuple[int, ...], what: str, per: str, total: int, unit: str) -> str:
    """'2 x 64*56*56 values x 1 FLOP each = 401,408 FLOPs' (the batch only when over 1)."""
    prefix = f"{batch} x " if batch > 1 else ""
    return f"{prefix}{_product(dims) or 1} {what} x {per} each = {total:,} {unit}"


def _flops(n: int) -> str:
    return "1 FLOP" if n == 1 else f"{n} FLOPs"


def _concatenates(ins: tuple[tuple[int, ...], ...], out: tuple[int, ...]) -> bool:
    same_rest = all(len(s) == len(out) and s[:1] + s[2:] == out[:1] + out[2:] for s in ins)
    return len(out) > 1 and same_rest and sum(s[1] for s in ins) == out[1]


def _matmul_lines(row: LayerRecord, batch: int, total_params: int) -> list[str]:
    """params = (in + 1) * out and MACs = outputs x in, when the record's counts say so."""
    x = row.input_shapes[0] if row.input_shapes else ()
    out = row.output_shapes[0] if row.output_shapes else ()
    lines = []
    fan_in, fan_out = (x[-1], out[-1]) if x and out else (0, 0)
    counted = row.params + row.shared_params
    if counted and counted == (fan_in + 1) * fan_out:
        text = f"({fan_in} + 1) * {fan_out} = {counted:,} params"
    elif counted and counted == fan_in * fan_out:
        text = f"{fan_in} * {fan_out} = {counted:,} params (no bias)"
    else:
        text = f"{counted:,} params"
    if row.shared_params:
        text += f"; shared with {', '.join(row.shared_with)}, counted there"
    lines.append("  params: " + _with_share(text, row.params, total_params))
    per_image = out[1:] if len(out) > 1 else out
    outputs = math.prod(per_image) if per_image else 0
    if fan_in and row.macs == batch * outputs * fan_in:
        lines.append(
            f"  MACs:   {_each(batch, per_image, 'outputs', f'{fan_in} MACs', row.macs, 'MACs')}"
        )
    else:
        lines.append(f"  MACs:   {row.macs:,} MACs")
    return lines


def _norm_params(row: LayerRecord) -> str:
    """'2*64 = 128 params (a scale and a shift per channel)' where that is what they are."""
    out = row.output_shapes[0] if row.output_shapes else ()
    same = bool(row.input_shapes) and row.input_shapes[0] == out
    if same and len(out) > 1 and row.params == 2 * out[1]:
        return f"2*{out[1]} = {row.params:,} params (a scale and a shift per channel)"
    return f"{row.params:,} params"


def layer_lines(
    row: LayerRecord,
    batch: int,
    exact_input: tuple[int, ...] | None = None,
    total_params: int = 0,
) -> list[str]:
    """The explanation of one windowed layer (a convolution or a pool)."""
    w = row.window
    assert w is not None
    lines = [_heading(row)]
    if w.is_adaptive:
        kernel = "x".join(map(str, w.kernel))
        lines.append(
            f"  output: adaptive {'x'.join(map(str, w.in_size))} -> "
            f"{'x'.join(map(str, w.out_size))} (windows up to {kernel})"
        )
    elif w.op == "conv_transpose":
        lines.append(f"  output: transposed convolution to {'x'.join(map(str, w.out_size))}")
    else:
        lines += _size_lines(w, exact_input)
    if w.is_conv:
        lines.append("  params: " + _with_share(_conv_params(row, w), row.params, total_params))
        lines.append("  MACs:   " + _conv_macs(row, w, batch))
    else:
        lines.append("  params: 0 (pooling has no parameters)")
        lines.append("  FLOPs:  " + _pool_flops(row, w, batch))
    return lines


def _size_lines(w: Window, exact_input: tuple[int, ...] | None) -> list[str]:
    per_axis = [
        _division(n, k, s, p, d, w.ceil_mode)
        for n, k, s, p, d in zip(w.in_size, w.kernel, w.stride, w.padding, w.dilation, strict=True)
    ]
    exact = all(e for _, e in per_axis)
    note = ""
    if not exact:
        note = " (not exact"
        if exact_input is not None:
            note += f"; input {'x'.join(map(str, exact_input))} makes it exact"
        note += ")"
    if len(set(per_axis)) == 1:
        return [f"  output: {per_axis[0][0]}{note}"]
    axes = "HWD" if len(per_axis) <= 3 else "0123456789"
    labels = axes if len(per_axis) > 1 else "L"
    lines = [f"  output {labels[i]}: {text}" for i, (text, _) in enumerate(per_axis)]
    lines[-1] += note
    return lines


def _division(n: int, k: int, s: int | float, p: int, d: int, ceil_mode: bool) -> tuple[str, bool]:
    """'(227 + 2*0 - 11) / 4 + 1 = 55', and whether the division is exact."""
    s = int(s)
    if d == 1:
        text = f"({n} + 2*{p} - {k}) / {s} + 1"
    else:
        text = f"({n} + 2*{p} - {d}*({k}-1) - 1) / {s} + 1"
    value = Fraction(n + 2 * p - d * (k - 1) - 1, s) + 1
    out = output_size(n, k, s, p, d, ceil_mode)
    if value.denominator == 1:
        return f"{text} = {value}", True
    shown = f"{float(value):g}"
    if ceil_mode:
        rounding = "rounded up (ceil_mode)"
        if out != math.ceil(value):
            rounding = "ceil_mode, less the window that would start in the padding"
    else:
        rounding = "floored"
    return f"{text} = {shown} -> {out}, {rounding}", False


def _product(values: tuple[int, ...]) -> str:
    return "*".join(map(str, values))


def _conv_params(row: LayerRecord, w: Window) -> str:
    groups = w.groups or 1
    per_filter = f"{_product(w.kernel)}*{w.in_channels}" + (f"/{groups}" if groups > 1 else "")
    weights = math.prod(w.kernel) * w.in_channels // groups * w.out_channels
    total = weights + (w.out_channels if w.bias else 0)
    text = (
        f"({per_filter} + 1) * {w.out_channels} = {total:,} params"
        if w.bias
        else f"{per_filter} * {w.out_channels} = {total:,} params (no bias)"
    )
    counted = row.params + row.shared_params
    if counted != total:
        text += f" (the layer has {counted:,})"
    if row.shared_params:
        text += f"; shared with {', '.join(row.shared_with)}, counted there"
    return text


def _conv_macs(row: LayerRecord, w: Window, batch: int) -> str:
    groups = w.groups or 1
    prefix = f"{batch} x " if batch > 1 else ""
    if w.op == "conv_transpose":
        return f"{row.macs:,} MACs"
    outputs = f"{prefix}{_product(w.out_size)}*{w.out_channels} outputs"
    each = f"{_product(w.kernel)}*{w.in_channels}" + (f"/{groups}" if groups > 1 else "")
    macs = batch * math.prod(w.out_size) * w.out_channels * math.prod(w.kernel) * w.in_channels
    macs //= groups
    text = f"{outputs} x {each} MACs each = {macs:,} MACs"
    if macs != row.macs:
        text += f" (the layer counts {row.macs:,})"
    return text


def _pool_flops(row: LayerRecord, w: Window, batch: int) -> str:
    prefix = f"{batch} x " if batch > 1 else ""
    outputs = f"{prefix}{_product(w.out_size)}*{w.out_channels} outputs"
    if w.is_adaptive:
        return f"{row.flops:,} FLOPs (window sums over {outputs})"
    if w.op == "max_pool":
        each = f"({_product(w.kernel)} - 1) comparisons"
        per = math.prod(w.kernel) - 1
    else:
        each = f"{_product(w.kernel)} adds"
        per = math.prod(w.kernel)
    flops = batch * math.prod(w.out_size) * w.out_channels * per
    text = f"{outputs} x {each} each = {flops:,} FLOPs"
    if flops != row.flops:
        text += f" (the layer counts {row.flops:,})"
    return text
