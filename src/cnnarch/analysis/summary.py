"""The result of an analysis: one row per module call or functional call, totals, and exports."""

from __future__ import annotations

import dataclasses
import html
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cnnarch import units
from cnnarch.analysis.memory import TrainingMemory
from cnnarch.errors import CnnarchError, CnnarchValueError
from cnnarch.tables import Column, Table

if TYPE_CHECKING:
    import pandas as pd

    from cnnarch.analysis.dataflow import Residual
    from cnnarch.analysis.torchinfo_style import TorchinfoStyle

Shape = tuple[int, ...]

# Rows shown when a notebook displays a summary (`cnnarch.summary`'s `depth` when given).
NOTEBOOK_DEPTH = 2


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
    # The data flow: the tensors the call read and returned, each by the number of its storage
    # (the model's inputs are 0, 1, ...; the others are numbered in the order of the rows). A
    # view or an in-place result keeps its tensor's number. `cnnarch.analysis.dataflow` reads
    # the graph these make.
    input_ids: tuple[int, ...] = ()
    output_ids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        for name in ("input_shapes", "output_shapes", "input_ids", "output_ids"):
            row[name] = [list(s) if isinstance(s, tuple) else s for s in getattr(self, name)]
        return row


def make_row(**fields: Any) -> LayerRow:
    """`LayerRow(**fields)` given every field, in half the time: the frozen dataclass's
    `__init__` sets each field through `object.__setattr__`, and a pass makes hundreds of rows.
    """
    row = object.__new__(LayerRow)
    row.__dict__.update(fields)
    return row


