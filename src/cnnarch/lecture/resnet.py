"""ResNet: block costs, depth against cost, Table 1's FLOPs, and what a shortcut costs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from cnnarch.lecture.claims import SHORTCUTS, Check, Idea, claim_check, figure_check
from cnnarch.lecture.diagrams import resnet_block_diagrams
from cnnarch.lecture.figures import Figure, difference
from cnnarch.lecture.palette import family_color
from cnnarch.lecture.topic import Topic
from cnnarch.report.charts import draw_chart, label_points, new_figure
from cnnarch.report.document import Chart, Paragraph, Picture, Section, Verdicts
from cnnarch.tables import Column, Table, macs_column, params_column, percent_column
from cnnarch.units import number

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from cnnarch.lecture.analyses import Analyses

TABLE1 = "He et al. 2015, Table 1"

IMAGENET_DEPTHS = (18, 34, 50, 101, 152)
CIFAR_DEPTHS = (20, 32, 44, 56, 110)


def block_rows(analyses: Analyses) -> list[dict[str, Any]]:
    """A basic and a bottleneck block of conv2_x (56×56), and a basic block as wide as the
    bottleneck, to show why the deep ResNets use bottlenecks."""
    from cnnarch.zoo.resnet import BasicBlock, Bottleneck

    with torch.device("meta"):  # counted, never run: nothing allocated
        blocks = {
            "basic, 64-d (ResNet-18/34)": (BasicBlock(64, 64, 1, "B"), 64, "3x3, 64 → 3x3, 64"),
            "bottleneck, 256-d (ResNet-50/101/152)": (
                Bottleneck(256, 64, 1, "B"),
                256,
                "1x1, 64 → 3x3, 64 → 1x1, 256",
            ),
            "basic, 256-d (not used)": (
                BasicBlock(256, 256, 1, "B"),
                256,
                "3x3, 256 → 3x3, 256",
            ),
        }
    rows = []
    for label, (block, channels, layers) in blocks.items():
        summary = analyses.module(f"block {label}", lambda block=block: block, (channels, 56, 56))
        rows.append(
            {
                "block": label,
                "layers": layers,
                "params": summary.total_params,
                "macs": summary.total_macs,
            }
        )
    return rows


def depth_rows(analyses: Analyses, names: list[str]) -> list[dict[str, Any]]:
    printed = analyses.published["resnet_paper"]["table1_flops_multiply_adds_1e9"]
    rows = []
    for name in names:
        summary = analyses.forward(name)
        rows.append(
            {
                "model": name,
                "depth": int(name.removeprefix("resnet")),
                "params": summary.total_params,
                "macs": summary.total_macs,
                "printed": printed[name] * 1e9,
                "printed_text": f"{printed[name]}G",
                "gap": 100 * difference(summary.total_macs, printed[name] * 1e9),
            }
        )
    return rows


def depth_chart(rows: list[dict[str, Any]]) -> Chart:
    def draw() -> MplFigure:
        fig, (left, right) = new_figure(height=3.8, ncols=2)
        depths = [r["depth"] for r in rows]
        color = family_color("resnet")
        for ax, key, scale, label in (
            (left, "params", 1e6, "parameters (millions)"),
            (right, "macs", 1e9, "compute per image (GMACs)"),
        ):
            values = [r[key] / scale for r in rows]
            ax.plot(depths, values, "o-", color=color)
            label_points(ax, depths, values, [f"{v:.1f}" for v in values])
            ax.set_xlabel("depth (weighted layers)")
            ax.set_ylabel(label)
            ax.set_xticks(depths)
        left.set_title("Parameters against depth")
        right.set_title("Compute against depth")
        return fig

    caption = "Paper variant, 224×224, one image."
    by_depth = {r["depth"]: r for r in rows}
    if 34 in by_depth and 50 in by_depth:
        basic, bottleneck = by_depth[34], by_depth[50]
        caption += (
            f" From 34 to 50 layers (basic to bottleneck blocks) the parameters grow by "
            f"{bottleneck['params'] / basic['params'] - 1:.0%} and the MACs by "
            f"{bottleneck['macs'] / basic['macs'] - 1:.0%}."
        )
    return draw_chart(
        "resnet_depth", "ResNet-18 to 152: parameters and compute against depth", caption, draw
    )


def shortcut_rows(analyses: Analyses) -> list[dict[str, Any]]:
    rows = []
    for depth in CIFAR_DEPTHS:
        plain = analyses.forward(f"plain{depth}")
        residual = analyses.forward(f"resnet{depth}")
        rows.append(
            {
                "depth": depth,
                "plain_params": plain.total_params,
                "residual_params": residual.total_params,
                "plain_macs": plain.total_macs,
                "residual_macs": residual.total_macs,
                "extra_flops": residual.total_flops - plain.total_flops,
            }
        )
    return rows


def imagenet_shortcut_rows(analyses: Analyses) -> list[dict[str, Any]]:
    rows = []
    for label, kwargs in (
        ("plain-34", None),
        ("ResNet-34 A", "A"),
        ("ResNet-34 B", "B"),
        ("ResNet-34 C", "C"),
    ):
        name = "plain34" if kwargs is None else "resnet34"
        extra = {} if kwargs is None else {"shortcut": kwargs}

        def build(name: str = name, extra: dict[str, Any] = extra) -> torch.nn.Module:
            return analyses.model(name, **extra)

        summary = analyses.module(label, build, (3, 224, 224))
        rows.append({"net": label, "params": summary.total_params, "macs": summary.total_macs})
    base = rows[0]
    for row in rows:
        row["extra_params"] = row["params"] - base["params"]
        row["extra_macs"] = row["macs"] - base["macs"]
    return rows


def block_diagrams(analyses: Analyses) -> list[Picture]:
    """The basic and the bottleneck block, as the networks of the report build them."""
    models = {
        name: (analyses.model(name), analyses.forward(name))
        for name in ("resnet34", "resnet50")
        if name in analyses.models
    }
    return resnet_block_diagrams(models)


def depth_checks(rows: list[dict[str, Any]]) -> list[Check]:
    """Each network's Table 1 'FLOPs' (multiply-adds) against the computed MACs."""
    checks = []
    for row in rows:
        figure = Figure(
            row["model"], "Table 1 FLOPs (multiply-adds)", row["printed_text"], row["macs"], TABLE1
        )
        checks.append(
            figure_check(
                f"{row['model']}-table1-flops",
                f"{row['model']}: {row['printed_text']} FLOPs (multiply-adds)",
                figure,
            )
        )
        row["agreement"] = figure.agreement.name
    return checks


