"""The `cnnzoo` command. Thin: parses arguments and calls the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (KeyError, TypeError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"cnnzoo {args.command}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
