"""The rows of a "will it fit" table: for each model, variant, precision and card, the largest
training batch per device and every term of the memory it needs there.

Each row is `cnnarch.plan`'s answer read off the traces of the two smallest batches (its search
without the checking traces); where a model's two variants trace the same step (torchvision's
network is the paper's) the second variant's rows are the first's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from cnnarch.planner.cards import Card, find_card
from cnnarch.planner.search import NothingFits, answer, make_budget, training_step
from cnnarch.planner.traces import StepTraces
from cnnarch.zoo import model_card

# The order variants are shown in: torchvision's (what most people train) first.
VARIANTS = ("torchvision", "paper")
PRECISIONS = ("fp32", "bf16")
# The papers' recipe: SGD with momentum 0.9 (AlexNet, VGG, GoogLeNet, ResNet).
STEP = {"optimizer": "momentum"}


@dataclass(frozen=True)
class FitRow:
    """One model, variant, precision and card: the largest batch per device that fits (0 when
    not even the smallest does) and, at it, what the card holds, in bytes: `reserved` by the
    caching allocator (cuBLAS workspaces among its blocks; the traced `peak` is the allocated
    bytes, `allocated` the allocator's count of them), the CUDA `context`, the `cudnn`
    workspace bound, the `margin` for the prediction's error, and their `total`, out of the
    card's `memory` as its runtime reports it."""

    model: str
    variant: str
    precision: str
    card: str
    card_name: str
    memory: int
    batch: int
    peak: int | None
    allocated: int | None
    reserved: int | None
    context: int
    cublas: int
    cudnn: int
    margin: int | None
    total: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_table_rows(
    models: Sequence[str],
    cards: Sequence[str | Card],
    *,
    variants: Sequence[str] = VARIANTS,
    precisions: Sequence[str] = PRECISIONS,
    **step_options: Any,
) -> list[FitRow]:
    """The rows of a "will it fit" table, model by model, then variant (torchvision's first;
    a variant the zoo does not have for a model is left out), precision, card.

    Each (model, variant, precision) is traced at its two smallest batches, and every card's
    batch is read off them by `cnnarch.plan`'s search (its allocator replays), without the two
    checking traces `plan` adds: `cnnarch.plan(model, card=..., variant=..., precision=...,
    optimizer="momentum")` names the same batch and checks it.

    Args:
        models: zoo names.
        cards: cards by name or as `Card`s (`cnnarch.planner.CARDS`).
        variants: the zoo variants, in the order shown.
        precisions: "fp32", "bf16" or "fp16" (autocast), in the order shown.
        step_options: the training step (`plan`'s options; SGD with momentum by default).
    """
    found = [card if isinstance(card, Card) else find_card(card) for card in cards]
    options = {**STEP, **step_options}
    rows: list[FitRow] = []
    for name in models:
        offered = model_card(name).variants
        traced: dict[str, tuple[StepTraces, list[FitRow]]] = {}  # by precision, the last variant
        for variant in [v for v in variants if v in offered]:
            for precision in precisions:
                step = training_step(True, {**options, "precision": precision})
                traces = StepTraces(name, None, step, variant)
                before = traced.get(precision)
                if before is not None and _same_step(traces, before[0]):
                    found_rows = [replace(row, variant=variant) for row in before[1]]
                else:
                    found_rows = [_row(traces, name, variant, precision, card) for card in found]
                traced[precision] = (traces, found_rows)
                rows += found_rows
    return rows


def _same_step(one: StepTraces, other: StepTraces) -> bool:
    """Whether two variants' traces give the same answer at every batch: the same storages and
    peaks at the two smallest batches, from which the search reads off every other batch."""
    first = one.smallest
    if other.smallest != first or one.fixed != other.fixed:
        return False
    if one.storages(first + 2) is None or other.storages(first + 2) is None:
        return False  # not read off the two smallest batches: each batch searched is traced
    return all(
        one.peak(batch) == other.peak(batch)
        and one.storages(batch) == other.storages(batch)
        and one.details_at(batch) == other.details_at(batch)
        for batch in (first, first + 1)
    ) and one.storages(first + 2) == other.storages(first + 2)


def _row(traces: StepTraces, name: str, variant: str, precision: str, card: Card) -> FitRow:
    budget = make_budget(None, card)
    common = {
        "model": name,
        "variant": variant,
        "precision": precision,
        "card": card.key,
        "card_name": card.name,
        "memory": budget.memory,
        "context": budget.context,
        "cublas": sum(budget.cublas),
        "cudnn": budget.cudnn,
    }
    try:
        plan = answer(traces, budget, None, confirm=False)
    except NothingFits:
        return FitRow(
            **common, batch=0, peak=None, allocated=None, reserved=None, margin=None, total=None
        )
    return FitRow(
        **common,
        batch=plan.batch,
        peak=plan.peak_bytes,
        allocated=plan.allocated_bytes,
        reserved=plan.reserved_bytes,
        margin=plan.margin_bytes,
        total=plan.total_bytes,
    )
