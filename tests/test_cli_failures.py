"""Every bad flag, name and path of every command, through the real command line: the exit
status, the message, and that nothing the command made is left behind. docs/failures.md's
"Command line" table lists these cases with their messages.

All cases run in one child process (`python -c` calling `cnnzoo.cli.main` once per case with
its own argv, so a torch import is paid once); `test_real_processes` runs a few of them as
`python -m cnnzoo` and `cnnzoo` processes of their own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cnnzoo

# Without Graphviz's `dot` a drawing says what to install; with it, the drawing is written.
NO_DOT = shutil.which("dot") is None
DRAW = (
    (2, "drawing needs the Graphviz program `dot`, which is not installed here")
    if NO_DOT
    else (0, "wrote {tmp}/g.svg")
)
CUDA_MESSAGE = (
    "there is no cuda:99 here"
    if torch.cuda.is_available()
    else "no CUDA device here; use --device cpu"
)

# id, argv ({tmp} is the test's folder: it holds a file `file.txt`, an image `image.png` and an
# empty folder `empty`), exit status, what stderr (or stdout) must say, paths that must not exist
# afterwards.
CASES: list[tuple[str, list[str], int, str, list[str]]] = [
    ("version", ["--version"], 0, f"cnnzoo {cnnzoo.__version__}", []),
    ("misspelled-command", ["lsit"], 2, "invalid choice: 'lsit'", []),
    ("usage-error-two-lines", ["bench", "lenet5", "--batch", "0"], 2,
     "Run `cnnzoo bench -h` for help.", []),
    # list / info
    ("list-no-match", ["list", "nothing_like_it"], 1, "no model matches 'nothing_like_it'", []),
    ("list-bad-format", ["list", "--format", "yaml"], 2, "invalid choice: 'yaml'", []),
    ("info-unknown", ["info", "resnet5"], 2,
     "cnnzoo info: unknown model 'resnet5'. Did you mean: resnet50", []),
    # bench and compare
    ("bench-batch-negative", ["bench", "lenet5", "--batch", "-1"], 2,
     "argument --batch: must be 1 or more, got -1", []),
    ("bench-batch-zero", ["bench", "lenet5", "--batch", "0"], 2,
     "argument --batch: must be 1 or more, got 0", []),
    ("bench-batch-not-a-number", ["bench", "lenet5", "--batch", "1,x"], 2,
     "argument --batch: expected a whole number, got 'x' (in '1,x')", []),
    ("bench-repeat-zero", ["bench", "lenet5", "--repeat", "0"], 2,
     "argument --repeat: must be 1 or more, got 0", []),
    ("bench-warmup-negative", ["bench", "lenet5", "--warmup", "-1"], 2,
     "argument --warmup: must be 0 or more, got -1", []),
    ("bench-device-cuda", ["bench", "lenet5", "--device", "cuda:99"], 2, CUDA_MESSAGE, []),
    ("bench-device-unknown", ["bench", "lenet5", "--device", "gpu"], 2,
     "argument --device: expected cpu, cuda or cuda:N, got 'gpu'", []),
    ("bench-input-hw", ["bench", "lenet5", "--input", "32x32"], 2,
     "argument --input: give one input as CxHxW (channels x height x width, each a positive "
     "whole number), e.g. 3x32x32; got '32x32'", []),
    ("bench-unknown-model", ["bench", "lenet55", "--repeat", "1"], 2,
     "unknown model 'lenet55'. Did you mean: lenet5", []),
    ("compare-batch-zero", ["compare", "lenet5", "--batch", "0"], 2,
     "argument --batch: must be 1 or more, got 0", []),
    ("compare-throughput-batch-zero", ["compare", "lenet5", "--throughput-batch", "0"], 2,
     "argument --throughput-batch: must be 1 or more, got 0", []),
    ("compare-repeat-zero", ["compare", "lenet5", "--repeat", "0"], 2,
     "argument --repeat: must be 1 or more, got 0", []),
    ("compare-no-match", ["compare", "nothing*"], 2, "no model matches 'nothing*'", []),
    # summary (its flags are the analyzer's; what it names goes through cnnzoo.resolve)
    ("summary-input-hw", ["summary", "lenet5", "--input", "224x224"], 2,
     "give one input as CxHxW (channels x height x width, each a positive whole number), "
     "e.g. 3x224x224; got '224x224'", []),
    ("summary-fit-bad", ["summary", "lenet5", "--fit", "lots"], 2,
     "memory size must look like 8GiB or 512MB, got 'lots'", []),
    ("summary-missing-file", ["summary", "{tmp}/nope.py:make"], 2,
     "no such file: {tmp}/nope.py", []),
    ("draw-missing-folder", ["draw", "{tmp}/no_run"], 2,
     "{tmp}/no_run is not a run directory (no such folder) nor path/to/file.py:factory", []),
    ("draw-folder-without-run", ["draw", "{tmp}/empty"], 2,
     "{tmp}/empty is neither a run directory (config.json) nor a checkpoint (meta.json)", []),
    # draw
    ("draw-depth-negative", ["draw", "lenet5", "--depth", "-1"], 2,
     "argument --depth: must be 0 or more, got -1", []),
    ("draw-out-extension", ["draw", "lenet5", "--out", "{tmp}/d.txt"], 2,
     "--out names the diagram's file: .svg, .png or .pdf, not 'd.txt'", ["{tmp}/d.txt"]),
    ("draw-out-in-a-file", ["draw", "lenet5", "--out", "{tmp}/file.txt/d.svg"], 2,
     "cannot write {tmp}/file.txt/d.svg: {tmp}/file.txt is a file, not a folder", []),
    ("draw-graphviz", ["draw", "lenet5", "--out", "{tmp}/g.svg"], *DRAW,
     ["{tmp}/g.svg"] if NO_DOT else []),
    ("draw-unknown", ["draw", "resnet5", "--out", "{tmp}/d.svg"], 2,
     "unknown model 'resnet5'", ["{tmp}/d.svg"]),
    # report
    ("report-unknown-leaves-no-folder", ["report", "resnet5", "--out", "{tmp}/report"], 2,
     "unknown model 'resnet5'. Did you mean: resnet50", ["{tmp}/report"]),
    ("report-default-folder-not-made", ["report", "resnet5"], 2, "unknown model 'resnet5'",
     ["report"]),
    ("report-neither", ["report"], 2, "name one MODEL, or give --all", []),
    ("report-out-is-a-file", ["report", "lenet5", "--out", "{tmp}/file.txt"], 2,
     "argument --out: {tmp}/file.txt is a file, not a folder", []),
    ("report-run-folder", ["report", "{tmp}/empty"], 2,
     "is neither a run directory (config.json) nor a checkpoint (meta.json)", []),
    # export
    ("export-format-mismatch", ["export", "lenet5", "--out", "{tmp}/r.pt", "--format", "onnx"],
     2, "--out {tmp}/r.pt names a torchscript file but --format is onnx", ["{tmp}/r.pt"]),
    ("export-unknown-extension", ["export", "lenet5", "--out", "{tmp}/r.bin"], 2,
     "cannot tell the format from '{tmp}/r.bin': name the file .onnx (ONNX) or .pt / .ts",
     ["{tmp}/r.bin"]),
    ("export-too-small", ["export", "lenet5", "--input", "1x2x2", "--out", "{tmp}/s.pt"], 2,
     "lenet5 does not run at input 1x2x2", ["{tmp}/s.pt"]),
    ("export-input-hw", ["export", "lenet5", "--input", "32x32"], 2,
     "argument --input: give one input as CxHxW", []),
    ("export-out-is-a-folder", ["export", "lenet5", "--out", "{tmp}/empty"], 2,
     "argument --out: {tmp}/empty is a folder; name the file to write", []),
    ("export-unknown", ["export", "resnet5", "--out", "{tmp}/u.onnx"], 2,
     "unknown model 'resnet5'", ["{tmp}/u.onnx"]),
    # predict and evaluate
    ("predict-no-run", ["predict", "{tmp}/no_run", "{tmp}/image.png"], 2,
     "argument checkpoint: {tmp}/no_run does not exist (no such folder)", []),
    ("predict-no-image", ["predict", "{tmp}/empty", "{tmp}/missing.png"], 2,
     "argument images: no such file: {tmp}/missing.png", []),
    ("predict-top-zero", ["predict", "{tmp}/empty", "{tmp}/image.png", "--top", "0"], 2,
     "argument --top: must be 1 or more, got 0", []),
    ("predict-not-a-run", ["predict", "{tmp}/empty", "{tmp}/image.png"], 2,
     "{tmp}/empty is neither a run directory (config.json) nor a checkpoint (meta.json)", []),
    ("evaluate-not-a-run", ["evaluate", "{tmp}/empty"], 2,
     "{tmp}/empty is neither a run directory (config.json) nor a checkpoint (meta.json)", []),
    # train and experiment
    ("train-no-model", ["train"], 2, "name a MODEL to train, or --resume RUN_DIR", []),
    ("train-model-opt", ["train", "lenet5", "--model-opt", "foo"], 2,
     "--model-opt takes KEY=VALUE, got 'foo'", []),
    ("train-milestones", ["train", "lenet5", "--milestones", "0.5,x"], 2,
     "argument --milestones: expected comma-separated numbers such as 0.5,0.25, got '0.5,x'",
     []),
    ("train-batch-over-data", ["train", "lenet5", "--data", "synthetic:8", "--out", "{tmp}/run"],
     2, "batch size 32 is larger than the 8 training images of synthetic; lower --batch-size",
     ["{tmp}/run"]),
    ("experiment-unknown", ["experiment", "degradaton"], 2,
     "unknown experiment 'degradaton'. Did you mean: degradation?", []),
    ("experiment-reuse-missing", ["experiment", "construction", "--reuse", "{tmp}/no_runs"], 2,
     "argument --reuse: {tmp}/no_runs does not exist (no such folder)", []),
    ("experiment-from-elsewhere", ["experiment", "degradation", "--from", "{tmp}/empty",
     "--out", "{tmp}/x"], 2, "--from applies to the construction experiment, not degradation",
     ["{tmp}/x"]),
]  # fmt: skip

DRIVER = r"""
import contextlib, io, json, sys
from cnnzoo.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code
    results.append({"code": code, "out": out.getvalue(), "err": err.getvalue()})
