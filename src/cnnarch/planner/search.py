"""`plan`: the largest batch that trains on a card, or whether a given batch does.

The planner does not run the model: each batch it considers is one exact meta trace of a
training step by `cnnarch.analyze` (forward, backward and optimizer step, with the step's
precision, checkpointing and accumulation), and the step's storages, in the order the trace
allocates and frees them, are replayed through a model of PyTorch's CUDA caching allocator
(`cnnarch.planner.allocator`). A batch fits when the replay completes within the card's memory
less the CUDA context, a cuDNN workspace bound, the margin for the prediction's own error and
any reserve (`cnnarch.planner.device`); the cuBLAS workspaces are allocations of the replay.

The traces of the two smallest batches give every storage's size at any batch, so the search
replays batches it never traced; the batch it names is checked by its own trace and the next
one's: the named batch fits and the next does not.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from cnnarch.analysis.memory import (
    BREAKDOWN_ORDER,
    GATHERED_PARAMETERS,
    GRADIENT_BUCKETS,
    REDUCE_BUFFER,
    WEIGHT_COPIES,
)
from cnnarch.analysis.training_modes import TrainingStep
from cnnarch.errors import CnnarchError
from cnnarch.planner.allocator import AllocatorConfig, Replay, replay
from cnnarch.planner.budget import parse_bytes
from cnnarch.planner.cards import Card, find_card
from cnnarch.planner.device import (
    CUDNN_WORKSPACE,
    GENERATIONS,
    MEASURED_ERROR,
    MEASURED_SHARDED_ERROR,
    UNKNOWN_GENERATION,
    Generation,
    cublas_workspaces,
    margin_bytes,
)
from cnnarch.planner.lines import SEARCH_LIMIT, PeakLines
from cnnarch.planner.traces import NeedsRealRun, StepTraces
from cnnarch.units import byte_size, number, percent

# The reserve `cnnarch plan` kept free before the terms below were modeled; the report's
# current "Will it fit" section still reads it. `plan` keeps no reserve by default now.
DEFAULT_RESERVE = "1GB"


class NothingFits(CnnarchError):
    """Not even the smallest batch fits the budget."""


@dataclass(frozen=True)
class Budget:
    """A device's memory and what the process holds on it besides the step's tensors.

    memory: bytes the CUDA runtime reports (or the budget given); card: the card, if named;
    generation: its GPU generation; context: the CUDA context; cudnn: the bound kept for cuDNN
    workspaces; reserve: more bytes kept free (other processes, a display); error: the margin,
    as a fraction of the predicted peak; allocator: the caching allocator's settings; cublas:
    the cuBLAS workspaces (allocated through the allocator).
    """

    memory: int
    card: Card | None
    generation: Generation
    context: int
    cudnn: int
    reserve: int
    error: float
    allocator: AllocatorConfig
    cublas: tuple[int, ...]

    @property
    def others(self) -> int:
        """Bytes held outside the caching allocator, or kept free."""
        return self.context + self.cudnn + self.reserve


def make_budget(
    memory: int | str | None,
    card: str | Card | None,
    *,
    train: bool = True,
    sharded: bool = False,
    context: int | str | None = None,
    cudnn_workspace: int | str = CUDNN_WORKSPACE,
    reserve: int | str = 0,
    margin: float | None = None,
    expandable_segments: bool = False,
    max_split_size: int | str | None = None,
) -> Budget:
    """The `Budget` of a card (by name, at the memory its runtime reports) or of a size in
    bytes, for a training step (`train`; ZeRO-2/3 when `sharded`) or an inference pass; see
    `plan` for the other arguments."""
    if margin is None:
        margin = MEASURED_SHARDED_ERROR if sharded else MEASURED_ERROR
    if card is None and memory is None:
        raise CnnarchError(
            "give the card (--card rtx4090) or its memory in bytes (--memory 25393692672B)"
        )
    found = card if isinstance(card, Card) or card is None else find_card(card)
    generation = GENERATIONS[found.generation] if found is not None else UNKNOWN_GENERATION
    if memory is not None:
        total = _bytes(memory, "memory")
    else:
        assert found is not None
        total = found.total_memory
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < 1:
        raise CnnarchError(f"margin must be a fraction of the peak in [0, 1), got {margin!r}")
    split = None if max_split_size is None else _bytes(max_split_size, "max split size")
    handles = cublas_workspaces(generation)
    budget = Budget(
        memory=total,
        card=found,
        generation=generation,
        context=generation.context_bytes if context is None else _bytes(context, "context"),
        cudnn=_bytes(cudnn_workspace, "cuDNN workspace"),
        reserve=_bytes(reserve, "reserve"),
        error=float(margin),
        allocator=AllocatorConfig(expandable_segments, split),
        cublas=tuple(handles if train else handles[:1]),
    )
    if budget.others + sum(budget.cublas) >= budget.memory:
        raise CnnarchError(
            f"the CUDA context ({byte_size(budget.context)}), cuBLAS workspaces, cuDNN bound "
            f"and reserve ({byte_size(budget.reserve)}) leave nothing of the "
            f"{byte_size(budget.memory)}: lower --reserve or --context"
        )
    return budget


@dataclass(frozen=True)
class Plan:
    """The planner's answer. Sizes are bytes, per device; `batch` is the micro-batch per device
    (what one forward pass holds), `global_batch` the examples per optimizer step over all
    devices.

    What the device holds at the step's worst moment, each term named: `reserved_bytes`, the
    caching allocator's segments (its replay of the step under the card's memory, the cuBLAS
    workspaces among its blocks; None where not modeled: inference, ZeRO-2/3, which count
    `peak_bytes + cublas_bytes` instead), `context_bytes`, `cudnn_bytes`, `margin_bytes` (the
    prediction's measured error, `margin_fraction` of the peak) and `reserve_bytes`; their sum
    is `total_bytes`, and `headroom_bytes` is what is left of `memory_bytes`.
    `peak_bytes` is the traced allocated peak (exact bytes, what the CPU checks measure),
    `allocated_bytes` the allocator's (blocks rounded to 512 bytes, workspaces included:
    `torch.cuda.max_memory_allocated`).
    """

    model: str
    train: bool
    step: TrainingStep | None
    memory_bytes: int
    card: Card | None
    batch: int
    global_batch: int
    searched: bool  # True: `batch` is the largest that fits; False: the batch asked about
    fits: bool
    peak_bytes: int
    peak_phase: str
    breakdown: dict[str, int]
    allocated_bytes: int | None
    reserved_bytes: int | None
    cache_flushes: int  # times per run the allocator freed its cache to make room
    context_bytes: int
    cublas_bytes: int
    cudnn_bytes: int
    margin_bytes: int
    margin_fraction: float
    reserve_bytes: int
    allocator: AllocatorConfig
    fixed_bytes: int  # needed whatever the batch: parameters, buffers, gradients, state
    per_example_bytes: int  # what one more example adds to the peak, at `batch`
    linear: bool  # every traced batch's peak lies on the line through `batch` and the next
    checked: bool  # `batch` (and the next, when searched) were traced, not read off two traces
    next_peak_bytes: int | None = None  # the peak at batch + 1 (searched plans)
    traced: dict[int, int] = field(default_factory=dict)  # batch -> peak, every trace made
    notes: tuple[str, ...] = ()

    @property
    def held_bytes(self) -> int:
        """What PyTorch's allocator holds at the worst moment: reserved, where modeled."""
        if self.reserved_bytes is not None:
            return self.reserved_bytes
        return self.peak_bytes + self.cublas_bytes

    @property
    def total_bytes(self) -> int:
        return (
            self.held_bytes
            + self.context_bytes
            + self.cudnn_bytes
            + self.margin_bytes
            + self.reserve_bytes
        )

    @property
    def headroom_bytes(self) -> int:
        """Memory left at the worst moment; negative when the batch does not fit."""
        return self.memory_bytes - self.total_bytes

    def terms(self) -> dict[str, int]:
        """The device's memory at the step's worst moment, by name, in bytes."""
        held = (
            "reserved by the caching allocator"
            if self.reserved_bytes is not None
            else "allocated (+ cuBLAS workspace)"
        )
        return {
            held: self.held_bytes,
            "CUDA context": self.context_bytes,
            "cuDNN workspace bound": self.cudnn_bytes,
            f"margin ({percent(self.margin_fraction, 2)} of the peak)": self.margin_bytes,
            "reserve": self.reserve_bytes,
        }

    # -- exports ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        step = self.step
        return {
            "model": self.model,
            "train": self.train,
            "step": dataclasses.asdict(step) if step is not None else None,
            "card": dataclasses.asdict(self.card) if self.card is not None else None,
            "memory_bytes": self.memory_bytes,
            "batch": self.batch,
            "global_batch": self.global_batch,
            "searched": self.searched,
            "checked": self.checked,
            "fits": self.fits,
            "peak_bytes": self.peak_bytes,
            "peak_phase": self.peak_phase,
            "allocated_bytes": self.allocated_bytes,
            "reserved_bytes": self.reserved_bytes,
            "cache_flushes": self.cache_flushes,
            "context_bytes": self.context_bytes,
            "cublas_bytes": self.cublas_bytes,
            "cudnn_bytes": self.cudnn_bytes,
            "margin_bytes": self.margin_bytes,
            "margin_fraction": self.margin_fraction,
            "reserve_bytes": self.reserve_bytes,
            "total_bytes": self.total_bytes,
            "headroom_bytes": self.headroom_bytes,
            "allocator": dataclasses.asdict(self.allocator),
            "breakdown": dict(self.breakdown),
            "fixed_bytes": self.fixed_bytes,
            "per_example_bytes": self.per_example_bytes,
            "linear": self.linear,
            "next_peak_bytes": self.next_peak_bytes,
            "traced": {str(b): p for b, p in sorted(self.traced.items())},
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        lines = [f"{self.model}: {self._setup()}", self._device()]
        lines.append(self._verdict())
        terms = {k: v for k, v in self.terms().items() if v or not k.startswith("reserve")}
        width = max(len(k) for k in terms)
        for name, nbytes in terms.items():
            lines.append(f"  {name:<{width}s} {byte_size(nbytes):>10s}")
        spare = byte_size(abs(self.headroom_bytes))
        lines.append(
            f"  {'total':<{width}s} {byte_size(self.total_bytes):>10s}  "
            + (f"({spare} to spare)" if self.headroom_bytes >= 0 else f"(over by {spare})")
        )
        lines.append(self._allocator_line())
        if self.searched and self.next_peak_bytes is not None:
            why = (
                "the allocator's replay runs out of the memory left to it"
                if self.reserved_bytes is not None
                else "with the terms above it is over the card"
            )
            lines.append(
                f"Batch {self.batch + 1} does not fit: {why} (its allocated peak "
                f"{byte_size(self.next_peak_bytes)})"
            )
        lines.append(f"At the peak ({self.peak_phase}), {byte_size(self.peak_bytes)} allocated:")
        shown = self._shown()
        width = max(len(k) for k in shown)
        for name, nbytes in shown.items():
            lines.append(f"  {name:<{width}s} {byte_size(nbytes):>10s}")
        shape = "" if self.linear else "; smaller batches add less (the search used exact traces)"
        fixed = "parameters, gradients, optimizer state" if self.train else "parameters"
        lines.append(
            f"Needed whatever the batch ({fixed}): {byte_size(self.fixed_bytes)}; one more "
            f"example adds {byte_size(self.per_example_bytes)} here{shape}"
        )
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        rows = [f"**{self.model}**: {self._setup()}", "", self._device(), "", self._verdict(), ""]
        rows += ["| term | bytes | size |", "|---|---:|---:|"]
        for name, nbytes in {**self.terms(), "total": self.total_bytes}.items():
            rows.append(f"| {name} | {number(nbytes)} | {byte_size(nbytes)} |")
        rows += ["", self._allocator_line()]
        rows += [f"*Note: {note}*" for note in self.notes]
        return "\n".join(rows)

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><td>{html.escape(name)}</td><td style='text-align:right'>{number(nbytes)}</td>"
            f"<td style='text-align:right'>{byte_size(nbytes)}</td></tr>"
            for name, nbytes in {**self.terms(), "total": self.total_bytes}.items()
        )
        notes = "".join(f"<p><em>Note: {html.escape(n)}</em></p>" for n in self.notes)
        return (
            f"<div><p><strong>{html.escape(self.model)}</strong>: "
            f"{html.escape(self._setup())}</p><p>{html.escape(self._device())}</p>"
            f"<p>{html.escape(self._verdict())}</p><table><thead><tr><th>term</th>"
            f"<th>bytes</th><th>size</th></tr></thead><tbody>{cells}</tbody></table>"
            f"<p>{html.escape(self._allocator_line())}</p>{notes}</div>"
        )

    def __repr__(self) -> str:
        card = f", card={self.card.key!r}" if self.card is not None else ""
        verb = "largest" if self.searched else "fits" if self.fits else "does not fit"
        return (
            f"Plan(model={self.model!r}, batch={self.batch} ({verb}){card}, "
            f"total={byte_size(self.total_bytes)} of {byte_size(self.memory_bytes)})"
        )

    # -- pieces of the text --------------------------------------------------------------------
    def _device(self) -> str:
        memory = f"{number(self.memory_bytes)} bytes ({byte_size(self.memory_bytes)}, "
        memory += f"{number(self.memory_bytes / 2**30, 2)} GiB)"
        if self.card is None:
            return f"Device memory: {memory}, as given"
        how = "derived" if self.card.derived else "as CUDA reports it"
        return f"Card: {self.card.name} ({self.card.sold_as}): {memory}, {how}"

    def _verdict(self) -> str:
        per_step = (
            f" ({self.global_batch} per optimizer step)" if self.global_batch != self.batch else ""
        )
        if self.searched:
            checked = "" if self.checked else " (read off the traces of the smallest batches)"
            return f"Largest batch that fits: {self.batch}{per_step}{checked}"
        return f"Batch {self.batch}{per_step} " + ("fits" if self.fits else "does NOT fit")

    def _allocator_line(self) -> str:
        settings = []
        if self.allocator.expandable_segments:
            settings.append("expandable_segments:True")
        if self.allocator.max_split_size is not None:
            settings.append(f"max_split_size {byte_size(self.allocator.max_split_size)}")
        how = ", ".join(settings) or "default settings"
        if self.reserved_bytes is None or self.allocated_bytes is None:
            return f"Allocator ({how}): reserved bytes not modeled here; see the notes"
        flushes = (
            f"; it frees its cache {self.cache_flushes} times in the two steps replayed"
            if self.cache_flushes
            else ""
        )
        return (
            f"Allocator ({how}): {byte_size(self.allocated_bytes)} allocated at most, "
            f"{byte_size(self.reserved_bytes)} reserved{flushes}; cuBLAS workspaces "
            f"{byte_size(self.cublas_bytes)} among them"
        )

    def _shown(self) -> dict[str, int]:
        # shown where the step has them
        optional = (WEIGHT_COPIES, GRADIENT_BUCKETS, GATHERED_PARAMETERS, REDUCE_BUFFER)
        return {k: v for k, v in self.breakdown.items() if v or k not in optional}

    def _setup(self) -> str:
        step = self.step
        if step is None:
            return "inference (no gradients)"
        parts = [f"training, {step.optimizer}" + (" (foreach)" if step.foreach else "")]
        parts.append(step.precision if step.precision == "fp32" else f"{step.precision} autocast")
        if step.checkpoint is not None:
            parts.append(f"checkpoint {step.checkpoint}")
        if step.accumulate > 1:
            parts.append(f"{step.accumulate} micro-batches")
        if step.world_size > 1:
            ddp = "DDP, gradients in buckets" if step.bucket_view else "DDP"
            shard = {"zero1": ", ZeRO-1", "zero2": "ZeRO-2", "zero3": "ZeRO-3 / FSDP full shard"}
            if step.fully_sharded:
                ddp = ""
            parts.append(f"{step.world_size} ranks ({ddp}{shard.get(step.sharding, '')}; per rank)")
        if not step.set_to_none:
            parts.append("zero_grad keeps gradients")
        return ", ".join(parts)


