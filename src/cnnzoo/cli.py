"""The `cnnzoo` command. Thin: parses arguments and calls the library."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
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
    from cnnzoo.train import TrainingDiverged, TrainingInterrupted, distributed, fit
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
    if distributed.launched_rank() != 0:
        return 0  # rank 0 reports for the whole run
    if result.test_accuracy is not None:
        print(f"test accuracy: {100 * result.test_accuracy:.2f}% (loss {result.test_loss:.4f})")
    print(f"run directory: {result.run_dir}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnzoo.train.evaluate import evaluate, load_trained, write_evaluation

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
    png = write_evaluation(result, out, args.split, trained.config.model)
    print(f"  confusion matrix: {png}")
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
        **({"batch_size": args.batch_size} if args.batch_size else {}),
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
        find_exact_inputs=args.explain,
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


class _Parser(argparse.ArgumentParser):
    """argparse, naming the closest valid subcommand, choice or option after a misspelling."""

    def parse_known_args(self, args=None, namespace=None):
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        from cnnzoo.registry import closest_names

        choice = re.search(r"invalid choice: '?([^' ]*)'? \(choose from (.*)\)", message)
        if choice:
            valid = [c.strip().strip("'") for c in choice.group(2).split(",")]
            close = closest_names(choice.group(1), valid, n=3)
            message += f". Did you mean: {', '.join(close)}?" if close else ""
        elif message.startswith("unrecognized arguments"):
            options = {o for a in self._actions for o in a.option_strings}
            for action in self._subparsers._group_actions if self._subparsers else ():
                chosen = next((t for t in getattr(self, "_argv", []) if t in action.choices), "")
                sub = action.choices.get(chosen)
                options |= {o for a in (sub._actions if sub else ()) for o in a.option_strings}
            for token in message.partition(":")[2].split():
                close = closest_names(token.split("=")[0], sorted(options), n=1)
                if token.startswith("-") and close:
                    message += f" (did you mean {close[0]} instead of {token}?)"
        super().error(message)


def _cmd_export(args: argparse.Namespace) -> int:
    from cnnzoo.analysis import parse_input_size
    from cnnzoo.export import export_model

    exported = export_model(
        args.model,
        args.format,
        input_size=parse_input_size(args.input) if args.input else None,
        dynamic_batch=args.dynamic_batch,
        out=args.out,
    )
    print(exported.describe())
    return 0


def _cmd_draw(args: argparse.Namespace) -> int:
    from cnnzoo.analysis import load_model, parse_input_size
    from cnnzoo.viz import draw

    diagram = draw(
        load_model(args.model),
        parse_input_size(args.input) if args.input else None,
        depth=args.depth,
        focus=args.focus,
    )
    path = diagram.save(args.out or f"{diagram.model}.svg")
    print(f"wrote {path} ({len(diagram.nodes)} nodes, {len(diagram.edges)} edges)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from cnnzoo.registry import list_models
    from cnnzoo.viz import write_report, write_reports

    if args.all == bool(args.model):
        raise ValueError("name one MODEL, or give --all")
    if args.all:
        path = write_reports(list_models(), args.out or "report")
    else:
        path = write_report(args.model, args.out or "report")
    print(f"wrote {path}")
    return 0


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v)


def _cmd_bench(args: argparse.Namespace) -> int:
    from cnnzoo.analysis import parse_input_size
    from cnnzoo.bench.runner import append_csv, bench

    timings = bench(
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
    )
    for t in timings:
        print(t.describe())
    for ours, peer in zip(timings, timings[1:], strict=False):
        if ours.label == "cnnzoo" and peer.label == "torchvision":
            print(
                f"batch {ours.batch_size}: cnnzoo / torchvision throughput "
                f"{peer.median / ours.median:.2f}x (medians), "
                f"{peer.fastest / ours.fastest:.2f}x (fastest)"
            )
    if args.out:
        print(f"appended {len(timings)} rows to {append_csv(timings, args.out)}")
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
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    p.add_argument("--batch-size", type=int, help="for every network (default: the recipe's)")
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

    p = sub.add_parser("export", help="write a model as ONNX or TorchScript")
    p.add_argument("model", help="registered name, run directory, or path/to/file.py:factory")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    p.add_argument("--input", help="example input as CxHxW (default: the spec's)")
    p.add_argument("--dynamic-batch", action="store_true", help="leave the batch size free")
    p.add_argument("--out", help="file to write (default NAME.onnx / NAME.pt)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("draw", help="the network's dataflow graph, rendered with Graphviz")
    p.add_argument("model", help="registered name, or path/to/file.py:factory")
    p.add_argument("--input", help="one input as CxHxW (default: the spec's)")
    p.add_argument("--depth", type=int, help="collapse modules nested deeper into their blocks")
    p.add_argument("--focus", metavar="MODULE", help="only the layers inside MODULE")
    p.add_argument("--out", help="FILE.svg, .png or .pdf (default NAME.svg)")
    p.set_defaults(func=_cmd_draw)

    p = sub.add_parser("report", help="a self-contained HTML page per model")
    p.add_argument("model", nargs="?", help="registered name")
    p.add_argument("--all", action="store_true", help="every model, and an index page")
    p.add_argument("--out", help="folder to write into (default ./report)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("bench", help="time a model (inference or training), against torchvision")
    p.add_argument("model", help="registered name")
    p.add_argument("--batch", type=_int_list, default=(1, 16), help="comma-separated sizes")
    p.add_argument("--mode", choices=("inference", "train"), default="inference")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile (slow first call)")
    p.add_argument("--against", choices=("torchvision",), help="time the peer in the same run")
    p.add_argument("--repeat", type=int, default=10, help="timed repetitions per case")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first")
    p.add_argument("--input", help="one input as CxHxW (default: the spec's)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--out", help="CSV file to append the rows to")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser(
        "compare", help="models side by side: accuracy, params, MACs, memory, speed; charts"
    )
    p.add_argument("models", nargs="*", help="names or glob patterns (default: all)")
    p.add_argument("--input", help="one input as CxHxW (default: each model's spec)")
    p.add_argument("--batch", type=int, default=32, help="batch of the training-memory estimate")
    p.add_argument("--measure", action="store_true", help="time latency and throughput here")
    p.add_argument("--throughput-batch", type=int, default=16)
    p.add_argument("--repeat", type=int, default=5, help="timed repetitions with --measure")
    p.add_argument("--format", choices=("table", "markdown", "csv", "json"), default="table")
    p.add_argument("--out", help="folder for the table (CSV, JSON, Markdown) and charts")
    p.set_defaults(func=_cmd_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from cnnzoo.train.checkpoint import CheckpointError
    from cnnzoo.train.rundir import RunDirError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `cnnzoo ... | head` closed the pipe: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except (KeyError, TypeError, ValueError, CheckpointError, RunDirError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"cnnzoo {args.command}: {message}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk or a permission problem outside the checkpoints
        print(f"cnnzoo {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
