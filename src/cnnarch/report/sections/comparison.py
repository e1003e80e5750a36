"""The lecture's comparison: accuracy against compute, memory against parameters, and the
slide's five observations checked against the numbers."""

from __future__ import annotations

import dataclasses
import html
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cnnarch.experiments.comparison import (
    ModelCost,
    check_observations,
    comparison_variant,
    model_cost,
)
from cnnarch.lecture.claims import DEEPER_IS_BETTER, TRADE_OFF
from cnnarch.report.charts import family_color, label_points, new_figure, plain_log_axis
from cnnarch.report.context import Context
from cnnarch.report.document import Check, Checks, Paragraph, Section
from cnnarch.tables import (
    Column,
    Table,
    macs_column,
    megabytes_column,
    params_column,
    percent_column,
)
from cnnarch.units import number

BUBBLE_AREA_PER_MPARAM = 6.0  # points^2 per million parameters
TORCHVISION = "torchvision 0.29 weights metadata"


def costs(ctx: Context) -> list[ModelCost]:
    found = []
    for name in ctx.models:
        card = ctx.card(name)
        variant = comparison_variant(card)
        summary = ctx.analyze(name, variant)
        training = ctx.analyze_training(name, variant)
        found.append(model_cost(card, variant, summary, training, ctx.batch))
    return found


def comparison_table(rows: Sequence[ModelCost], batch: int) -> Table:
    columns = [
        Column("name", "model"),
        Column("variant", "variant"),
        percent_column("top1", "top-1"),
        params_column("params", "params"),
        params_column("inference_params", "params used at inference"),
        macs_column("macs", "MACs"),
        megabytes_column("activations", "activations / image"),
        megabytes_column("train", f"training peak, batch {batch}", digits=0),
    ]
    table_rows = [
        {
            "name": c.name,
            "variant": c.variant,
            "top1": c.top1,
            "params": c.params,
            "inference_params": c.inference_params,
            "macs": c.macs,
            "activations": c.activation_bytes,
            "train": c.training_peak_bytes,
        }
        for c in rows
    ]
    return Table(
        "comparison",
        "The models compared: accuracy (published) and cost (computed)",
        columns,
        table_rows,
        note=f"Top-1: {'; '.join(sorted({c.top1_source for c in rows if c.top1_source}))} "
        "(— where no published weights exist). The other columns are counted as the page's first "
        "section says.",
    )


def bubble_figure(ctx: Context, rated: Sequence[ModelCost]) -> Any:
    def draw() -> Any:
        fig, (ax,) = new_figure(height=5.2)
        for c in rated:
            ax.scatter(
                c.macs / 1e9,
                c.top1,
                s=BUBBLE_AREA_PER_MPARAM * c.inference_params / 1e6,
                color=family_color(c.name),
                alpha=0.55,
                edgecolor="black",
                linewidth=0.6,
            )
        plain_log_axis(ax)
        ax.set_xlabel("compute per image (GMACs, log scale)")
        ax.set_ylabel("ImageNet top-1 accuracy (%)")
        ax.set_title("Accuracy against compute; bubble area ∝ parameters used at inference")
        for size in (5, 25, 100):
            ax.scatter(
                [],
                [],
                s=BUBBLE_AREA_PER_MPARAM * size,
                color="#bbbbbb",
                edgecolor="black",
                linewidth=0.6,
                label=f"{size}M params",
            )
        ax.legend(loc="lower right", labelspacing=1.6, borderpad=1.0, title="bubble area")
        low, high = min(c.top1 for c in rated), max(c.top1 for c in rated)
        ax.set_ylim(low - 4, high + 3)
        macs = [c.macs / 1e9 for c in rated]
        ax.set_xlim(min(macs) / 1.6, max(macs) * 1.8)
        label_points(
            ax,
            macs,
            [c.top1 for c in rated],
            [c.name for c in rated],
            [BUBBLE_AREA_PER_MPARAM * c.inference_params / 1e6 for c in rated],
        )
        return fig

    figure = ctx.figure(
        "comparison_accuracy_compute",
        "Top-1 accuracy against GMACs",
        "Accuracy published with torchvision's weights; MACs and parameters computed for the "
        "same networks (the `torchvision` variants). Hover or focus a bubble for its numbers "
        "(arrow keys move between bubbles); click it, or press Enter, to go to the model's "
        "section.",
        draw,
    )
    return dataclasses.replace(figure, inline_svg=bubble_svg(rated))


SVG_W, SVG_H = 820, 440
PLOT = (64, 36, 800, 392)  # left, top, right, bottom of the plotting area, px


