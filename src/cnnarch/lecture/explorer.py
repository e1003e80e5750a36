"""The explorer on each model card (a `Widget`): pick a batch size, inference or training, a
precision and an optimizer, read the totals that `cnnarch summary` and `cnnarch plan` print for
that setting, and give a card's memory to read the largest batch that fits; computed in the page
without a server. It opens on the setting of the page's training figures.

Inference totals are affine in the batch size: value(B) = value(1) + step x (B - 1). Each one's
value(1) and step come from the analyzer at batch 1 and 2, and the rule is checked against the
analyzer at `CHECK_BATCHES` (the largest batch the page offers); a quantity that fails the
check is left out for that model.

The training peak is not affine: it is the largest of the step's moments (`TrainingMemory.
moments`: each clock of the forward pass, backward pass and optimizer step). Each moment's
bytes by category are, though: value(B) = value(b0) + step x (B - b0), from the analyzer at
the smallest batch b0 that trains and at b0 + 1. The page takes the first largest moment as the
analyzer does, so it shows the analyzer's peak and its breakdown; only the moments that are the
peak at some batch up to `MAX_BATCH` are embedded. The same moments, all of them, are the
planner's `PeakLines` (each moment's total is a line; the peak is the highest).

The largest batch that fits is `cnnarch plan`'s search, run in the page against the budget
`cnnarch.planner.make_budget` makes of a card or a memory size: for inference the peak lines
alone; for training a bisection below the batch whose allocated peak fits, each batch judged by
replaying the step's storages through the caching allocator (`assets/allocator.js`, the
planner's `allocator.replay`). The storages are lines in the batch too, read off the traces as
the planner reads them (`StepTraces.storage_lines`); SGD with momentum's and Adam's are SGD's
with their own added (`StorageLines.with_optimizer`), so each costs one trace, not two.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from markupsafe import Markup, escape

from cnnarch.analysis.memory import BREAKDOWN_ORDER, OPTIMIZER_STATE
from cnnarch.analysis.precision import DTYPES
from cnnarch.analysis.precision import PRECISIONS as STEP_DTYPES
from cnnarch.analysis.trace import NEVER_FREED
from cnnarch.errors import CnnarchError
from cnnarch.lecture.analyses import TRAINING_OPTIMIZER
from cnnarch.lecture.diagrams import shape_text
from cnnarch.lecture.layers import LectureLayer
from cnnarch.planner import CARDS, Budget, PeakLines, make_budget
from cnnarch.planner.budget import SMALLEST_BARE_BYTES, UNITS
from cnnarch.planner.lines import SEARCH_LIMIT
from cnnarch.planner.search import training_step
from cnnarch.planner.traces import (
    StorageLines,
    Storages,
    fixed_bytes,
    step_storages,
)
from cnnarch.report.document import Paragraph, Widget
from cnnarch.report.markup import element, join
from cnnarch.units import number

if TYPE_CHECKING:
    from cnnarch.analysis import Summary


@dataclass(frozen=True)
class Precision:
    """A precision the explorer offers: its name on the page, the dtype the whole model is
    analyzed in (a name of `DTYPES`, as `cnnarch summary --dtype` takes it) and the training
    step's mixed precision (`TrainingStep.precision`, as `cnnarch plan --precision` takes it:
    "fp32" computes in the model's dtype, "bf16" and "fp16" under autocast over float32
    weights); `step` None: inference only. Autocast is traced in a training step only."""

    label: str
    dtype: str
    step: str | None
    inference: bool = True

    @property
    def itemsize(self) -> int:
        """Bytes of one value of a layer's output: the autocast dtype's under autocast."""
        autocast = STEP_DTYPES[self.step] if self.step is not None else None
        return (autocast or DTYPES[self.dtype]).itemsize


# Keys: `cnnarch summary --dtype` names for a whole model in one dtype, `cnnarch plan
# --precision` names for autocast.
PRECISIONS = {
    "float32": Precision("float32", "float32", "fp32"),
    "bf16": Precision("bf16 autocast", "float32", "bf16", inference=False),
    "fp16": Precision("fp16 autocast", "float32", "fp16", inference=False),
    "bfloat16": Precision("pure bf16", "bfloat16", "fp32"),
    "float16": Precision("pure fp16", "float16", None),
}
INFERENCE_PRECISIONS = tuple(key for key, p in PRECISIONS.items() if p.inference)
TRAINING_PRECISIONS = tuple(key for key, p in PRECISIONS.items() if p.step is not None)
# The precision of the page's training figures: float32, without autocast.
DEFAULT_PRECISION = "float32"
OPTIMIZERS = ("sgd", "momentum", "adam")  # names of `cnnarch.analysis.training_modes.OPTIMIZERS`
OPTIMIZER_LABELS = {"sgd": "SGD", "momentum": "SGD with momentum", "adam": "Adam"}
MODES = ("inference", "training")
MAX_BATCH = 65536
CHECK_BATCHES = (MAX_BATCH,)
# (field of `cnnarch summary --format json`, label); bytes are shown in bytes and decimal MB.
QUANTITIES = (
    ("total_params", "parameters"),
    ("total_macs", "MACs"),
    ("input_bytes", "input"),
    ("param_bytes", "parameters (bytes)"),
    ("activation_bytes", "allocated during the pass (total)"),
    ("inference_peak_bytes", "resident at the peak"),
)
# Why the two differ, said once where both are shown.
ALLOCATED_VS_RESIDENT = (
    "The total adds up every tensor the pass allocates; each is freed once the layers after "
    "it have read it, so far fewer bytes are resident at once, and the largest number resident "
    "at one moment is the peak that must fit on the card."
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

    def peak_lines(self) -> PeakLines:
        """The planner's form of the peak: each moment's total as a line in the batch, of the
        moments that are the peak at some batch the planner searches (the same peak at every
        batch from `start` on as all of them, in a few lines)."""
        moments = _peak_moments(self, SEARCH_LIMIT).moments
        first = [sum(v for v, _ in lines) for _, lines in moments]
        following = [sum(v + s for v, s in lines) for _, lines in moments]
        return PeakLines.through(self.start, first, following)


@dataclass(frozen=True)
class TrainingTotals:
    """A model's training steps: {precision: {optimizer: TrainingLines}} (the moments that
    are the peak up to `MAX_BATCH`) and {precision: {optimizer: PeakLines}} (the peak at every
    batch the planner searches), the categories of the breakdown that are not 0 in every
    embedded moment (the lines' order); what each layer of the model card saves for backward
    in training."""

    lines: dict[str, dict[str, TrainingLines]]
    fit: dict[str, dict[str, PeakLines]]
    categories: tuple[str, ...]
    saved: dict[str, list[list[int]]]  # {precision: [[bytes at batch start, step] per layer]}
    storages: dict[str, dict[str, StepStorages | None]]  # what `cnnarch plan` replays


@dataclass(frozen=True)
class Explorer:
    """A model's explorer: per inference precision, each quantity's [value at batch 1, step
    per image]; the training steps, computed in another process while the rest of the report
    is built (`training.result()` waits for them); the model card's layers; the batch size it
    opens at (the page's training figures')."""

    model: str
    lines: dict[str, dict[str, list[int]]]
    training: Future[TrainingTotals]
    layers: tuple[LectureLayer, ...] = ()
    batch: int = 1

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
        fit: dict[str, dict[str, Any]] = {
            "training": {
                precision: {optimizer: lines.to_dict() for optimizer, lines in by.items()}
                for precision, by in training.fit.items()
            },
            "inference": {},
            # what `cnnarch plan` replays through the caching allocator, per precision and
            # optimizer: deflated JSON in base64 (about a tenth of the JSON)
            "storages": packed(
                {
                    precision: {
                        optimizer: None if found is None else found.to_dict()
                        for optimizer, found in by.items()
                    }
                    for precision, by in training.storages.items()
                }
            ),
        }
        for precision, totals in self.lines.items():
            if "inference_peak_bytes" in totals:
                value, step = totals["inference_peak_bytes"]
                fit["inference"][precision] = PeakLines(((value - step, step),), 1).to_dict()
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
            "itemsize": {key: p.itemsize for key, p in PRECISIONS.items()},
            "labels": {key: p.label for key, p in PRECISIONS.items()},
            "fit": fit,
            "budgets": budgets(),
            "max_batch": MAX_BATCH,
        }


def budgets() -> dict[str, Any]:
    """What the page needs of `cnnarch.planner.make_budget` to read the largest batch off the
    peak lines: for each card (and for a memory given in bytes, which names no card) the bytes
    held besides the step's tensors in training and in inference (the CUDA context, cuDNN
    bound and cuBLAS workspaces) and the margin, a fraction of the peak; and how memory sizes
    are written (`cnnarch.planner.parse_bytes`)."""

    def held(budget: Budget) -> int:
        return budget.others + sum(budget.cublas)

    def terms(card: str | None, memory: int | None) -> dict[str, Any]:
        train = make_budget(memory, card)
        inference = make_budget(memory, card, train=False)
        return {
            "held": {"training": held(train), "inference": held(inference)},
            "error": train.error,
            # the training replay's: held outside the allocator, and its cuBLAS workspaces
            "others": train.others,
            "cublas": list(train.cublas),
        }

    some_memory = 2**40  # the terms of a bare memory size do not depend on it
    return {
        "cards": {
            key: {"name": card.name, "memory": card.total_memory, **terms(key, None)}
            for key, card in CARDS.items()
        },
        "memory": terms(None, some_memory),
        "units": UNITS,
        "smallest_bare_bytes": SMALLEST_BARE_BYTES,
        "search_limit": SEARCH_LIMIT,
    }


def packed(data: Any) -> str:
    """`data` as compact JSON, deflated (zlib) and in base64: what the page's script reads back
    with `DecompressionStream("deflate")`."""
    text = json.dumps(data, separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(text, 9)).decode("ascii")


def affine_totals(analyze: Callable[..., Any], name: str) -> dict[str, dict[str, list[int]]]:
    """{precision: {field: [value at batch 1, step per image]}} for the fields that the
    analyzer confirms are affine in the batch size, for each inference precision."""
    found: dict[str, dict[str, list[int]]] = {}
    for precision in INFERENCE_PRECISIONS:
        dtype = DTYPES[PRECISIONS[precision].dtype]
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
    """`name`'s training steps from `analyze(name, batch_size=, dtype=, train=True, step=)`,
    each step as `cnnarch plan` plans it (`cnnarch.planner.search.training_step`: torch.optim's
    foreach implementation, CUDA's default): SGD at two batches, the other optimizers at one
    (`other_optimizer`); and what each of `layers` (the module paths of each) saves for
    backward, as lines."""
    found: dict[str, dict[str, TrainingLines]] = {}
    saved: dict[str, list[list[int]]] = {}
    storages: dict[str, dict[str, StepStorages | None]] = {}
    start = 1
    for precision in TRAINING_PRECISIONS:
        setting = PRECISIONS[precision]
        traced: dict[tuple[int, str], Summary] = {}

        def summary(
            batch: int,
            optimizer: str,
            setting: Precision = setting,
            traced: dict[tuple[int, str], Summary] = traced,
        ) -> Summary:
            if (batch, optimizer) not in traced:
                step = training_step(True, {"optimizer": optimizer, "precision": setting.step})
                dtype = DTYPES[setting.dtype]
                traced[batch, optimizer] = analyze(
                    name, batch_size=batch, dtype=dtype, train=True, step=step
                )
            return traced[batch, optimizer]

        try:
            sgd = summary(start, "sgd")
        except CnnarchError:  # batch-norm in training needs more than one value per channel
            if start > 1:
                raise
            start, sgd = 2, summary(2, "sgd")
        sgd_next = summary(start + 1, "sgd")
        sgd_lines = moment_lines(start, sgd.training, sgd_next.training)
        found[precision] = {
            optimizer: (
                sgd_lines
                if optimizer == "sgd"
                else other_optimizer(
                    start, summary(start, optimizer).training, sgd.training, sgd_lines
                )
            )
            for optimizer in OPTIMIZERS
        }
        sgd_storages = StorageLines.read_off(lambda b: step_storages(summary(b, "sgd")), start)
        storages[precision] = {
            optimizer: step_storages_at_every_batch(summary, start, optimizer, sgd_storages)
            for optimizer in OPTIMIZERS
        }
        one, two = (saved_by_layer(s, layers) for s in (sgd, sgd_next))
        saved[precision] = [[a, b - a] for a, b in zip(one, two, strict=True)]
    fit = {
        precision: {optimizer: lines.peak_lines() for optimizer, lines in by.items()}
        for precision, by in found.items()
    }
    peaks = {
        precision: {optimizer: _peak_moments(lines) for optimizer, lines in by.items()}
        for precision, by in found.items()
    }
    used = [
        index
        for index in range(len(BREAKDOWN_ORDER))
        if any(
            any(lines[index])
            for by_optimizer in peaks.values()
            for training in by_optimizer.values()
            for _, lines in training.moments
        )
    ]
    for by_optimizer in peaks.values():
        for optimizer, training in by_optimizer.items():
            moments = [(phase, [lines[i] for i in used]) for phase, lines in training.moments]
            by_optimizer[optimizer] = TrainingLines(training.start, moments)
    categories = tuple(BREAKDOWN_ORDER[i] for i in used)
    return TrainingTotals(peaks, fit, categories, saved, storages)


@dataclass(frozen=True)
class StepStorages:
    """What `cnnarch plan` replays through the caching allocator for one training step, at
    every batch: the storages as lines from `lines.start` on (as the planner reads them,
    `StepTraces.storage_lines`), the smallest batch's own storages where the lines start after
    it (`first`, None otherwise), its traced peak and the bytes needed whatever the batch."""

    lines: StorageLines
    first: Storages | None
    first_peak: int
    fixed: int

    def to_dict(self) -> dict[str, Any]:
        """Flat lists for the page: persistent [bytes, per example, ...]; step [bytes, per
        example, clock allocated after the previous one's, clocks alive (-1: to the step's
        end), ...]; the smallest batch's in the same form with 0 per example."""

        def flat(
            persistent: Sequence[tuple[int, int]], step: Sequence[tuple[int, int, int, int]]
        ) -> dict[str, list[int]]:
            steps: list[int] = []
            previous = 0
            for nbytes, per_example, begin, end in step:
                alive = -1 if end >= NEVER_FREED else end - begin
                steps += [nbytes, per_example, begin - previous, alive]
                previous = begin
            return {"persistent": [v for pair in persistent for v in pair], "step": steps}

        first = self.first
        return {
            "start": self.lines.start,
            **flat(self.lines.persistent, self.lines.step),
            "first": None
            if first is None
            else flat([(n, 0) for n in first.persistent], [(n, 0, a, b) for n, a, b in first.step]),
            "first_peak": self.first_peak,
            "fixed": self.fixed,
        }