def format_shapes(shapes: tuple[Shape, ...]) -> str:
    """'2x8' for one shape, '2x8; 2x4' for several, 'scalar' for a 0-d tensor.

    Args:
        shapes: a row's input or output shapes.
    """
    return "; ".join(units.shape(shape) or "scalar" for shape in shapes)


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
    # How the pass ran: "meta" (shapes only, nothing computed), "cpu" (real CPU tensors: an op
    # needed data, or device="cpu" was asked for) or "parameters" (no pass: no input given, or
    # a model without forward); `mode_reason` says why when it is not "meta".
    mode: str = "meta"
    mode_reason: str = ""
    param_dtypes: dict[str, int] = field(default_factory=dict)  # parameter elements by dtype
    # How `str()` prints it: None for cnnarch's table, torchinfo's layout for `cnnarch.summary`.
    table_style: TorchinfoStyle | None = field(default=None, compare=False)

    # -- torchinfo's names (a `cnnarch.summary` result stands in for its ModelStatistics) ------
    @property
    def total_mult_adds(self) -> int:
        """`total_macs` (cnnarch's convention: see docs/from-torchinfo.md)."""
        return self.total_macs

    @property
    def total_param_bytes(self) -> int:
        return self.param_bytes

    @property
    def total_input(self) -> int:
        return self.input_bytes

    # -- the data flow --------------------------------------------------------------------------
    @property
    def residuals(self) -> list[Residual]:
        """The residual additions of the forward pass, found from the data flow (a module that
        adds its input, or a projection of it, to what its other path made of it): see
        `cnnarch.analysis.dataflow.residuals`. Empty without a pass."""
        from cnnarch.analysis.dataflow import residuals

        return residuals(self.rows)

    # -- views --------------------------------------------------------------------------------
    def collapse(self, depth: int) -> Summary:
        """The same summary with rows deeper than `depth` folded into their ancestors (whose
        rows already hold their subtree's totals).

        Args:
            depth: the deepest row kept (0: the model alone).
        """
        if depth < 0:
            raise CnnarchValueError(f"depth must be 0 or more, got {depth}")
        return dataclasses.replace(self, rows=[r for r in self.rows if r.depth <= depth])

    def layer_table(self, indent: str = "  ") -> Table:
        """The rows as a table: a layer's name indented by `indent` once per level of depth,
        its output shape, params (a reused module's are counted on its first call and marked
        here), MACs, activations and, for a training analysis, what it saves for backward.
        Without a forward pass (mode "parameters") only the layer and its params.

        Args:
            indent: what each level of depth indents the layer names by.
        """
        rows = [
            {
                "layer": f"{indent * row.depth}{row.path if row.depth else self.model_name} "
                f"({row.type})",
                "output": format_shapes(row.output_shapes),
                "params": units.number(row.params) + (" (reused)" if row.reused else ""),
                "macs": row.macs,
                "activations": row.activation_elements,
                "saved": units.byte_size(row.saved_bytes),
            }
            for row in self.rows
        ]
        # Shapes, "0 (reused)" and byte sizes with their unit are text that reads as numbers.
        columns = [
            Column("layer", "Layer (type)"),
            Column("output", "Output shape", align="right"),
            Column("params", "Params", align="right"),
            Column("macs", "MACs"),
            Column("activations", "Activations"),
            Column("saved", "Saved for bwd", align="right"),
        ]
        if self.mode == "parameters":
            columns = [columns[0], columns[2]]
        elif self.training is None:
            columns = columns[:-1]
        return Table("layers", self.model_name, columns, rows)

    def _params_line(self) -> str:
        dtypes = sorted(self.param_dtypes.items(), key=lambda item: -item[1])
        if len(dtypes) > 1:
            precision = "; mixed dtypes: " + ", ".join(f"{d} {units.number(n)}" for d, n in dtypes)
        else:
            precision = f" in {dtypes[0][0]}" if dtypes else ""
        return (
            f"Params: {units.number(self.total_params)} (trainable "
            f"{units.number(self.trainable_params)}, frozen "
            f"{units.number(self.frozen_params)}) = "
            f"{units.byte_size(self.param_bytes)}{precision}; buffers "
            f"{units.byte_size(self.buffer_bytes)}"
        )

    def totals_lines(self) -> list[str]:
        if self.mode == "parameters":
            return [
                self._params_line(),
                f"No forward pass ran ({self.mode_reason}): shapes, MACs and activation "
                f"memory are unknown; give an input size to get them",
            ]
        lines = [
            f"Input: {format_shapes(self.input_shapes)} ({units.number(self.input_elements)} "
            f"elements, {units.byte_size(self.input_bytes)})",
            self._params_line(),
            f"MACs: {units.number(self.total_macs)} ({units.prefixed(self.total_macs)}); FLOPs "
            f"(all ops): {units.number(self.total_flops)} ({units.prefixed(self.total_flops)})",
            "Forward activations (layer outputs, input excluded): "
            f"{units.number(self.activation_elements)} "
            f"elements = {units.byte_size(self.activation_bytes)}",
            f"Inference peak (params + buffers + live tensors): "
            f"{units.byte_size(self.inference_peak_bytes)}",
        ]
        t = self.training
        if t is not None:
            lines.append(
                f"Training step ({t.optimizer}): peak {units.byte_size(t.peak_bytes)} (in the "
                f"{t.peak_phase}); params {units.byte_size(t.params_bytes)}, grads "
                f"{units.byte_size(t.grads_bytes)}, optimizer state "
                f"{units.byte_size(t.optimizer_state_bytes)}, saved for backward "
                f"{units.byte_size(t.saved_bytes)}, most backward temporaries alive at once "
                f"{units.byte_size(t.backward_transient_bytes)}"
            )
        if self.uncounted_ops:
            names = ", ".join(sorted(self.uncounted_ops))
            lines.append(
                f"Ops without a counting rule (0 FLOPs): {names} (count them with "
                f"cnnarch.analysis.register_rule)"
            )
        if self.mode == "cpu":
            lines.append(f"Ran on real CPU tensors, not on meta: {self.mode_reason}")
        return lines

    # -- exports ------------------------------------------------------------------------------
    def to_table(self, depth: int | None = None) -> str:
        """A terminal table of the rows (to `depth`, if given) and the totals.

        Args:
            depth: the deepest row shown (None: all).
        """
        summary = self if depth is None else self.collapse(depth)
        header, _, *body = summary.layer_table().to_text().splitlines()
        rule = "-" * len(header)  # one rule across the table, above and below each part
        return "\n".join([rule, header, rule, *body, rule, *summary.totals_lines(), rule])

    def to_markdown(self, depth: int | None = None) -> str:
        """A Markdown table of the rows (to `depth`, if given), then the totals as a list.

        Args:
            depth: the deepest row shown (None: all).
        """
        summary = self if depth is None else self.collapse(depth)
        # Markdown drops leading spaces: the depth is indented with non-breaking ones.
        table = summary.layer_table(indent="&nbsp;" * 2).to_markdown()
        totals = [f"- {line}" for line in summary.totals_lines()]
        return "\n".join([table, "", *totals]) + "\n"

    def to_csv(self) -> str:
        """Every field of every row, under the field's name; shapes as in `format_shapes`."""
        fields = [f.name for f in dataclasses.fields(LayerRow)]
        rows = [
            {
                **dataclasses.asdict(row),
                "input_shapes": format_shapes(row.input_shapes),
                "output_shapes": format_shapes(row.output_shapes),
                "input_ids": " ".join(map(str, row.input_ids)),
                "output_ids": " ".join(map(str, row.output_ids)),
            }
            for row in self.rows
        ]
        columns = [Column(name, name) for name in fields]
        return Table("layers", self.model_name, columns, rows).to_csv()

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
            "mode": self.mode,
            "mode_reason": self.mode_reason,
            "param_dtypes": dict(self.param_dtypes),
            "training": self.training.to_dict() if self.training else None,
        }
        if self.training is not None:
            out["training_peak_bytes"] = self.training.peak_bytes
        out["layers"] = [row.to_dict() for row in self.rows]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """`to_dict()` as JSON text.

        Args:
            indent: `json.dumps`' indent.
        """
        return json.dumps(self.to_dict(), indent=indent)

    def to_dataframe(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame (pandas must be installed)."""
        try:
            import pandas as pd
        except ImportError as err:
            raise CnnarchError("to_dataframe needs pandas: pip install pandas") from err
        return pd.DataFrame([row.to_dict() for row in self.rows])

    def to_torchinfo(self, style: TorchinfoStyle | None = None) -> str:
        """The summary laid out as torchinfo prints its own (see `cnnarch.summary`).

        Args:
            style: depth, columns and row settings (default: this summary's, else torchinfo's
                defaults).
        """
        from cnnarch.analysis.torchinfo_style import TorchinfoStyle, torchinfo_table

        return torchinfo_table(self, style or self.table_style or TorchinfoStyle())

    def __str__(self) -> str:
        return self.to_table() if self.table_style is None else self.to_torchinfo()

    def __repr__(self) -> str:
        macs = f", MACs={units.prefixed(self.total_macs)}" if self.mode != "parameters" else ""
        shown = f", input={format_shapes(self.input_shapes)}" if self.input_shapes else ""
        return (
            f"Summary(model={self.model_name!r}{shown}, params={units.number(self.total_params)}"
            f"{macs}, mode={self.mode!r}, {len(self.rows)} rows)"
        )

    # -- notebooks ----------------------------------------------------------------------------
    def _notebook_view(self) -> Summary:
        depth = self.table_style.depth if self.table_style is not None else NOTEBOOK_DEPTH
        return self.collapse(depth)

    def _repr_markdown_(self) -> str:
        """The totals, then the table to `NOTEBOOK_DEPTH` (or `cnnarch.summary`'s depth)."""
        view = self._notebook_view()
        totals = "\n".join(f"- {line}" for line in view.totals_lines())
        table = view.layer_table(indent="&nbsp;" * 2).to_markdown()
        return f"**{html.escape(self.model_name)}**\n\n{totals}\n\n{table}\n"

    def _repr_html_(self) -> str:
        """The totals, then the table to `NOTEBOOK_DEPTH` (or `cnnarch.summary`'s depth)."""
        view = self._notebook_view()
        totals = "".join(f"<li>{html.escape(line)}</li>" for line in view.totals_lines())
        table = view.layer_table(indent="\u00a0" * 2)
        right = table.right_aligned()
        head = "".join(
            f'<th style="text-align:{"right" if r else "left"}">{html.escape(c.heading())}</th>'
            for c, r in zip(table.columns, right, strict=True)
        )
        body = "".join(
            "<tr>"
            + "".join(
                f'<td style="text-align:{"right" if r else "left"}">{html.escape(cell)}</td>'
                for cell, r in zip(cells, right, strict=True)
            )
            + "</tr>"
            for cells in table.cells()
        )
        return (
            f"<div><strong>{html.escape(self.model_name)}</strong><ul>{totals}</ul>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        )
