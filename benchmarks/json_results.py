"""A benchmark's results as JSON, beside the table it prints.

Each benchmark takes `--json FILE` (default `benchmarks/results/<benchmark>.json`, a folder git
ignores) and writes there what it printed, with the settings and the machine's state it ran
under, atomically: a half-written file never replaces a previous one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from cnnarch.files import atomic_write_text

RESULTS = Path(__file__).parent / "results"


def add_json_option(parser: argparse.ArgumentParser, script: str) -> None:
    """`--json FILE` for the benchmark `script` (its `__file__`)."""
    parser.add_argument(
        "--json",
        type=Path,
        default=RESULTS / f"{Path(script).stem}.json",
        metavar="FILE",
        help="write the results as JSON to FILE (default %(default)s)",
    )


def write_results(args: argparse.Namespace, results: dict[str, Any]) -> Path:
    """Write `results` with the command line's settings and the machine's state to `--json`."""
    document = {
        "benchmark": Path(sys.argv[0]).stem,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()),
        **results,
    }
    path = atomic_write_text(args.json, json.dumps(document, indent=2, default=str) + "\n")
    print(f"results: {path}")
    return path
