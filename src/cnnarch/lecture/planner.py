"""Will it fit: the largest training batch per device of each model on four common cards: the
network people train (torchvision's where the zoo has it) in float32 and in bfloat16 autocast,
then the paper's network, where it is another variant, as its paper trained it, in float32.

The rows come from the planner's one table function, `cnnarch.planner.fit_table_rows` (called in
`fit_rows`, once per model, in the report's worker processes): each card at the memory its CUDA
runtime reports, the caching allocator's reserved bytes, the CUDA context, the cuBLAS and cuDNN
workspaces and the planner's margin; each batch is the one `cnnarch plan MODEL --card CARD`
names.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnarch.lecture.topic import Topic
from cnnarch.planner import CARDS, fit_table_rows
from cnnarch.planner.device import MEASURED_ERROR
from cnnarch.report.charts import PALETTE, draw_chart, new_figure
from cnnarch.report.document import Chart, Paragraph, Section
from cnnarch.tables import Column, Table
from cnnarch.units import percent
from cnnarch.zoo.registry import model_card

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from cnnarch.lecture.analyses import Analyses

# A card of each size people train on: 16, 24, 40 and 80 GB.
SHOWN_CARDS = ("t4", "rtx4090", "a100-40gb", "h100-80gb")
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16 autocast"}
# The papers' recipe: SGD with momentum 0.9 (AlexNet, VGG, GoogLeNet, ResNet).
STEP = {"optimizer": "momentum"}


def shown_fits(name: str) -> list[tuple[str, tuple[str, ...]]]:
    """(variant, precisions) shown for model `name`: torchvision's network in every precision
    of `PRECISIONS` and the paper's in float32 (the papers trained in float32); a model without
    a torchvision variant, its paper variant in every precision."""
    if "torchvision" in model_card(name).variants:
        return [("torchvision", tuple(PRECISIONS)), ("paper", ("fp32",))]
    return [("paper", tuple(PRECISIONS))]


def fit_rows(models: Sequence[str]) -> list[dict[str, Any]]:
    """One row per model, variant and precision of `shown_fits`: on each card of
    `SHOWN_CARDS`, the largest batch per device (None where not even the smallest fits) and
    the memory the card then holds, from the planner's table function.

    Args:
        models: zoo names.
    """
    fits = [
        fit
        for name in models
        for variant, precisions in shown_fits(name)
        for fit in fit_table_rows(
            [name], SHOWN_CARDS, variants=(variant,), precisions=precisions, **STEP
        )
    ]
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for fit in fits:
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
            Column(f"total_{key}", f"{card.name}: held", unit="bytes", show_unit="GB", digits=2)
        )
    return Table(
        "planner_cards",
        "Largest training batch per device on four cards, and the memory the card then holds",
        columns,
        rows,
        note="Predicted by the training-memory planner; `cnnarch plan MODEL --card CARD "
        "--variant V --precision P --optimizer momentum` names the same batch. SGD with "
        "momentum (as torch.optim runs it on a GPU), each model at its card's input size. "
        "Held: the caching allocator's reserved bytes at the step's worst moment (cuBLAS "
        "workspaces among them), the CUDA context, the cuDNN bound and the margin, in GB (10^9 "
        "bytes), out of the memory the card's runtime reports (above the table). — : not even "
        "the smallest batch fits.",
    )


def fit_chart(rows: list[dict[str, Any]]) -> Chart:
    def draw() -> MplFigure:
        fig, axes = new_figure(height=6.2, nrows=2)
        for ax, label in zip(axes, PRECISIONS.values(), strict=True):
            # each model once: its first variant, torchvision's where the zoo has it
            first = {}
            for row in rows:
                if row["precision"] == label:
                    first.setdefault(row["model"], row)
            shown = list(first.values())
            x = np.arange(len(shown))
            width = 0.8 / len(SHOWN_CARDS)
            for i, key in enumerate(SHOWN_CARDS):
                batches = [r[f"batch_{key}"] or 0 for r in shown]
                offset = (i - (len(SHOWN_CARDS) - 1) / 2) * width
                ax.bar(x + offset, batches, width, color=PALETTE[i], label=CARDS[key].name)
            ax.set_yscale("log")
            ax.set_xticks(x, [r["model"] for r in shown], rotation=30, ha="right")
            ax.set_ylabel("batch per device (log)")
            ax.set_title(f"Largest training batch, {label}")
        axes[0].legend(ncols=2, loc="upper right", fontsize=8)
        return fig

    names = ", ".join(CARDS[key].name for key in SHOWN_CARDS)
    return draw_chart(
        "planner_cards",
        "Largest training batch per device on four cards",
        f"SGD with momentum, per device, each model's first variant in the table below "
        f"(torchvision's where the zoo has it); float32 above, bfloat16 autocast below; on "
        f"{names}. The planner's prediction; the table has every variant.",
        draw,
    )


def start(analyses: Analyses) -> list[Future[list[dict[str, Any]]]]:
    """Start `fit_rows` of each model in the worker processes; `build` waits for them.

    Args:
        analyses: the report's analyses.
    """
    return [analyses.in_worker(fit_rows, (name,)) for name in analyses.models]


def cards_table() -> Table:
    """The shown cards at the memory their runtime reports, each with its source."""
    rows = [
        {
            "card": CARDS[key].name,
            "sold_as": CARDS[key].sold_as,
            "memory": CARDS[key].total_memory,
            "memory_gb": CARDS[key].total_memory,
            "source": CARDS[key].source,
        }
        for key in SHOWN_CARDS
    ]
    return Table(
        "planner_card_memory",
        "The cards, at the memory their CUDA runtime reports",
        [
            Column("card", "card"),
            Column("sold_as", "sold as"),
            Column("memory", "reported", unit="bytes"),
            Column("memory_gb", "reported", unit="bytes", show_unit="GB", digits=2),
            Column("source", "where it was reported"),
        ],
        rows,
        note="Less than the memory each card is sold with: the driver keeps the rest.",
    )


def build(analyses: Analyses, pending: list[Future[list[dict[str, Any]]]]) -> Topic:
    """The section from the `fit_rows` that `start` sent to the workers.

    Args:
        analyses: the report's analyses.
        pending: the rows being computed, one future per model.
    """
    analyses.step("planner: largest batch per card")
    rows = [row for fit in pending for row in fit.result()]
    section = Section("planner", "Will it fit: the largest training batch on common cards")
    section.add(
        Paragraph(
            "How many images per device can each network train on at once? The training-memory "
            "planner answers without running the model: one whole training step (forward, "
            "backward, `optimizer.step()`) traced on tensors that have a shape and a type but "
            "no values, so nothing is computed, and its allocations and frees replayed through "
            "a model of PyTorch's CUDA caching allocator. The step is the papers' recipe, SGD "
            "with momentum 0.9 (as torch.optim runs it on a GPU by default: each operation of "
            "the update applied to all the parameters together, not one parameter at a time), "
            "in float32 and in bfloat16 autocast (float32 master weights and gradients, "
            "bfloat16 copies of the weights and activations where autocast makes them) for the "
            "network people train, torchvision's where the zoo builds it; then, where the "
            "paper's network is another variant, that one in float32, as its paper trained it."
        ),
        Paragraph(
            f"The largest batch is the one whose step fits in what the card's CUDA runtime "
            f"reports, less the CUDA context, the cuDNN bound and a margin of "
            f"{percent(MEASURED_ERROR, 2)} of the predicted peak (the worst error of the "
            f"planner measured so far, docs/planner.md), on these cards:"
        ),
        cards_table(),
        Paragraph(
            "For your own card, plan against what it reports: `cnnarch plan MODEL --memory "
            "<torch.cuda.mem_get_info()[1]>B`; `cnnarch plan --help` lists the cards `--card` "
            "knows by name."
        ),
        Paragraph(
            "These are predictions (docs/planner.md says how the planner was checked). The "
            "batch is per device and per forward pass: gradient accumulation or more devices "
            "give larger batches per optimizer step."
        ),
        fit_chart(rows),
        fit_table(rows),
    )
    return Topic(section)
