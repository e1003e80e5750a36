"""Will it fit: the largest training batch per device of each model on 16, 24, 40 and 80 GB
cards, in float32 and in bfloat16 autocast, from the training-memory planner's peak lines.

The table's rows come from one function, `fit_rows`, the only call into `cnnarch.planner`
here, so that the planner's full answer (`cnnarch.planner.fit_table_rows`: the cards at the
memory their runtime reports, the caching allocator, the CUDA context, the workspaces and a
margin, for each variant) can replace it in one place. It is not used yet: on this machine it
costs 42 s of CPU for the paper variants of the lecture's eleven models, against 8 s for the
peak lines, which would take `make report` past its 30 s.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnarch.lecture.topic import Topic
from cnnarch.planner import DEFAULT_RESERVE, parse_bytes, peak_lines
from cnnarch.report.charts import PALETTE, draw_chart, new_figure
from cnnarch.report.document import Chart, Paragraph, Section
from cnnarch.tables import Column, Table
from cnnarch.units import byte_size

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from cnnarch.lecture.analyses import Analyses

# A card sold as "N GB" carries N GiB of memory (its DRAM parts come in binary sizes): the
# RTX 4090's 24 GB are 24 x 2^30 bytes, an A100 40GB's 40 x 2^30.
CARDS_GIB = (16, 24, 40, 80)
PRECISIONS = {"fp32": "float32", "bf16": "bfloat16 autocast"}
# The papers' recipe: SGD with momentum 0.9 (AlexNet, VGG, GoogLeNet, ResNet).
STEP = {"optimizer": "momentum"}


def card_bytes(gib: int) -> int:
    return gib * 2**30


def fit_rows(models: Sequence[str]) -> list[dict[str, Any]]:
    """One row per model and precision: the largest batch per device on each card and the
    training peak at that batch (None where not even the smallest batch fits).

    Two traces per row (`cnnarch.planner.peak_lines`) give the allocated peak at every batch;
    each card's answer is read off them, against N GiB less `DEFAULT_RESERVE`.

    Args:
        models: zoo names.
    """
    reserve = parse_bytes(DEFAULT_RESERVE)
    rows = []
    for name in models:
        for precision, label in PRECISIONS.items():
            lines = peak_lines(name, precision=precision, **STEP)
            row: dict[str, Any] = {"model": name, "precision": label}
            for gib in CARDS_GIB:
                batch = lines.largest_batch(card_bytes(gib) - reserve)
                row[f"batch_{gib}"] = batch or None
                row[f"peak_{gib}"] = lines.peak(batch) if batch else None
            rows.append(row)
    return rows


def fit_table(rows: list[dict[str, Any]]) -> Table:
    columns = [Column("model", "model"), Column("precision", "precision")]
    for gib in CARDS_GIB:
        columns.append(Column(f"batch_{gib}", f"{gib} GB: batch"))
        columns.append(
            Column(f"peak_{gib}", f"{gib} GB: peak", unit="bytes", show_unit="GB", digits=2)
        )
    return Table(
        "planner_cards",
        "Largest training batch per device, and the training peak at it, on 16-80 GB cards",
        columns,
        rows,
        note=f"The allocated peak of the training step from the planner's peak lines "
        f"(`cnnarch.planner.peak_lines`): SGD with momentum (as torch.optim runs it on a GPU), "
        f"paper variants at their cards' input sizes; an N GB card taken as N GiB, less "
        f"{DEFAULT_RESERVE} ({byte_size(parse_bytes(DEFAULT_RESERVE))}) kept free. A first "
        "cut: `cnnarch plan MODEL --card CARD` answers for a real card more closely.",
    )


def fit_chart(rows: list[dict[str, Any]]) -> Chart:
    def draw() -> MplFigure:
        fig, axes = new_figure(height=6.2, nrows=2)
        for ax, label in zip(axes, PRECISIONS.values(), strict=True):
            shown = [r for r in rows if r["precision"] == label]
            x = np.arange(len(shown))
            width = 0.8 / len(CARDS_GIB)
            for i, gib in enumerate(CARDS_GIB):
                batches = [r[f"batch_{gib}"] or 0 for r in shown]
                offset = (i - (len(CARDS_GIB) - 1) / 2) * width
                ax.bar(x + offset, batches, width, color=PALETTE[i], label=f"{gib} GB")
            ax.set_yscale("log")
            ax.set_xticks(x, [r["model"] for r in shown], rotation=30, ha="right")
            ax.set_ylabel("batch per device (log)")
            ax.set_title(f"Largest training batch, {label}")
        axes[0].legend(ncols=len(CARDS_GIB), loc="upper right")
        return fig

    return draw_chart(
        "planner_cards",
        "Largest training batch per device on 16, 24, 40 and 80 GB cards",
        "SGD with momentum, per device; float32 above, bfloat16 autocast below. The planner's "
        "prediction, the table below has the numbers.",
        draw,
    )


def start(analyses: Analyses) -> list[Future[list[dict[str, Any]]]]:
    """Start `fit_rows` of each model in the worker processes; `build` waits for them."""
    return [analyses.in_worker(fit_rows, (name,)) for name in analyses.models]


def build(analyses: Analyses, pending: list[Future[list[dict[str, Any]]]]) -> Topic:
    """The section from the `fit_rows` that `start` sent to the workers.

    Args:
        analyses: the report's analyses.
        pending: the rows being computed, one future per model.
    """
    analyses.step("planner: largest batch per card")
    rows = [row for fit in pending for row in fit.result()]
    reserve = byte_size(parse_bytes(DEFAULT_RESERVE))
    section = Section("planner", "Will it fit: the largest training batch on common cards")
    section.add(
        Paragraph(
            "How many images per device can each network train on at once? The training-memory "
            "planner answers without running the model: the peak of one whole training step "
            "(forward, backward, `optimizer.step()`) traced on tensors that have a shape and a "
            "type but no values, so nothing is computed. The step is the papers' recipe, SGD "
            "with momentum 0.9 (as torch.optim runs it on a GPU by default: each operation of "
            "the update applied to all the parameters together, not one parameter at a time), "
            "in float32 and in bfloat16 autocast (float32 master weights and gradients, "
            "bfloat16 copies of the weights and activations where autocast makes "
            "them). Each model is the `paper` variant at its card's input size."
        ),
        Paragraph(
            f"This table is a first cut: the step's allocated peak, read off the per-moment "
            f"lines of two traces (batch 1 and 2), against a card sold as N GB taken as N GiB "
            f"(N x 2^30 bytes) less {DEFAULT_RESERVE} ({reserve}) kept free for the CUDA "
            "context and the caching allocator. A real card gives a program less: what its "
            "CUDA runtime reports is below N GiB, and the allocator, the context and the "
            "cuBLAS and cuDNN workspaces take more than the allocated peak. `cnnarch plan "
            "MODEL --card CARD` counts all of them, at the memory the named card reports, "
            "with a margin, and names a batch that can be smaller than this table's; for "
            "your own card, `cnnarch plan MODEL --memory <torch.cuda.mem_get_info()[1]>B`."
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
