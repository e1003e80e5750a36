"""The memory model: which tensors are alive at once, from the storages a traced pass touched.

A storage is alive from the op that first writes it to the last op that reads it, the way eager
PyTorch frees a tensor once nothing refers to it. Parameters, buffers and the input are alive
throughout. For a training step (forward, backward and the optimizer step, all traced):

- the forward pass keeps what autograd saves for backward (found by
  ``torch.autograd.graph.saved_tensors_hooks``, deduplicated by storage) until the backward op
  that reads it; the backward pass's own temporaries (gradients of activations, workspaces) are
  counted where they are alive;
- gradients of parameters live from the op that computes them to the end of the step, or
  throughout when they persist between steps (accumulation, ``zero_grad(set_to_none=False)``);
- optimizer state is alive throughout (the steady state: the second step and later); the
  optimizer's own step is traced, so its temporaries are those of torch's implementation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from cnnarch.analysis.trace import NEVER_FREED, StorageRecord

# What is alive at the peak of a training step, in the order it is printed.
PARAMETERS = "parameters"  # parameters and buffers
INPUTS = "inputs"
GRADIENTS = "gradients"
GRADIENT_BUCKETS = "DDP gradient buckets"  # DDP's flat copies of the gradients
OPTIMIZER_STATE = "optimizer state"
WEIGHT_COPIES = "low-precision weight copies"  # autocast's cached casts of the weights
GATHERED_PARAMETERS = "gathered parameters"  # ZeRO-3: full parameters of the units running
REDUCE_BUFFER = "gradients being reduced"  # ZeRO-2/3: a unit's full gradients
SAVED = "saved activations"
TEMPORARIES = "temporaries"
BREAKDOWN_ORDER = (
    PARAMETERS,
    GATHERED_PARAMETERS,
    INPUTS,
    GRADIENTS,
    REDUCE_BUFFER,
    GRADIENT_BUCKETS,
    OPTIMIZER_STATE,
    WEIGHT_COPIES,
    SAVED,
    TEMPORARIES,
)


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes of one training step; `peak_bytes` is the most alive at any moment of it, and
    `at_peak` says what that is (its values add up to `peak_bytes`)."""

    optimizer: str
    params_bytes: int
    buffer_bytes: int
    input_bytes: int
    grads_bytes: int
    optimizer_state_bytes: int
    saved_bytes: int  # what autograd keeps for backward (activations, not params or input)
    backward_transient_bytes: int  # most alive in backward beyond saved tensors and grads
    step_transient_bytes: int  # most temporaries alive at once in the optimizer step
    peak_bytes: int
    peak_phase: str  # "forward", "backward" or "step"
    at_peak: dict[str, int] = field(default_factory=dict)
    precision: str = "fp32"
    weight_copies_bytes: int = 0  # low-precision copies of the weights made by autocast
    # Every moment of the step (`step_moments`), as (phase, bytes by category in
    # BREAKDOWN_ORDER): the peak is the first largest sum, its breakdown `at_peak`. Each is
    # affine in the batch (the planner draws the peak at every batch from two traces); empty
    # under ZeRO-2/3, whose peak is arithmetic on the trace.
    moments: tuple[tuple[str, tuple[int, ...]], ...] = field(default=(), repr=False)
    # Every storage of the step in the order it is allocated (`step_lifetimes`): what the
    # planner replays through its model of the CUDA caching allocator.
    lifetimes: tuple[Lifetime, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, object]:
        out = dict(self.__dict__)
        out["at_peak"] = dict(self.at_peak)
        del out["moments"]  # thousands of them: for the explorer and the planner, not the JSON
        del out["lifetimes"]
        return out


class Lifetime(NamedTuple):
    """One storage of a traced training step: its bytes, the clock of the op that allocates it
    (-1: alive before the step) and the clock at which it is freed (`NEVER_FREED`: alive when
    the step ends)."""

    nbytes: int
    start: int
    stop: int


def live_peak(
    records: Iterable[StorageRecord], *, forward_end: int, training: bool = False
) -> tuple[int, int, int]:
    """The most bytes that storages the pass created hold at once: (peak, clock of the peak,
    most temporaries alive at once from `forward_end` on). Inference counts the forward pass
    alone; a training pass is swept by `step_peak`'s rules."""
    records = list(records)
    if training:
        timeline = StepTimeline(forward_end, NEVER_FREED)
        peak, peak_at, _, backward, _ = step_peak(dict(enumerate(records)), timeline, set())
        return peak, peak_at, backward
    events: list[tuple[int, int]] = []
    for record in records:
        if record.kind == "activation" and 0 <= record.created < forward_end:
            events.append((record.created, record.nbytes))
            events.append((record.last_forward_use + 1, -record.nbytes))
    events.sort()  # at equal times, frees come before allocations
    total = peak = peak_at = 0
    for time, delta in events:
        total += delta
        if total > peak:
            peak, peak_at = total, time
    return peak, peak_at, 0


