"""AlexNet's two towers: the parameters each GPU held, and what crossed between them."""

from __future__ import annotations

from typing import Any

from cnnarch.report.context import Context
from cnnarch.report.document import Paragraph, Section
from cnnarch.report.tables import Column, Table

# Where the towers exchange activations: (consumer, what the consumer's own device produced).
# conv3, fc6 and fc7 of each tower read both towers' maps; fc8 runs on the first GPU only.
CROSSINGS: tuple[tuple[str, str, str], ...] = (
    ("conv3", "towers.{i}.conv3", "towers.{i}.pool2"),
    ("fc6", "towers.{i}.fc6", "towers.{i}.pool5"),
    ("fc7", "towers.{i}.fc7", "towers.{i}.fc6"),
)


def _elements(shapes: Any) -> int:
    total = 0
    for shape in shapes:
        count = 1
        for d in shape:
            count *= int(d)
        total += count
    return total


def _first_call(rows: Any, path: str) -> Any:
    for row in rows:
        if row.path == path:
            return row
    raise KeyError(f"no analyzed call of {path}")


def tower_params(summary: Any) -> dict[str, int]:
    """Parameters on each GPU: each tower's layers; fc8 sits on the first GPU."""
    leaves = [r for r in summary.rows if r.is_leaf and not r.reused]
    towers = {
        f"tower {i}": sum(r.params for r in leaves if r.path.startswith(f"towers.{i}."))
        for i in (0, 1)
    }
    towers["fc8 (on GPU 0)"] = sum(r.params for r in leaves if r.path.startswith("fc8"))
    return towers


def crossings(summary: Any) -> list[dict[str, Any]]:
    """Values that cross from one GPU to the other, per image, at each exchange point."""
    rows = []
    for layer, consumer, own in CROSSINGS:
        moved = 0
        for i in (0, 1):
            consumed = _elements(_first_call(summary.rows, consumer.format(i=i)).input_shapes)
            produced = _elements(_first_call(summary.rows, own.format(i=i)).output_shapes)
            moved += consumed - produced
        rows.append({"layer": layer, "direction": "both ways", "values": moved})
    # fc8 reads both towers' fc7 outputs on GPU 0: only tower 1's half crosses.
    fc8 = _elements(_first_call(summary.rows, "fc8").input_shapes)
    own = _elements(_first_call(summary.rows, "towers.0.fc7").output_shapes)
    rows.append({"layer": "fc8", "direction": "GPU 1 → GPU 0", "values": fc8 - own})
    for row in rows:
        row["bytes"] = 4 * row["values"]
    return rows


def alexnet_section(ctx: Context) -> Section:
    summary = ctx.analyze("alexnet")
    params = tower_params(summary)
    traffic = crossings(summary)
    total_values = sum(r["values"] for r in traffic)
    per_gpu = {
        "GPU 0": params["tower 0"] + params["fc8 (on GPU 0)"],
        "GPU 1": params["tower 1"],
    }
    params_table = Table(
        "alexnet_towers",
        "AlexNet (paper variant): parameters per GPU",
        [
            Column("part", "part"),
            Column("params", "params"),
            Column("share", "share of the model", unit="%", digits=1),
        ],
        [
            {"part": part, "params": count, "share": 100 * count / summary.total_params}
            for part, count in params.items()
        ],
        note="Each tower holds half of every layer's kernels (48/128/192/192/128, 2048 units "
        "in FC6 and FC7), so the towers are equal; fc8 was placed on the first GPU here.",
    )
    traffic_table = Table(
        "alexnet_crossings",
        "AlexNet: activations crossing between the GPUs, per image",
        [
            Column("layer", "where"),
            Column("direction", "direction"),
            Column("values", "values"),
            Column("bytes", "bytes", unit="bytes", show_unit="KB", scale=1e3, digits=1),
        ],
        traffic,
        note="conv3 and the FC layers read both towers' outputs; each tower receives the other "
        "tower's half. float32.",
    )
    section = Section("alexnet", "AlexNet: two towers on two GPUs")
    section.add(
        Paragraph(
            f"The paper split AlexNet over two 3 GB GPUs. GPU 0 holds {per_gpu['GPU 0']:,} "
            f"parameters and GPU 1 {per_gpu['GPU 1']:,} ({summary.total_params:,} in all). "
            f"Per image only {total_values:,} values ({4 * total_values / 1e3:,.0f} KB in "
            f"float32) cross between them, at conv3, fc6, fc7 and fc8: conv2, conv4 and conv5 "
            "see only their own tower's maps, which is what made the split cheap."
        ),
        params_table,
        traffic_table,
    )
    return section