def plan(
    model: nn.Module | str,
    memory: int | str | None = None,
    *,
    card: str | Card | None = None,
    train: bool = True,
    batch_size: int | None = None,
    input_size: Sequence[int] | None = None,
    variant: str = "paper",
    context: int | str | None = None,
    cudnn_workspace: int | str = CUDNN_WORKSPACE,
    reserve: int | str = 0,
    margin: float | None = None,
    expandable_segments: bool = False,
    max_split_size: int | str | None = None,
    allow_run: bool = False,
    **step_options: Any,
) -> Plan:
    """The largest batch per device that trains on a card, or, with `batch_size`, whether that
    many examples per optimizer step do.

    Args:
        model: a zoo name or any `nn.Module`.
        memory: the device's memory, in bytes or as text ("25393692672B", "24GiB", "40GB"):
            what `torch.cuda.get_device_properties(0).total_memory` reports. With `card`, it
            replaces the card's.
        card: a card by name (`cnnarch.planner.CARDS`: "rtx4090", "a100-80gb", "h100-80gb",
            ...): its memory as its runtime reports it and its generation's CUDA context.
        train: plan a training step (default) or an inference forward pass.
        batch_size: examples per optimizer step to check, over all ranks (split into
            `world_size` ranks and `accumulate` micro-batches); None searches for the largest
            micro-batch per rank that fits.
        input_size: (C, H, W) of one example; the zoo card's by default.
        variant: the zoo variant when `model` is a name.
        context: the CUDA context's bytes; the card's generation's by default
            (`cnnarch.planner.device`).
        cudnn_workspace: bytes kept free for cuDNN's convolution workspaces (default 0: PyTorch
            falls back to algorithms needing less when a workspace does not fit).
        reserve: more bytes kept free (other processes, a display).
        margin: the prediction's error kept free, as a fraction of the predicted peak (default
            the worst measured: `MEASURED_ERROR`, `MEASURED_SHARDED_ERROR` for ZeRO-2/3).
        expandable_segments: plan for `PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True`.
        max_split_size: plan for `max_split_size_mb` (bytes, or text such as "256MiB").
        allow_run: a model whose forward pass needs real data is run on real CPU tensors at
            its two smallest batches only, and larger batches are read off them; True lets it
            run at any batch (the memory of that pass, on the CPU).
        step_options: the training step, as `TrainingStep`'s fields (optimizer, precision,
            checkpoint, accumulate, set_to_none, world_size, sharding, bucket_view, foreach);
            foreach defaults to True here, torch's default for CUDA tensors. With a world size
            the peak is per rank (the rank with the largest optimizer shard).
    """
    if "batch" in step_options:
        raise CnnarchError("plan() takes the batch as batch_size=, as analyze() does")
    step = training_step(train, step_options)
    budget = make_budget(
        memory,
        card,
        train=train,
        sharded=step is not None and step.fully_sharded,
        context=context,
        cudnn_workspace=cudnn_workspace,
        reserve=reserve,
        margin=margin,
        expandable_segments=expandable_segments,
        max_split_size=max_split_size,
    )
    micro = _micro_batch(batch_size, step) if batch_size is not None else None
    traces = StepTraces(model, input_size, step, variant, allow_run)
    return answer(traces, budget, micro)


