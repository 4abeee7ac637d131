"""Take a network elsewhere: write it as ONNX or TorchScript.

ONNX goes through `torch.onnx.export` with the `torch.export`-based exporter (``dynamo=True``,
which needs `onnxscript`); the older TorchScript-based exporter is deprecated since PyTorch 2.9 and
cannot export an adaptive average pool whose output does not divide its input (VGG at 64x64), so
it is not used. TorchScript goes through `torch.jit.trace`. The exported graph is the eval-mode
forward: logits, no auxiliary heads, dropout off, batch-norm with its running statistics.

Install the exporters with ``pip install 'cnnzoo[export]'``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnzoo.errors import ExportError

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
ONNX_OPSET = 18  # the opset the torch.export-based exporter writes natively (its default)


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
    """

    path: Path
    format: str
    model: str
    input_size: tuple[int, ...]
    dynamic_batch: bool
    nbytes: int

    def usage(self) -> str:
        """A one-line Python example that runs the exported file."""
        shape = ", ".join(map(str, ("1", *self.input_size)))
        if self.format == "onnx":
            return (
                "import numpy as np, onnxruntime as ort; "
                f"s = ort.InferenceSession({str(self.path)!r}); "
                f"logits = s.run(None, {{'input': np.zeros(({shape}), np.float32)}})[0]"
            )
        return (
            f"import torch; m = torch.jit.load({str(self.path)!r}); "
            f"logits = m(torch.zeros({shape}))"
        )

    def describe(self) -> str:
        """Path, size and usage, as the command line prints them."""
        from cnnzoo.analysis.render import nbytes

        batch = "dynamic batch" if self.dynamic_batch else "batch 1"
        size = "x".join(map(str, self.input_size))
        return (
            f"wrote {self.path} ({self.format}, {nbytes(self.nbytes)}, "
            f"input {batch} x {size})\nusage: {self.usage()}"
        )


def resolve(target: nn.Module | str | Path) -> tuple[nn.Module, str, tuple[int, ...] | None]:
    """The module, its name and default input size for what the user named.

    Args:
        target: a module; a registered name; a trained run directory or checkpoint folder
            (loaded with `cnnzoo.train.evaluate.load_trained`); or ``path/to/file.py:factory``.
    """
    from cnnzoo.analysis.loading import load_model
    from cnnzoo.registry import create_model, get_spec, list_models

    if isinstance(target, nn.Module):
        name = getattr(target, "name", None)
        name = name if isinstance(name, str) else type(target).__name__
        size = get_spec(name).input_size if name in list_models() else None
        return target, name, size
    text = str(target)
    if text in list_models():
        return create_model(text), text, tuple(get_spec(text).input_size)
    if Path(text).is_dir():
        from cnnzoo.train.evaluate import load_trained

        trained = load_trained(text)
        return (
            trained.model,
            trained.config.model,
            tuple(get_spec(trained.config.model).input_size),
        )
    loaded = load_model(text)
    if isinstance(loaded, str):
        get_spec(loaded)  # raises the registry's error, with its suggestions
    return resolve(loaded)


def export_model(
    target: nn.Module | str | Path,
    format: str = "onnx",
    *,
    input_size: tuple[int, ...] | None = None,
    dynamic_batch: bool = False,
    out: str | Path | None = None,
) -> Exported:
    """Write a network as ONNX or TorchScript.

    Args:
        target: a registered name, a trained run directory, ``file.py:factory`` or a module.
        format: "onnx" or "torchscript".
        input_size: the example input (C, H, W); defaults to the spec's input size.
        dynamic_batch: leave the batch dimension free (ONNX input and output axis 0 "batch").
        out: the file to write; defaults to ``NAME.onnx`` / ``NAME.pt`` in the working directory.

    Returns:
        The written file's description.

    Raises:
        ExportError: the exporter could not translate the model; the message says why.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    model, name, default_size = resolve(target)
    size = tuple(input_size or default_size or ())
    if not size:
        raise ValueError(f"{name}: input_size is required for a model that is not registered")
    _check_runs(model, name, size)
    path = Path(out) if out is not None else Path(f"{name}{FORMATS[format]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2 if dynamic_batch else 1, *size)
    writer = _write_onnx if format == "onnx" else _write_torchscript
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        writer(model, example, path, dynamic_batch)
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
    return Exported(path, format, name, size, dynamic_batch, path.stat().st_size)


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


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path, dynamic_batch: bool) -> None:
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
    program.save(str(path), external_data=False)


def _write_torchscript(
    model: nn.Module, example: torch.Tensor, path: Path, dynamic_batch: bool
) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        traced = torch.jit.trace(model, example)
    traced.save(str(path))


def _reason(err: BaseException) -> str:
    """The first line of the innermost error: the exporters wrap the real cause in stories."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(err).__name__)
    return f"{type(err).__name__}: {line}"