def build(analyses: Analyses) -> Topic:
    """ResNet's section: blocks, depth against cost with Table 1, and shortcut costs."""
    names = [f"resnet{d}" for d in IMAGENET_DEPTHS if f"resnet{d}" in analyses.models]
    section = Section("resnet", "ResNet: blocks, depth and shortcuts")
    blocks = block_rows(analyses)
    section.add(
        Paragraph(
            "Block cost on a 56×56 map: the bottleneck block works on a 256-deep input for "
            f"{number(blocks[1]['macs'] / 1e6, 0)}M MACs, against "
            f"{number(blocks[0]['macs'] / 1e6, 0)}M for "
            "a basic block on a 64-deep one; a basic block as wide would cost "
            f"{blocks[2]['macs'] / blocks[1]['macs']:.0f}× more."
        ),
        Table(
            "resnet_blocks",
            "Basic against bottleneck block, one 56×56 image",
            [
                Column("block", "block"),
                Column("layers", "layers"),
                Column("params", "params"),
                macs_column("macs", "MACs", prefix="M", digits=1),
            ],
            blocks,
            note="Identity shortcut (input and output shapes agree); batch-norm parameters "
            "included.",
        ),
        *block_diagrams(analyses),
    )
    checks: list[Check] = []
    if names:
        rows = depth_rows(analyses, names)
        checks += depth_checks(rows)
        section.add(
            Table(
                "resnet_depth",
                "ResNet depth against cost (paper variant), with the paper's Table 1 'FLOPs' "
                "(multiply-adds)",
                [
                    Column("model", "model"),
                    Column("depth", "layers"),
                    params_column("params", "params"),
                    macs_column("macs", "MACs, computed"),
                    macs_column("printed", "FLOPs, Table 1", digits=1),
                    percent_column("gap", "gap"),
                    Column("agreement", "printed against computed"),
                ],
                rows,
                note="Paper variant (stride in the bottleneck's first 1x1 conv, projection "
                "shortcuts where the shape changes). Printed: He et al. 2015, Table 1.",
            ),
            depth_chart(rows),
        )
    cifar = shortcut_rows(analyses)
    imagenet = imagenet_shortcut_rows(analyses)
    twins = [
        r["depth"]
        for r in cifar
        if r["plain_params"] == r["residual_params"] and r["plain_macs"] == r["residual_macs"]
    ]
    shortcuts = claim_check(
        "resnet-option-a-shortcuts",
        "option-A shortcuts add no parameters (plain and residual nets are twins)",
        len(twins) == len(cifar),
        f"plain and residual nets have equal parameters and equal MACs at {len(twins)} of "
        f"{len(cifar)} CIFAR depths ({', '.join(map(str, twins)) or 'none'}); the residual ones "
        f"add {number(cifar[0]['extra_flops'])} to {number(cifar[-1]['extra_flops'])} FLOPs "
        "(the additions).",
        "He et al. 2015, Section 4.2",
    )
    checks.append(shortcuts)
    section.add(
        Paragraph(
            "Plain against residual: what a shortcut costs. With option A (identity, zero-padded "
            "where the shape changes) it costs no parameters and no multiply-adds, only one "
            "addition per output element; projections (B, C) cost parameters and MACs."
        ),
        Table(
            "shortcut_cost_cifar",
            "CIFAR-10 nets (32×32): plain against residual with option-A shortcuts",
            [
                Column("depth", "layers"),
                Column("plain_params", "params, plain"),
                Column("residual_params", "params, residual"),
                macs_column("plain_macs", "MACs, plain", prefix="M"),
                macs_column("residual_macs", "MACs, residual", prefix="M"),
                Column("extra_flops", "extra FLOPs (additions)"),
            ],
            cifar,
        ),
        Table(
            "shortcut_cost_imagenet",
            "34 layers on ImageNet (224×224): plain against the three shortcut options",
            [
                Column("net", "net"),
                Column("params", "params"),
                Column("extra_params", "params over plain"),
                macs_column("macs", "MACs", digits=3),
                macs_column("extra_macs", "MACs over plain", prefix="M", digits=1),
            ],
            imagenet,
            note="Options from He et al. 2015, Section 3.3: A identity + zero padding, "
            "B projections where the shape changes, C projections everywhere.",
        ),
        Verdicts((shortcuts.shown(),)),
    )
    idea = Idea(
        SHORTCUTS,
        f"plain and residual CIFAR nets: equal parameters and MACs at {len(twins)} of "
        f"{len(cifar)} depths.",
        (shortcuts.id,),
        "resnet",
    )
    return Topic(section, tuple(checks), (idea,))
