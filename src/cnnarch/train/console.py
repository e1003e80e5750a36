"""The log lines of a run on stderr, as `cnnarch train` and `cnnarch experiment` show them.

The trainer logs through `logging` (logger "cnnarch.train"): a library user chooses where the
lines go. The command line sends them to stderr as "cnnarch: ..." lines, through `tqdm.write`,
so that a progress bar on the terminal is redrawn below them instead of being cut in two.
"""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

from cnnarch.files import printable


class TerminalHandler(logging.Handler):
    """Writes each record as one "cnnarch: [warning: ]message" line on stderr, its text made
    printable (a string from a file cannot drive the terminal)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
            tqdm.write(f"cnnarch: {level}{printable(record.getMessage())}", file=sys.stderr)
        except Exception:
            self.handleError(record)


def log_to_terminal(level: int = logging.INFO) -> None:
    """Show cnnarch's log lines of `level` and above on stderr (once per process).

    Args:
        level: the lowest level shown.
    """
    root = logging.getLogger("cnnarch")
    if not any(isinstance(handler, TerminalHandler) for handler in root.handlers):
        root.addHandler(TerminalHandler())
    root.setLevel(level)
    root.propagate = False
