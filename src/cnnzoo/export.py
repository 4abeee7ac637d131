"""Take a network elsewhere: write it as ONNX or TorchScript.

ONNX goes through `torch.onnx.export` with the `torch.export`-based exporter (``dynamo=True``,
which needs `onnxscript`); the older TorchScript-based exporter is deprecated since PyTorch 2.9 and
cannot export an adaptive average pool whose output does not divide its input (VGG at 64x64), so
it is not used. TorchScript goes through `torch.jit.trace`. The exported graph is the eval-mode
forward: logits, no auxiliary heads, dropout off, batch-norm with its running statistics.

Each file carries what a user needs to feed it (`Exported.metadata`: the model, input size,
channel order, mean and std, class names and where the weights came from), as ONNX
`metadata_props` and as a TorchScript extra file `cnnzoo.json`; `read_metadata` reads it back.

Install the exporters with ``pip install 'cnnzoo[export]'``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnzoo._version import __version__
from cnnzoo.errors import ExportError
from cnnzoo.fileio import atomic_write
from cnnzoo.resolve import RANDOM_INIT, Target, resolve

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
# The file extensions each format is written under; --out's extension chooses the format.
EXTENSIONS = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript"}
ONNX_OPSET = 18  # the opset the torch.export-based exporter writes natively (its default)
METADATA_FILE = "cnnzoo.json"  # the TorchScript extra file holding `Exported.metadata`


@dataclass(frozen=True)
class Preprocessing:
    """What an image must go through before the exported model sees it (as `cnnzoo predict`
    and training prepare it): pixels / 255, resized to the input size, then (x - mean) / std.

    Attributes:
        channel_order: "RGB" or "grayscale" (Pillow's "L"); NCHW layout.
        mean, std: per channel, in [0, 1] pixel units; 0 and 1 when the model was not trained
            here (nothing known to normalize with).
        classes: the class names in output order; None when unknown (not trained here).
    """

    channel_order: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...] | None

    def describe(self) -> str:
        mean = ", ".join(f"{v:.3f}" for v in self.mean)
        std = ", ".join(f"{v:.3f}" for v in self.std)
        return (
            f"{self.channel_order} pixels / 255, resized to the input size, "
            f"then (x - mean) / std with mean ({mean}), std ({std})"
        )


@dataclass(frozen=True)
class Exported:
    """A written model file.

    Attributes:
        path: the file.
        format: "onnx" or "torchscript".
        model: the registered name (or the module's class name).
        input_size: the example input (C, H, W) it was traced with.
        dynamic_batch: whether the batch dimension is free (ONNX; TorchScript traces of the zoo's
            models do not fix it).
        nbytes: size of the file.
        weights: where the weights came from (a run and checkpoint, or "random initialization").
        preprocessing: what an image goes through first.
    """

    path: Path
    format: str
    model: str
    input_size: tuple[int, ...]
    dynamic_batch: bool
    nbytes: int
    weights: str = RANDOM_INIT
    preprocessing: Preprocessing | None = None

    def usage(self) -> str:
        """A short Python example that prepares an image and runs the exported file."""
        pre = self.preprocessing or _identity(self.input_size)
        c, h, w = (*self.input_size, 1, 1)[:3]
        mode = "L" if pre.channel_order == "grayscale" else "RGB"
        load = (
            f"x = np.asarray(Image.open(FILE).convert({mode!r}).resize(({w}, {h})), np.float32)"
            " / 255; "
            + ("x = x[None, None]; " if mode == "L" else "x = x.transpose(2, 0, 1)[None]; ")
            + f"m = np.array([{_numbers(pre.mean)}], np.float32).reshape(1, {c}, 1, 1); "
            + f"s = np.array([{_numbers(pre.std)}], np.float32).reshape(1, {c}, 1, 1); "
            + "x = (x - m) / s"
        )
        if self.format == "onnx":
            return (
                f"import numpy as np, onnxruntime as ort; from PIL import Image; {load}; "
                f"logits = ort.InferenceSession({str(self.path)!r}).run(None, {{'input': x}})[0]"
            )
        return (
            f"import numpy as np, torch; from PIL import Image; {load}; "
            f"logits = torch.jit.load({str(self.path)!r})(torch.from_numpy(x))"
        )

    @property
    def metadata(self) -> dict[str, str]:
        """What the file carries besides the graph (ONNX `metadata_props`, TorchScript's
        `cnnzoo.json` extra file): every value a string, lists and numbers as JSON."""
        pre = self.preprocessing or _identity(self.input_size)
        return {
            "cnnzoo.model": self.model,
            "cnnzoo.input_size": "x".join(map(str, self.input_size)),
            "cnnzoo.layout": "NCHW",
            "cnnzoo.channel_order": pre.channel_order,
            "cnnzoo.pixel_scale": "1/255",
            "cnnzoo.mean": json.dumps(list(pre.mean)),
            "cnnzoo.std": json.dumps(list(pre.std)),
            "cnnzoo.classes": json.dumps(None if pre.classes is None else list(pre.classes)),
            "cnnzoo.weights": self.weights,
            "cnnzoo.version": __version__,
        }

    def describe(self) -> str:
        """Path, size, weights, preprocessing and usage, as the command line prints them."""
        from cnnzoo.formatting import format_bytes

        batch = "dynamic batch" if self.dynamic_batch else "batch 1"
        size = "x".join(map(str, self.input_size))
        pre = self.preprocessing or _identity(self.input_size)
        return (
            f"wrote {self.path} ({self.format}, {format_bytes(self.nbytes)}, "
            f"input {batch} x {size})\nweights: {self.weights}\n"
            f"preprocessing: {pre.describe()}\nusage: {self.usage()}"
        )


def _numbers(values: tuple[float, ...]) -> str:
    return ", ".join(f"{v:.4g}" for v in values)


def _identity(input_size: tuple[int, ...]) -> Preprocessing:
    channels = input_size[0] if input_size else 3
    return Preprocessing(
        "grayscale" if channels == 1 else "RGB", (0.0,) * channels, (1.0,) * channels, None
    )


def _preprocessing(target: Target, size: tuple[int, ...]) -> Preprocessing:
    """The trained run's normalization and classes; the identity for anything else."""
    if target.trained is None:
        return _identity(size)
    from cnnzoo.data.transforms import adapt_stats

    data, channels = target.trained.data, size[0]
    return Preprocessing(
        "grayscale" if channels == 1 else "RGB",
        tuple(float(v) for v in adapt_stats(data.mean, channels, data.name)),
        tuple(float(v) for v in adapt_stats(data.std, channels, data.name)),
        tuple(data.classes),
    )


def choose_format(format: str | None, out: str | Path | None) -> str:
    """The format that --format and --out's extension ask for; they must agree.

    Raises:
        ExportError: an unknown format or extension, or the two disagree (an ONNX file named .pt).
    """
    if format is not None and format not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    suffix = Path(out).suffix.lower() if out is not None else ""
    if out is not None and suffix not in EXTENSIONS:
        raise ExportError(
            f"cannot tell the format from {str(out)!r}: name the file .onnx (ONNX) or "
            ".pt / .ts (TorchScript)"
        )
    implied = EXTENSIONS.get(suffix)
    if format is not None and implied is not None and implied != format:
        raise ExportError(
            f"--out {out} names a {implied} file but --format is {format}; use a "
            f"{FORMATS[format]} name or drop --format (the extension chooses it)"
        )
    return format or implied or "onnx"


def export_model(
    target: nn.Module | str | Path | Target,
    format: str | None = None,
    *,
    input_size: tuple[int, ...] | None = None,
    dynamic_batch: bool = False,
    out: str | Path | None = None,
) -> Exported:
    """Write a network as ONNX or TorchScript, with its preprocessing in the file.

    Args:
        target: a registered name, a trained run directory, ``file.py:factory``, a module, or
            what `cnnzoo.resolve.resolve` made of one of these.
        format: "onnx" or "torchscript"; None takes it from `out`'s extension (.onnx, .pt,
            .ts), else ONNX.
        input_size: the example input (C, H, W); defaults to the spec's input size.
        dynamic_batch: leave the batch dimension free (ONNX input and output axis 0 "batch").
        out: the file to write; defaults to ``NAME.onnx`` / ``NAME.pt`` in the working directory.

    Returns:
        The written file's description. A registered name is exported with random weights
        (`Exported.weights` says "random initialization"); a run directory with its checkpoint.

    Raises:
        ExportError: the format and `out` disagree, or the exporter could not translate the
            model; the message says why. Nothing is left at `out` after an error.
    """
    format = choose_format(format, out)
    target_info = target if isinstance(target, Target) else resolve(target)
    model, name = target_info.build(), target_info.name
    size = tuple(input_size or target_info.input_size or ())
    if not size:
        raise ExportError(f"{name}: input_size is required for a model that is not registered")
    _check_runs(model, name, size)
    path = Path(out) if out is not None else Path(f"{name}{FORMATS[format]}")
    exported = Exported(
        path, format, name, size, dynamic_batch, 0, target_info.weights,
        _preprocessing(target_info, size),
    )  # fmt: skip
    example = torch.zeros(2 if dynamic_batch else 1, *size)
    writer = _write_onnx if format == "onnx" else _write_torchscript
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        data = writer(model, example, dynamic_batch, exported.metadata)
    except ImportError as err:
        raise ExportError(
            f"{name}: the {format} exporter needs {err.name or err}; "
            "install it with pip install 'cnnzoo[export]'"
        ) from err
    except Exception as err:
        raise ExportError(f"{name} cannot be exported to {format}: {_reason(err)}") from err
    finally:
        for m, training in modes:
            m.training = training
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)
    return dataclasses.replace(exported, nbytes=path.stat().st_size)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The cnnzoo metadata an exported file carries (see `Exported.metadata`)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        import onnx

        return {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    extra = {METADATA_FILE: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        torch.jit.load(str(path), _extra_files=extra)
    return json.loads(extra[METADATA_FILE])


def _check_runs(model: nn.Module, name: str, size: tuple[int, ...]) -> None:
    """Say which layer fails at this input, and the smallest input that passes (the analyzer's
    shape-only pass), before the exporter fails with a longer story."""
    from cnnzoo.analysis import summary

    failure = summary(model, size).failure
    if failure is not None:
        hint = f"; {failure.hint}" if failure.hint else ""
        raise ExportError(
            f"{name} does not run at input {'x'.join(map(str, size))}: {failure.layer} "
            f"({failure.type}): {failure.message}{hint}"
        )


def _write_onnx(
    model: nn.Module, example: torch.Tensor, dynamic_batch: bool, metadata: dict[str, str]
) -> bytes:
    import onnxscript  # noqa: F401  (the exporter needs it; fail early with its name)

    dynamic = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    # The exporter reports its progress on stdout, prints graphs on stderr, and warns and logs
    # about its own internals; what matters reaches the user as the error's reason.
    log = logging.getLogger("torch")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                (example,),
                input_names=["input"],
                output_names=["logits"],
                opset_version=ONNX_OPSET,
                dynamic_shapes=dynamic,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    finally:
        log.setLevel(level)
    proto = program.model_proto
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def _write_torchscript(
    model: nn.Module, example: torch.Tensor, dynamic_batch: bool, metadata: dict[str, str]
) -> bytes:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        traced = torch.jit.trace(model, example)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={METADATA_FILE: json.dumps(metadata)})
    return buffer.getvalue()


def _reason(err: BaseException) -> str:
    """The first line of the innermost error: the exporters wrap the real cause in stories."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(err).__name__)
    return f"{type(err).__name__}: {line}"
