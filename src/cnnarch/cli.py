"""`cnnarch <command>`: each command is one library call plus formatting.

Mistakes a user can make end in one line on stderr and exit status 2 (see `CnnarchError`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cnnarch.errors import CnnarchError


def _cmd_models(args: argparse.Namespace) -> int:
    from cnnarch.zoo import list_models, model_card

    for name in list_models(args.pattern):
        card = model_card(name)
        print(f"{name:14s} {card.family:14s} {','.join(card.variants):18s} {card.paper}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnarch", description="The CNN architectures of CS231n Lecture 9, measured."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("models", help="list the model zoo")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.set_defaults(run=_cmd_models)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CnnarchError as err:
        print(f"cnnarch: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnarch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
