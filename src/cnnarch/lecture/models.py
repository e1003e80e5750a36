"""The models: one table of their totals, then one card per model with its explorer, its
diagrams, where its memory and parameters sit layer by layer, and its published figures."""

from __future__ import annotations

import re
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.patches import Patch
from matplotlib.ticker import LogLocator, NullLocator

from cnnarch.lecture.claims import Check, figure_check
from cnnarch.lecture.diagrams import KIND_COLORS, KIND_LABELS, color_kind, network_diagrams
from cnnarch.lecture.explorer import (
    Explorer,
    TrainingTotals,
    affine_totals,
    analyzed_training_totals,
    explorer_intro,
    explorer_widget,
)
from cnnarch.lecture.figures import Cause, Figure, cut_beyond_limit
from cnnarch.lecture.layers import BYTES_PER_VALUE, LectureLayer, LectureLayers
from cnnarch.lecture.topic import Topic
from cnnarch.report.charts import draw_chart, new_figure
from cnnarch.report.document import Bullets, Chart, Folded, Paragraph, Section, Verdicts
from cnnarch.tables import Column, Table, macs_column, megabytes_column, params_column
from cnnarch.units import MB, byte_size, number, prefixed

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure as MplFigure

    from cnnarch.analysis import Summary
    from cnnarch.lecture.analyses import Analyses
    from cnnarch.zoo.registry import ModelCard


def training_parts(training: Summary) -> dict[str, int]:
    """The training peak as what is alive throughout the step plus the rest at the peak.

    Parameters, optimizer state, buffers and the input are alive the whole step; saved
    activations, gradients and temporaries come and go, so only their sum at the peak's moment
    adds to the peak (their own maxima overlap in time and do not add up).
    """
    t = training.training
    throughout = t.params_bytes + t.optimizer_state_bytes + t.buffer_bytes + t.input_bytes
    return {
        "train_peak": t.peak_bytes,
        "train_throughout": throughout,
        "train_at_peak": t.peak_bytes - throughout,
        "train_saved": t.saved_bytes,
        "train_grads": t.grads_bytes,
    }


def model_totals(analyses: Analyses, name: str, variant: str = "paper") -> dict[str, Any]:
    """The model-level numbers of one model and variant, as the report shows them everywhere."""
    summary = analyses.forward(name, variant)
    training = analyses.training(name, variant)
    return {
        "name": name,
        "variant": variant,
        "params": int(training.total_params),  # every parameter, training-only heads included
        "inference_params": int(summary.rows[0].params),  # those an inference pass uses
        "macs": int(summary.total_macs),
        "activations": int(summary.activation_bytes),
        "inference_peak": int(summary.inference_peak_bytes),
        **training_parts(training),
    }


def totals_table(analyses: Analyses, totals: list[dict[str, Any]]) -> Table:
    return Table(
        "model_totals",
        f"The models' totals (paper variants; training at batch {analyses.batch_size}, SGD "
        "with momentum)",
        [
            Column("name", "model"),
            Column("variant", "variant"),
            params_column("params", "params, all"),
            params_column("inference_params", "params at inference"),
            macs_column("macs", "MACs"),
            megabytes_column("activations", "forward activations"),
            megabytes_column("inference_peak", "inference peak"),
            megabytes_column("train_peak", "training peak", 0),
            megabytes_column("train_throughout", "= alive throughout", 0),
            megabytes_column("train_at_peak", "+ the rest at the peak", 0),
        ],
        totals,
        note="Alive throughout a training step: parameters, momentum, buffers and the input. "
        "The rest at the peak: saved activations, gradients and temporaries alive at that moment.",
    )


def short_citation(card: ModelCard) -> str:
    """'Krizhevsky et al. 2012', 'Simonyan & Zisserman 2014'."""
    authors = [a.strip() for a in card.paper.authors.split(",")]
    year = card.paper.year
    if len(authors) == 2:
        return f"{authors[0]} & {authors[1]} {year}"
    return f"{authors[0]} et al. {year}" if len(authors) > 2 else f"{authors[0]} {year}"


