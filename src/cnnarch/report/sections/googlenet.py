"""GoogLeNet: Table 1 of the paper computed, the lecture's Inception module example, and the
auxiliary classifiers' share of the parameters."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnarch.experiments.inception import InceptionCost, lecture_example
from cnnarch.report.charts import new_figure
from cnnarch.report.context import Context
from cnnarch.report.document import Check, Checks, Paragraph, Section
from cnnarch.report.layers import output_shape
from cnnarch.report.numbers import explain_gap, parse_printed, relative_difference
from cnnarch.report.tables import Column, Table
from cnnarch.units import signed_percent
from cnnarch.zoo.registry import create_model

# The modules of the zoo's GoogLeNet behind each row of Table 1, in the table's order.
TABLE1_MODULES: tuple[tuple[str, ...], ...] = (
    ("conv1",),
    ("maxpool1",),
    ("conv2", "conv3"),
    ("maxpool2",),
    ("inception3a",),
    ("inception3b",),
    ("maxpool3",),
    ("inception4a",),
    ("inception4b",),
    ("inception4c",),
    ("inception4d",),
    ("inception4e",),
    ("maxpool4",),
    ("inception5a",),
    ("inception5b",),
    ("avgpool",),
    ("dropout",),
    ("fc",),
    (),  # softmax: part of the loss, not of the model
)
K = 1024  # Table 1's "K" for parameters
TABLE1_SOURCE = "Szegedy et al. 2015, Table 1"
PAPER_TEXT = "Szegedy et al. 2015, text"
SLIDES = "CS231n 2017 Lecture 9 slides"


def weights(module: nn.Module) -> int:
    """Weights without biases (Table 1's convention): parameters with more than one dimension."""
    return sum(p.numel() for p in module.parameters() if p.dim() > 1)


def table1_rows(summary: Any, model: nn.Module, printed: list[list[Any]]) -> list[dict[str, Any]]:
    by_path = {row.path: row for row in summary.collapse(1).rows}
    rows = []
    for paper_row, paths in zip(printed, TABLE1_MODULES, strict=True):
        kind, patch, out, *_rest, params, ops = paper_row
        found = [by_path[p] for p in paths if p in by_path]
        shape = output_shape(found[-1]) if found else None
        rows.append(
            {
                "type": kind,
                "patch": patch,
                "printed_output": out,
                "output": None if shape is None else _hwc(shape),
                "printed_params": None if params is None else parse_printed(params, k=K),
                "printed_params_text": params,
                "printed_ops_text": ops,
                "weights": sum(weights(model.get_submodule(p)) for p in paths) if paths else None,
                "printed_ops": None if ops is None else parse_printed(ops),
                "macs": sum(int(r.macs) for r in found) if found else None,
            }
        )
    return rows


def _hwc(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in (*shape[1:], shape[0])) if len(shape) == 3 else str(shape[-1])


def _gap(computed: float | None, printed: float | None) -> float | None:
    if computed in (None, 0) or printed is None:
        return None
    return 100 * relative_difference(computed, printed)


def table1(rows: list[dict[str, Any]]) -> Table:
    for row in rows:
        row["params_gap"] = _gap(row["weights"], row["printed_params"])
        row["ops_gap"] = _gap(row["macs"], row["printed_ops"])
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
            Column("params_gap", "params gap", unit="%", digits=1),
            Column("printed_ops_text", "ops, printed"),
            Column("macs", "MACs, computed", unit="MACs", show_unit="M", scale=1e6, digits=1),
            Column("ops_gap", "ops gap", unit="%", digits=1),
            Column("agreement", "printed against computed"),
        ],
        rows,
        note="Printed: Szegedy et al. 2015, Table 1 (weights only, K = 1024; ops = "
        "multiply-adds, M = 10⁶). Gap = (printed − computed) / computed.",
    )


def _record_table1(ctx: Context, rows: list[dict[str, Any]]) -> None:
    """Put each printed params and ops figure beside its computed one, with the reason."""
    for row in rows:
        label = f"Table 1 {row['type']} {row['patch']}".strip()
        verdicts = []
        for computed, printed, quantity, k in (
            (row["weights"], row["printed_params_text"], "weights", K),
            (row["macs"], row["printed_ops_text"], "multiply-adds", 1e3),
        ):
            if not computed or printed is None:
                continue
            why = ctx.compare(
                "GoogLeNet", f"{label}: {quantity}", computed, printed, TABLE1_SOURCE, k=k
            ).why
            verdicts.append(f"{quantity}: {why}")
        row["agreement"] = "; ".join(verdicts) or None


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
            Column("macs", "ops (multiply-adds)", unit="MACs", show_unit="M", scale=1e6, digits=1),
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
            label=f"naive: {naive.total_macs / 1e6:,.0f}M total",
            color="#D55E00",
        )
        ax.barh(
            y - 0.2,
            [b.macs / 1e6 for b in bottleneck.branches],
            height=0.4,
            label=f"1x1 bottlenecks: {bottleneck.total_macs / 1e6:,.0f}M total",
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
        "Multiply-adds of each branch; the 1x1 convs shrink the depth the 3x3 and 5x5 convs "
        "see from 256 to 64.",
        draw,
    )


