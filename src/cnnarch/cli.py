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
    from cnnarch.zoo.registry import parameter_count

    names = list_models(args.pattern)
    if not names:
        raise CnnarchError(f"no model matches {args.pattern!r} (try `cnnarch models`)")
    print(f"{'name':13s} {'family':13s} {'variants':18s} {'params':16s} {'input':12s} paper")
    for name in names:
        card = model_card(name)
        # One count per variant, built on the meta device: nothing is allocated.
        params = "/".join(f"{parameter_count(name, v) / 1e6:.2f}M" for v in card.variants)
        size = "x".join(map(str, card.input_size))
        print(
            f"{name:13s} {card.family:13s} {'/'.join(card.variants):18s} {params:16s} "
            f"{size:12s} {card.paper}"
        )
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
