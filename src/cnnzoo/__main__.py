"""`python -m cnnzoo ...` runs the command line, as `cnnzoo ...` does (and so does
`torchrun -m cnnzoo train ...`)."""

from cnnzoo.cli import run

if __name__ == "__main__":
    run()
