"""`plan`: the largest batch that trains within a memory budget, or whether a given batch fits.

The planner does not run the model: each batch it considers is one exact meta trace of a
training step by `cnnarch.analyze` (forward, backward and optimizer step, with the step's
precision, checkpointing and accumulation). From the peaks at batches 1 and 2 it takes the
fixed part (what the step needs whatever the batch: parameters, gradients, optimizer state)
and the part that grows with each example; it does not trust that line beyond the batches it
traced: the answer is a batch whose own trace fits while the trace of the next one does not.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from cnnarch.analysis.memory import (
    BREAKDOWN_ORDER,
    GATHERED_PARAMETERS,
    GRADIENT_BUCKETS,
    OPTIMIZER_STATE,
    PARAMETERS,
    REDUCE_BUFFER,
    WEIGHT_COPIES,
)
from cnnarch.analysis.training_modes import TrainingStep
from cnnarch.errors import CnnarchError
from cnnarch.planner.budget import parse_bytes
from cnnarch.units import byte_size
from cnnarch.zoo_models import analyze

# Kept free for what PyTorch's allocator does not count: the CUDA context (driver state and the
# kernels of CUDA, cuBLAS and cuDNN, about 0.3-0.6 GB on current GPUs with lazy module loading)
# and the caching allocator's rounding and fragmentation (blocks rounded up to 512 bytes and
# carved out of 2 MB / 20 MB segments, so reserved memory runs some hundreds of MB above
# allocated). Set it to 0 to plan against allocated bytes alone (the CPU, say).
DEFAULT_RESERVE = "1GB"
_SEARCH_LIMIT = 1 << 24  # micro-batches; far beyond any memory budget


@dataclass(frozen=True)
class Plan:
    """The planner's answer. Sizes are bytes, per device; `batch` is the micro-batch per device
    (what one forward pass holds), `global_batch` the examples per optimizer step over all
    devices."""

    model: str
    train: bool
    step: TrainingStep | None
    memory_bytes: int
    reserve_bytes: int
    batch: int
    global_batch: int
    peak_bytes: int
    peak_phase: str
    breakdown: dict[str, int]
    fixed_bytes: int  # needed whatever the batch: parameters, buffers, gradients, state
    per_example_bytes: int  # what one more example adds to the peak, at `batch`
    linear: bool  # every traced batch's peak lies on the line through `batch` and the next
    searched: bool  # True: `batch` is the largest that fits; False: the batch asked about
    next_peak_bytes: int | None = None  # the peak at batch + 1 (searched plans)
    traced: dict[int, int] = field(default_factory=dict)  # batch -> peak, every trace made

    @property
    def usable_bytes(self) -> int:
        return self.memory_bytes - self.reserve_bytes

    @property
    def margin_bytes(self) -> int:
        """Usable memory left at the peak; negative when the batch does not fit."""
        return self.usable_bytes - self.peak_bytes

    @property
    def fits(self) -> bool:
        return self.margin_bytes >= 0

    def to_dict(self) -> dict[str, Any]:
        step = self.step
        return {
            "model": self.model,
            "train": self.train,
            "step": dict(step.__dict__) if step is not None else None,
            "memory_bytes": self.memory_bytes,
            "reserve_bytes": self.reserve_bytes,
            "usable_bytes": self.usable_bytes,
            "batch": self.batch,
            "global_batch": self.global_batch,
            "fits": self.fits,
            "peak_bytes": self.peak_bytes,
            "margin_bytes": self.margin_bytes,
            "peak_phase": self.peak_phase,
            "breakdown": dict(self.breakdown),
            "fixed_bytes": self.fixed_bytes,
            "per_example_bytes": self.per_example_bytes,
            "linear": self.linear,
            "searched": self.searched,
            "next_peak_bytes": self.next_peak_bytes,
            "traced": {str(b): p for b, p in sorted(self.traced.items())},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        usable = byte_size(self.usable_bytes)
        lines = [f"{self.model}: {self._setup()}"]
        lines.append(
            f"Budget {byte_size(self.memory_bytes)} - reserve {byte_size(self.reserve_bytes)}"
            f" (CUDA context, allocator fragmentation) = {usable} usable"
        )
        per_step = (
            f" ({self.global_batch} per optimizer step)" if self.global_batch != self.batch else ""
        )
        if self.searched:
            lines.append(f"Largest batch that fits: {self.batch}{per_step}")
        else:
            verdict = "fits" if self.fits else "does NOT fit"
            lines.append(f"Batch {self.batch}{per_step} {verdict}")
        margin = byte_size(abs(self.margin_bytes))
        lines.append(
            f"Peak {byte_size(self.peak_bytes)} (in the {self.peak_phase}), "
            + (f"margin {margin}" if self.fits else f"over by {margin}")
        )
        if self.searched and self.next_peak_bytes is not None:
            over = byte_size(self.next_peak_bytes - self.usable_bytes)
            lines.append(
                f"Batch {self.batch + 1} would peak at {byte_size(self.next_peak_bytes)}: "
                f"over by {over}"
            )
        lines.append("At the peak:")
        shown = self._shown()
        width = max(len(k) for k in shown)
        for name, nbytes in shown.items():
            lines.append(f"  {name:<{width}s} {byte_size(nbytes):>10s}")
        shape = "" if self.linear else "; smaller batches add less (the search used exact traces)"
        fixed = "parameters, gradients, optimizer state" if self.train else "parameters"
        lines.append(
            f"Needed whatever the batch ({fixed}): "
            f"{byte_size(self.fixed_bytes)}; one more example adds "
            f"{byte_size(self.per_example_bytes)} here{shape}"
        )
        return "\n".join(lines)

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


@dataclass(frozen=True)
class PeakLines:
    """The peak of a training step at every batch, from two traces: at each moment the step
    allocates, the bytes alive are affine in the batch (every storage is a fixed size or so
    many bytes per example), so the traces at two batches give each moment's line, and the
    peak at batch B is the largest line's value there. The lines below another at every
    batch are dropped."""

    lines: tuple[tuple[int, int], ...]  # (bytes at batch 0, bytes per example), slope ascending
    smallest: int  # the smallest batch that runs

    @classmethod
    def through(cls, first: int, at_first: Iterable[int], at_next: Iterable[int]) -> PeakLines:
        """The lines through each moment's bytes at batches `first` and `first + 1`."""
        best: dict[int, int] = {}  # slope -> the largest intercept with it
        for low, high in zip(at_first, at_next, strict=True):
            slope = high - low
            start = low - slope * first
            best[slope] = max(best.get(slope, start), start)
        hull: list[tuple[int, int]] = []  # the upper envelope, slopes ascending
        for slope, start in sorted(best.items()):
            # a line of smaller slope that is not above this one at `first` never is after it
            while hull and hull[-1][0] + hull[-1][1] * first <= start + slope * first:
                hull.pop()
            hull.append((start, slope))
        return cls(tuple(hull), first)

    def peak(self, batch: int) -> int:
        return max(start + slope * batch for start, slope in self.lines)

    def largest_batch(self, usable: int) -> int:
        """The largest batch whose peak is at most `usable`; 0 if not even the smallest."""
        if self.peak(self.smallest) > usable:
            return 0
        growing = [(start, slope) for start, slope in self.lines if slope > 0]
        if not growing:
            raise CnnarchError("the peak hardly grows with the batch: no largest batch to find")
        return min((usable - start) // slope for start, slope in growing)


class _Tracer:
    """Peak (and what it is made of) at each batch, each batch traced once."""

    def __init__(
        self,
        model: nn.Module | str,
        input_size: Sequence[int] | None,
        step: TrainingStep | None,
        variant: str,
    ) -> None:
        self.model = model
        self.input_size = input_size
        self.step = step
        self.variant = variant
        self.peaks: dict[int, int] = {}
        self.fixed = 0  # bytes needed whatever the batch (the same in every trace)
        self.details: dict[int, tuple[str, dict[str, int], str]] = {}
        self.moments: dict[int, tuple[int, ...]] = {}  # batch -> the step's moments
        self._smallest: int | None = None

    @property
    def smallest(self) -> int:
        """The smallest batch that runs: 1, or 2 for a model whose training forward pass
        refuses a single example (batch norm over a 1x1 map: Inception-v3's auxiliary head);
        batch 1's error is raised if batch 2 fails too."""
        if self._smallest is None:
            try:
                self.peak(1)
                self._smallest = 1
            except CnnarchError:
                if self.step is None:
                    raise
                try:
                    self.peak(2)
                except CnnarchError:
                    self.peak(1)  # raises batch 1's error
                self._smallest = 2
        return self._smallest

    def lines(self) -> PeakLines | None:
        """The peak at every batch from the traces of the two smallest batches; None for
        inference, ZeRO-2/3 (their peak is arithmetic on the trace), or where the steps
        allocate a different number of times."""
        first = self.smallest
        self.peak(first + 1)
        if self.step is None:
            return None
        one, two = self.moments[first], self.moments[first + 1]
        if not one or len(one) != len(two):
            return None
        return PeakLines.through(first, one, two)

    def peak(self, batch: int) -> int:
        if batch not in self.peaks:
            summary = analyze(
                self.model,
                self.input_size,
                batch_size=batch,
                train=self.step is not None,
                step=self.step,
                variant=self.variant,
            )
            t = summary.training
            if t is None:
                activations = summary.inference_peak_bytes - summary.param_bytes
                activations -= summary.buffer_bytes + summary.input_bytes
                breakdown = {
                    BREAKDOWN_ORDER[0]: summary.param_bytes + summary.buffer_bytes,
                    BREAKDOWN_ORDER[1]: summary.input_bytes,
                    "activations": activations,
                }
                self.peaks[batch] = summary.inference_peak_bytes
                self.details[batch] = ("forward", breakdown, summary.model_name)
                self.fixed = summary.param_bytes + summary.buffer_bytes
            else:
                self.peaks[batch] = t.peak_bytes
                # The step's total at each moment: each is affine in the batch.
                self.moments[batch] = tuple(sum(parts) for _, parts in t.moments)
                self.details[batch] = (t.peak_phase, dict(t.at_peak), summary.model_name)
                self.fixed = t.params_bytes + t.buffer_bytes + t.grads_bytes
                self.fixed += t.optimizer_state_bytes + t.weight_copies_bytes
                self.fixed += t.at_peak.get(GRADIENT_BUCKETS, 0)
                if self.step is not None and self.step.fully_sharded:
                    # each rank's shards and the gathered units, not the whole model
                    sharded = (PARAMETERS, GATHERED_PARAMETERS, OPTIMIZER_STATE)
                    self.fixed = sum(t.at_peak.get(k, 0) for k in sharded)
                    world = self.step.world_size
                    self.fixed += -(-t.grads_bytes // world) + t.weight_copies_bytes
        return self.peaks[batch]


def plan(
    model: nn.Module | str,
    memory: int | str,
    *,
    train: bool = True,
    batch: int | None = None,
    reserve: int | str = DEFAULT_RESERVE,
    input_size: Sequence[int] | None = None,
    variant: str = "paper",
    **step_options: Any,
) -> Plan:
    """The largest batch per device that trains within `memory`, or, with `batch`, whether that
    many examples per optimizer step fit.

    Args:
        model: a zoo name or any `nn.Module`.
        memory: the device's memory, in bytes or as text ("24GiB", "40GB").
        train: plan a training step (default) or an inference forward pass.
        batch: examples per optimizer step to check, over all ranks (split into `world_size`
            ranks and `accumulate` micro-batches); None searches for the largest micro-batch
            per rank that fits.
        reserve: memory kept free for the CUDA context and allocator fragmentation
            (`DEFAULT_RESERVE`, explained there).
        input_size: (C, H, W) of one example; the zoo card's by default.
        variant: the zoo variant when `model` is a name.
        step_options: the training step, as `TrainingStep`'s fields (optimizer, precision,
            checkpoint, accumulate, set_to_none, world_size, sharding, bucket_view, foreach);
            foreach defaults to True here, torch's default for CUDA tensors. With a world size
            the peak is per rank (the rank with the largest optimizer shard).
    """
    step = _training_step(train, step_options)
    micro = _micro_batch(batch, step) if batch is not None else None
    tracer = _Tracer(model, input_size, step, variant)
    return _answer(tracer, _bytes(memory, "memory"), _bytes(reserve, "reserve"), micro)


def peak_lines(
    model: nn.Module | str,
    *,
    input_size: Sequence[int] | None = None,
    variant: str = "paper",
    **step_options: Any,
) -> PeakLines:
    """The training peak per device at every batch, from two traces (`PeakLines`): for many
    budgets at the cost of one. `plan` checks its answer with the traces of that batch and
    the next; these lines are what it starts from. Options as `plan`'s."""
    step = _training_step(True, step_options)
    lines = _Tracer(model, input_size, step, variant).lines()
    if lines is None:
        raise CnnarchError("the step's ops differ between batches: use plan(), which traces each")
    return lines


def _answer(tracer: _Tracer, memory_bytes: int, reserve_bytes: int, micro: int | None) -> Plan:
    """The plan for one budget: the batch `micro` checked, or (None) the largest searched."""
    step = tracer.step
    if reserve_bytes >= memory_bytes:
        raise CnnarchError(
            f"the reserve ({byte_size(reserve_bytes)}) leaves nothing of the "
            f"{byte_size(memory_bytes)} budget: lower it with --reserve"
        )
    usable = memory_bytes - reserve_bytes
    tracer.peak(tracer.smallest)
    fixed = tracer.fixed
    if fixed > usable:
        raise CnnarchError(
            f"the budget ({byte_size(usable)} after the {byte_size(reserve_bytes)} "
            f"reserve) is below what the step needs whatever the batch "
            f"({byte_size(fixed)}: parameters, gradients, optimizer state) by "
            f"{byte_size(fixed - usable)}"
        )
    if micro is not None:
        searched = False
    else:
        micro = _search(tracer, usable)
        searched = True
    peak = tracer.peak(micro)
    next_peak = tracer.peak(micro + 1)
    per_example = next_peak - peak
    phase, breakdown, name = tracer.details[micro]
    linear = all(p == peak + (b - micro) * per_example for b, p in tracer.peaks.items())
    per_step = step.accumulate * step.world_size if step is not None else 1
    return Plan(
        model=name,
        train=step is not None,
        step=step,
        memory_bytes=memory_bytes,
        reserve_bytes=reserve_bytes,
        batch=micro,
        global_batch=micro * per_step,
        peak_bytes=peak,
        peak_phase=phase,
        breakdown={k: breakdown[k] for k in _order(breakdown)},
        fixed_bytes=fixed,
        per_example_bytes=per_example,
        linear=linear,
        searched=searched,
        next_peak_bytes=next_peak if searched else None,
        traced=dict(tracer.peaks),
    )


def _training_step(train: bool, options: dict[str, Any]) -> TrainingStep | None:
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
        raise CnnarchError(f"batch must be a positive integer, got {batch!r}")
    ranks, micro = (step.world_size, step.accumulate) if step is not None else (1, 1)
    if batch % (ranks * micro):
        parts = [f"world size {ranks}"] * (ranks > 1) + [f"{micro} micro-batches"] * (micro > 1)
        raise CnnarchError(
            f"the batch of {batch} does not split evenly over {' x '.join(parts)}: choose a "
            f"multiple of {ranks * micro}"
        )
    return batch // (ranks * micro)


def _search(tracer: _Tracer, usable: int) -> int:
    """The largest micro-batch whose traced peak fits in `usable` (the next one's does not).

    The first guess is `PeakLines`'s answer, from the traces of the two smallest batches;
    the traces of that batch and the next confirm it (they always have so far), and where
    they do not, the search below goes on from them.

    The peak is a maximum over the step's moments of bytes that each grow linearly with the
    batch, so it is convex and piecewise linear in the batch. Beyond the two largest batches
    traced, it lies on or above the line through them: the first batch where that line passes
    the budget is traced as the first that does not fit (further, if it does fit). Between a
    batch that fits and one that does not, the peak lies on or below their chord: where the
    chord meets the budget, the peak fits. Each round traces that batch and the next, and
    bisects once if it gained little. Batches traced before (for another budget) are reused.
    """
    first = tracer.smallest
    one = tracer.peak(first)
    if one > usable:
        raise CnnarchError(
            f"not even a batch of {first} fits: it peaks at {byte_size(one)}, "
            f"{byte_size(one - usable)} over the {byte_size(usable)} usable"
        )
    lines = tracer.lines()
    guess = min(lines.largest_batch(usable), _SEARCH_LIMIT) if lines is not None else 0
    if guess > first:  # what the lines say, checked by the traces of that batch and the next
        tracer.peak(guess)
        tracer.peak(guess + 1)
    while not any(p > usable for p in tracer.peaks.values()):
        (b0, p0), (b1, p1) = sorted(tracer.peaks.items())[-2:]
        growth = p1 - p0  # over b1 - b0 batches
        if b1 >= _SEARCH_LIMIT:
            raise CnnarchError("the peak hardly grows with the batch: no largest batch to find")
        beyond = (usable - p1) * (b1 - b0) // growth + 1 if growth > 0 else b1
        tracer.peak(min(b1 + max(beyond, 1), _SEARCH_LIMIT))
    fails = min(b for b, p in tracer.peaks.items() if p > usable)
    fits = max(b for b, p in tracer.peaks.items() if p <= usable and b < fails)
    while fails - fits > 1:
        width = fails - fits
        low, high = tracer.peak(fits), tracer.peak(fails)
        chord = fits + (usable - low) * (fails - fits) // (high - low)
        candidate = min(max(chord, fits + 1), fails - 1)
        if tracer.peak(candidate) > usable:
            fails = candidate
        else:
            fits = candidate
            if candidate + 1 < fails:
                if tracer.peak(candidate + 1) > usable:
                    fails = candidate + 1
                else:
                    fits = candidate + 1
        if 1 < fails - fits > width // 2:  # little progress: one bisection step
            middle = (fits + fails) // 2
            if tracer.peak(middle) > usable:
                fails = middle
            else:
                fits = middle
    return fits
