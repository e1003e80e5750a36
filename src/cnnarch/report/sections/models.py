"""One section per model: its card, totals, where memory and parameters sit, every layer."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from cnnarch.report.charts import family_colour, new_figure, si_formatter
from cnnarch.report.context import Context
from cnnarch.report.document import Bullets, Folded, Paragraph, Section
from cnnarch.report.layers import display_rows, layer_table, top_rows
from cnnarch.report.numbers import parse_printed
from cnnarch.units import signed_percent

MB = 1e6


def mb(nbytes: float) -> str:
    return f"{nbytes / MB:,.1f} MB"


def giga(count: float) -> str:
    return f"{count / 1e9:,.3f} G"


def model_section(ctx: Context, name: str) -> Section:
    card = ctx.card(name)
    summary = ctx.analyze(name)
    training = ctx.analyze_training(name)
    c, h, w = card.input_size
    section = Section(f"model-{name}", name)
    section.add(
        Paragraph(
            f"{card.description.rstrip('.')}. Paper: {card.paper}. Input {h}×{w}×{c}, "
            f"{card.num_classes:,} classes; `paper` variant."
        ),
        *lecture_note(card),
        Bullets(totals(summary, training, ctx.batch)),
        *published_facts(ctx, name, summary),
        Paragraph(where_it_sits(summary)),
        profile_figure(ctx, name, summary),
        Folded(f"Per-layer table of {name}", layer_table(name, summary)),
    )
    return section


def lecture_note(card: Any) -> list[Paragraph]:
    """What the lecture says of a model that has no section of its own (ZFNet)."""
    note = card.published.get("lecture")
    return [Paragraph(f"The lecture: {note}.")] if isinstance(note, str) else []


def totals(summary: Any, training: Any, batch: int) -> tuple[str, ...]:
    frozen = (
        f" ({summary.total_params - summary.trainable_params:,} frozen)"
        if (summary.total_params != summary.trainable_params)
        else ""
    )
    lines = [
        f"Parameters: {summary.total_params:,}{frozen} = {mb(summary.param_bytes)} in float32.",
        f"Compute: {summary.total_macs:,} MACs ({giga(summary.total_macs)}) per image.",
        f"Forward activations: {summary.activation_elements:,} values = "
        f"{mb(summary.activation_bytes)} per image (input of {summary.input_elements:,} "
        "values not included); peak memory of an inference pass: "
        f"{mb(summary.inference_peak_bytes)}.",
    ]
    t = training.training
    if t is not None:
        lines.append(
            f"Training at batch {batch} (SGD with momentum): peak {mb(t.peak_bytes)}, reached "
            f"in the {t.peak_phase} pass. The step keeps parameters ({mb(t.params_bytes)}) and "
            f"momentum ({mb(t.optimizer_state_bytes)}) throughout, saves "
            f"{mb(t.saved_bytes)} of activations for the backward pass and builds "
            f"{mb(t.grads_bytes)} of gradients."
        )
    return tuple(lines)


def short_citation(ctx: Context, name: str) -> str:
    paper = ctx.card(name).paper
    authors = [a.strip() for a in paper.authors.split(",")]
    if len(authors) == 2:
        return f"{authors[0]} & {authors[1]} {paper.year}"
    return f"{authors[0]} et al. {paper.year}" if len(authors) > 2 else f"{authors[0]} {paper.year}"


_FACT = re.compile(r"^(less than )?([0-9.]+) (billion|million) (multiply-adds|parameters)")


def published_facts(ctx: Context, name: str, summary: Any) -> list[Bullets]:
    """The card's published params and multiply-adds beside the computed ones."""
    card = ctx.card(name)
    facts = card.published
    source = short_citation(ctx, name)
    found: list[tuple[str, str, float, str, str | None]] = []  # quantity, printed, computed...
    if isinstance(facts.get("params"), str):
        printed = facts["params"].replace(" million", "M")
        found.append(("parameters", printed, summary.total_params, facts["params"], None))
    if "table2_params_millions" in facts:
        printed = f"{facts['table2_params_millions']}M"
        found.append(("parameters (Table 2)", printed, summary.total_params, printed, None))
    used = next(row.params for row in summary.rows if row.depth == 0)
    for fact in facts.get("facts", []):
        match = _FACT.match(fact)
        if match is None:
            continue
        bound, number, scale, what = match.groups()
        printed = f"{number}{'G' if scale == 'billion' else 'M'}"
        computed = used if what == "parameters" else summary.total_macs
        why = None
        if bound:
            met = computed < parse_printed(printed)
            why = f"a bound, {'met' if met else 'not met'}"
        quantity = "parameters at inference" if what == "parameters" else "multiply-adds"
        found.append((quantity, printed, computed, fact, why))
    lines = []
    for quantity, printed, computed, as_written, why in found:
        comparison = ctx.compare(name, quantity, computed, printed, source, why)
        lines.append(
            f"Published ({source}): {quantity} '{as_written}'; computed {computed:,} "
            f"({signed_percent(comparison.difference)} printed against computed): "
            f"{comparison.why}."
        )
    return [Bullets(tuple(lines))] if lines else []


