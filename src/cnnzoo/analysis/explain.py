"""`--explain`: the lecture's arithmetic, written out for every convolution and pooling layer.

    features.conv1 (Conv2d): 3x227x227 -> 96x55x55
      output: (227 + 2*0 - 11) / 4 + 1 = 55
      params: (11*11*3 + 1) * 96 = 34,944 params
      MACs:   55*55*96 outputs x 11*11*3 MACs each = 105,415,200 MACs

A division that is not exact is flagged with the rounding PyTorch applies, and the report names
the input size that would make it exact.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING

from cnnzoo.analysis.formulas import Window, output_size
from cnnzoo.analysis.records import LayerRecord
from cnnzoo.analysis.render import shape

if TYPE_CHECKING:
    from cnnzoo.analysis.records import Analysis as Report


def explain(report: Report) -> str:
    """The arithmetic of every conv and pool layer of `report`, then the exact input sizes."""
    rows = [r for r in report.all_layers if r.window is not None]
    exact, overall = report.exact_inputs() if report.exact is not None else ({}, None)
    size = "x".join(map(str, report.input_size))
    lines = [
        f"{report.model}: input {report.batch_size} x {size}, arithmetic per conv and pool layer"
    ]
    for row in rows:
        lines += ["", *layer_lines(row, report.batch_size, exact.get(row.name))]
    if not rows:
        lines.append("(no convolution or pooling layers)")
    flagged = [r.name for r in rows if r.inexact]
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
    if report.failure is not None:
        lines += ["", f"FAILED at {report.failure.layer}: {report.failure.message}"]
        if report.failure.hint:
            lines.append(f"Hint: {report.failure.hint}")
    return "\n".join(lines)


def layer_lines(
    row: LayerRecord, batch: int, exact_input: tuple[int, ...] | None = None
) -> list[str]:
    """The explanation of one windowed layer."""
    w = row.window
    assert w is not None
    ins = "; ".join(shape(s) for s in row.input_shapes) or "?"
    outs = "; ".join(shape(s) for s in row.output_shapes) or "?"
    lines = [f"{row.name} ({row.type}): {ins} -> {outs}"]
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
        lines.append("  params: " + _conv_params(row, w))
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