def step_storages_at_every_batch(
    summary: Callable[[int, str], Summary],
    smallest: int,
    optimizer: str,
    sgd: StorageLines | None,
) -> StepStorages | None:
    """`optimizer`'s step storages at every batch, as `cnnarch plan` reads them off its traces,
    from `summary(batch, optimizer)` (the analyzer's training summary, each made once) and
    SGD's (`sgd`, `StorageLines.read_off` its traces): another optimizer's from SGD's lines and
    its own trace at one batch where SGD's passes are its own (`StorageLines.with_optimizer`),
    else from two of its traces. None where SGD's have none (the planner traces every batch it
    looks at)."""
    if sgd is None:
        return None
    lines: StorageLines | None = sgd
    if optimizer != "sgd":
        own = step_storages(summary(sgd.start, optimizer))
        lines = sgd.with_optimizer(own) if own else None
        if lines is None:  # its own trace at a second batch
            two = step_storages(summary(sgd.start + 1, optimizer))
            lines = StorageLines.through(sgd.start, own, two) if own and two else None
    if lines is None:
        return None
    at_smallest = summary(smallest, optimizer)
    first = step_storages(at_smallest) if lines.start > smallest else None
    assert at_smallest.training is not None
    return StepStorages(
        lines, first, at_smallest.training.peak_bytes, fixed_bytes(at_smallest, None)
    )


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


