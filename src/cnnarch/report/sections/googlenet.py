"""GoogLeNet: Table 1 of the paper computed, the lecture's Inception module example, and the
auxiliary classifiers' share of the parameters."""

from __future__ import annotations

from typing import Any

import torch

from cnnarch.experiments.inception import InceptionCost
from cnnarch.lecture.claims import AUXILIARY, BOTTLENECKS
from cnnarch.lecture.googlenet import (
    PAPER_TEXT,
    SLIDES,
    TABLE1_SOURCE,
    K,
    aux_heads,
    googlenet_checks,
    inception_example,
    table1_rows,
)
from cnnarch.report.charts import new_figure
from cnnarch.report.context import Context
from cnnarch.report.diagrams import inception_diagram
from cnnarch.report.document import Checks, Paragraph, Section
from cnnarch.tables import Column, Table, macs_column, percent_column
from cnnarch.units import number


def table1(rows: list[dict[str, Any]]) -> Table:
    return Table(
        "googlenet_table1",
        "GoogLeNet Table 1: printed beside computed (paper variant, 224×224, one image)",
        [
            Column("type", "type"),
            Column("patch", "patch/stride"),
            Column("printed_output", "output, printed"),
            Column("output", "output, computed"),
            Column("printed_params_text", "params, printed"),
            Column(
                "weights", "weights, computed", unit="weights", show_unit="K", scale=K, digits=1
            ),
            percent_column("params_gap", "params gap"),
            Column("printed_ops_text", "ops, printed"),
            macs_column("macs", "MACs, computed", prefix="M", digits=1),
            percent_column("ops_gap", "ops gap"),
            Column("agreement", "printed against computed"),
        ],
        rows,
        note="Printed: Szegedy et al. 2015, Table 1 (weights only, K = 1024; ops = "
        "multiply-adds, M = 10⁶). Gap: computed relative to printed.",
    )


def _record_table1(ctx: Context, rows: list[dict[str, Any]]) -> None:
    """Put each printed params and ops figure beside its computed one."""
    for row in rows:
        label = f"Table 1 {row['type']} {row['patch']}".strip()
        for computed, printed, quantity, k in (
            (row["weights"], row["printed_params_text"], "weights", K),
            (row["macs"], row["printed_ops_text"], "multiply-adds", 1e3),
        ):
            if computed and printed is not None:
                ctx.compare(
                    "GoogLeNet", f"{label}: {quantity}", computed, printed, TABLE1_SOURCE, k=k
                )


def inception_table(naive: InceptionCost, bottleneck: InceptionCost) -> Table:
    rows = []
    for version, cost in (("naive", naive), ("1x1 bottlenecks", bottleneck)):
        for branch in cost.branches:
            rows.append(
                {
                    "version": version,
                    "branch": branch.layers,
                    "depth": branch.out_channels,
                    "params": branch.params,
                    "macs": branch.macs,
                }
            )
        rows.append(
            {
                "version": version,
                "branch": "total (concatenated)",
                "depth": cost.output_depth,
                "params": cost.total_params,
                "macs": cost.total_macs,
            }
        )
    return Table(
        "inception_module_example",
        "The lecture's Inception module on a 28×28×256 input, naive and with 1x1 bottlenecks",
        [
            Column("version", "module"),
            Column("branch", "branch"),
            Column("depth", "output depth"),
            Column("params", "weights"),
            macs_column("macs", "ops (multiply-adds)", prefix="M", digits=1),
        ],
        rows,
        note="Built from nn.Conv2d / nn.MaxPool2d and counted by the analyzer; weights only "
        "(no biases), as the slide counts. `cnnarch.inception_cost(...)` computes any module.",
    )


