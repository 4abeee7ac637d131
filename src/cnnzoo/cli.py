"""The `cnnzoo` command. Thin: parses arguments and calls the library.

Exit status: 0 done; 1 the command ran but found nothing or a failure it reports (`list` with no
match, `summary` of a model that fails at its input), or the system refused (a disk or permission
error); 2 a usage error (a bad flag or name, bad data, a checkpoint or run folder that cannot be
used: any `cnnzoo.errors.CnnzooError`), printed as one or two lines; 130 interrupted; 70
(`EX_SOFTWARE`) a bug in cnnzoo, printed with its traceback and where to report it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import shutil
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

from cnnzoo import cliargs
from cnnzoo._version import __version__
from cnnzoo.errors import CnnzooError, UsageError

EXIT_USAGE = 2
EXIT_BUG = 70  # sysexits.h EX_SOFTWARE: an internal software error
BUG_REPORT = (
    "this is a bug in cnnzoo, not a mistake in your command. Please report it on the cnnzoo "
    "issue tracker (the project's GitHub issues) with the command line and the traceback above; "
    f"cnnzoo {__version__}"
)


@contextlib.contextmanager
def _removed_on_failure(path: str | Path | None) -> Iterator[None]:
    """Remove what a command created at `path` (a file or a folder) if it fails; anything that
    was there before is left as it was."""
    target = Path(path) if path is not None else None
    existed = target is None or target.exists() or target.is_symlink()
    try:
        yield
    except BaseException:
        if not existed and target is not None:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        raise


def _cmd_list(args: argparse.Namespace) -> int:
    from cnnzoo import zoo
    from cnnzoo.registry import list_models
    from cnnzoo.suggest import did_you_mean

    rows = zoo.zoo_rows(args.pattern)
    if not rows:
        hint = did_you_mean(args.pattern, list_models())
        print(
            f"no model matches {args.pattern!r}.{' ' + hint if hint else ''} "
            "Run `cnnzoo list` to see all.",
            file=sys.stderr,
        )
        return 1
    print(zoo.render_rows(rows, args.format))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from cnnzoo import zoo

    print(zoo.describe(args.name))
    return 0


def _train_overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig fields given on the command line (None: not given)."""
    from cnnzoo.train.config import field_names

    values = {name: getattr(args, name, None) for name in field_names()}
    values["model_options"] = tuple(_parse_option(o) for o in args.model_opt) or None
    for name in ("model", "data", "recipe", "notes"):
        values.pop(name, None)
    return values


def _parse_option(text: str) -> tuple[str, object]:
    """KEY=VALUE with VALUE read as a Python literal where it is one (0.5, True, 'A')."""
    import ast

    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--model-opt takes KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return key, raw


def _cmd_train(args: argparse.Namespace) -> int:
    # Until the trainer takes over the signals (SIGTERM ends the start-up as Ctrl-C does, see
    # `main`), no run has started, so nothing is saved or left behind.
    try:
        return _train(args)
    except KeyboardInterrupt:
        print("cnnzoo train: stopped while starting; no run was started", file=sys.stderr)
        return 130


def _train(args: argparse.Namespace) -> int:
    from cnnzoo.train import TrainingDiverged, TrainingInterrupted, distributed, fit
    from cnnzoo.train.recipes import resolve_config

    try:
        if args.resume:
            _check_resume_flags(args)
            result = fit(resume=args.resume, force=args.force)
        else:
            if not args.model:
                raise UsageError("name a MODEL to train, or --resume RUN_DIR")
            config = resolve_config(
                args.model, data=args.data or "digits", recipe=args.recipe,
                **_train_overrides(args),
            )  # fmt: skip
            result = fit(config, force=args.force)
    except TrainingInterrupted as stop:
        print(stop, file=sys.stderr)
        return 130
    except TrainingDiverged as err:
        print(f"cnnzoo train: {err}", file=sys.stderr)
        return 3
    if distributed.launched_rank() != 0:
        return 0  # rank 0 reports for the whole run
    if result.test_accuracy is not None:
        print(f"test accuracy: {100 * result.test_accuracy:.2f}% (loss {result.test_loss:.4f})")
    print(f"run directory: {result.run_dir}")
    return 0


