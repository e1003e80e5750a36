"""Tables with units: exact values in CSV and JSON, readable values in Markdown, HTML and terminal.

The one table model of cnnarch: the analyzer's summary, the command line and the report render
their tables through it (the report adds HTML, `cnnarch.report.html.render_table`).

A `Column` stores a value in one unit (bytes, MACs, parameters) and may show it scaled (MB,
M): `Column("act", "activations", unit="bytes", show_unit="MB", digits=1)`. Byte columns use the
decimal units of `cnnarch.units` (MB = 10^6 bytes) and nothing else. CSV and JSON keep the stored
value, so nothing is lost to rounding; the other forms print it with `cnnarch.units.number` and
the shown unit in the header. A column of printed figures ("3.2M", "1072K") stays text in every
form but sorts by the value it reads as.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cnnarch import units
from cnnarch.errors import CnnarchError

MISSING = "—"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    unit: str = ""  # unit of the stored value, e.g. "bytes"
    show_unit: str | None = None  # unit of the shown value; None: the stored unit
    scale: float | None = None  # shown value = stored value / scale; None: from `show_unit`
    digits: int | None = 0  # decimals shown; None: see `cnnarch.units.number`
    k: float = 1e3  # what a printed "K" means in this column (GoogLeNet's Table 1: 1024)
    signed: bool = False  # a difference: shown with its sign ("+5.5", "-5.2", "0.0")
    # "left" or "right" in text and Markdown; None: right when every value reads as a number.
    align: Literal["left", "right"] | None = None

    def __post_init__(self) -> None:
        if self.unit == "bytes" and self.shown_unit != "bytes":
            expected = units.BYTE_UNITS.get(self.shown_unit)
            if expected is None or self.scale not in (None, expected):
                raise ValueError(
                    f"column {self.key!r}: bytes are shown in {', '.join(units.BYTE_UNITS)} "
                    f"({units.BYTE_UNIT_NOTE}), not {self.shown_unit!r} at scale {self.scale}"
                )

    @property
    def shown_unit(self) -> str:
        return self.unit if self.show_unit is None else self.show_unit

    @property
    def factor(self) -> float:
        """What a stored value is divided by to be shown."""
        if self.scale is not None:
            return self.scale
        if self.unit == "bytes":
            return units.BYTE_UNITS.get(self.shown_unit, 1)
        return units.COUNT_PREFIXES.get(self.shown_unit, 1)

    def heading(self, *, stored: bool = False) -> str:
        unit = self.unit if stored else self.shown_unit
        # A label that names its unit is not repeated: "MACs", never "MACs (MACs)".
        return f"{self.label} ({unit})" if unit and unit != self.label else self.label

    def format(self, value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return MISSING
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, int | float):
            format_shown = units.signed if self.signed else units.number
            return format_shown(value / self.factor, self.digits)
        if isinstance(value, Sequence) and not isinstance(value, str):
            return units.shape(value, "×")
        return str(value)

    def sort_value(self, value: Any) -> float | None:
        """The number a cell sorts by: the stored number, or a printed figure read with this
        column's K ('1072K' -> 1,072,000); None for anything else."""
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int | float):
            return None if math.isnan(value) else float(value)
        if isinstance(value, str):
            try:
                return units.parse_printed(value, self.k)
            except CnnarchError:
                return None
        return None

    def is_numeric(self, rows: Sequence[Mapping[str, Any]]) -> bool:
        """True when the column has values and every one of them reads as a number."""
        values = [row.get(self.key) for row in rows]
        present = [v for v in values if self.format(v) != MISSING]
        return bool(present) and all(self.sort_value(v) is not None for v in present)


# Columns that recur across the report's tables, each defined once.
def params_column(key: str, label: str, digits: int = 2) -> Column:
    """Parameters in millions: 61,100,840 -> 61.10."""
    return Column(key, label, unit="params", show_unit="M", digits=digits)


def macs_column(key: str, label: str, prefix: str = "G", digits: int = 2) -> Column:
    """MACs in billions (`prefix` "M": millions): 724,406,816 -> 0.72."""
    return Column(key, label, unit="MACs", show_unit=prefix, digits=digits)


def megabytes_column(key: str, label: str, digits: int = 1) -> Column:
    """Bytes in decimal megabytes: 12,845,056 -> 12.8."""
    return Column(key, label, unit="bytes", show_unit="MB", digits=digits)


def percent_column(key: str, label: str, digits: int = 1) -> Column:
    """A value already in percent: 69.758 -> 69.8."""
    return Column(key, label, unit="%", digits=digits)


@dataclass
class Table:
    """A titled table; `name` is its file stem, `note` says where its numbers come from."""

    name: str
    title: str
    columns: list[Column]
    rows: Sequence[Mapping[str, Any]] = field(default_factory=list)
    note: str = ""

    def select(self, keys: Sequence[str]) -> Table:
        """The same table with only the columns `keys`, in that order."""
        by_key = {c.key: c for c in self.columns}
        return Table(self.name, self.title, [by_key[k] for k in keys], self.rows, self.note)

    def cells(self) -> list[list[str]]:
        return [[col.format(row.get(col.key)) for col in self.columns] for row in self.rows]

    def numeric_columns(self) -> list[bool]:
        return [col.is_numeric(self.rows) for col in self.columns]

    def right_aligned(self) -> list[bool]:
        """Which columns text and Markdown align right: the numeric ones, unless a column
        says otherwise."""
        return [
            numeric if col.align is None else col.align == "right"
            for col, numeric in zip(self.columns, self.numeric_columns(), strict=True)
        ]

    def to_markdown(self) -> str:
        def escape(text: str) -> str:
            return text.replace("|", "\\|")

        right = self.right_aligned()
        head = "| " + " | ".join(escape(c.heading()) for c in self.columns) + " |"
        rule = "|" + "|".join("---:" if r else ":---" for r in right) + "|"
        body = ["| " + " | ".join(escape(c) for c in row) + " |" for row in self.cells()]
        return "\n".join([head, rule, *body])

    def to_text(self) -> str:
        """Aligned plain text for a terminal: numbers right-aligned, text left-aligned (unless
        a column sets its `align`)."""
        headings = [c.heading() for c in self.columns]
        cells = self.cells()
        widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headings)]
        right = self.right_aligned()

        def line(values: list[str]) -> str:
            parts = [
                v.rjust(w) if r else v.ljust(w)
                for v, w, r in zip(values, widths, right, strict=True)
            ]
            return "  ".join(parts).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([line(headings), rule, *(line(r) for r in cells)])

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([c.heading(stored=True) for c in self.columns])
        for row in self.rows:
            writer.writerow([_csv_value(row.get(c.key)) for c in self.columns])
        return buffer.getvalue()

    def to_json(self) -> str:
        document = {
            "title": self.title,
            "note": self.note,
            "columns": [{"key": c.key, "label": c.label, "unit": c.unit} for c in self.columns],
            "rows": [
                {c.key: _json_value(row.get(c.key)) for c in self.columns} for row in self.rows
            ],
        }
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return units.shape(value)
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, tuple):
        return list(value)
    return value