def inception_figure(ctx: Context, naive: InceptionCost, bottleneck: InceptionCost) -> Any:
    def draw() -> Any:
        fig, (ax,) = new_figure(height=3.8)
        labels = ["1x1", "3x3", "5x5", "pool"]
        y = torch.arange(len(labels)).numpy()
        ax.barh(
            y + 0.2,
            [b.macs / 1e6 for b in naive.branches],
            height=0.4,
            label=f"naive: {number(naive.total_macs / 1e6, 0)}M total",
            color="#D55E00",
        )
        ax.barh(
            y - 0.2,
            [b.macs / 1e6 for b in bottleneck.branches],
            height=0.4,
            label=f"1x1 bottlenecks: {number(bottleneck.total_macs / 1e6, 0)}M total",
            color="#009E73",
        )
        ax.set_yticks(y, [f"{lab} branch" for lab in labels])
        ax.invert_yaxis()
        ax.set_xlabel("multiply-adds per image (millions)")
        ax.set_title("Inception module on 28×28×256: ops per branch")
        ax.legend(loc="lower right")
        return fig

    return ctx.figure(
        "inception_module_ops",
        "Inception module: naive vs 1x1 bottlenecks",
        "Multiply-adds of each branch; the 1x1 convs shrink the depth the 3x3 and 5x5 convs see "
        "from 256 to 64.",
        draw,
    )


def inception_example_blocks(ctx: Context) -> list[Any]:
    example = inception_example()
    naive, bottleneck = example.naive, example.bottleneck
    printed = ctx.published["cs231n_lecture9_2017"]["inception_module_example"]
    for label, cost in (("naive", naive), ("bottleneck", bottleneck)):
        ctx.compare(
            "Inception module",
            f"{label} ops",
            cost.total_macs,
            printed[label]["conv_ops_as_printed"],
            SLIDES,
            example.reasons[label],
        )
    ratio = naive.total_macs / bottleneck.total_macs
    ctx.key_idea(
        BOTTLENECKS,
        f"the lecture's Inception module: {number(naive.total_macs / 1e6, 0)}M → "
        f"{number(bottleneck.total_macs / 1e6, 0)}M multiply-adds ({ratio:.1f}× less), output "
        f"{naive.output_depth} → {bottleneck.output_depth} deep.",
        [example.checks[-1]],
        "googlenet",
    )
    return [
        Paragraph(
            "The lecture's example, a module on a 28×28×256 input: the naive pool branch passes "
            "all 256 input channels through, so depth can only grow from module to module; 1x1 "
            "bottlenecks cut the cost and the depth."
        ),
        inception_table(naive, bottleneck),
        inception_diagram(),
        inception_figure(ctx, naive, bottleneck),
        Checks(example.checks),
    ]


def googlenet_section(ctx: Context) -> Section:
    summary = ctx.analyze("googlenet")
    rows = table1_rows(summary)
    _record_table1(ctx, rows)
    # The heads run only in training mode, so their rows come from the training analysis.
    heads = aux_heads(ctx.analyze_training("googlenet"))
    alexnet = ctx.analyze("alexnet").total_params if "alexnet" in ctx.models else None
    checks = googlenet_checks(summary, heads, alexnet)
    ctx.compare(
        "GoogLeNet",
        "multiply-adds at inference (a budget)",
        summary.total_macs,
        "1.5G",
        PAPER_TEXT,
        f"a budget, {'met' if checks[0].holds else 'exceeded'}",
    )
    ctx.key_idea(
        AUXILIARY,
        f"GoogLeNet: the heads hold {heads.params / 1e6:.2f}M of all {heads.total / 1e6:.2f}M "
        f"parameters ({heads.params / heads.total:.0%}); an inference pass uses "
        f"{summary.rows[0].params / 1e6:.2f}M.",
        [checks[1]],
        "googlenet",
    )
    section = Section("googlenet", "GoogLeNet: Table 1 and the Inception module")
    section.add(
        Paragraph(
            "Table 1 of the paper beside the computed numbers. Where the gap is more than a "
            "rounding, the printed figure does not follow from the filter counts printed in the "
            "same row (conv1's 2.7K is 7·7·3·64 = 9,408 weights, for example); the computed "
            "column is derived from those counts."
        ),
        table1(rows),
        Checks(tuple(checks)),
        *inception_example_blocks(ctx),
    )
    return section