def _name_place(
    name: str, x: float, y: float, r: float, taken: list[tuple[float, ...]]
) -> tuple[float, float, str]:
    """Where a bubble's name goes: right of it, else left, above or below, the first place
    that overlaps no bubble and no name placed before (`taken`, which it joins)."""
    width, height = 6.6 * len(name), 12.0
    places = [
        (x + r + 3, y + 4, "start", (x + r + 3, y - 8, x + r + 3 + width, y + 4)),
        (x - r - 3, y + 4, "end", (x - r - 3 - width, y - 8, x - r - 3, y + 4)),
        (x, y - r - 4, "middle", (x - width / 2, y - r - 4 - height, x + width / 2, y - r - 4)),
        (x, y + r + 13, "middle", (x - width / 2, y + r + 1, x + width / 2, y + r + 13)),
    ]
    own = (x - r, y - r, x + r, y + r)

    def free(box: tuple[float, ...]) -> bool:
        return not any(
            box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3]
            for t in taken
            if t != own
        )

    name_x, name_y, anchor, box = next((p for p in places if free(p[3])), places[0])
    taken.append(box)
    return name_x, name_y, anchor


def bubble_svg(rated: Sequence[ModelCost]) -> str:
    """The bubble chart as inline SVG: each bubble a link to its model's section, its exact
    numbers in its label (shown on hover and focus by the page's script)."""
    left, top, right, bottom = PLOT
    macs = [c.macs / 1e9 for c in rated]
    low_x, high_x = math.log10(min(macs) / 1.6), math.log10(max(macs) * 1.8)
    low_y = math.floor(min(c.top1 for c in rated) - 4)
    high_y = math.ceil(max(c.top1 for c in rated) + 3)

    def x_of(gmacs: float) -> float:
        return left + (right - left) * (math.log10(gmacs) - low_x) / (high_x - low_x)

    def y_of(top1: float) -> float:
        return bottom - (bottom - top) * (top1 - low_y) / (high_y - low_y)

    def radius(params: float) -> float:  # the PNG's area per parameter, points to pixels
        return 4 / 3 * math.sqrt(BUBBLE_AREA_PER_MPARAM * params / 1e6 / math.pi)

    parts = [
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
        'fill="#fff" stroke="#d1d9e0"/>'
    ]
    for tick in (0.5, 1, 2, 5, 10, 20, 50):
        if low_x <= math.log10(tick) <= high_x:
            x = x_of(tick)
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" stroke="#eef1f4"/>'
                f'<text x="{x:.1f}" y="{bottom + 16}" font-size="11" text-anchor="middle" '
                f'fill="#59636e">{tick:g}</text>'
            )
    for tick in range(low_y + (-low_y) % 5, high_y + 1, 5):
        y = y_of(tick)
        parts.append(
            f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef1f4"/>'
            f'<text x="{left - 8}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#59636e">{tick}</text>'
        )
    parts.append(
        f'<text x="{(left + right) / 2}" y="{SVG_H - 10}" font-size="12" text-anchor="middle">'
        "compute per image (GMACs, log scale)</text>"
        f'<text transform="rotate(-90)" x="{-(top + bottom) / 2}" y="16" font-size="12" '
        'text-anchor="middle">ImageNet top-1 accuracy (%)</text>'
        f'<text x="{left}" y="22" font-size="13" font-weight="700">Accuracy against compute; '
        "bubble area ∝ parameters used at inference</text>"
    )
    bubbles = [(c, x_of(c.macs / 1e9), y_of(c.top1), radius(c.inference_params)) for c in rated]
    taken = [(x - r, y - r, x + r, y + r) for _, x, y, r in bubbles]
    for c, x, y, r in sorted(bubbles, key=lambda b: -b[3]):  # small bubbles drawn on top
        label = html.escape(
            f"{c.name} ({c.variant}): top-1 {c.top1:.2f}% with torchvision's weights; "
            f"{number(c.macs)} MACs ({c.macs / 1e9:.2f} G) per image; {number(c.inference_params)} "
            f"parameters at inference ({number(c.params)} in all). Go to its section.",
            quote=True,
        )
        name_x, name_y, anchor = _name_place(c.name, x, y, r, taken)
        parts.append(
            f'<a href="#model-{c.name}" class="point" data-tip="" tabindex="-1" '
            f'aria-label="{label}"><circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" '
            f'fill="{family_color(c.name)}" fill-opacity="0.55" stroke="#1f2328" '
            f'stroke-width="0.8"/><text x="{name_x:.1f}" y="{name_y:.1f}" font-size="11.5" '
            f'text-anchor="{anchor}" fill="#1f2328">{html.escape(c.name)}</text></a>'
        )
    legend_x = right - 150
    for i, size in enumerate((5, 25, 100)):
        r = radius(size * 1e6)
        y = bottom - 110 + 36 * i
        parts.append(
            f'<circle cx="{legend_x + 16}" cy="{y:.1f}" r="{r:.1f}" fill="#bbbbbb" '
            f'fill-opacity="0.7" stroke="#1f2328" stroke-width="0.6"/>'
            f'<text x="{legend_x + 40}" y="{y + 4:.1f}" font-size="11">{size}M params</text>'
        )
    title = "Top-1 accuracy against GMACs"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SVG_W} {SVG_H}" '
        f'width="{SVG_W}" height="{SVG_H}" font-family="system-ui, sans-serif" role="group" '
        f'aria-label="{title}">{"".join(parts)}</svg>'
    )


