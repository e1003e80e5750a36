"""AlexNet's two towers (Krizhevsky et al. 2012): the parameters each GPU held, and the
activations that crossed between them. The GPUs are named as the paper names them: GPU 1 and
GPU 2 (its Figure 3: "the top 48 kernels were learned on GPU 1"); the zoo's `towers.0` runs on
GPU 1, `towers.1` on GPU 2, and fc8 on GPU 1."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnarch.lecture.layers import BYTES_PER_VALUE
from cnnarch.lecture.topic import Topic
from cnnarch.report.document import Paragraph, Section
from cnnarch.tables import Column, Table, percent_column
from cnnarch.units import byte_size, number

if TYPE_CHECKING:
    from cnnarch.analysis import Summary
    from cnnarch.lecture.analyses import Analyses

GPUS = ("GPU 1", "GPU 2")  # the zoo's towers.0 and towers.1
FC8 = "fc8 (on GPU 1)"

# Where the towers exchange activations: (consumer, what the consumer's own device produced).
# conv3, fc6 and fc7 of each tower read both towers' maps; fc8 runs on GPU 1 only.
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


def tower_params(summary: Summary) -> dict[str, int]:
    """Parameters of each GPU's tower, and of fc8 (on GPU 1)."""
    leaves = [r for r in summary.rows if r.is_leaf and not r.reused]
    towers = {
        gpu: sum(r.params for r in leaves if r.path.startswith(f"towers.{i}."))
        for i, gpu in enumerate(GPUS)
    }
    towers[FC8] = sum(r.params for r in leaves if r.path.startswith("fc8"))
    return towers


def crossings(summary: Summary) -> list[dict[str, Any]]:
    """Values that cross from one GPU to the other, per image, at each exchange point."""
    rows = []
    for layer, consumer, own in CROSSINGS:
        moved = 0
        for i in (0, 1):
            consumed = _elements(_first_call(summary.rows, consumer.format(i=i)).input_shapes)
            produced = _elements(_first_call(summary.rows, own.format(i=i)).output_shapes)
            moved += consumed - produced
        rows.append({"layer": layer, "direction": "both ways", "values": moved})
    # fc8 reads both towers' fc7 outputs on GPU 1: only GPU 2's half crosses.
    fc8 = _elements(_first_call(summary.rows, "fc8").input_shapes)
    own = _elements(_first_call(summary.rows, "towers.0.fc7").output_shapes)
    rows.append({"layer": "fc8", "direction": f"{GPUS[1]} → {GPUS[0]}", "values": fc8 - own})
    for row in rows:
        row["bytes"] = BYTES_PER_VALUE * row["values"]
    return rows


def build(analyses: Analyses) -> Topic:
    """AlexNet's section: the parameters on each GPU and what crosses between them."""
    summary = analyses.forward("alexnet")
    params = tower_params(summary)
    traffic = crossings(summary)
    total_values = sum(r["values"] for r in traffic)
    per_gpu = {GPUS[0]: params[GPUS[0]] + params[FC8], GPUS[1]: params[GPUS[1]]}
    params_table = Table(
        "alexnet_towers",
        "AlexNet (paper variant): parameters per GPU",
        [
            Column("part", "part"),
            Column("params", "params"),
            percent_column("share", "share of the model"),
        ],
        [
            {"part": part, "params": count, "share": 100 * count / summary.total_params}
            for part, count in params.items()
        ],
        note="Each GPU holds half of every layer's kernels (48/128/192/192/128, 2048 units "
        "in FC6 and FC7), so the two towers are equal; fc8 was placed on GPU 1 here.",
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
        note="conv3 and the FC layers read both GPUs' outputs; each GPU receives the other's "
        "half. float32.",
    )
    section = Section("alexnet", "AlexNet: two towers on two GPUs")
    section.add(
        Paragraph(
            f"The paper split AlexNet over two 3 GB GPUs, GPU 1 and GPU 2. GPU 1 holds "
            f"{number(per_gpu[GPUS[0]])} parameters (its tower and fc8) and GPU 2 "
            f"{number(per_gpu[GPUS[1]])} ({number(summary.total_params)} in all). Per image only "
            f"{number(total_values)} values "
            f"({byte_size(BYTES_PER_VALUE * total_values, 'KB', 0)} in float32) cross between "
            "them, at conv3, fc6, fc7 and fc8: conv2, conv4 and conv5 see only their own GPU's "
            "maps, which is what made the split cheap."
        ),
        params_table,
        traffic_table,
    )
    return Topic(section)