def inception_example_blocks(ctx: Context) -> list[Any]:
    naive, bottleneck = lecture_example(bias=False)
    example = ctx.published["cs231n_lecture9_2017"]["inception_module_example"]
    checks = []
    for label, cost in (("naive", naive), ("bottleneck", bottleneck)):
        printed = example[label]["conv_ops_as_printed"]
        why = explain_gap(cost.total_macs, printed)
        if why != "rounded as printed":
            why = (
                f"the slide's own per-layer products (28x28x64x1x1x256 and so on) sum to "
                f"{cost.total_macs / 1e6:,.0f}M; the printed total does not follow from them"
            )
        comparison = ctx.compare(
            "Inception module", f"{label} ops", cost.total_macs, printed, SLIDES, why
        )
        depth = example[label]["output_depth"]
        checks.append(
            Check(
                f"{label}: {printed} ops, output depth {depth}",
                why == "rounded as printed" and cost.output_depth == depth,
                f"computed {cost.total_macs:,} multiply-adds (printed "
                f"{signed_percent(comparison.difference, 1)} from it: {why}); output "
                f"{cost.output_depth} deep.",
                SLIDES,
            )
        )
    ratio = naive.total_macs / bottleneck.total_macs
    return [
        Paragraph(
            f"The lecture's example: with 1x1 bottlenecks the module costs "
            f"{bottleneck.total_macs / 1e6:,.0f}M instead of {naive.total_macs / 1e6:,.0f}M "
            f"multiply-adds ({ratio:.1f}x less), and its output is {bottleneck.output_depth} "
            f"deep instead of {naive.output_depth} (the naive pool branch passes all 256 input "
            "channels through, so depth can only grow from module to module)."
        ),
        inception_table(naive, bottleneck),
        inception_figure(ctx, naive, bottleneck),
        Checks(tuple(checks)),
    ]


def aux_share(summary: Any) -> tuple[int, int]:
    """Parameters of the auxiliary classifiers, and of the whole model."""
    rows = {row.path: row for row in summary.collapse(1).rows}
    aux = sum(int(rows[p].params) for p in ("aux1", "aux2") if p in rows)
    return aux, int(summary.total_params)


def googlenet_section(ctx: Context) -> Section:
    summary = ctx.analyze("googlenet")
    with torch.device("meta"):
        model = create_model("googlenet")
    paper = ctx.published["googlenet_paper"]
    rows = table1_rows(summary, model, paper["rows"])
    _record_table1(ctx, rows)
    # The heads run only in training mode, so their rows come from the training analysis.
    aux, total = aux_share(ctx.analyze_training("googlenet"))
    main = total - aux
    section = Section("googlenet", "GoogLeNet: Table 1 and the Inception module")
    section.add(
        Paragraph(
            "Table 1 of the paper beside the computed numbers. Where the gap is more than a "
            "rounding, the printed figure does not follow from the filter counts printed in the "
            "same row (conv1's 2.7K is 7·7·3·64 = 9,408 weights, for example); the computed "
            "column is derived from those counts."
        ),
        table1(rows),
        Paragraph(
            f"Auxiliary classifiers: {aux:,} of {total:,} parameters ({aux / total:.0%}) sit in "
            f"the two training-only heads on (4a) and (4d); without them GoogLeNet has "
            f"{main:,}. They cost nothing at inference: in eval mode the model skips them."
        ),
    )
    budget = 1.5e9
    ctx.compare(
        "GoogLeNet",
        "multiply-adds at inference",
        summary.total_macs,
        "1.5G",
        PAPER_TEXT,
        "the paper states a design budget, not a count of this network",
    )
    checks = [
        Check(
            "a budget of 1.5 billion multiply-adds at inference",
            summary.total_macs <= budget,
            f"computed {summary.total_macs / 1e9:.2f} G multiply-adds per 224×224 image, "
            f"{summary.total_macs / budget - 1:+.1%} against the budget.",
            PAPER_TEXT,
        )
    ]
    if "alexnet" in ctx.models:
        alexnet = ctx.analyze("alexnet").total_params
        checks.append(
            Check(
                "12x fewer parameters than AlexNet",
                alexnet / main >= 11.5,
                f"AlexNet {alexnet:,} / GoogLeNet without aux heads {main:,} = "
                f"{alexnet / main:.1f}x (with the heads: {alexnet / total:.1f}x). The lecture's "
                "'12x' divides 60M by 5M.",
                PAPER_TEXT,
            )
        )
    section.add(Checks(tuple(checks)))
    section.add(*inception_example_blocks(ctx))
    return section
