"""`python -m cnnarch` (and `torchrun -m cnnarch`) runs the command-line interface."""

from cnnarch.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
