"""The models: one table of their totals, then one card per model with its explorer, its
diagrams, where its memory and parameters sit layer by layer, and its published figures."""

from __future__ import annotations

import re
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from cnnarch.lecture.claims import Check, figure_check
from cnnarch.lecture.diagrams import network_diagrams
from cnnarch.lecture.explorer import (
    Explorer,
    TrainingTotals,
    affine_totals,
    analyzed_training_totals,
    explorer_widget,
)
from cnnarch.lecture.figures import Cause, Figure, cut_beyond_limit
from cnnarch.lecture.layers import BYTES_PER_VALUE, LectureLayer, LectureLayers
from cnnarch.lecture.profile import profile_chart
from cnnarch.lecture.references import cite, short_citation
from cnnarch.lecture.topic import Topic
from cnnarch.report.document import Bullets, Folded, Paragraph, Section, Verdicts
from cnnarch.tables import Column, Table, macs_column, megabytes_column, params_column
from cnnarch.units import byte_size, number

if TYPE_CHECKING:
    import torch

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
        f"The three largest outputs ({_names(by_memory, layers)}) hold {memory / outputs:.0%} of "
        "the "
        f"{number(outputs)} values in the layers' outputs; the three layers with the most "
        f"parameters ({_names(by_params, layers)}) hold {held / totals['params']:.0%} of {which} "
        f"({number(totals['params'])})."
    )


def _names(layers: list[LectureLayer], every: LectureLayers) -> str:
    return ", ".join(_label(layer, every) for layer in layers)


def _label(layer: LectureLayer, every: LectureLayers) -> str:
    """The layer's lecture name, with its place among the layers where the name alone is
    ambiguous ("CONV3-64, layer 2" in VGG16; the layer table numbers its rows the same way)."""
    if sum(other.name == layer.name for other in every.layers) == 1:
        return layer.name
    return f"{layer.name}, layer {every.layers.index(layer) + 1}"


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
            "number": number_,
            "layer": layer.name + (" *" if layer.training_only else ""),
            "output": layer.output,
            "memory": layer.memory * BYTES_PER_VALUE,
            "params": layer.params,
            "macs": layer.macs,
            "modules": ", ".join(layer.paths),
        }
        for number_, layer in enumerate(layers.layers, start=1)
    ]
    note = (
        "One row per column of the chart above. Memory: the layer's output for one image in "
        "float32. Params include biases and batch-norm. Modules: where the layer is in the "
        "PyTorch code (the names of its submodules)."
    )
    if any(layer.training_only for layer in layers.layers):
        note += " * runs only in training: not in the inference totals."
    if layers.artifacts:
        note += " " + artifacts_sentence(layers)
    return Table(
        f"layers_{name}",
        f"{name}: the lecture's layers, one image",
        [
            Column("layer", "layer"),
            Column("number", "#"),
            Column("output", "output (C×H×W)"),
            megabytes_column("memory", "memory", digits=2),
            Column("params", "params"),
            macs_column("macs", "MACs", prefix="M", digits=1),
            Column("modules", "modules"),
        ],
        rows,
        note=note,
    )


# What each call that is not a layer does, by the function's name.
ARTIFACT_MEANINGS = {
    "cat()": "joins maps along their channels, as where AlexNet's two towers, the paper's two "
    "GPUs, exchange their maps",
    "mean()": "averages the class scores over the windows of dense evaluation",
}


def artifacts_sentence(layers: LectureLayers) -> str:
    """The calls of the implementation that are not layers, what each does, and why they have
    no row: they compute nothing new and hold no parameters."""
    counts: dict[str, int] = {}
    for path in layers.artifacts:
        counts[path] = counts.get(path, 0) + 1
    said = []
    for path, count in counts.items():
        times = {1: "once", 2: "twice"}.get(count, f"{count} times")
        meaning = ARTIFACT_MEANINGS.get(path)
        said.append(f"`{path}` {times}" + (f" ({meaning})" if meaning else ""))
    return (
        f"The code also calls {_and(said)}: steps of the implementation, not layers of the "
        "network (no parameters, nothing the lecture counts), so they have no row."
    )


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


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
    return Explorer(
        name, affine_totals(cached, name), training, tuple(analyses.layers(name).layers)
    )


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
            f"{card.description.rstrip('.')} ({cite(card)}); input {h}×{w}×{c}."
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
        Paragraph(
            "Each card has an explorer: choose a batch size (1 to 1024), a precision, "
            "inference or training and an optimizer, and it shows what `cnnarch summary MODEL "
            "--batch B --dtype D --format json` reports (with `--train --optimizer O` in "
            "training), to the byte. The page computes them offline. Inference totals are "
            "value at batch 1 + step × (B − 1); the report checks that rule against the "
            "analyzer at batch 1024 and leaves out any quantity that breaks it. The training "
            "peak is not a straight line: it is the largest of the step's moments (each clock "
            "of the forward pass, the backward pass and the optimizer step), and each moment "
            "is one, fixed bytes + bytes per image. The page holds the moments that are the "
            "peak at some batch and takes the first largest, as the analyzer does, with its "
            "breakdown by what is alive at that moment."
        ),
    )
    section.children = [
        model_section(analyses, t["name"], t, checks[t["name"]], pending[t["name"]]) for t in totals
    ]
    return Topic(section, tuple(c for found in checks.values() for c in found))