def _peak_moments(training: TrainingLines, largest: int = MAX_BATCH) -> TrainingLines:
    """Only the moments that are the first largest at some batch from `start` to `largest`.

    The peak is the upper envelope of the moments' lines: from the first largest at `start`,
    the next one is the first line to catch up with it (a tie goes to the earlier moment), and
    so on up to `largest`."""
    moments = training.moments
    fixed = np.array([sum(v for v, _ in lines) for _, lines in moments], dtype=np.int64)
    slope = np.array([sum(s for _, s in lines) for _, lines in moments], dtype=np.int64)
    order = np.arange(len(moments))
    last = largest - training.start  # images beyond `start`
    images, chosen = 0, []
    while True:
        totals = fixed + slope * images
        best = int(np.argmax(totals))  # argmax: the first largest
        chosen.append(best)
        steeper = slope > slope[best]
        if not steeper.any():
            break
        behind = totals[best] - totals[steeper]  # >= 0 now
        gain = slope[steeper] - slope[best]
        # the images after which each steeper line first ties (earlier moment) or passes it
        ties_win = order[steeper] < best
        catch_up = np.where(ties_win, -(-behind // gain), behind // gain + 1)
        images = max(images + 1, int(catch_up.min()) + images)
        if images > last:
            break
    return TrainingLines(training.start, [moments[i] for i in sorted(set(chosen))])


def explorer_widget(explorer: Explorer) -> Widget:
    """The explorer's controls and its totals, with the numbers the page's script
    (`cnnarch/report/assets/explorer.js`) reads (it also rescales the card's per-layer chart);
    waits for the training traces."""
    data = explorer.data()
    return Widget(
        f"explorer-{explorer.model}",
        _form(explorer, tuple(data["categories"])),
        f"_The HTML page computes {explorer.model}'s totals, training peak and the largest "
        "batch that fits a card at any batch size, precision and optimizer._",
        data,
    )


def explorer_intro(batch: int) -> Paragraph:
    """What every model card's explorer does, said once above the cards.

    Args:
        batch: the batch size of the page's training figures, which the explorers open at.
    """
    precisions = ", ".join(p.label for p in PRECISIONS.values())
    return Paragraph(
        f"Each card has an explorer. It opens on the page's training figures (batch {batch}, "
        f"float32, {OPTIMIZER_LABELS[TRAINING_OPTIMIZER]}); choose a batch size (a whole "
        f"number, 1 to {number(MAX_BATCH)}), inference or training, a precision ({precisions}) "
        "and an optimizer. Inference shows what `cnnarch summary MODEL --batch B --dtype D "
        "--format json` reports, to the byte; training shows the peak of the step `cnnarch plan "
        "MODEL --batch-size B --precision P --optimizer O` plans (torch.optim's multi-tensor step, "
        "CUDA's default; pure bf16 is the model converted to bfloat16), the pass it is reached "
        "in and what is resident then. Give a card (rtx4090, a100-80gb, ...) or its memory "
        "(24GiB, 40GB, or the bytes CUDA reports) and it names the largest batch that fits, "
        "the batch `cnnarch plan` names for the same setting: the CUDA context, cuBLAS "
        "workspaces and the planner's margin counted as the planner counts them, and for "
        "training the step's storages replayed through a model of PyTorch's caching allocator, "
        "whose rounding and cached segments hold more than the tensors (the reserved bytes). "
        "The page computes all of it offline: inference totals are value at batch 1 + step "
        "× (B − 1), checked against the analyzer at batch "
        f"{number(MAX_BATCH)}; the training peak is the largest of the step's moments (each "
        "clock of the forward pass, the backward pass and the optimizer step), each of them "
        "fixed bytes + bytes per image, the planner's peak lines; each storage of the step is "
        "likewise fixed bytes + bytes per image, read off the same traces as the planner reads "
        "them."
    )


def _form(explorer: Explorer, categories: tuple[str, ...]) -> Markup:
    """The controls and the tables of one model, set to the page's training figures; the
    page's script fills the values."""
    model = explorer.model

    def options(values: Sequence[str], labels: Callable[[str], str], chosen: str) -> Markup:
        return join(
            [
                element("option", {"value": v, "selected": v == chosen or None}, labels(v))
                for v in values
            ]
        )

    precisions = options(tuple(PRECISIONS), lambda p: PRECISIONS[p].label, DEFAULT_PRECISION)
    optimizers = options(OPTIMIZERS, OPTIMIZER_LABELS.__getitem__, TRAINING_OPTIMIZER)
    modes = options(MODES, str, "training")
    totals = join([_row(label, {"data_key": key}) for key, label in QUANTITIES])
    parts = join([_row(c, {"data_part": c}, "part") for c in categories])
    training = join(
        [
            _row("resident at the peak", {"data_key": "training_peak_bytes"}),
            _row("reached in the", {"data_key": "peak_phase"}),
            parts,
        ]
    )
    batch = {
        "type": "number",
        "name": "batch",
        "min": 1,
        "max": MAX_BATCH,
        "step": 1,
        "value": explorer.batch,
        "inputmode": "numeric",
        "aria-describedby": f"batch-problem-{model}",
    }
    memory = {
        "type": "text",
        "name": "memory",
        "placeholder": "rtx4090 or 24GiB",
        "list": f"cards-{model}",
        "autocomplete": "off",
        "spellcheck": "false",
    }
    cards = join([element("option", {"value": key}, card.name) for key, card in CARDS.items()])
    return element(
        "form",
        {"class": "explorer", "data_model": model, "aria_label": f"explore {model}"},
        element(
            "div",
            {"class": "controls"},
            element("label", None, "batch size ", Markup(f"<input {_attributes(batch)}>")),
            element("label", None, "mode ", element("select", {"name": "mode"}, modes)),
            element(
                "label", None, "precision ", element("select", {"name": "precision"}, precisions)
            ),
            element(
                "label", None, "optimizer ", element("select", {"name": "optimizer"}, optimizers)
            ),
        ),
        element(
            "output",
            {"class": "problem", "id": f"batch-problem-{model}", "aria_live": "polite"},
        ),
        element(
            "div",
            {"class": "inference", "hidden": True},
            element("dl", None, totals),
            element("p", {"class": "why"}, ALLOCATED_VS_RESIDENT),
        ),
        element("dl", {"class": "training"}, training),
        element(
            "div",
            {"class": "fit"},
            element("label", None, "card memory ", Markup(f"<input {_attributes(memory)}>")),
            element("datalist", {"id": f"cards-{model}"}, cards),
            element("output", {"class": "largest", "name": "largest", "aria_live": "polite"}),
        ),
    )


def _attributes(attributes: dict[str, object]) -> str:
    """Attributes of a void element (one without children), escaped."""
    return " ".join(f'{name}="{escape(value)}"' for name, value in attributes.items())


def _row(label: str, attributes: dict[str, object], css: str | None = None) -> Markup:
    out = element("output", {**attributes, "aria_live": "polite"})
    return element("div", {"class": css}, element("dt", None, label), element("dd", None, out))