def lecture_note(card: ModelCard) -> str:
    """What the lecture says of a model that has no section of its own (ZFNet)."""
    note = card.published.get("lecture")
    return f" The lecture: {note}." if isinstance(note, str) else ""


_FACT = re.compile(r"^(less than )?([0-9.]+) (billion|million) (multiply-adds|parameters)")


def published_checks(card: ModelCard, totals: dict[str, Any]) -> list[Check]:
    """The card's published parameters and multiply-adds, each judged against the computed."""
    facts = card.published
    source = short_citation(card)
    found: list[tuple[str, str, str, float, str, bool]] = []  # id, quantity, printed, ...
    if isinstance(facts.get("params"), str):
        printed = facts["params"].replace(" million", "M")
        found.append(("params", "parameters", printed, totals["params"], facts["params"], False))
    if "table2_params_millions" in facts:
        printed = f"{facts['table2_params_millions']}M"
        found.append(
            ("table2-params", "parameters (Table 2)", printed, totals["params"], printed, False)
        )
    for fact in facts.get("facts", []):
        match = _FACT.match(fact)
        if match is None:
            continue
        bound, figure, scale, what = match.groups()
        printed = f"{figure}{'G' if scale == 'billion' else 'M'}"
        params = what == "parameters"
        computed = totals["inference_params"] if params else totals["macs"]
        quantity = "parameters at inference" if params else "multiply-adds"
        found.append((quantity.replace(" ", "-"), quantity, printed, computed, fact, bool(bound)))
    checks = []
    for key, quantity, printed, computed, as_written, bound in found:
        figure = Figure(card.name, quantity, printed, computed, source, bound=bound)
        cause = None if figure.agreement.holds else _card_cause(figure)
        checks.append(
            figure_check(
                f"{card.name}-{key}",
                f"{card.name}: {as_written}",
                figure,
                evidence=f"{figure.summary()}.",
                cause=cause,
            )
        )
    return checks


def _card_cause(figure: Figure) -> Cause:
    """Why a card's published total differs: a value cut beyond the tolerance, or (found by
    nothing more specific) the printed figure is not the computed one."""
    cut = cut_beyond_limit(figure)
    if cut is not None:
        return cut
    return Cause(
        f"the source gives {figure.printed} without the terms it adds up; the architecture it "
        f"describes gives {number(figure.computed)}",
        None,
    )


def largest_layers_line(layers: LectureLayers, totals: dict[str, Any]) -> str:
    """The three layers with the largest outputs and the three with the most parameters, as
    shares of the totals that include them (training-only heads are ranked with the rest)."""
    inference = layers.inference
    outputs = sum(layer.memory for layer in inference)
    by_memory = sorted(inference, key=lambda layer: layer.memory, reverse=True)[:3]
    by_params = sorted(layers.layers, key=lambda layer: layer.params, reverse=True)[:3]
    held = sum(layer.params for layer in by_params)
    memory = sum(layer.memory for layer in by_memory)
    which = (
        "all parameters, training-only heads included"
        if any(layer.training_only for layer in layers.layers)
        else "all parameters"
    )
    return (
        f"The three largest outputs ({_names(by_memory)}) hold {memory / outputs:.0%} of the "
        f"{number(outputs)} values in the layers' outputs; the three layers with the most "
        f"parameters ({_names(by_params)}) hold {held / totals['params']:.0%} of {which} "
        f"({number(totals['params'])})."
    )


def _names(layers: list[LectureLayer]) -> str:
    return ", ".join(_label(layer) for layer in layers)


def _label(layer: LectureLayer) -> str:
    """The layer's name, with its first module when the name alone is ambiguous (CONV3-64)."""
    if layer.kind in ("module", "block", "stage"):
        return layer.name
    return f"{layer.name} (`{layer.paths[0]}`)"