def _check_resume_flags(args: argparse.Namespace) -> None:
    """`--resume` continues a run exactly as it was configured: a flag that would change it
    (a model, data, recipe or any training option other than the saved one) is refused."""
    from cnnzoo.errors import UsageError
    from cnnzoo.train.rundir import RunDir

    run = RunDir.existing(args.resume)
    saved = run.read_config()
    given = {k: v for k, v in _train_overrides(args).items() if v is not None}
    given.update(
        {k: getattr(args, k) for k in ("model", "data", "recipe") if getattr(args, k) is not None}
    )
    changed = {k: v for k, v in given.items() if getattr(saved, k) != v}
    if not changed:
        return
    flags = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in changed.items())
    done = run.has_results()
    if "epochs" in changed and done:
        epochs = f"{saved.epochs} epoch" + "s" * (saved.epochs != 1)
        raise UsageError(
            f"{run} finished its {epochs}; --resume continues a run exactly as it was "
            f"configured and does not extend it (its {saved.schedule} schedule was laid out for "
            f"{epochs}). To train for {changed['epochs']}, start a new run: "
            f"cnnzoo train {saved.model} --epochs {changed['epochs']} ..."
        )
    raise UsageError(
        f"--resume continues {run} exactly as it was configured; it cannot change {flags} "
        f"(saved: {', '.join(f'{k} {getattr(saved, k)}' for k in changed)}). Drop the flag, or "
        "start a new run with it."
    )


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnzoo.train.evaluate import evaluate, load_trained, write_evaluation

    trained = load_trained(args.checkpoint)
    data = args.data or trained.config.data
    result = evaluate(trained, data, split=args.split)
    print(
        f"{trained.config.model} on {data} ({args.split}, {result.count} images), checkpoint "
        f"{trained.checkpoint}"
    )
    print(
        f"  loss {result.loss:.4f}  top-1 {100 * result.top1:.2f}%  top-5 {100 * result.top5:.2f}%"
    )
    print("  per-class accuracy:")
    for name, acc in zip(result.classes, result.per_class, strict=True):
        print(f"    {name:>12}  {100 * acc:6.2f}%")
    out = Path(args.out) if args.out else trained.checkpoint.parent.parent / "evaluation"
    title = (
        f"{trained.config.model} on {data}, {args.split} split ({result.count} images, "
        f"top-1 {100 * result.top1:.2f}%)"
    )
    png = write_evaluation(result, out, args.split, title)
    print(f"  confusion matrix: {png}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import warnings

    from cnnzoo.train.evaluate import load_trained, predict
    from cnnzoo.train.image_check import InputImageWarning

    trained = load_trained(args.checkpoint)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InputImageWarning)
        answers = predict(trained, args.images, args.top, invert=args.invert)
    notes = [str(w.message) for w in caught if issubclass(w.category, InputImageWarning)]
    for w in caught:
        if not issubclass(w.category, InputImageWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    for path, top in zip(args.images, answers, strict=True):
        print(path)
        for name, prob in top:
            print(f"  {prob:7.2%}  {name}")
        for note in notes:
            if note.startswith(f"{path} "):  # each warning below its own image's answer
                sys.stdout.flush()
                print(f"warning: {note}", file=sys.stderr)
    return 0


def _cmd_experiment(args: argparse.Namespace) -> int:
    from cnnzoo.train.experiments import results_table, run_experiment
    from cnnzoo.train.reproductions import publish, write_reproductions

    if args.name == "report":
        for path in write_reproductions(args.publish, readme=args.readme):
            print(f"wrote {path}")
        return 0
    from cnnzoo.train import TrainingInterrupted

    given = (("batch_size", args.batch_size), ("lr", args.lr))
    try:
        record = run_experiment(
            args.name,
            data=args.data,
            out=args.out,
            epochs=args.epochs,
            seeds=args.seeds,
            seed=args.seed,
            jobs=args.jobs,
            force=args.force,
            from_run=args.from_run,
            reuse=args.reuse,
            **{k: v for k, v in given if v is not None},
        )
    except TrainingInterrupted as stop:  # Ctrl-C or SIGTERM: the arm's run is resumable
        print(stop, file=sys.stderr)
        return 130
    print()
    print(results_table(record))
    for claim in record["claims"]:
        print(f"- {claim['outcome']}: {claim['text']}; {claim['why']}")
    if args.publish_results:
        for path in publish(Path(args.out or f"runs/experiment-{args.name}"), args.name,
                            args.publish, readme=args.readme):  # fmt: skip
            print(f"wrote {path}")
    return 0


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (--batch-size for batch_size), typed from its annotation."""
    import typing

    from cnnzoo.train.config import DERIVED_FIELDS, TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("model", "data", "recipe", "notes", "model_options", *DERIVED_FIELDS):
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if typing.get_origin(kind) is typing.Literal:
            p.add_argument(flag, choices=typing.get_args(kind), default=None)
        elif kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        elif typing.get_origin(kind) is tuple:
            p.add_argument(flag, type=cliargs.float_list, default=None, help="comma-separated")
        elif args and typing.get_origin(args[0]) is typing.Literal:
            p.add_argument(flag, choices=typing.get_args(args[0]), default=None)
        else:
            p.add_argument(flag, type=args[0] if args else kind, default=None)


def _cmd_summary(args: argparse.Namespace) -> int:
    from cnnzoo.analysis import parse_bytes, parse_input_size, summary
    from cnnzoo.errors import UsageError
    from cnnzoo.resolve import resolve

    if args.depth is not None and args.depth < 0:
        raise UsageError(f"--depth must be 0 or more (1: the model's children), got {args.depth}")
    if args.batch < 1:
        raise UsageError(f"--batch must be at least 1, got {args.batch}")
    options = dict(_parse_option(o) for o in args.model_opt)
    model = resolve(args.model).analyzable()
    input_size = parse_input_size(args.input) if args.input else None
    if isinstance(model, str) and options:
        from cnnzoo.analysis import meta_model
        from cnnzoo.registry import get_spec

        spec = get_spec(model)
        model = meta_model(spec.name, **options)
        if input_size is None and "in_chans" in options:  # follow the channels asked for
            input_size = (int(options["in_chans"]), *spec.input_size[1:])  # type: ignore[call-overload]
    elif options:
        raise UsageError("--model-opt applies to registered models, not to a file's factory")
    if not isinstance(model, str) and input_size is None and not _registered(model):
        raise UsageError(
            f"{args.model} is not a registered model, so its input size is unknown: "
            "give one input with --input CxHxW, e.g. --input 3x224x224"
        )
    report = summary(model, input_size, batch_size=args.batch, depth=args.depth, mode=args.mode,
                     find_exact_inputs=args.explain)  # fmt: skip
    columns = tuple(c.strip() for c in (args.columns or "").split(",") if c.strip()) or None
    if args.explain:
        print(report.explain())
    elif args.format == "table":
        report.print(columns=columns, all_rows=args.all_rows)
    elif args.format == "markdown":
        print(report.to_markdown(columns=columns, all_rows=args.all_rows))
    else:
        print({"csv": report.to_csv, "json": report.to_json}[args.format]())
    if args.fit:
        budget = parse_bytes(args.fit)
        batch = report.totals.max_batch_size(budget, args.optimizer)
        print(
            f"Largest batch whose training estimate ({args.optimizer}) fits in {args.fit}: {batch}",
            file=sys.stderr if args.format in ("csv", "json") else sys.stdout,
        )
    return 1 if report.failure is not None else 0


def _registered(model: object) -> bool:
    from cnnzoo.registry import list_models

    return getattr(model, "name", None) in list_models()


class _Parser(argparse.ArgumentParser):
    """argparse, naming the closest valid subcommand, choice or option after a misspelling."""

    def parse_known_args(self, args=None, namespace=None):
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        from cnnzoo.suggest import closest

        choice = re.search(r"invalid choice: '?([^' ]*)'? \(choose from (.*)\)", message)
        if choice:
            valid = [c.strip().strip("'") for c in choice.group(2).split(",")]
            close = closest(choice.group(1), valid, n=3)
            message += f". Did you mean: {', '.join(close)}?" if close else ""
        elif message.startswith("unrecognized arguments"):
            options = {o for a in self._actions for o in a.option_strings}
            for action in self._subparsers._group_actions if self._subparsers else ():
                chosen = next((t for t in getattr(self, "_argv", []) if t in action.choices), "")
                sub = action.choices.get(chosen)
                options |= {o for a in (sub._actions if sub else ()) for o in a.option_strings}
            for token in message.partition(":")[2].split():
                close = closest(token.split("=")[0], options, n=1)
                if token.startswith("-") and close:
                    message += f" (did you mean {close[0]} instead of {token}?)"
        # Two lines, as every usage error: what is wrong, and where the flags are explained.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\nRun `{self.prog} -h` for help.\n")


def _cmd_export(args: argparse.Namespace) -> int:
    from cnnzoo.export import choose_format, export_model
    from cnnzoo.resolve import RANDOM_INIT, resolve

    format = choose_format(args.format, args.out)  # before any work: a mismatch is refused
    target = resolve(args.model)
    if target.weights == RANDOM_INIT:
        print(
            f"warning: {target.name} is exported with random weights (random initialization); "
            "to export trained weights, name a run directory (cnnzoo export runs/NAME)",
            file=sys.stderr,
        )
    with _removed_on_failure(args.out):
        exported = export_model(
            target,
            format,
            input_size=args.input,
            dynamic_batch=args.dynamic_batch,
            out=args.out,
        )
    print(exported.describe())
    return 0


def _cmd_draw(args: argparse.Namespace) -> int:
    from cnnzoo.resolve import resolve
    from cnnzoo.viz import draw

    out = args.out
    if out is not None and out.suffix.lower() not in (".svg", ".png", ".pdf"):
        raise UsageError(f"--out names the diagram's file: .svg, .png or .pdf, not {out.name!r}")
    diagram = draw(resolve(args.model).analyzable(), args.input, depth=args.depth, focus=args.focus)
    out = out or Path(f"{diagram.model}.svg")
    with _removed_on_failure(out):
        path = diagram.save(out)
    print(f"wrote {path} ({len(diagram.nodes)} nodes, {len(diagram.edges)} edges)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from cnnzoo.registry import list_models
    from cnnzoo.resolve import resolve
    from cnnzoo.viz import write_report, write_reports

    if args.all == bool(args.model):
        raise UsageError("name one MODEL, or give --all")
    if args.model and resolve(args.model).kind != "registered":  # fails before writing
        raise UsageError(f"report takes a registered model name, not {args.model!r}")
    out = args.out or Path("report")
    with _removed_on_failure(out):
        path = write_reports(list_models(), out) if args.all else write_report(args.model, out)
    print(f"wrote {path}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from cnnzoo.analysis import parse_input_size
    from cnnzoo.bench.runner import append_csv, bench

    run = bench(
        args.model,
        batch_sizes=args.batch,
        mode=args.mode,
        precision=args.precision,
        channels_last=args.channels_last,
        compile=args.compile,
        against=args.against,
        repeat=args.repeat,
        warmup=args.warmup,
        input_size=parse_input_size(args.input) if args.input else None,
        device=args.device,
        optimize=args.optimize,
    )
    print("\n".join(run.lines()))
    if args.out:
        print(f"appended {len(run.timings)} rows to {append_csv(run, args.out)}")
    return 0


def _cmd_profile(args: argparse.Namespace) -> int:
    from cnnzoo.analysis import parse_input_size
    from cnnzoo.bench.profile import profile
    from cnnzoo.viz.figures import save_figure
    from cnnzoo.viz.roofline import roofline_figure

    result = profile(
        args.model,
        batch_size=args.batch,
        precision=args.precision,
        input_size=parse_input_size(args.input) if args.input else None,
        repeat=args.repeat,
        warmup=args.warmup,
        device=args.device,
    )
    print(result.to_table(top=args.top or None))
    if args.out:
        for path in result.save(args.out) + save_figure(
            roofline_figure(result), Path(args.out) / f"{result.model}_roofline"
        ):
            print(f"wrote {path}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from cnnzoo.analysis import parse_input_size
    from cnnzoo.comparison import compare

    report = compare(
        args.models or None,
        input_size=parse_input_size(args.input) if args.input else None,
        batch_size=args.batch,
        measure=args.measure,
        throughput_batch=args.throughput_batch,
        repeat=args.repeat,
    )
    print(
        {
            "table": report.to_table,
            "markdown": report.to_markdown,
            "csv": report.to_csv,
            "json": report.to_json,
        }[args.format]()
    )
    if args.out:
        for path in report.save(args.out):
            print(f"wrote {path}", file=sys.stderr)
        for note in report.chart_notes():
            print(f"chart {note}", file=sys.stderr)
    return 0


def _cmd_rf(args: argparse.Namespace) -> int:
    from cnnzoo.analysis import parse_input_size
    from cnnzoo.analysis.erf import effective_rf
    from cnnzoo.resolve import resolve

    target = resolve(args.model)
    model, name, size = target.build(), target.name, target.input_size
    if args.input:
        size = parse_input_size(args.input)
    if size is None:
        raise UsageError(f"{args.model} has no default input size; give one with --input CxHxW")
    erf = effective_rf(model, tuple(size), layer=args.layer, samples=args.samples, name=name)
    print(erf.describe())
    path = erf.save(args.out or f"{name}_erf.png")
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cnnzoo",
        description="The classic CNN architectures: runnable, measurable and trainable.",
    )
    parser.add_argument("--version", action="version", version=f"cnnzoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="the zoo: every model with its paper, parameters and MACs")
    p.add_argument(
        "pattern", nargs="?", help="part of a name ('vgg') or a glob pattern ('resnet*_cifar')"
    )
    p.add_argument("--format", choices=("table", "markdown", "csv", "json"), default="table")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("info", help="a model's spec: paper, input, results, deviations")
    p.add_argument("name", help="registered model name")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("train", help="train a model with its paper's recipe")
    p.add_argument("model", nargs="?", help="registered model name")
    p.add_argument(
        "--data",
        help="digits (default) | cifar10:DIR | cifar100:DIR | imagefolder:DIR | synthetic",
    )
    p.add_argument("--recipe", help="named recipe (default: the model's)")
    p.add_argument(
        "--model-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model override, e.g. drop_path_rate=0.5 (repeatable)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run exactly as it was configured (it is not extended)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="start over in an --out that holds a run (the old one is kept, renamed); with "
        "--resume, take over the lock of a run on another host that is known to be gone",
    )
    _add_train_flags(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix")
    p.add_argument("checkpoint", help="run directory or checkpoint folder")
    p.add_argument("--data", help="data set spec (default: the one it was trained on)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test")
    p.add_argument("--out", help="folder for the JSON and PNG (default RUN_DIR/evaluation)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "predict",
        help="classify image files with a trained model",
        description=(
            "Classify image files with a trained run. Each image is converted to the model's "
            "channels (grayscale for 1-channel models such as LeNet, RGB otherwise), resized to "
            "its input size (e.g. 1x32x32) and normalized with the training data's mean and "
            "std. The model expects images like its training data: the digits are light strokes "
            "on a dark background (white on black). Each image's brightness and background "
            "polarity are compared with the training images', with a warning when they differ; "
            "a black-on-white digit needs --invert."
        ),
    )
    p.add_argument(
        "checkpoint", type=cliargs.existing_dir, help="run directory or checkpoint folder"
    )
    p.add_argument("images", nargs="+", type=cliargs.existing_file, help="image files")
    p.add_argument(
        "--top", type=cliargs.positive_int, default=5, help="classes to show (default 5)"
    )
    p.add_argument(
        "--invert",
        action="store_true",
        help="invert the images first (black-on-white digits for a white-on-black model)",
    )
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "experiment",
        help="rerun a paper's experiment (degradation, ...) over several seeds; "
        "`experiment report` regenerates docs/reproductions.md",
    )
    p.add_argument(
        "name",
        help="degradation | stochastic-depth | construction, or report (write "
        "docs/reproductions.md and the README table from docs/reproductions/*.json)",
    )
    p.add_argument("--data", default="digits")
    p.add_argument("--epochs", type=int, help="default: the experiment's, on the digits")
    p.add_argument("--seeds", type=int, default=3, help="runs of every network (default 3)")
    p.add_argument("--seed", type=int, default=0, help="the first seed (then +1, +2, ...)")
    p.add_argument(
        "--jobs", type=int, default=1, help="runs in parallel processes, one thread each"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        help="for every network (default: the recipe's, 32 on the digits); the lr scales with it",
    )
    p.add_argument("--lr", type=float, help="for every network, instead of the scaled recipe's")
    p.add_argument("--out", help="default runs/experiment-NAME")
    p.add_argument("--force", action="store_true")
    p.add_argument(
        "--from",
        dest="from_run",
        metavar="RUN_DIR",
        help="construction: build plain-56 from this finished plain20_cifar run",
    )
    p.add_argument(
        "--reuse",
        metavar="DIR",
        type=cliargs.existing_dir,
        help="take an arm's seed from a finished run in DIR trained with the same config "
        "(construction reuses degradation's runs: --reuse runs/experiment-degradation)",
    )
    p.add_argument(
        "--publish",
        dest="publish_results",
        action="store_true",
        help="copy the record and figure to --publish-dir and regenerate the pages",
    )
    p.add_argument(
        "--publish-dir",
        dest="publish",
        metavar="DIR",
        default="docs/reproductions",
        help="where the records live (default docs/reproductions)",
    )
    p.add_argument("--readme", default="README.md", help="README whose table is regenerated")
    p.set_defaults(func=_cmd_experiment)

    p = sub.add_parser(
        "summary", help="a network layer by layer: shapes, params, MACs, memory, receptive field"
    )
    p.add_argument("model", help="registered name, or path/to/file.py:factory")
    p.add_argument("--input", help="one input as CxHxW, e.g. 3x227x227 (default: the spec's)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--depth", type=int, help="summarize layers nested deeper into their blocks")
    p.add_argument("--format", choices=("table", "markdown", "csv", "json"), default="table")
    p.add_argument(
        "--columns",
        metavar="A,B,...",
        help="columns to show, of layer,type,output,window,params,macs,flops,memory,rf,notes "
        "(default: as many as fit the terminal, or COLUMNS)",
    )
    p.add_argument(
        "--all-rows",
        action="store_true",
        help="also show layers that pass their input through (Identity, eval-mode Dropout)",
    )
    p.add_argument(
        "--mode",
        choices=("eval", "train"),
        default="eval",
        help="train: dropout on, and the training forward (GoogLeNet's auxiliary heads)",
    )
    p.add_argument(
        "--model-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model override as train takes it, e.g. in_chans=1 (repeatable)",
    )
    p.add_argument("--explain", action="store_true", help="the arithmetic of every layer")
    p.add_argument("--fit", metavar="MEMORY", help="largest batch that fits, e.g. 8GiB")
    p.add_argument("--optimizer", choices=("sgd", "sgd_momentum", "adam"), default="adam")
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser(
        "export",
        help="write a model as ONNX or TorchScript, with its preprocessing in the file",
    )
    p.add_argument("model", help="registered name, run directory, or path/to/file.py:factory")
    p.add_argument(
        "--format",
        choices=("onnx", "torchscript"),
        help="default: from --out's extension (.onnx; .pt or .ts), else onnx",
    )
    p.add_argument(
        "--input", type=cliargs.input_size, help="example input as CxHxW (default: the spec's)"
    )
    p.add_argument("--dynamic-batch", action="store_true", help="leave the batch size free")
    p.add_argument(
        "--out",
        type=cliargs.output_file,
        help="FILE.onnx, FILE.pt or FILE.ts (default NAME.onnx / NAME.pt)",
    )
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("draw", help="the network's dataflow graph, rendered with Graphviz")
    p.add_argument("model", help="registered name, run directory, or path/to/file.py:factory")
    p.add_argument(
        "--input", type=cliargs.input_size, help="one input as CxHxW (default: the spec's)"
    )
    p.add_argument(
        "--depth",
        type=cliargs.non_negative_int,
        help="collapse modules nested deeper into their blocks",
    )
    p.add_argument("--focus", metavar="MODULE", help="only the layers inside MODULE")
    p.add_argument(
        "--out", type=cliargs.output_file, help="FILE.svg, .png or .pdf (default NAME.svg)"
    )
    p.set_defaults(func=_cmd_draw)

    p = sub.add_parser("report", help="a self-contained HTML page per model")
    p.add_argument("model", nargs="?", help="registered name")
    p.add_argument("--all", action="store_true", help="every model, and an index page")
    p.add_argument("--out", type=cliargs.output_dir, help="folder to write into (default ./report)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("bench", help="time a model (inference or training), against torchvision")
    p.add_argument("model", help="registered name")
    p.add_argument(
        "--batch", type=cliargs.positive_int_list, default=(1, 16), help="comma-separated sizes"
    )
    p.add_argument("--mode", choices=("inference", "train"), default="inference")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile (slow first call)")
    p.add_argument(
        "--against",
        metavar="PEERS",
        help="peers timed in the same run, comma-separated: torchvision (run the same way), "
        "channels-last, compile, onnxruntime",
    )
    p.add_argument(
        "--optimize",
        choices=("fp32", "bf16", "auto"),
        help="optimize_for_inference on cnnzoo's model and the torchvision peer alike",
    )
    p.add_argument(
        "--repeat", type=cliargs.positive_int, default=10, help="timed repetitions per case"
    )
    p.add_argument("--warmup", type=cliargs.non_negative_int, default=2, help="untimed calls first")
    p.add_argument(
        "--input", type=cliargs.input_size, help="one input as CxHxW (default: the spec's)"
    )
    p.add_argument(
        "--device", type=cliargs.device, help="cpu or cuda (default: cuda when available)"
    )
    p.add_argument("--out", help="CSV file to append the rows to")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser(
        "profile", help="measured time of every layer, its FLOPs, bytes and roofline position"
    )
    p.add_argument("model", help="registered name, or path/to/file.py:factory")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--input", help="one input as CxHxW (default: the spec's)")
    p.add_argument("--repeat", type=int, default=10, help="timed forwards (median kept)")
    p.add_argument("--warmup", type=int, default=2, help="untimed forwards first")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--top", type=int, default=25, help="show the N slowest layers (0: all)")
    p.add_argument("--out", help="folder for MODEL_profile.csv and the roofline PNG/SVG")
    p.set_defaults(func=_cmd_profile)

    p = sub.add_parser(
        "compare", help="models side by side: accuracy, params, MACs, memory, speed; charts"
    )
    p.add_argument("models", nargs="*", help="names or glob patterns (default: all)")
    p.add_argument(
        "--input", type=cliargs.input_size, help="one input as CxHxW (default: each model's spec)"
    )
    p.add_argument(
        "--batch",
        type=cliargs.positive_int,
        default=32,
        help="batch of the training-memory estimate",
    )
    p.add_argument("--measure", action="store_true", help="time latency and throughput here")
    p.add_argument("--throughput-batch", type=cliargs.positive_int, default=16)
    p.add_argument(
        "--repeat", type=cliargs.positive_int, default=5, help="timed repetitions with --measure"
    )
    p.add_argument("--format", choices=("table", "markdown", "csv", "json"), default="table")
    p.add_argument("--out", help="folder for the table (CSV, JSON, Markdown) and charts")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser(
        "rf", help="theoretical and effective receptive field of a layer, as a heatmap PNG"
    )
    p.add_argument("model", help="registered name, run directory, or path/to/file.py:factory")
    p.add_argument("--layer", help="module name (default: the last layer with a spatial map)")
    p.add_argument(
        "--input", type=cliargs.input_size, help="one input as CxHxW (default: the spec's)"
    )
    p.add_argument(
        "--samples", type=cliargs.positive_int, default=32, help="random inputs to average over"
    )
    p.add_argument("--out", help="PNG to write (default NAME_erf.png)")
    p.set_defaults(func=_cmd_rf)
    return parser


_received: list[int] = []  # the stop signals `main` saw, even if some library swallowed them


def _stop(signum: int, _frame: object) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_as_ctrl_c() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt and are remembered, so that a command stopped
    by a scheduler ends as cleanly as one stopped at the terminal, and a stop that a dependency
    swallows while it is imported (a bare `except:`) still stops (the trainer installs its own
    handlers while it runs). Only the main thread may set handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    _received.clear()
    with _signals_as_ctrl_c():
        return _main(argv)


def run() -> None:
    """The `cnnzoo` and `python -m cnnzoo` entry point: `main`, then exit with its status.

    An interrupted command exits at once (`os._exit`, after flushing): a Ctrl-C that lands in
    code torch runs while it is imported marks the interpreter to kill itself by SIGINT at exit
    (exit -2), even though cnnzoo handled it and had nothing left to clean up."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser = build_parser()  # imports torch: the first seconds of every command
    except KeyboardInterrupt:
        _received.append(signal.SIGINT)
    except Exception:
        # A stop that a dependency swallowed mid-import can leave a half-initialized module
        # whose next import fails ("cannot load module more than once"): the stop's doing.
        if not _received:
            raise
    if _received:
        print("cnnzoo: stopped while starting; nothing was done", file=sys.stderr)
        return 130
    args = parser.parse_args(argv)  # a bad flag exits 2 here, before any work
    command = f"cnnzoo {args.command}"
    try:
        return args.func(args)
    except BrokenPipeError:  # `cnnzoo ... | head` closed the pipe: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except CnnzooError as err:
        print(f"{command}: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:  # a full disk or a permission problem: the system said no
        where = f" ({err.filename})" if err.filename and str(err.filename) not in str(err) else ""
        print(f"{command}: {err}{where}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        print(f"{command}: {BUG_REPORT}", file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":
    run()
