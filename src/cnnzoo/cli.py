"""The `cnnzoo` command. Thin: parses arguments and calls the library."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from cnnzoo import zoo


def _cmd_list(args: argparse.Namespace) -> int:
    rows = zoo.zoo_rows(args.pattern)
    if not rows:
        print(f"no model matches {args.pattern!r}; run `cnnzoo list` to see all", file=sys.stderr)
        return 1
    print(zoo.render_rows(rows, args.format))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
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
        raise ValueError(f"--model-opt takes KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return key, raw


def _cmd_train(args: argparse.Namespace) -> int:
    from cnnzoo.train import TrainingDiverged, TrainingInterrupted, fit
    from cnnzoo.train.recipes import resolve_config

    try:
        if args.resume:
            result = fit(resume=args.resume)
        else:
            if not args.model:
                raise ValueError("name a MODEL to train, or --resume RUN_DIR")
            config = resolve_config(
                args.model, data=args.data, recipe=args.recipe, **_train_overrides(args)
            )
            result = fit(config, force=args.force)
    except TrainingInterrupted as stop:
        print(stop, file=sys.stderr)
        return 130
    except TrainingDiverged as err:
        print(f"cnnzoo train: {err}", file=sys.stderr)
        return 3
    if result.test_accuracy is not None:
        print(f"test accuracy: {100 * result.test_accuracy:.2f}% (loss {result.test_loss:.4f})")
    print(f"run directory: {result.run_dir}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnzoo.train.evaluate import evaluate, load_trained, plot_confusion

    trained = load_trained(args.checkpoint)
    result = evaluate(trained, args.data or trained.config.data, split=args.split)
    print(
        f"{trained.config.model} on {args.data or trained.config.data} ({args.split}, "
        f"{result.count} images), checkpoint {trained.checkpoint}"
    )
    print(
        f"  loss {result.loss:.4f}  top-1 {100 * result.top1:.2f}%  top-5 {100 * result.top5:.2f}%"
    )
    print("  per-class accuracy:")
    for name, acc in zip(result.classes, result.per_class, strict=True):
        print(f"    {name:>12}  {100 * acc:6.2f}%")
    out = Path(args.out) if args.out else trained.checkpoint.parent.parent / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.split}.json").write_text(json.dumps(result.to_dict(), indent=2))
    plot_confusion(result, out / f"{args.split}-confusion.png", f"{trained.config.model}")
    print(f"  confusion matrix: {out / f'{args.split}-confusion.png'}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from cnnzoo.train.evaluate import load_trained, predict

    trained = load_trained(args.checkpoint)
    for path, top in zip(args.images, predict(trained, args.images, args.top), strict=True):
        print(path)
        for name, prob in top:
            print(f"  {prob:7.2%}  {name}")
    return 0


def _cmd_experiment(args: argparse.Namespace) -> int:
    from cnnzoo.train.experiments import results_table, run_experiment

    results = run_experiment(
        args.name,
        data=args.data,
        out=args.out,
        epochs=args.epochs,
        seed=args.seed,
        force=args.force,
    )
    print()
    print(results_table(results))
    return 0


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (--batch-size for batch_size), typed from its annotation."""
    import typing

    from cnnzoo.train.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("model", "data", "recipe", "notes", "model_options"):
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if typing.get_origin(kind) is typing.Literal:
            p.add_argument(flag, choices=typing.get_args(kind), default=None)
        elif kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        elif typing.get_origin(kind) is tuple:
            p.add_argument(flag, type=_float_list, default=None, help="comma-separated")
        elif args and typing.get_origin(args[0]) is typing.Literal:
            p.add_argument(flag, choices=typing.get_args(args[0]), default=None)
        else:
            p.add_argument(flag, type=args[0] if args else kind, default=None)


def _float_list(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v)


def _cmd_summary(args: argparse.Namespace) -> int:
    from cnnzoo.analysis import load_model, parse_bytes, parse_input_size, summary

    report = summary(
        load_model(args.model),
        parse_input_size(args.input) if args.input else None,
        batch_size=args.batch,
        depth=args.depth,
    )
    if args.explain:
        print(report.explain())
    elif args.format == "table":
        report.print()
    else:
        print(
            {"markdown": report.to_markdown, "csv": report.to_csv, "json": report.to_json}[
                args.format
            ]()
        )
    if args.fit:
        budget = parse_bytes(args.fit)
        batch = report.totals.max_batch_size(budget, args.optimizer)
        print(
            f"Largest batch whose training estimate ({args.optimizer}) fits in {args.fit}: {batch}",
            file=sys.stderr if args.format in ("csv", "json") else sys.stdout,
        )
    return 1 if report.failure is not None else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnzoo",
        description="The classic CNN architectures: runnable, measurable and trainable.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="the zoo: every model with its paper, parameters and MACs")
    p.add_argument("pattern", nargs="?", help="glob pattern, e.g. 'resnet*'")
    p.add_argument("--format", choices=("table", "markdown", "csv"), default="table")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("info", help="a model's spec: paper, input, results, deviations")
    p.add_argument("name")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("train", help="train a model with its paper's recipe")
    p.add_argument("model", nargs="?", help="registered model name")
    p.add_argument(
        "--data",
        default="digits",
        help="digits | cifar10:DIR | cifar100:DIR | imagefolder:DIR | synthetic",
    )
    p.add_argument("--recipe", help="named recipe (default: the model's)")
    p.add_argument(
        "--model-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model override, e.g. drop_path_rate=0.5 (repeatable)",
    )
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run exactly")
    p.add_argument(
        "--force",
        action="store_true",
        help="start over in an --out that holds a run (the old one is kept, renamed)",
    )
    _add_train_flags(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix")
    p.add_argument("checkpoint", help="run directory or checkpoint folder")
    p.add_argument("--data", help="data set spec (default: the one it was trained on)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test")
    p.add_argument("--out", help="folder for the JSON and PNG (default RUN_DIR/evaluation)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="classify image files with a trained model")
    p.add_argument("checkpoint", help="run directory or checkpoint folder")
    p.add_argument("images", nargs="+")
    p.add_argument("--top", type=int, default=5)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("experiment", help="rerun a paper's experiment (degradation, ...)")
    p.add_argument("name", help="degradation | stochastic-depth")
    p.add_argument("--data", default="digits")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=_cmd_experiment)

    p = sub.add_parser(
        "summary", help="a network layer by layer: shapes, params, MACs, memory, receptive field"
    )
    p.add_argument("model", help="registered name, or path/to/file.py:factory")
    p.add_argument("--input", help="one input as CxHxW, e.g. 3x227x227 (default: the spec's)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--depth", type=int, help="summarize layers nested deeper into their blocks")
    p.add_argument("--format", choices=("table", "markdown", "csv", "json"), default="table")
    p.add_argument("--explain", action="store_true", help="the arithmetic of conv and pool layers")
    p.add_argument("--fit", metavar="MEMORY", help="largest batch that fits, e.g. 8GiB")
    p.add_argument("--optimizer", choices=("sgd", "sgd_momentum", "adam"), default="adam")
    p.set_defaults(func=_cmd_summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from cnnzoo.train.checkpoint import CheckpointError
    from cnnzoo.train.rundir import RunDirError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (KeyError, TypeError, ValueError, CheckpointError, RunDirError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"cnnzoo {args.command}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