@dataclass(frozen=True)
class StepTimeline:
    """Where a traced training step's phases begin, on the tracer's clock."""

    backward_start: int
    step_start: int


def step_peak(
    records: Mapping[int, StorageRecord],
    timeline: StepTimeline,
    weight_copies: set[int],
) -> tuple[int, int, dict[str, int], int, int]:
    """The most bytes the pass's own storages hold at once in a training step.

    Returns (peak, clock of the peak, bytes by category at the peak, most temporaries alive at
    once in the backward pass, the same in the optimizer step). Storages in `weight_copies`
    (keys) count as WEIGHT_COPIES; saved tensors live at least to the end of the forward pass.
    """
    events = _step_events(records, timeline, weight_copies)
    live = dict.fromkeys(SWEPT, 0)
    total = peak = peak_at = backward_temporaries = step_temporaries = 0
    at_peak = dict(live)
    for time, delta, category in events:
        live[category] += delta
        total += delta
        if total > peak:
            peak, peak_at, at_peak = total, time, dict(live)
        if time >= timeline.step_start:
            step_temporaries = max(step_temporaries, live[TEMPORARIES])
        elif time >= timeline.backward_start:
            backward_temporaries = max(backward_temporaries, live[TEMPORARIES])
    return peak, peak_at, at_peak, backward_temporaries, step_temporaries


def step_moments(
    records: Mapping[int, StorageRecord],
    timeline: StepTimeline,
    weight_copies: set[int],
) -> list[tuple[int, dict[str, int]]]:
    """(clock, bytes by category alive) after each clock's allocations and frees, in clock
    order, by `step_peak`'s rules. Within one clock, frees come first and allocations only
    add, so `step_peak`'s peak is the largest of these totals, and its breakdown is that of
    the first clock that reaches it."""
    moments: list[tuple[int, dict[str, int]]] = []
    live = dict.fromkeys(SWEPT, 0)
    events = _step_events(records, timeline, weight_copies)
    for index, (time, delta, category) in enumerate(events):
        live[category] += delta
        if index + 1 == len(events) or events[index + 1][0] != time:
            moments.append((time, dict(live)))
    return moments


# The categories that come and go during a step (the others are alive throughout it).
SWEPT = (GRADIENTS, WEIGHT_COPIES, SAVED, TEMPORARIES)


def _step_events(
    records: Mapping[int, StorageRecord],
    timeline: StepTimeline,
    weight_copies: set[int],
) -> list[tuple[int, int, str]]:
    """(clock, +bytes allocated or -bytes freed, category) of the pass's own storages, sorted
    by clock; at equal clocks frees come before allocations."""
    events: list[tuple[int, int, str]] = []
    for key, record in records.items():
        if record.kind != "activation" or record.created < 0:
            continue
        stop, category = _stop(key, record, timeline, weight_copies)
        events.append((record.created, record.nbytes, category))
        events.append((stop, -record.nbytes, category))
    events.sort(key=lambda e: (e[0], e[1]))  # at equal times, frees come before allocations
    return events


def _stop(
    key: int, record: StorageRecord, timeline: StepTimeline, weight_copies: set[int]
) -> tuple[int, str]:
    """When a storage the step allocates is freed, and what it counts as: gradients live to
    the end of the step; autocast's weight copies and what autograd saved, at least to the end
    of the forward pass; the rest until the op after its last use."""
    stop = record.last_use + 1
    if record.is_grad:
        return NEVER_FREED, GRADIENTS
    if key in weight_copies:
        return max(stop, timeline.backward_start), WEIGHT_COPIES
    if record.saved:
        return max(stop, timeline.backward_start), SAVED
    return stop, TEMPORARIES


def step_lifetimes(
    records: Mapping[int, StorageRecord],
    timeline: StepTimeline,
    weight_copies: set[int],
) -> tuple[Lifetime, ...]:
    """Every storage of a traced training step in the order it is allocated, by `step_peak`'s
    rules: first those alive before the step (parameters, buffers, inputs, optimizer state,
    gradients that persist), in the order the trace met them, then the step's own, by the
    clock of the op that allocates them (the trace's order within one op)."""
    before = [
        Lifetime(r.nbytes, -1, NEVER_FREED) for r in records.values() if r.kind != "activation"
    ]
    own = [
        Lifetime(r.nbytes, r.created, _stop(key, r, timeline, weight_copies)[0])
        for key, r in records.items()
        if r.kind == "activation" and r.created >= 0
    ]
    own.sort(key=lambda lifetime: lifetime.start)  # stable: the trace's order within a clock
    return tuple(before + own)
