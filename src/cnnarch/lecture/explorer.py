"""The explorer on each model card (a `Widget`): pick a batch size, a precision, inference or
training and an optimizer, read the totals that `cnnarch summary MODEL --batch B --dtype D [--train
--optimizer O] --format json` prints, computed in the page without a server.

Inference totals are affine in the batch size: value(B) = value(1) + step x (B - 1). Each one's
value(1) and step come from the analyzer at batch 1 and 2, and the rule is checked against the
analyzer at `CHECK_BATCHES` (the largest batch the page offers); a quantity that fails the
check is left out for that model.

The training peak is not affine: it is the largest of the step's moments (`TrainingMemory.
moments`: each clock of the forward pass, backward pass and optimizer step). Each moment's
bytes by category are, though: value(B) = value(b0) + step x (B - b0), from the analyzer at
the smallest batch b0 that trains and at b0 + 1. The page takes the first largest moment as the
analyzer does, so it shows the analyzer's peak and its breakdown; only the moments that are the
peak at some batch up to `MAX_BATCH` are embedded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from cnnarch.analysis.loading import DTYPES
from cnnarch.analysis.memory import BREAKDOWN_ORDER, OPTIMIZER_STATE
from cnnarch.errors import CnnarchError
from cnnarch.lecture.diagrams import shape_text
from cnnarch.lecture.layers import LectureLayer
from cnnarch.report.document import Widget
from cnnarch.report.markup import element, join

PRECISIONS = ("float32", "bfloat16", "float16")
OPTIMIZERS = ("sgd", "momentum", "adam")  # names of `cnnarch.analysis.training_modes.OPTIMIZERS`
OPTIMIZER_LABELS = {"sgd": "SGD", "momentum": "SGD with momentum", "adam": "Adam"}
MAX_BATCH = 1024
CHECK_BATCHES = (MAX_BATCH,)
# (field of `cnnarch summary --format json`, label); bytes are shown in bytes and decimal MB.
QUANTITIES = (
    ("total_params", "parameters (all)"),
    ("total_macs", "MACs"),
    ("input_bytes", "input (bytes)"),
    ("param_bytes", "parameters (bytes)"),
    ("activation_bytes", "forward activations (bytes)"),
    ("inference_peak_bytes", "inference peak (bytes)"),
)


@dataclass(frozen=True)
class TrainingLines:
    """One precision and optimizer's training step: the moments that can be its peak, each as
    (phase, [[bytes at batch `start`, step per image] per category of `categories`])."""

    start: int  # the smallest batch the analyzer trains (BatchNorm needs 2 values per channel)
    moments: list[tuple[str, list[list[int]]]]

    def peak(self, batch: int, categories: Sequence[str]) -> tuple[int, str, dict[str, int]]:
        """(peak bytes, phase, bytes by category) at `batch`, as the page computes them."""
        best: tuple[int, str, dict[str, int]] | None = None
        for phase, lines in self.moments:
            parts = [v + step * (batch - self.start) for v, step in lines]
            if best is None or sum(parts) > best[0]:
                best = (sum(parts), phase, dict(zip(categories, parts, strict=True)))
        assert best is not None
        return best


@dataclass(frozen=True)
class TrainingTotals:
    """A model's training steps: {precision: {optimizer: TrainingLines}}, and the categories
    of the breakdown that are not 0 in every embedded moment (the lines' order); what each
    layer of the model card saves for backward in training."""

    lines: dict[str, dict[str, TrainingLines]]
    categories: tuple[str, ...]
    saved: dict[str, list[list[int]]]  # {precision: [[bytes at batch start, step] per layer]}


@dataclass(frozen=True)
class Explorer:
    """A model's explorer: per precision, each quantity's [value at batch 1, step per image];
    the model card's layers; the training steps, computed in another process while the rest
    of the report is built (`training.result()` waits for them)."""

    model: str
    lines: dict[str, dict[str, list[int]]]
    training: Future[TrainingTotals]
    layers: tuple[LectureLayer, ...] = ()

    def data(self) -> dict[str, Any]:
        """What the page embeds for this model."""
        training = self.training.result()
        steps = {
            precision: {
                optimizer: {"start": lines.start, "moments": lines.moments}
                for optimizer, lines in by_optimizer.items()
            }
            for precision, by_optimizer in training.lines.items()
        }
        layers = [
            {
                "name": layer.name,
                "shape": shape_text(layer),
                "values": layer.memory,
                "params": layer.params,
                "macs": layer.macs,
                "modules": ", ".join(layer.paths),
                "path": layer.paths[0],
            }
            for layer in self.layers
        ]
        return {
            "totals": self.lines,
            "training": steps,
            "categories": list(training.categories),
            "layers": layers,
            "saved": training.saved,
        }


def affine_totals(analyze: Callable[..., Any], name: str) -> dict[str, dict[str, list[int]]]:
    """{precision: {field: [value at batch 1, step per image]}} for the fields that the
    analyzer confirms are affine in the batch size."""
    found: dict[str, dict[str, list[int]]] = {}
    for precision in PRECISIONS:
        dtype = DTYPES[precision]
        one, two = (analyze(name, batch_size=b, dtype=dtype) for b in (1, 2))
        lines = {
            key: [getattr(one, key), getattr(two, key) - getattr(one, key)] for key, _ in QUANTITIES
        }
        for batch in CHECK_BATCHES:
            at = analyze(name, batch_size=batch, dtype=dtype)
            lines = {
                key: (start, step)
                for key, (start, step) in lines.items()
                if getattr(at, key) == start + step * (batch - 1)
            }
        found[precision] = {key: [start, step] for key, (start, step) in lines.items()}
    return found


def training_totals(
    analyze: Callable[..., Any], name: str, layers: Sequence[Sequence[str]] = ()
) -> TrainingTotals:
    """`name`'s training steps from `analyze(name, batch_size=, dtype=, train=True,
    optimizer=)`: SGD at two batches, the other optimizers at one (`other_optimizer`); and
    what each of `layers` (the module paths of each) saves for backward, as lines."""
    found: dict[str, dict[str, TrainingLines]] = {}
    saved: dict[str, list[list[int]]] = {}
    start = 1
    for precision in PRECISIONS:

        def summary(batch: int, optimizer: str, dtype: Any = DTYPES[precision]) -> Any:
            return analyze(name, batch_size=batch, dtype=dtype, train=True, optimizer=optimizer)

        try:
            sgd = summary(start, "sgd")
        except CnnarchError:  # batch-norm in training needs more than one value per channel
            if start > 1:
                raise
            start, sgd = 2, summary(2, "sgd")
        sgd_next = summary(start + 1, "sgd")
        sgd_lines = moment_lines(start, sgd.training, sgd_next.training)
        found[precision] = {
            optimizer: _peak_moments(
                sgd_lines
                if optimizer == "sgd"
                else other_optimizer(
                    start, summary(start, optimizer).training, sgd.training, sgd_lines
                )
            )
            for optimizer in OPTIMIZERS
        }
        one, two = (saved_by_layer(s, layers) for s in (sgd, sgd_next))
        saved[precision] = [[a, b - a] for a, b in zip(one, two, strict=True)]
    used = [
        index
        for index in range(len(BREAKDOWN_ORDER))
        if any(
            any(lines[index])
            for by_optimizer in found.values()
            for training in by_optimizer.values()
            for _, lines in training.moments
        )
    ]
    for by_optimizer in found.values():
        for optimizer, training in by_optimizer.items():
            moments = [(phase, [lines[i] for i in used]) for phase, lines in training.moments]
            by_optimizer[optimizer] = TrainingLines(training.start, moments)
    return TrainingTotals(found, tuple(BREAKDOWN_ORDER[i] for i in used), saved)


def saved_by_layer(summary: Any, layers: Sequence[Sequence[str]]) -> list[int]:
    """Bytes each layer's modules save for backward (their rows' `saved_bytes`, first calls)."""
    by_path = {}
    for row in summary.rows:
        if not row.reused:
            by_path.setdefault(row.path, row.saved_bytes)
    return [sum(by_path[path] for path in paths) for paths in layers]


def analyzed_training_totals(name: str, layers: Sequence[Sequence[str]]) -> TrainingTotals:
    """`training_totals` from the analyzer (what a worker process runs)."""
    from cnnarch import analyze

    return training_totals(analyze, name, layers)


def moment_lines(start: int, first: Any, second: Any) -> TrainingLines:
    """Every moment of a training step as lines in the batch, from its `TrainingMemory` at
    batch `start` (`first`) and `start` + 1 (`second`)."""
    if [phase for phase, _ in first.moments] != [phase for phase, _ in second.moments]:
        raise CnnarchError(
            f"the traced training step differs between batch {start} and {start + 1}: its "
            f"memory is not a set of lines in the batch size"
        )
    moments = [
        (phase, [[a, b - a] for a, b in zip(one, two, strict=True)])
        for (phase, one), (_, two) in zip(first.moments, second.moments, strict=True)
    ]
    return TrainingLines(start, moments)


def other_optimizer(start: int, other: Any, sgd: Any, sgd_lines: TrainingLines) -> TrainingLines:
    """Another optimizer's moments as lines, from its `TrainingMemory` at batch `start` and
    SGD's (`sgd` at `start`, `sgd_lines`), which saves tracing it at a second batch.

    The forward and backward passes are the same for every optimizer; only the optimizer
    state, alive throughout, differs: checked here, moment by moment. The optimizer step
    allocates nothing that grows with the batch, so each of its moments grows as SGD's step
    does (checked: SGD's step moments all grow alike).
    """
    extra = [0] * len(BREAKDOWN_ORDER)
    extra[BREAKDOWN_ORDER.index(OPTIMIZER_STATE)] = (
        other.optimizer_state_bytes - sgd.optimizer_state_bytes
    )
    passes = [(phase, list(parts)) for phase, parts in other.moments if phase != "step"]
    shifted = [
        (phase, [v + e for v, e in zip(parts, extra, strict=True)])
        for phase, parts in sgd.moments
        if phase != "step"
    ]
    step_slopes = {
        tuple(s for _, s in lines) for phase, lines in sgd_lines.moments if phase == "step"
    }
    same = passes == shifted
    if not same or len(step_slopes) != 1:
        raise CnnarchError(
            f"{other.optimizer}: the forward and backward passes differ from SGD's beyond the "
            f"optimizer state, or SGD's step grows unevenly with the batch"
        )
    (step_slope,) = step_slopes
    slopes = [[s for _, s in lines] for phase, lines in sgd_lines.moments if phase != "step"]
    slopes += [list(step_slope)] * (len(other.moments) - len(passes))
    moments = [
        (phase, [[v, s] for v, s in zip(parts, slope, strict=True)])
        for (phase, parts), slope in zip(other.moments, slopes, strict=True)
    ]
    return TrainingLines(start, moments)


def _peak_moments(training: TrainingLines) -> TrainingLines:
    """Only the moments that are the first largest at some batch from `start` to `MAX_BATCH`."""
    moments = training.moments
    fixed = np.array([sum(v for v, _ in lines) for _, lines in moments], dtype=np.int64)
    slope = np.array([sum(s for _, s in lines) for _, lines in moments], dtype=np.int64)
    images = np.arange(MAX_BATCH - training.start + 1, dtype=np.int64)  # batch - start
    totals = fixed[:, None] + slope[:, None] * images[None, :]
    peaks = sorted(set(np.argmax(totals, axis=0).tolist()))  # argmax: the first largest
    return TrainingLines(training.start, [moments[i] for i in peaks])


def explorer_widget(explorer: Explorer) -> Widget:
    """The explorer's controls and its totals, with the numbers the page's script
    (`cnnarch/report/assets/explorer.js`) reads (it also rescales the card's per-layer chart);
    waits for the training traces."""
    data = explorer.data()
    return Widget(
        f"explorer-{explorer.model}",
        _form(explorer.model, tuple(data["categories"])),
        f"_The HTML page computes {explorer.model}'s totals and training peak at any batch "
        "size, precision and optimizer._",
        data,
    )


def _form(model: str, categories: tuple[str, ...]) -> Markup:
    """The controls and the tables of one model; the page's script fills the values."""
    precisions = join([element("option", {"value": p}, p) for p in PRECISIONS])
    optimizers = join([element("option", {"value": o}, OPTIMIZER_LABELS[o]) for o in OPTIMIZERS])
    modes = join([element("option", {"value": m}, m) for m in ("inference", "training")])
    totals = join([_row(label, {"data_key": key}) for key, label in QUANTITIES])
    parts = join([_row(c, {"data_part": c}, "part") for c in categories])
    training = join(
        [
            _row("training peak (bytes)", {"data_key": "training_peak_bytes"}),
            _row("peak reached in the", {"data_key": "peak_phase"}),
            parts,
        ]
    )
    batch = {"type": "number", "name": "batch", "min": 1, "max": MAX_BATCH, "value": 1, "step": 1}
    return element(
        "form",
        {"class": "explorer", "data_model": model, "aria_label": f"explore {model}"},
        element("label", None, "batch size ", Markup(f"<input {_attributes(batch)}>")),
        " ",
        element("label", None, "precision ", element("select", {"name": "precision"}, precisions)),
        " ",
        element("label", None, "mode ", element("select", {"name": "mode"}, modes)),
        " ",
        element("label", None, "optimizer ", element("select", {"name": "optimizer"}, optimizers)),
        element("dl", {"class": "inference"}, totals),
        element("dl", {"class": "training", "hidden": True}, training),
    )


def _attributes(attributes: dict[str, object]) -> str:
    """Attributes of a void element (one without children), escaped."""
    return " ".join(f'{name}="{escape(value)}"' for name, value in attributes.items())


def _row(label: str, attributes: dict[str, object], css: str | None = None) -> Markup:
    out = element("output", {**attributes, "aria_live": "polite"})
    return element("div", {"class": css}, element("dt", None, label), element("dd", None, out))