def peak_lines(
    model: nn.Module | str,
    *,
    input_size: Sequence[int] | None = None,
    variant: str = "paper",
    **step_options: Any,
) -> PeakLines:
    """The training peak per device at every batch, from two traces (`PeakLines`): for many
    budgets at the cost of one. Options as `plan`'s."""
    step = training_step(True, step_options)
    lines = StepTraces(model, input_size, step, variant).lines()
    if lines is None:
        raise CnnarchError("the step's ops differ between batches: use plan(), which traces each")
    return lines


# -- the search ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Verdict:
    """Does `batch` fit: its peak (traced or read off the lines), the margin at it and the
    allocator's replay (None where not modeled)."""

    batch: int
    peak: int
    margin: int
    replay: Replay | None
    fits: bool


def judge(traces: StepTraces, budget: Budget, batch: int, exact: bool) -> _Verdict:
    """Whether `batch` fits the budget: the step's storages replayed through the allocator
    under the memory left to it (or, where the allocator is not modeled, the traced peak and
    the cuBLAS workspace against it).

    Args:
        traces: the model's traces.
        budget: the device.
        batch: the micro-batch per device.
        exact: trace the batch; otherwise read it off the traces of the two smallest batches
            where they allow.
    """
    peak = traces.peak(batch) if exact else traces.peak_at(batch)
    margin = margin_bytes(peak, budget.error)
    if not traces.replayable():
        total = peak + sum(budget.cublas) + budget.others + margin
        return _Verdict(batch, peak, margin, None, total <= budget.memory)
    storages = None if exact else traces.storages(batch)
    if storages is None:
        traces.peak(batch)
        storages = traces.storages(batch)
        assert storages is not None  # a traced training step that is replayable has them
    limit = budget.memory - budget.others - margin
    result = replay(
        (*storages.persistent, *budget.cublas),
        storages.step,
        config=budget.allocator,
        limit=max(limit, 0),
    )
    return _Verdict(batch, peak, margin, result, not result.out_of_memory)