def card_lines(analyses: Analyses, totals: dict[str, Any], layers: LectureLayers) -> list[str]:
    lines = []
    heads = totals["params"] - totals["inference_params"]
    if heads:
        lines.append(
            f"Parameters: {number(totals['params'])} in all, {number(totals['inference_params'])} "
            f"at inference: the training-only heads hold {number(heads)} "
            f"({heads / totals['params']:.0%} of all)."
        )
    saved, grads, rest = totals["train_saved"], totals["train_grads"], totals["train_at_peak"]
    overlap = (
        ", more than the rest at the peak: not all of them are alive at once"
        if saved + grads > rest
        else ""
    )
    peak, throughout, at_peak, saved_mb, grads_mb = (
        byte_size(n, "MB", 1)
        for n in (totals["train_peak"], totals["train_throughout"], rest, saved, grads)
    )
    lines.append(
        f"Training at batch {analyses.batch_size}: peak {peak} = {throughout} alive throughout "
        f"the step + {at_peak} of saved activations, gradients and temporaries at the peak. "
        f"Over the step, saved activations reach {saved_mb} and gradients {grads_mb}{overlap}."
    )
    lines.append(largest_layers_line(layers, totals))
    return lines


def layer_table(name: str, layers: LectureLayers) -> Table:
    rows = [
        {
            "layer": layer.name + (" *" if layer.training_only else ""),
            "output": layer.output,
            "memory": layer.memory * BYTES_PER_VALUE,
            "params": layer.params,
            "macs": layer.macs,
            "modules": ", ".join(layer.paths),
        }
        for layer in layers.layers
    ]
    note = (
        "One row per bar of the chart above. Memory: the layer's output for one image in "
        "float32. Params include biases and batch-norm."
    )
    if any(layer.training_only for layer in layers.layers):
        note += " * runs only in training: not in the inference totals."
    if layers.artifacts:
        note += f" Not layers (steps of the implementation, 0 parameters): {artifacts(layers)}."
    return Table(
        f"layers_{name}",
        f"{name}: the lecture's layers, one image",
        [
            Column("layer", "layer"),
            Column("output", "output (C×H×W)"),
            megabytes_column("memory", "memory", digits=2),
            Column("params", "params"),
            macs_column("macs", "MACs", prefix="M", digits=1),
            Column("modules", "modules"),
        ],
        rows,
        note=note,
    )


def artifacts(layers: LectureLayers) -> str:
    counts: dict[str, int] = {}
    for path in layers.artifacts:
        counts[path] = counts.get(path, 0) + 1
    return ", ".join(f"`{p}`" + (f" ×{n}" if n > 1 else "") for p, n in counts.items())


def profile_chart(name: str, layers: LectureLayers) -> Chart:
    shown = layers.layers

    def draw() -> MplFigure:
        fig, (top, bottom) = new_figure(height=5.6, nrows=2, sharex=True)
        x = np.arange(len(shown))
        kinds = [color_kind(layer) for layer in shown]
        colors = [KIND_COLORS[kind] for kind in kinds]
        top.bar(x, [layer.memory * BYTES_PER_VALUE / MB for layer in shown], color=colors)
        top.set_ylabel("output (MB)")
        top.set_title(f"{name}: memory and parameters per {layers.level}")
        params = [layer.params for layer in shown]
        bottom.bar(x, [p if p else np.nan for p in params], color=colors)
        bottom.set_yscale("log")  # so that conv layers show beside FC layers 1000x larger
        bottom.yaxis.set_major_locator(LogLocator(base=10, numticks=12))
        bottom.yaxis.set_minor_locator(NullLocator())
        bottom.yaxis.set_major_formatter(lambda v, _pos: prefixed(v, None))
        bottom.set_ylabel("parameters (log scale)")
        labels = [layer.name.replace(" (training only)", "*") for layer in shown]
        bottom.set_xticks(x, labels, rotation=90, fontsize=7.5)
        for ax in (top, bottom):
            ax.grid(axis="x", visible=False)
        # The same color for each kind of layer as the diagrams.
        legend = [Patch(color=KIND_COLORS[k], label=KIND_LABELS[k]) for k in dict.fromkeys(kinds)]
        top.legend(handles=legend, loc="upper right", ncols=min(len(legend), 4))
        return fig

    caption = "Each bar colored by its kind of layer, as in the diagrams."
    if any(layer.training_only for layer in shown):
        caption += " Gray, *: training-only heads."
    return draw_chart(f"profile_{name}", f"{name}, per {layers.level}", caption, draw)