print(json.dumps(results))
"""


def _env() -> dict[str, str]:
    src = str(Path(cnnzoo.__file__).parent.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "file.txt").write_text("not a folder")
    (tmp / "empty").mkdir()
    Image.new("L", (8, 8)).save(tmp / "image.png")
    return tmp


def _fill(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp))


@pytest.fixture(scope="module")
def results(workdir: Path) -> dict[str, dict]:
    argvs = [[_fill(a, workdir) for a in argv] for _, argv, *_ in CASES]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(argvs)],
        cwd=workdir, env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(zip([c[0] for c in CASES], json.loads(done.stdout), strict=True))


@pytest.mark.parametrize(
    ("case", "argv", "code", "message", "absent"), CASES, ids=[c[0] for c in CASES]
)
def test_case(results, workdir, case, argv, code, message, absent) -> None:
    got = results[case]
    said = got["err"] + got["out"]
    assert got["code"] == code, said
    assert _fill(message, workdir) in said
    assert "Traceback" not in said  # a user's mistake is never shown as a crash
    assert "_int_list" not in said and "_float_list" not in said and "positive_int" not in said
    if code == 2 and not said.startswith("usage:"):
        assert len(got["err"].strip().splitlines()) <= 2, got["err"]  # one or two lines
    for path in absent:
        where = Path(_fill(path, workdir))
        assert not (where if where.is_absolute() else workdir / where).exists(), path


def test_real_processes(workdir: Path) -> None:
    """The same answers from real processes: `python -m cnnzoo` (as torchrun -m runs it) and
    the installed console script, with their real exit statuses."""
    exe = Path(sys.executable).parent / "cnnzoo"
    runs = {
        "module": [sys.executable, "-m", "cnnzoo", "bench", "lenet5", "--batch", "0"],
        "script": [str(exe), "report", "resnet5", "--out", str(workdir / "r2")],
        "version": [sys.executable, "-m", "cnnzoo", "--version"],
    }
    done = {
        k: subprocess.run(v, cwd=workdir, env=_env(), capture_output=True, text=True, timeout=300)
        for k, v in runs.items()
    }
    assert done["module"].returncode == 2
    assert "argument --batch: must be 1 or more, got 0" in done["module"].stderr
    assert done["script"].returncode == 2 and not (workdir / "r2").exists()
    assert "cnnzoo report: unknown model 'resnet5'" in done["script"].stderr
    assert done["version"].returncode == 0
    assert done["version"].stdout.strip() == f"cnnzoo {cnnzoo.__version__}"


def test_a_bug_shows_its_traceback_and_where_to_report_it(workdir: Path) -> None:
    """Anything that is not a cnnzoo error is a bug: traceback, one line saying so, exit 70."""
    code = (
        "import sys, cnnzoo.zoo as z\n"
        "def broken(name): return {}[name]  # a KeyError deep in the library: a bug\n"
        "z.describe = broken\n"
        "from cnnzoo.cli import main\n"
        "sys.exit(main(['info', 'lenet5']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, env=_env(), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 70
    assert (
        "Traceback (most recent call last)" in done.stderr and "KeyError: 'lenet5'" in done.stderr
    )
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("cnnzoo info: this is a bug in cnnzoo, not a mistake in your command")
    assert "issue tracker" in last
