"""AlexNet's two towers: the parameters each GPU held, and what crossed between them."""

from __future__ import annotations

from cnnarch.lecture.alexnet import crossings, tower_params
from cnnarch.report.context import Context
from cnnarch.report.document import Paragraph, Section
from cnnarch.tables import Column, Table, percent_column
from cnnarch.units import byte_size, number


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
            percent_column("share", "share of the model"),
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
            f"The paper split AlexNet over two 3 GB GPUs. GPU 0 holds {number(per_gpu['GPU 0'])} "
            f"parameters and GPU 1 {number(per_gpu['GPU 1'])} ({number(summary.total_params)} in "
            f"all). Per image only {number(total_values)} values "
            f"({byte_size(4 * total_values, 'KB', 0)} in float32) cross between them, at conv3, "
            "fc6, fc7 and fc8: conv2, conv4 and conv5 see only their own tower's maps, which is "
            "what made the split cheap."
        ),
        params_table,
        traffic_table,
    )
    return section
