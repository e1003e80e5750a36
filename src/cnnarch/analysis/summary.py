"""The result of an analysis: one row per module call or functional call, totals, and exports."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass, field
from typing import Any

from cnnarch import units
from cnnarch.analysis.memory import TrainingMemory
from cnnarch.errors import CnnarchError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerRow:
    """One call. A module's row includes everything that ran inside it (its subtree); a module
    called again gets another row, with its parameters counted on the first call only."""

    path: str  # module path ("" is the model); functional calls end in "()": "layer1.0.add()"
    type: str  # class name, or the function's name for functional calls
    depth: int  # 0 for the model, 1 for what it calls, ...
    input_shapes: tuple[Shape, ...]
    output_shapes: tuple[Shape, ...]
    params: int
    trainable_params: int
    frozen_params: int
    macs: int
    flops: int
    output_elements: int
    output_bytes: int
    saved_bytes: int = 0  # bytes autograd keeps for backward (train only)
    activation_elements: int = 0  # newly allocated forward outputs (0 for in-place and views)
    activation_bytes: int = 0
    kind: str = "module"  # "module" or "op"
    is_leaf: bool = True
    reused: bool = False  # a second or later call of the same module

    def to_dict(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        row["input_shapes"] = [list(s) for s in self.input_shapes]
        row["output_shapes"] = [list(s) for s in self.output_shapes]
        return row


def make_row(**fields: Any) -> LayerRow:
    """`LayerRow(**fields)` given every field, in half the time: the frozen dataclass's
    `__init__` sets each field through `object.__setattr__`, and a pass makes hundreds of rows.
    """
    row = object.__new__(LayerRow)
    row.__dict__.update(fields)
    return row


def format_shapes(shapes: tuple[Shape, ...]) -> str:
    return "; ".join("x".join(str(d) for d in shape) or "scalar" for shape in shapes)


def human(value: float, unit: str = "") -> str:
    """1234567 -> '1.23M'; bytes (unit 'B') in decimal units: 12845056 -> '12.85 MB'."""
    return units.byte_size(value) if unit == "B" else units.prefixed(value)


_COLUMNS = (
    ("layer", "Layer (type)"),
    ("output", "Output shape"),
    ("params", "Params"),
    ("macs", "MACs"),
    ("activations", "Activations"),
    ("saved", "Saved for bwd"),
)


@dataclass(frozen=True)
class Summary:
    """What `cnnarch.analyze` found. Totals count each parameter and each storage once."""

    model_name: str
    input_shape: tuple[int, ...]
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    frozen_params: int
    total_macs: int
    total_flops: int
    activation_elements: int
    activation_bytes: int
    input_elements: int
    input_bytes: int
    param_bytes: int
    buffer_bytes: int
    inference_peak_bytes: int
    training: TrainingMemory | None = None
    batch_size: int = 1
    dtype: str = "float32"
    uncounted_ops: dict[str, int] = field(default_factory=dict)
    input_shapes: tuple[Shape, ...] = ()

    # -- views --------------------------------------------------------------------------------
    def collapse(self, depth: int) -> Summary:
        """The same summary with rows deeper than `depth` folded into their ancestors (whose
        rows already hold their subtree's totals)."""
        if depth < 0:
            raise CnnarchError(f"depth must be 0 or more, got {depth}")
        return dataclasses.replace(self, rows=[r for r in self.rows if r.depth <= depth])

    def _table_cells(self, row: LayerRow) -> dict[str, str]:
        label = row.path if row.depth else self.model_name
        params = f"{row.params:,}" + (" (reused)" if row.reused else "")
        return {
            "layer": f"{'  ' * row.depth}{label} ({row.type})",
            "output": format_shapes(row.output_shapes),
            "params": params,
            "macs": f"{row.macs:,}",
            "activations": f"{row.activation_elements:,}",
            "saved": human(row.saved_bytes, "B"),
        }

    def _columns(self) -> tuple[tuple[str, str], ...]:
        return _COLUMNS if self.training else _COLUMNS[:-1]

    def totals_lines(self) -> list[str]:
        lines = [
            f"Input: {format_shapes(self.input_shapes)} ({self.input_elements:,} elements, "
            f"{human(self.input_bytes, 'B')})",
            f"Params: {self.total_params:,} (trainable {self.trainable_params:,}, frozen "
            f"{self.frozen_params:,}) = {human(self.param_bytes, 'B')}; buffers "
            f"{human(self.buffer_bytes, 'B')}",
            f"MACs: {self.total_macs:,} ({human(self.total_macs)}); FLOPs (all ops): "
            f"{self.total_flops:,} ({human(self.total_flops)})",
            f"Forward activations (layer outputs, input excluded): {self.activation_elements:,} "
            f"elements = {human(self.activation_bytes, 'B')}",
            f"Inference peak (params + buffers + live tensors): "
            f"{human(self.inference_peak_bytes, 'B')}",
        ]
        t = self.training
        if t is not None:
            lines.append(
                f"Training step ({t.optimizer}): peak {human(t.peak_bytes, 'B')} (in the "
                f"{t.peak_phase}); params {human(t.params_bytes, 'B')}, grads "
                f"{human(t.grads_bytes, 'B')}, optimizer state "
                f"{human(t.optimizer_state_bytes, 'B')}, saved for backward "
                f"{human(t.saved_bytes, 'B')}, most backward temporaries alive at once "
                f"{human(t.backward_transient_bytes, 'B')}"
            )
        if self.uncounted_ops:
            names = ", ".join(sorted(self.uncounted_ops))
            lines.append(f"Ops without a counting rule (0 FLOPs): {names}")
        return lines

    # -- exports ------------------------------------------------------------------------------
    def to_table(self, depth: int | None = None) -> str:
        """A terminal table of the rows (to `depth`, if given) and the totals."""
        summary = self if depth is None else self.collapse(depth)
        columns = summary._columns()
        cells = [summary._table_cells(r) for r in summary.rows]
        widths = {key: max([len(title)] + [len(c[key]) for c in cells]) for key, title in columns}

        def line(values: dict[str, str]) -> str:
            parts = [values["layer"].ljust(widths["layer"])]
            parts += [values[key].rjust(widths[key]) for key, _ in columns[1:]]
            return "  ".join(parts).rstrip()

        header = line(dict(columns))
        rule = "-" * len(header)
        body = [line(c) for c in cells]
        return "\n".join([rule, header, rule, *body, rule, *summary.totals_lines(), rule])

    def to_markdown(self, depth: int | None = None) -> str:
        summary = self if depth is None else self.collapse(depth)
        columns = summary._columns()
        out = [
            "| " + " | ".join(title for _, title in columns) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|",
        ]
        for row in summary.rows:
            cells = summary._table_cells(row)
            cells["layer"] = cells["layer"].strip().replace("|", "\\|")
            cells["layer"] = "&nbsp;" * 2 * row.depth + cells["layer"]
            out.append("| " + " | ".join(cells[key] for key, _ in columns) + " |")
        out.append("")
        out += [f"- {line}" for line in summary.totals_lines()]
        return "\n".join(out) + "\n"

    def to_csv(self) -> str:
        fields = [f.name for f in dataclasses.fields(LayerRow)]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            values = dataclasses.asdict(row)
            values["input_shapes"] = format_shapes(row.input_shapes)
            values["output_shapes"] = format_shapes(row.output_shapes)
            writer.writerow(values)
        return buffer.getvalue()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able object: the totals, the training breakdown and the rows (`layers`)."""
        out: dict[str, Any] = {
            "model": self.model_name,
            "input_shape": list(self.input_shape),
            "input_shapes": [list(s) for s in self.input_shapes],
            "batch_size": self.batch_size,
            "dtype": self.dtype,
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "frozen_params": self.frozen_params,
            "total_macs": self.total_macs,
            "total_flops": self.total_flops,
            "activation_elements": self.activation_elements,
            "activation_bytes": self.activation_bytes,
            "input_elements": self.input_elements,
            "input_bytes": self.input_bytes,
            "param_bytes": self.param_bytes,
            "buffer_bytes": self.buffer_bytes,
            "inference_peak_bytes": self.inference_peak_bytes,
            "uncounted_ops": dict(self.uncounted_ops),
            "training": self.training.to_dict() if self.training else None,
        }
        if self.training is not None:
            out["training_peak_bytes"] = self.training.peak_bytes
        out["layers"] = [row.to_dict() for row in self.rows]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_dataframe(self) -> Any:
        """The rows as a pandas DataFrame (pandas must be installed)."""
        try:
            import pandas as pd
        except ImportError:
            raise CnnarchError("to_dataframe needs pandas: pip install pandas") from None
        return pd.DataFrame([row.to_dict() for row in self.rows])

    def __str__(self) -> str:
        return self.to_table()
