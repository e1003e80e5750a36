"""The run folder, written by one process:

- `config.json`: the settings, the data trained on, and facts of the run;
- `metrics.jsonl`, `metrics.csv`: one row per epoch;
- `steps.jsonl`: one row per optimizer step (loss, learning rate, images/s);
- `checkpoint.pt`, `checkpoint.prev.pt`: everything a resume needs (`checkpoint.py`);
- `model.pt`: the weights after the last epoch done, and `best.pt`: the weights of the epoch
  with the best `best_metric`, each a plain `state_dict` that `torch.load(weights_only=True)`
  reads and the model's `load_state_dict` takes;
- `tensorboard/`: TensorBoard event files, when the `tensorboard` package is installed.

The folder's manifest lists all of them before any is written (`cnnarch.files`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cnnarch.errors import CnnarchError
from cnnarch.files import (
    Fields,
    FormatError,
    atomic_write,
    atomic_write_bytes,
    ensure_dir,
    open_regular,
    record_output,
    write_error,
)
from cnnarch.train.checkpoint import CORRUPT, LATEST, PREVIOUS
from cnnarch.train.config import CONFIG_JSON

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

METRICS_JSONL = "metrics.jsonl"
METRICS_CSV = "metrics.csv"
STEPS_JSONL = "steps.jsonl"
MODEL_PT = "model.pt"
BEST_PT = "best.pt"
TENSORBOARD_DIR = "tensorboard"
EVENT_FILES = f"{TENSORBOARD_DIR}/events.out.tfevents.*"
RUN_FILES = (
    CONFIG_JSON,
    METRICS_JSONL,
    METRICS_CSV,
    STEPS_JSONL,
    LATEST,
    PREVIOUS,
    CORRUPT,
    MODEL_PT,
    BEST_PT,
    EVENT_FILES,
)
# A row of steps.jsonl: each field and its type.
STEP_FIELDS = {
    "global_step": "int",
    "epoch": "int",
    "step": "int",
    "loss": "number",
    "lr": "number",
    "images_per_s": "number",
}


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


def tensorboard_writer_class() -> type[SummaryWriter] | None:
    """torch's `SummaryWriter`, or None when the `tensorboard` package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter


def read_step_rows(path: Path, last_step: int) -> list[dict[str, Any]]:
    """The rows of a steps.jsonl up to global step `last_step`, each checked (`STEP_FIELDS`);
    a last line cut short by a killed run is dropped.

    Args:
        path: the steps.jsonl of a run.
        last_step: the global step the run resumes after.
    """
    if not path.exists():
        return []
    with open_regular(path, "step log") as handle:
        text = handle.read().decode("utf-8", errors="replace")
    rows = []
    lines = text.split("\n")
    for number, line in enumerate(lines[:-1], start=1):  # the last piece has no newline
        fields = Fields(f"{path}, line {number}")
        try:
            row = fields.mapping(json.loads(line), "", STEP_FIELDS)
        except (ValueError, RecursionError):
            raise FormatError(f"{path}, line {number} is not a JSON row") from None
        for key, kind in STEP_FIELDS.items():
            check = fields.integer if kind == "int" else fields.number
            if row[key] is not None or key == "global_step":
                check(row[key], key, minimum=0)
        if row["global_step"] <= last_step:
            rows.append(row)
    return rows


class RunFiles:
    """Writes a run's files; on resume, makes the logs match the checkpoint again.

    Args:
        folder: the run folder (checked to hold nothing foreign by the caller).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = ensure_dir(folder)
        record_output(self.folder, RUN_FILES)
        self.tensorboard: SummaryWriter | None = None

    def write_config(self, config: dict[str, Any]) -> None:
        text = json.dumps(config, indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(self.folder / CONFIG_JSON, text.encode())

    def reset_logs(self, history: list[dict[str, Any]], global_step: int) -> None:
        """Make the metrics hold exactly `history` and steps.jsonl the steps up to
        `global_step`: what a killed run logged after its last checkpoint, the resumed run
        logs again."""
        jsonl = "".join(json_line(row) for row in history)
        atomic_write_bytes(self.folder / METRICS_JSONL, jsonl.encode())
        csv_text = _csv_text(history, header=True) if history else ""
        atomic_write_bytes(self.folder / METRICS_CSV, csv_text.encode())
        steps = read_step_rows(self.folder / STEPS_JSONL, global_step)
        atomic_write_bytes(self.folder / STEPS_JSONL, "".join(map(json_line, steps)).encode())

    def _append(self, path: Path, text: str, sync: bool) -> None:
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                if sync:
                    os.fsync(f.fileno())
        except OSError as err:
            raise write_error(path, err) from None

    def append_metrics(self, row: dict[str, Any]) -> None:
        csv_path = self.folder / METRICS_CSV
        header = not csv_path.exists() or csv_path.stat().st_size == 0
        self._append(self.folder / METRICS_JSONL, json_line(row), sync=True)
        self._append(csv_path, _csv_text([row], header=header), sync=True)

    def append_steps(self, rows: Iterable[dict[str, Any]], sync: bool) -> None:
        """Add rows to steps.jsonl; `sync` makes them durable (before a checkpoint, so that a
        resumed run finds every step up to it)."""
        text = "".join(json_line(row) for row in rows)
        if text or sync:
            self._append(self.folder / STEPS_JSONL, text, sync)

    def write_weights(self, name: str, state: dict[str, torch.Tensor]) -> None:
        """A weights-only file: the `state_dict` alone, on the CPU."""
        weights = {key: value.detach().cpu() for key, value in state.items()}
        atomic_write(self.folder / name, lambda handle: torch.save(weights, handle))

    def open_tensorboard(self, purge_step: int | None) -> None:
        """Start writing TensorBoard event files; `purge_step` (on resume) tells TensorBoard to
        drop what earlier files hold from that step on, which the resumed run writes again."""
        writer = tensorboard_writer_class()
        if writer is None:
            raise CnnarchError(
                "TensorBoard event files need the tensorboard package: pip install "
                "'cnnarch[tensorboard]' (or leave out --tensorboard)"
            )
        self.tensorboard = writer(str(self.folder / TENSORBOARD_DIR), purge_step=purge_step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.tensorboard is not None:
            for tag, value in values.items():
                self.tensorboard.add_scalar(tag, value, step)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None