def memory_figure(ctx: Context, rows: Sequence[ModelCost]) -> Any:
    batch = ctx.batch

    def draw() -> Any:
        fig, (left, right) = new_figure(height=4.4, ncols=2)
        params = np.array([c.params / 1e6 for c in rows])
        names = [c.name for c in rows]
        colors = [family_color(n) for n in names]
        forward = [c.activation_bytes / 1e6 for c in rows]
        left.scatter(params, forward, color=colors, edgecolor="black", linewidth=0.5)
        left.set_title("Forward activations, one image")
        left.set_ylabel("activation memory (MB)")
        trained = [(c, c.training_peak_bytes / 1e6) for c in rows if c.training_peak_bytes]
        right.scatter(
            [c.params / 1e6 for c, _ in trained],
            [m for _, m in trained],
            color=[family_color(c.name) for c, _ in trained],
            edgecolor="black",
            linewidth=0.5,
        )
        right.set_title(f"Training peak, batch {batch}")
        right.set_ylabel("peak memory (MB)")
        for ax in (left, right):
            plain_log_axis(ax)
            ax.set_xlabel("parameters (millions, log scale)")
            ax.set_xlim(min(params) / 1.5, max(params) * 2.2)
            ax.set_ylim(bottom=0)
        label_points(left, params, forward, names)
        label_points(
            right,
            [c.params / 1e6 for c, _ in trained],
            [m for _, m in trained],
            [c.name for c, _ in trained],
        )
        return fig

    return ctx.figure(
        "comparison_memory_params",
        "Memory against parameters",
        f"The variants of the table above. Left: forward activations for one image. Right: "
        f"training peak at batch {batch}.",
        draw,
    )


def torchvision_checks(ctx: Context, rows: Sequence[ModelCost]) -> None:
    """Record each computed torchvision-variant count beside torchvision's published one."""
    for c in rows:
        facts = ctx.card(c.name).published.get("torchvision")
        if c.variant != "torchvision" or not facts:
            continue
        # torchvision counts the model as its weights load it: GoogLeNet's without the
        # auxiliary heads, Inception-v3's with its head. Compare the count that is its kind.
        counted = facts["params"]
        if counted == c.params:
            quantity, computed = "params, all (torchvision variant)", c.params
        else:
            quantity, computed = "params at inference (torchvision variant)", c.inference_params
        ctx.compare(c.name, quantity, computed, counted, TORCHVISION)
        gflops = facts["GFLOPS (= conv+linear GMACs)"]
        ctx.compare(
            c.name, "GMACs (torchvision 'GFLOPS')", c.macs / 1e9, f"{gflops:.3f}", TORCHVISION
        )


# The third-party reading's names for the zoo's models.
CANZIANI_NAMES = {
    "alexnet": "AlexNet",
    "vgg16": "VGG-16",
    "googlenet": "GoogLeNet",
    "inception_v3": "Inception-v3",
    "resnet18": "ResNet-18",
    "resnet50": "ResNet-50",
    "resnet101": "ResNet-101",
    "resnet152": "ResNet-152",
}
CANZIANI = "Canziani et al. 2016, third-party reading of its figures"
READING_WHY = "read off a figure by a third party (not the paper's numbers); a different network"


