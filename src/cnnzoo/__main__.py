"""`python -m cnnzoo ...` runs the command line, as `cnnzoo ...` does (and so does
`torchrun -m cnnzoo train ...`)."""

import sys

from cnnzoo.cli import main

if __name__ == "__main__":
    sys.exit(main())
