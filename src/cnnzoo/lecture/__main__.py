"""`python -m cnnzoo.lecture [--out docs]`: regenerate docs/lecture.md and docs/lecture.ipynb."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnzoo.lecture.build import build


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m cnnzoo.lecture", description=__doc__)
    parser.add_argument("--out", default="docs", help="folder for the page and notebook")
    for path in build(Path(parser.parse_args().out)):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