def canziani_table(ctx: Context, rows: Sequence[ModelCost]) -> Table | None:
    """Canziani et al.'s figures (as read by a third party) beside the computed costs."""
    reading = ctx.published["canziani_2016_third_party_reading"]
    table_rows = []
    for c in rows:
        label = CANZIANI_NAMES.get(c.name)
        if label is None or label not in reading:
            continue
        weights_m, gops, top1 = reading[label]
        ops = 2 * c.macs  # its 'G-Ops' look like two operations per multiply-add
        params_gap = ctx.compare(
            c.name,
            "params (Canziani, M-weights)",
            c.inference_params,
            weights_m * 1e6,
            CANZIANI,
            READING_WHY,
        )
        ops_gap = ctx.compare(
            c.name, "ops = 2 × MACs (Canziani, G-Ops)", ops, gops * 1e9, CANZIANI, READING_WHY
        )
        table_rows.append(
            {
                "name": c.name,
                "label": label,
                "weights": weights_m * 1e6,
                "params": c.inference_params,
                "params_gap": 100 * params_gap.difference,
                "gops": gops * 1e9,
                "ops": ops,
                "ops_gap": 100 * ops_gap.difference,
                "reading_top1": top1,
                "top1": c.top1,
            }
        )
    if not table_rows:
        return None
    g = {"unit": "ops", "show_unit": "G", "scale": 1e9, "digits": 2}
    return Table(
        "canziani_reading",
        "The lecture's comparison figure (Canziani et al. 2016) as read by a third party, "
        "beside the computed costs (torchvision variants)",
        [
            Column("label", "model"),
            params_column("weights", "weights read", digits=1),
            params_column("params", "computed", digits=1),
            percent_column("params_gap", "gap", digits=0),
            Column("gops", "ops read", **g),
            Column("ops", "2×MACs", **g),
            percent_column("ops_gap", "gap", digits=0),
            percent_column("reading_top1", "top-1 read"),
            percent_column("top1", "torchvision"),
        ],
        table_rows,
        note="Read values: BertMoons/Comparing-CNN-Architectures, not verified against the "
        "paper. Canziani et al. measured their own Torch7 models, so these need not match.",
    )


def comparison_section(ctx: Context) -> Section:
    rows = costs(ctx)
    rated = [c for c in rows if c.top1 is not None]
    torchvision_checks(ctx, rows)
    section = Section("comparison", "Comparing the architectures")
    section.add(
        Paragraph(
            "As in the lecture's comparison slide (Canziani et al. 2016): published accuracy "
            "against computed cost. Accuracy belongs to particular trained weights, so each "
            "model is costed here in the variant those weights fit: torchvision's."
        ),
        comparison_table(rows, ctx.batch),
        variant_note(ctx, rows),
    )
    if rated:
        section.add(bubble_figure(ctx, rated))
    section.add(memory_figure(ctx, rows))
    canziani = canziani_table(ctx, rows)
    if canziani is not None:
        section.add(canziani)
    observations = check_observations(rows)
    source = "CS231n 2017 Lecture 9, after Canziani et al. 2016"
    checks = tuple(Check(o.claim, o.holds, o.evidence, source) for o in observations)
    section.add(
        Paragraph("The slide's five observations, checked against the table above:"),
        Checks(checks),
    )
    computable = [c for c in checks if c.holds is not None]
    failed = [c.claim for c in computable if c.holds is False]
    subjects = ", ".join(c.claim.split(":")[0] for c in computable)  # "VGG: highest memory..."
    ctx.key_idea(
        TRADE_OFF,
        f"{len(computable) - len(failed)} of the slide's {len(computable)} computable "
        "observations hold" + (f"; not: {'; '.join(failed)}." if failed else f" ({subjects})."),
        computable,
        "comparison",
    )
    deeper = deeper_is_better(rows)
    if deeper is not None:
        ctx.key_idea(DEEPER_IS_BETTER, deeper.evidence, [deeper], "comparison")
    return section


def deeper_is_better(rows: Sequence[ModelCost]) -> Check | None:
    """Top-1 of the ResNets with published weights, by depth: does it rise with depth?"""
    resnets = sorted(
        (c for c in rows if c.family == "resnet" and c.top1 is not None),
        key=lambda c: int(c.name.removeprefix("resnet")),
    )
    if len(resnets) < 2:
        return None
    rising = all(a.top1 < b.top1 for a, b in itertools.pairwise(resnets))
    return Check(
        "deeper networks are more accurate (given shortcuts)",
        rising,
        "ResNet top-1 (torchvision) by depth: "
        + ", ".join(f"{c.name.removeprefix('resnet')}: {c.top1:.1f}%" for c in resnets)
        + ".",
        TORCHVISION,
    )


def variant_note(ctx: Context, rows: Sequence[ModelCost]) -> Paragraph:
    """Which numbers here differ from the model cards (paper variants), and by how much."""
    changed = []
    for c in rows:
        if c.variant == "paper":
            continue
        paper = ctx.analyze(c.name)
        if paper.total_macs != c.macs or paper.rows[0].params != c.inference_params:
            changed.append(
                f"{c.name} {c.macs / 1e9:.2f} G MACs and {c.inference_params / 1e6:.2f}M params "
                f"(paper variant: {paper.total_macs / 1e9:.2f} G, "
                f"{paper.rows[0].params / 1e6:.2f}M)"
            )
    return Paragraph(
        "Every row here is the variant named in its second column. The torchvision variants "
        "differ from the paper variants of the model cards where torchvision's network does "
        "(torchvision's ResNet-50/101/152 are 'v1.5', with the stride in the 3x3 conv of the "
        "bottleneck; its AlexNet has one tower): " + "; ".join(changed) + "."
    )