def answer(traces: StepTraces, budget: Budget, micro: int | None, confirm: bool = True) -> Plan:
    """The plan for one budget.

    Args:
        traces: the model's traces (reused across budgets).
        budget: the device.
        micro: the micro-batch per device to check; None searches the largest that fits.
        confirm: check a searched answer with the traces of it and of the next batch.
    """
    traces.peak(traces.smallest)
    room = budget.memory - budget.others - sum(budget.cublas)
    if traces.fixed > room:
        raise NothingFits(
            f"{byte_size(budget.memory)} less the CUDA context, workspaces and reserve leaves "
            f"{byte_size(room)}, below what the step needs whatever the batch "
            f"({byte_size(traces.fixed)}: parameters, gradients, optimizer state) by "
            f"{byte_size(traces.fixed - room)}"
        )
    notes: list[str] = []
    if micro is not None:
        verdict, following, checked = judge(traces, budget, micro, exact=True), None, True
    else:
        verdict, following, checked = _search(traces, budget, confirm, notes)
    return _make_plan(traces, budget, verdict, following, micro is None, checked, notes)


def _search(
    traces: StepTraces, budget: Budget, confirm: bool, notes: list[str]
) -> tuple[_Verdict, _Verdict, bool]:
    """(the largest batch that fits, the next one, whether both were traced).

    The batch is found on replays read off the traces of the two smallest batches, by
    bisection below the largest batch whose allocated peak alone fits (reserved bytes are
    never fewer); it assumes that a batch fits when a larger one does. With `confirm`, the
    answer and the next batch are traced and replayed; where they disagree (none has so far),
    the bisection goes on with traces. Each batch is judged once (a replay each)."""
    judged: dict[tuple[int, bool], _Verdict] = {}

    def verdict(batch: int, exact: bool) -> _Verdict:
        if (batch, exact) not in judged:
            judged[batch, exact] = judge(traces, budget, batch, exact)
        return judged[batch, exact]

    first = traces.smallest
    smallest = verdict(first, True)
    if not smallest.fits:
        raise NothingFits(
            f"not even a batch of {first} fits in {byte_size(budget.memory)}: its peak is "
            f"{byte_size(smallest.peak)}"
            + (
                " and the allocator's replay runs out of memory"
                if smallest.replay is not None
                else ""
            )
        )
    high = _allocated_bound(traces, budget)
    best = _bisect(lambda b: verdict(b, False).fits, first, high)
    if not confirm:
        return verdict(best, False), verdict(best + 1, False), False
    try:
        found, following = verdict(best, True), verdict(best + 1, True)
    except NeedsRealRun as why:
        notes.append(f"not checked by its own trace: {why}")
        return verdict(best, False), verdict(best + 1, False), False
    if not found.fits:
        best = _bisect(lambda b: verdict(b, True).fits, first, best - 1)
    elif following.fits:
        best = _bisect(lambda b: verdict(b, True).fits, best + 1, high)
    else:
        return found, following, True
    return verdict(best, True), verdict(best + 1, True), True


