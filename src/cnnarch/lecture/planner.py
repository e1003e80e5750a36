"""Will it fit: the largest training batch per device of each model on common cards, in float32
and in bfloat16 autocast, predicted by the training-memory planner.

The table's rows come from one call into the planner, `cnnarch.planner.fit_table_rows` (in
`fit_rows`): each card at the memory its CUDA runtime reports, less the CUDA context, the
cuBLAS and cuDNN workspaces and the planner's margin, with the caching allocator's reserved
bytes; the batch `cnnarch plan MODEL --card CARD` names.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure as MplFigure

from cnnarch.lecture.topic import Topic
from cnnarch.planner import CARDS, fit_table_rows
from cnnarch.report.charts import PALETTE, draw_chart, new_figure
from cnnarch.report.document import Chart, Paragraph, Section
from cnnarch.tables import Column, Table
from cnnarch.units import byte_size

if TYPE_CHECKING:
    from cnnarch.lecture.analyses import Analyses

# A card of each size people train on: 16, 24, 40 and 80 GB.
SHOWN_CARDS = ("t4", "rtx4090", "a100-40gb", "h100-80gb")
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16 autocast"}
# The papers' recipe: SGD with momentum 0.9 (AlexNet, VGG, GoogLeNet, ResNet).
STEP = {"optimizer": "momentum"}


def fit_rows(models: Sequence[str]) -> list[dict[str, Any]]:
    """One row per model, variant and precision: on each card of `SHOWN_CARDS`, the largest
    batch per device and the memory the card then holds (None where not even the smallest
    batch fits). The one call into the planner.

    Args:
        models: zoo names.
    """
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    found = fit_table_rows(models, SHOWN_CARDS, precisions=tuple(PRECISIONS), **STEP)
    for fit in found:
        key = (fit.model, fit.variant, fit.precision)
        row = rows.setdefault(
            key,
            {"model": fit.model, "variant": fit.variant, "precision": PRECISIONS[fit.precision]},
        )
        row[f"batch_{fit.card}"] = fit.batch or None
        row[f"total_{fit.card}"] = fit.total
    return list(rows.values())


def fit_table(rows: list[dict[str, Any]]) -> Table:
    columns = [
        Column("model", "model"),
        Column("variant", "variant"),
        Column("precision", "precision"),
    ]
    for key in SHOWN_CARDS:
        card = CARDS[key]
        columns.append(Column(f"batch_{key}", f"{card.name}: batch"))
        columns.append(
            Column(
                f"total_{key}", f"{card.name}: memory used", unit="bytes", show_unit="GB", digits=2
            )
        )
    return Table(
        "planner_cards",
        "Largest training batch per device, and the memory the card then holds",
        columns,
        rows,
        note="Predicted by the training-memory planner (`cnnarch plan MODEL --card CARD "
        "--variant V --precision P --optimizer momentum` names the same batch): SGD with "
        "momentum (foreach, CUDA's default), each model at its card's input size. Memory used: "
        "the caching allocator's reserved bytes at the peak, the CUDA context, the cuBLAS and "
        "cuDNN workspaces and the planner's margin, out of what the card's runtime reports.",
    )


def fit_chart(rows: list[dict[str, Any]]) -> Chart:
    def draw() -> MplFigure:
        fig, axes = new_figure(height=6.2, nrows=2)
        for ax, label in zip(axes, PRECISIONS.values(), strict=True):
            shown = [r for r in rows if r["precision"] == label and r["variant"] == "paper"]
            x = np.arange(len(shown))
            width = 0.8 / len(SHOWN_CARDS)
            for i, key in enumerate(SHOWN_CARDS):
                batches = [r[f"batch_{key}"] or 0 for r in shown]
                offset = (i - (len(SHOWN_CARDS) - 1) / 2) * width
                ax.bar(x + offset, batches, width, color=PALETTE[i], label=CARDS[key].name)
            ax.set_yscale("log")
            ax.set_xticks(x, [r["model"] for r in shown], rotation=30, ha="right")
            ax.set_ylabel("batch per device (log)")
            ax.set_title(f"Largest training batch, {label} (paper variants)")
        axes[0].legend(ncols=2, loc="upper right", fontsize=8)
        return fig

    names = ", ".join(CARDS[key].name for key in SHOWN_CARDS)
    return draw_chart(
        "planner_cards",
        "Largest training batch per device on common cards",
        f"SGD with momentum, per device, the paper variants; float32 above, bfloat16 autocast "
        f"below; on {names}. The planner's prediction; the table below has every variant.",
        draw,
    )


def start(analyses: Analyses) -> list[Future[list[dict[str, Any]]]]:
    """Start `fit_rows` of each model in the worker processes; `build` waits for them.

    Args:
        analyses: the report's analyses.
    """
    return [analyses.in_worker(fit_rows, (name,)) for name in analyses.models]


def build(analyses: Analyses, pending: list[Future[list[dict[str, Any]]]]) -> Topic:
    """The section from the `fit_rows` that `start` sent to the workers.

    Args:
        analyses: the report's analyses.
        pending: the rows being computed, one future per model.
    """
    analyses.step("planner: largest batch per card")
    rows = [row for fit in pending for row in fit.result()]
    cards = "; ".join(
        f"{CARDS[key].name} (sold as {CARDS[key].sold_as}): "
        f"{byte_size(CARDS[key].total_memory, 'GB', 2)} as its runtime reports it"
        for key in SHOWN_CARDS
    )
    section = Section("planner", "Will it fit: the largest training batch on common cards")
    section.add(
        Paragraph(
            "How many images per device can each network train on at once? The training-memory "
            "planner answers without running the model: the peak of one whole training step "
            "(forward, backward, `optimizer.step()`) traced on meta tensors and replayed "
            "through a model of PyTorch's caching allocator. The step is the papers' recipe, "
            "SGD with momentum 0.9 (torch.optim's foreach implementation, CUDA's default), in "
            "float32 and in bfloat16 autocast (float32 master weights and gradients, bfloat16 "
            "copies of the weights and activations where autocast makes them), for each "
            "variant the zoo builds of a model."
        ),
        Paragraph(
            f"Cards, at the memory their CUDA runtime reports (less than the memory they are "
            f"sold with): {cards}. For your own card, plan against what it reports: "
            "`cnnarch plan MODEL --train --memory <torch.cuda.mem_get_info()[1]>B`; "
            "`cnnarch plan --help` lists the cards `--card` knows by name."
        ),
        Paragraph(
            "These are predictions (the planner's page, docs/planner.md, says how they were "
            "checked). The batch is per device and per forward pass: gradient accumulation or "
            "more devices give larger batches per optimizer step."
        ),
        fit_chart(rows),
        fit_table(rows),
    )
    return Topic(section)