def where_it_sits(summary: Any) -> str:
    rows, _ = display_rows(summary)
    memory = top_rows(rows, "activation_elements")
    params = top_rows(rows, "params")
    return (
        f"Memory: the three largest outputs ({', '.join(f'`{p}`' for p in memory.rows)}) hold "
        f"{memory.fraction:.0%} of the forward activations. Parameters: the three largest layers "
        f"({', '.join(f'`{p}`' for p in params.rows)}) hold {params.fraction:.0%} of them."
    )


CHART_BARS = 56  # more bars than this and the labels stop being readable at page width


def profile_figure(ctx: Context, name: str, summary: Any) -> Any:
    rows, depth = display_rows(summary, limit=CHART_BARS)
    # Layers with neither new memory nor parameters (in-place ReLU, eval-mode dropout, views)
    # would only crowd the axis; what is left still sums to the totals shown in the text.
    rows = [r for r in rows if r.params or r.activation_bytes]
    level = "layer" if depth is None else f"module (depth {depth})"

    def draw() -> Any:
        fig, (top, bottom) = new_figure(height=6.2, nrows=2, sharex=True)
        x = np.arange(len(rows))
        colour = family_colour(name)
        top.bar(x, [r.activation_bytes / MB for r in rows], color=colour, width=0.8)
        top.set_ylabel("forward output (MB, float32)")
        top.set_title(f"{name}: where the memory and the parameters are, per {level}")
        bottom.bar(x, [r.params for r in rows], color="#555555", width=0.8)
        bottom.set_ylabel("parameters")
        bottom.yaxis.set_major_formatter(si_formatter())
        step = max(1, len(rows) // 40)
        bottom.set_xticks(x[::step], [r.path for r in rows][::step], rotation=90, fontsize=7.5)
        bottom.set_xlabel(f"{level}, in forward order")
        for ax in (top, bottom):
            ax.grid(axis="x", visible=False)
        return fig

    return ctx.figure(
        f"profile_{name}",
        f"{name}: memory and parameters per {level}",
        "Top: size of each output for one image (what the lecture calls memory). "
        "Bottom: parameters of each layer.",
        draw,
    )


def models_section(ctx: Context) -> Section:
    section = Section("models", "The models, layer by layer")
    section.add(
        Paragraph(
            "Each model is analyzed once on meta tensors (no weights allocated, no compute). "
            "Parameters count every `nn.Parameter` (weights, biases, batch-norm scales); MACs "
            "count the multiply-accumulates of conv and linear layers; memory is element count "
            "× 4 bytes (float32), 1 MB = 10⁶ bytes."
        )
    )
    section.children = [model_section(ctx, name) for name in ctx.models]
    return section
