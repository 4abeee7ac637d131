"""Which inputs a network accepts, found by tracing it on meta tensors at other sizes.

Two questions, both about square inputs (C, s, s) with the channels given:

- `smallest_input`: the network rejected the input. Which is the smallest that passes? Being
  too small (a window larger than its padded input) is monotone in s, so galloping (1, 2, 4, ...)
  and then bisection find the first size at which no window is too small, with no ceiling. A
  network whose classifier expects one exact feature size (the paper's AlexNet: FC6 takes
  256x6x6) still fails there; its passing sizes form a run one effective stride long (AlexNet:
  227 to 258), which a scan in steps of that stride cannot jump over, and bisection then finds
  both ends. Only a time bound stops the search, and a stopped search says so: it never claims
  that no input passes.
- `exact_inputs`: which input makes every rounded output-size division exact? A scan of inputs
  grown by 1, 2, ... pixels.

Each probe is one meta trace, so its time does not depend on s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch
from torch import nn

from cnnzoo.analysis.records import ExactInputs, Failure
from cnnzoo.analysis.trace import TraceResult, trace

# The default time bound of `smallest_input`, in seconds. The search takes well under a second
# on the registered networks on an idle machine (paper AlexNet: 64 traces); the bound only stops
# a search that cannot succeed (a network that needs a non-square input, say), and leaves room for
# a machine under load, where the old 5-second bound cut AlexNet's search short.
SEARCH_SECONDS = 30.0
# How far `exact_inputs` grows the input, in pixels per spatial axis.
EXACT_SEARCH = 64


class _OutOfTime(Exception):
    """The time bound passed before the search finished."""


def _size(text: Sequence[int]) -> str:
    return "x".join(map(str, text))


class _Prober:
    """Traces the model at square sizes, once per size, until the deadline."""

    def __init__(
        self,
        model: nn.Module,
        channels: int,
        axes: int,
        dtype: torch.dtype,
        real: bool,
        seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.model, self.channels, self.axes = model, channels, axes
        self.dtype, self.real = dtype, real
        self.clock = clock
        self.deadline = clock() + seconds
        self.results: dict[int, TraceResult] = {}
        self.largest_tried = 0

    def size(self, s: int) -> tuple[int, ...]:
        return (self.channels, *(s for _ in range(self.axes)))

    def __call__(self, s: int) -> TraceResult:
        if s not in self.results:
            if self.clock() > self.deadline:
                raise _OutOfTime
            self.results[s] = trace(self.model, (1, *self.size(s)), self.dtype, real=self.real)
            self.largest_tried = max(self.largest_tried, s)
        return self.results[s]

    def passes(self, s: int) -> bool:
        return self(s).failure is None

    def too_small(self, s: int) -> bool:
        failure = self(s).failure
        return failure is not None and failure.kind == "input too small"


def _first(predicate: Callable[[int], bool], lo: int, hi: int) -> int:
    """The smallest s in (lo, hi] with predicate(s), given not predicate(lo) (or lo below the
    domain) and predicate(hi), for a predicate monotone on [lo, hi]."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if predicate(mid) else (mid, hi)
    return hi


def _stride(result: TraceResult) -> int:
    """The largest effective stride of the layers that ran: one step of it moves every later
    feature map by at most one position."""
    jumps = [j for r in result.rows if r.rf is not None for j in r.rf.jump]
    return max(1, *(round(j) for j in jumps)) if jumps else 1


