"""The run folder: `config.json`, `metrics.jsonl` and `metrics.csv`, written by one process."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from cnnarch.files import atomic_write_bytes, ensure_dir, write_error

METRICS_JSONL = "metrics.jsonl"
METRICS_CSV = "metrics.csv"
CONFIG_JSON = "config.json"


def json_line(row: dict[str, Any]) -> str:
    """`row` as one line of strict JSON: a NaN or infinite number is written as null, and the
    names of those fields are listed under "nonfinite" (plain `json.dumps` would write `NaN`,
    which JSON parsers reject)."""
    bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        row = {**{k: (None if k in bad else v) for k, v in row.items()}, "nonfinite": bad}
    return json.dumps(row, allow_nan=False) + "\n"


def _csv_text(rows: list[dict[str, Any]], header: bool) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


class RunFiles:
    """Writes a run's files; on resume, rewrites the metrics to match the checkpoint's history."""

    def __init__(self, folder: Path) -> None:
        self.folder = ensure_dir(folder)

    def write_config(self, config: dict[str, Any]) -> None:
        text = json.dumps(config, indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(self.folder / CONFIG_JSON, text.encode())

    def reset_metrics(self, history: list[dict[str, Any]]) -> None:
        """Make both metrics files hold exactly `history` (an epoch killed before its checkpoint
        may have been logged; the resumed run logs it again)."""
        jsonl = "".join(json_line(row) for row in history)
        atomic_write_bytes(self.folder / METRICS_JSONL, jsonl.encode())
        csv_text = _csv_text(history, header=True) if history else ""
        atomic_write_bytes(self.folder / METRICS_CSV, csv_text.encode())

    def append_metrics(self, row: dict[str, Any]) -> None:
        csv_path = self.folder / METRICS_CSV
        header = not csv_path.exists() or csv_path.stat().st_size == 0
        for path, text in (
            (self.folder / METRICS_JSONL, json_line(row)),
            (csv_path, _csv_text([row], header=header)),
        ):
            try:
                with open(path, "a", encoding="utf-8") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as err:
                raise write_error(path, err) from None