def start(analyses: Analyses) -> dict[str, Future[TrainingTotals]]:
    """Start each model's training traces in the worker processes (about half of the report's
    work); `build` waits for them.

    Args:
        analyses: the report's analyses.

    Returns:
        The pending traces, by model.
    """
    pending = {}
    for name in analyses.models:
        paths = [layer.paths for layer in analyses.layers(name).layers]
        pending[name] = analyses.in_worker(analyzed_training_totals, name, paths)
    return pending


def _explorer(analyses: Analyses, name: str, training: Future[TrainingTotals]) -> Explorer:
    from cnnarch import analyze

    def cached(model: str, batch_size: int, dtype: torch.dtype) -> Summary:
        import torch

        if batch_size == 1 and dtype == torch.float32:
            return analyses.forward(model)  # the card's forward pass, analyzed already
        return analyze(model, batch_size=batch_size, dtype=dtype)

    analyses.step(f"explorer {name}")
    layers = tuple(analyses.layers(name).layers)
    totals = affine_totals(cached, name)
    return Explorer(name, totals, training, layers, analyses.batch_size)


def model_section(
    analyses: Analyses,
    name: str,
    totals: dict[str, Any],
    checks: list[Check],
    training: Future[TrainingTotals],
) -> Section:
    card = analyses.card(name)
    layers = analyses.layers(name)
    c, h, w = card.input_size
    section = Section(f"model-{name}", name)
    section.add(
        Paragraph(
            f"{card.description.rstrip('.')} ({short_citation(card)}); input {h}×{w}×{c}."
            + lecture_note(card)
        ),
        Bullets(tuple(card_lines(analyses, totals, layers))),
    )
    if checks:
        section.add(Paragraph("Its published totals:"), Verdicts(tuple(c.shown() for c in checks)))
    section.add(
        explorer_widget(_explorer(analyses, name, training)),
        *network_diagrams(layers, analyses.forward(name)),
        profile_chart(name, layers),
        Folded(f"{name}: the table of this chart", layer_table(name, layers)),
    )
    return section


def build(analyses: Analyses, pending: dict[str, Future[TrainingTotals]]) -> Topic:
    """The models' section: their totals, then one card per model.

    Args:
        analyses: the report's analyses.
        pending: the training traces `start` sent to the workers.
    """
    totals = [model_totals(analyses, name) for name in analyses.models]
    checks = {t["name"]: published_checks(analyses.card(t["name"]), t) for t in totals}
    section = Section("models", "The models, layer by layer")
    section.add(
        Paragraph(
            "Every model's totals in one table (paper variants), then one card per model. Each "
            "card's chart has one bar per layer as the slides count layers (batch-norm and ReLU "
            "folded into the layer before them; an Inception module or a residual block is one "
            "bar, and the deep ResNets are shown stage by stage): on top the memory of the "
            "layer's output for one image, below its parameters on a log scale. The table under "
            "each chart has the same rows. The layers' outputs add up to at most "
            "the forward activations of the totals table, which count every tensor "
            "the forward pass allocates, inside an Inception module or a residual block too."
        ),
        totals_table(analyses, totals),
        explorer_intro(analyses.batch_size),
    )
    section.children = [
        model_section(analyses, t["name"], t, checks[t["name"]], pending[t["name"]]) for t in totals
    ]
    return Topic(section, tuple(c for found in checks.values() for c in found))