def _bisect(fits: Callable[[int], bool], low: int, high: int) -> int:
    """The largest batch in [low, high] that fits, given that `low` does and that fitting only
    stops once as the batch grows."""
    if high <= low or fits(high):
        return max(low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


def _allocated_bound(traces: StepTraces, budget: Budget) -> int:
    """The largest batch whose traced peak, cuBLAS workspaces and margin fit in what the
    context, cuDNN bound and reserve leave: no larger batch can fit."""
    room = budget.memory - budget.others - sum(budget.cublas)

    def fits(batch: int) -> bool:
        peak = traces.peak_at(batch)
        return peak + margin_bytes(peak, budget.error) <= room

    lines = traces.lines()
    usable = math.floor(room / (1 + budget.error))
    guess = lines.largest_batch(usable) if lines is not None else _peak_search(traces, usable)
    guess = max(guess, traces.smallest)
    while guess > traces.smallest and not fits(guess):
        guess -= 1
    while guess < SEARCH_LIMIT and fits(guess + 1):
        guess += 1
    if guess >= SEARCH_LIMIT:
        raise CnnarchError(
            f"more than {number(SEARCH_LIMIT)} examples per device fit in "
            f"{byte_size(budget.memory)} (batch {number(SEARCH_LIMIT)} peaks at "
            f"{byte_size(traces.peak_at(SEARCH_LIMIT))}): the search stops at "
            f"{number(SEARCH_LIMIT)}; check a batch with batch_size= (--batch-size)"
        )
    return guess


def _peak_search(traces: StepTraces, usable: int) -> int:
    """The largest micro-batch whose traced peak fits in `usable` (the next one's does not),
    for steps whose peak cannot be read off two traces; `SEARCH_LIMIT` if it is that large.

    The peak is a maximum over the step's moments of bytes that each grow linearly with the
    batch, so it is convex and piecewise linear in the batch. Beyond the two largest batches
    traced, it lies on or above the line through them: the first batch where that line passes
    the budget is traced as the first that does not fit (further, if it does fit). Between a
    batch that fits and one that does not, the peak lies on or below their chord: where the
    chord meets the budget, the peak fits. Each round traces that batch and the next, and
    bisects once if it gained little. Batches traced before are reused.
    """
    first = traces.smallest
    traces.peak(first + 1)
    while not any(p > usable for p in traces.peaks.values()):
        (b0, p0), (b1, p1) = sorted(traces.peaks.items())[-2:]
        if b1 >= SEARCH_LIMIT:
            return SEARCH_LIMIT
        growth = p1 - p0  # over b1 - b0 batches
        beyond = (usable - p1) * (b1 - b0) // growth + 1 if growth > 0 else b1
        traces.peak(min(b1 + max(beyond, 1), SEARCH_LIMIT))
    fails = min(b for b, p in traces.peaks.items() if p > usable)
    fitting = [b for b, p in traces.peaks.items() if p <= usable and b < fails]
    if not fitting:
        return 0
    fits = max(fitting)
    while fails - fits > 1:
        width = fails - fits
        low, high = traces.peak(fits), traces.peak(fails)
        chord = fits + (usable - low) * (fails - fits) // (high - low)
        candidate = min(max(chord, fits + 1), fails - 1)
        if traces.peak(candidate) > usable:
            fails = candidate
        else:
            fits = candidate
            if candidate + 1 < fails:
                if traces.peak(candidate + 1) > usable:
                    fails = candidate + 1
                else:
                    fits = candidate + 1
        if 1 < fails - fits > width // 2:  # little progress: one bisection step
            middle = (fits + fails) // 2
            if traces.peak(middle) > usable:
                fails = middle
            else:
                fits = middle
    return fits


def _make_plan(
    traces: StepTraces,
    budget: Budget,
    verdict: _Verdict,
    following: _Verdict | None,
    searched: bool,
    checked: bool,
    notes: list[str],
) -> Plan:
    step = traces.step
    micro = verdict.batch
    phase, breakdown = traces.details_at(micro)
    next_peak = following.peak if following is not None else traces.peak_at(micro + 1)
    per_example = next_peak - verdict.peak
    linear = all(p == verdict.peak + (b - micro) * per_example for b, p in traces.peaks.items())
    per_step = step.accumulate * step.world_size if step is not None else 1
    result = verdict.replay
    if result is None:
        what = "an inference pass" if step is None else "a ZeRO-2/3 step"
        notes.append(
            f"the caching allocator is replayed for single-device and DDP training steps; for "
            f"{what} the planner counts the allocated peak and the cuBLAS workspace"
        )
    if budget.card is not None and budget.card.derived:
        notes.append(f"the card's memory is {budget.card.source}")
    if traces.needs_data:
        notes.append(f"the model needs real data: {traces.needs_data}")
    return Plan(
        model=traces.name,
        train=step is not None,
        step=step,
        memory_bytes=budget.memory,
        card=budget.card,
        batch=micro,
        global_batch=micro * per_step,
        searched=searched,
        fits=verdict.fits,
        peak_bytes=verdict.peak,
        peak_phase=phase,
        breakdown={k: breakdown[k] for k in _order(breakdown)},
        allocated_bytes=result.max_allocated if result is not None else None,
        reserved_bytes=result.max_reserved if result is not None else None,
        cache_flushes=result.retries if result is not None else 0,
        context_bytes=budget.context,
        cublas_bytes=sum(budget.cublas),
        cudnn_bytes=budget.cudnn,
        margin_bytes=verdict.margin,
        margin_fraction=budget.error,
        reserve_bytes=budget.reserve,
        allocator=budget.allocator,
        fixed_bytes=traces.fixed,
        per_example_bytes=per_example,
        linear=linear,
        checked=checked,
        next_peak_bytes=next_peak if searched else None,
        traced=dict(traces.peaks),
        notes=tuple(notes),
    )


def training_step(train: bool, options: dict[str, Any]) -> TrainingStep | None:
    """The step `options` (`TrainingStep`'s fields) describe, foreach by default; None for an
    inference pass, which takes none."""
    if not train:
        if options:
            raise CnnarchError(f"{', '.join(options)}: only for training (train=True)")
        return None
    valid = [f.name for f in dataclasses.fields(TrainingStep)]
    unknown = [name for name in options if name not in valid]
    if unknown:
        raise CnnarchError(f"unknown option {unknown[0]!r}; the step takes {', '.join(valid)}")
    return TrainingStep(**{"foreach": True, **options})


def _order(breakdown: dict[str, int]) -> list[str]:
    known = [k for k in BREAKDOWN_ORDER if k in breakdown]
    return known + [k for k in breakdown if k not in known]


def _bytes(value: int | str, what: str) -> int:
    if isinstance(value, str):
        return parse_bytes(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CnnarchError(f"{what} must be a number of bytes or a size like 24GiB, got {value!r}")
    return value


def _micro_batch(batch: Any, step: TrainingStep | None) -> int:
    """The micro-batch on one rank of `batch` examples per optimizer step."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise CnnarchError(f"batch size must be a positive integer, got {batch!r}")
    ranks, micro = (step.world_size, step.accumulate) if step is not None else (1, 1)
    if batch % (ranks * micro):
        parts = [f"world size {ranks}"] * (ranks > 1) + [f"{micro} micro-batches"] * (micro > 1)
        raise CnnarchError(
            f"the batch of {batch} does not split evenly over {' x '.join(parts)}: choose a "
            f"multiple of {ranks * micro}"
        )
    return batch // (ranks * micro)
