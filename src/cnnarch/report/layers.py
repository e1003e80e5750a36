"""Per-layer views of an analyzer summary: the table people expect, and where memory and
parameters sit in a network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cnnarch.report.tables import Column, Table

MAX_TABLE_ROWS = 70  # deeper nets are shown block by block rather than layer by layer


def leaf_rows(rows: Sequence[Any]) -> list[Any]:
    """Rows of calls with nothing traced inside them: each layer's work counted once."""
    return [row for row in rows if row.is_leaf and row.depth > 0]


def frontier(rows: Sequence[Any], depth: int) -> list[Any]:
    """The rows that tile the model at `depth`: calls at that depth and shallower leaves.

    A container's row already sums its subtree, so these rows add up to the model's totals.
    """
    return [r for r in rows if r.depth == depth or (0 < r.depth < depth and r.is_leaf)]


def display_rows(summary: Any, limit: int = MAX_TABLE_ROWS) -> tuple[list[Any], int | None]:
    """The rows to print: every layer if there are few, else the deepest level that fits.

    Returns the rows and the depth they were cut at (None: every layer).
    """
    leaves = leaf_rows(summary.rows)
    if len(leaves) <= limit:
        return leaves, None
    deepest = max(row.depth for row in summary.rows)
    for depth in range(deepest - 1, 1, -1):
        rows = frontier(summary.rows, depth)
        if len(rows) <= limit:
            return rows, depth
    return frontier(summary.rows, 1), 1


def output_shape(row: Any) -> tuple[int, ...] | None:
    """The first output's shape without its batch dimension."""
    if not row.output_shapes:
        return None
    return tuple(int(d) for d in row.output_shapes[0][1:])


def layer_table(name: str, summary: Any) -> Table:
    rows, depth = display_rows(summary)
    columns = [
        Column("layer", "layer"),
        Column("type", "type"),
        Column("output", "output (C×H×W)"),
        Column("activations", "new activations"),
        Column("memory", "memory", unit="bytes", show_unit="KB", scale=1e3, digits=0),
        Column("params", "params"),
        Column("macs", "MACs", unit="MACs", show_unit="M", scale=1e6, digits=1),
    ]
    table_rows = [
        {
            "layer": row.path,
            "type": row.type,
            "output": output_shape(row),
            "activations": int(row.activation_elements),
            "memory": int(row.activation_bytes),
            "params": int(row.params),
            "macs": int(row.macs),
        }
        for row in rows
    ]
    level = "every layer" if depth is None else f"modules to depth {depth} (their layers summed)"
    return Table(
        name=f"layers_{name}",
        title=f"{name}: {level}, one image",
        columns=columns,
        rows=table_rows,
        note="Memory: the forward outputs each layer allocates for one image (0 for in-place "
        "ops and views), float32, 1 KB = 1,000 bytes. "
        "MACs: multiply-accumulates of conv and linear layers.",
    )


@dataclass(frozen=True)
class Share:
    """How much of a total the named rows hold."""

    rows: tuple[str, ...]
    amount: float
    total: float

    @property
    def fraction(self) -> float:
        return self.amount / self.total if self.total else 0.0


def share(rows: Sequence[Any], attribute: str, predicate: Any) -> Share:
    """The part of `attribute` summed over `rows` held by the rows where `predicate(row)`."""
    total = sum(getattr(row, attribute) for row in rows)
    chosen = [row for row in rows if predicate(row)]
    return Share(tuple(r.path for r in chosen), sum(getattr(r, attribute) for r in chosen), total)


def top_rows(rows: Sequence[Any], attribute: str, count: int = 3) -> Share:
    ranked = sorted(rows, key=lambda row: getattr(row, attribute), reverse=True)[:count]
    chosen = {row.path for row in ranked}
    found = share(rows, attribute, lambda row: row.path in chosen)
    return Share(tuple(r.path for r in ranked), found.amount, found.total)