def smallest_input(
    model: nn.Module,
    failure: Failure,
    input_size: tuple[int, ...],
    *,
    dtype: torch.dtype = torch.float32,
    real: bool = False,
    seconds: float = SEARCH_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Failure:
    """`failure` with the smallest square input that passes, and a hint saying what was found.

    Args:
        model: the network that rejected `input_size`.
        failure: its failure at `input_size` ("input too small" or "shape mismatch").
        input_size: the rejected input (C, *spatial); the channels are kept.
        dtype: the dtype of the traces.
        real: trace with real tensors (the fallback for networks meta tensors cannot run).
        seconds: the time bound of the whole search.
        clock: the clock the bound is measured on (tests pass a fake one).

    Returns:
        The failure with `smallest_input`, `largest_input` (when a larger size fails again)
        and `hint` filled in.
    """
    failure = replace(failure, smallest_input=None, largest_input=None, hint="")
    channels, *spatial = input_size
    if not spatial:
        return failure
    probe = _Prober(model, channels, len(spatial), dtype, real, seconds, clock)
    smallest: int | None = None
    try:
        # Gallop to a size that is not too small, then bisect for the first such size.
        hi = 1
        while probe.too_small(hi):
            hi *= 2
        lo = _first(lambda s: not probe.too_small(s), hi // 2, hi) if hi > 1 else 1
        if probe.passes(lo):
            return replace(
                failure,
                smallest_input=probe.size(lo),
                hint=f"the smallest input that passes is {_size(probe.size(lo))}",
            )
        stride = _stride(probe(lo))
        reason = _not_a_size(probe, lo, 2 * lo + stride)
        if reason:
            return replace(failure, hint=reason)
        smallest = _smallest_passing(probe, lo, stride)
        largest = _largest_passing(probe, smallest)
    except _OutOfTime:
        if smallest is None:
            return replace(
                failure,
                hint=f"the search for an input that passes was cut short by its {seconds:g} s "
                f"time bound after trying sizes up to {_size(probe.size(probe.largest_tried))}; "
                "it did not find one, and a larger input may still pass",
            )
        return replace(
            failure,
            smallest_input=probe.size(smallest),
            hint=f"the smallest input that passes is {_size(probe.size(smallest))} (the search "
            f"for larger ones was cut short by its {seconds:g} s time bound)",
        )
    return replace(
        failure,
        smallest_input=probe.size(smallest),
        largest_input=probe.size(largest[0]) if largest is not None else None,
        hint=_hint(probe, smallest, largest),
    )


def _not_a_size(probe: _Prober, lo: int, far: int) -> str:
    """Why no size can help, when the failure does not depend on the size: the first layer
    rejects the input (a channel count), or two sizes far apart fail alike (a dtype)."""
    near = probe(lo).failure
    assert near is not None
    if not probe(lo).rows:
        return (
            f"no size helps: at {_size(probe.size(lo))} too, the first layer ({near.layer}) "
            f"rejects the input: {near.message}"
        )
    other = probe(far).failure
    if other is not None and (other.layer, other.message) == (near.layer, near.message):
        return (
            f"no size helps: at {_size(probe.size(lo))} and {_size(probe.size(far))} alike, "
            f"{near.layer} fails: {near.message}"
        )
    return ""


def _smallest_passing(probe: _Prober, lo: int, stride: int) -> int:
    """The smallest passing size above `lo` (which fails, but not for being too small).

    One stride's worth of sizes one by one (a network that needs the size divisible by
    something), then steps of one stride (a network that needs one exact feature size: its
    passing run is at least a stride long, so a step cannot jump over it), then bisection back.
    """
    for s in range(lo + 1, lo + stride):
        if probe.passes(s):
            return s
    s = lo
    while True:
        s += stride
        if probe.passes(s):
            return _first(probe.passes, s - stride, s)


def _largest_passing(probe: _Prober, smallest: int) -> tuple[int, Failure] | None:
    """The end of the run of passing sizes from `smallest`, with the failure just past it; None
    when every size tried up to twice `smallest` passes."""
    step = 1
    while probe.passes(smallest + step):
        if step > smallest:
            return None
        step *= 2
    end = _first(lambda s: not probe.passes(s), smallest + step // 2, smallest + step) - 1
    after = probe(end + 1).failure
    assert after is not None
    return end, after


def _hint(probe: _Prober, smallest: int, largest: tuple[int, Failure] | None) -> str:
    text = f"the smallest input that passes is {_size(probe.size(smallest))}"
    if largest is None:
        return text
    end, after = largest
    # Two far sizes besides those probed on the way: do the larger sizes fail too?
    try:
        for s in (2 * end, 4 * end):
            probe(s)
    except _OutOfTime:
        pass
    again = sorted(s for s, r in probe.results.items() if s > end and r.failure is None)
    tried = _size(probe.size(probe.largest_tried))
    run = f"{_size(probe.size(smallest))} to {_size(probe.size(end))} pass"
    fails = f"{_size(probe.size(end + 1))} fails again at {after.layer} ({after.message})"
    if again:
        return f"{text}; {run}, {fails}, but {_size(probe.size(again[0]))} passes again"
    return f"{text}; of the sizes tried (up to {tried}), only {run}: {fails}"


def exact_inputs(
    model: nn.Module,
    input_size: tuple[int, ...],
    flagged: Sequence[str],
    *,
    dtype: torch.dtype = torch.float32,
    real: bool = False,
    grow: int = EXACT_SEARCH,
) -> ExactInputs:
    """Input sizes that make the rounded output-size divisions of `flagged` layers exact.

    Re-traces the network at inputs grown by 1, 2, ... pixels per spatial axis (up to `grow`).
    """
    found: dict[str, tuple[int, ...]] = {}
    overall: tuple[int, ...] | None = None
    wanted = set(flagged)
    channels, *spatial = input_size
    for step in range(1, grow + 1) if wanted else ():
        size = (channels, *(s + step for s in spatial))
        result = trace(model, (1, *size), dtype, real=real)
        for row in result.rows:
            if row.name in wanted and row.name not in found and not row.inexact:
                found[row.name] = size
        if overall is None and result.failure is None and not any(r.inexact for r in result.rows):
            overall = size
        if overall is not None and len(found) == len(wanted):
            break
    return ExactInputs(layers=tuple(found.items()), overall=overall, searched=grow)
