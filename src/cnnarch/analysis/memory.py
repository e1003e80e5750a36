"""The memory model: which tensors are alive at once, from the storages a traced pass touched.

A storage is alive from the op that first writes it to the last op that reads it, the way eager
PyTorch frees a tensor once nothing refers to it. Parameters, buffers and the input are alive
throughout. For a training step:

- the forward pass keeps what autograd saves for backward (found by
  ``torch.autograd.graph.saved_tensors_hooks``, deduplicated by storage) until the backward op
  that reads it; the backward pass is traced too, so its own temporaries (gradients of
  activations, workspaces) are counted where they are alive;
- gradients of parameters live from the op that computes them to the end of the step;
- optimizer state is alive throughout (the steady state: the second step and later), and the
  step itself may allocate temporaries (`STEP_TRANSIENT_PARAMS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cnnarch.analysis.trace import NEVER_FREED, StorageRecord
from cnnarch.errors import CnnarchError

# Optimizer state, in copies of the trainable parameters (torch.optim's defaults).
OPTIMIZER_STATE_COPIES = {"sgd": 0, "momentum": 1, "adam": 2}
# Temporaries of one step, in copies of the largest trainable parameter tensor: torch.optim.Adam's
# per-parameter (CPU default) step computes `exp_avg_sq.sqrt() / bias_correction2_sqrt`, two
# parameter-sized tensors alive at once. SGD with or without momentum updates in place. (On
# CUDA torch defaults to the foreach step, whose temporaries span all parameters: not modelled.)
STEP_TRANSIENT_PARAMS = {"sgd": 0, "momentum": 0, "adam": 2}


def check_optimizer(optimizer: str | None, train: bool) -> str | None:
    if optimizer is None:
        return "sgd" if train else None
    if optimizer not in OPTIMIZER_STATE_COPIES:
        choices = ", ".join(OPTIMIZER_STATE_COPIES)
        raise CnnarchError(f"unknown optimizer {optimizer!r}; choose one of {choices}")
    if not train:
        raise CnnarchError("an optimizer only matters for training: pass train=True (--train)")
    return optimizer


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes of one training step; `peak_bytes` is the most alive at any moment of it."""

    optimizer: str
    params_bytes: int
    buffer_bytes: int
    input_bytes: int
    grads_bytes: int
    optimizer_state_bytes: int
    saved_bytes: int  # what autograd keeps for backward (activations, not params or input)
    backward_transient_bytes: int  # most alive in backward beyond saved tensors and grads
    step_transient_bytes: int
    peak_bytes: int
    peak_phase: str  # "forward", "backward" or "step"

    def to_dict(self) -> dict[str, int | str]:
        return dict(self.__dict__)


def _intervals(records: Iterable[StorageRecord], training: bool, forward_end: int):
    """(start, stop, bytes, category) of every storage the pass created; stop is exclusive."""
    for record in records:
        if record.kind != "activation" or record.created < 0:
            continue
        if not training:
            if record.created < forward_end:
                yield record.created, record.last_forward_use + 1, record.nbytes, "other"
            continue
        stop = record.last_use + 1
        category = "other"
        if record.is_grad:
            stop, category = NEVER_FREED, "grad"
        elif record.saved:
            stop, category = max(stop, forward_end), "saved"
        yield record.created, stop, record.nbytes, category


def live_peak(
    records: Iterable[StorageRecord], *, forward_end: int, training: bool
) -> tuple[int, int, int]:
    """Sweep the storage intervals: (peak bytes, clock of the peak, most 'other' bytes alive
    from `forward_end` on, i.e. the backward pass's own temporaries)."""
    events: list[tuple[int, int, str]] = []
    for start, stop, nbytes, category in _intervals(records, training, forward_end):
        events.append((start, nbytes, category))
        events.append((stop, -nbytes, category))
    events.sort(key=lambda e: (e[0], e[1]))  # at equal times, frees come before allocations
    live = {"other": 0, "saved": 0, "grad": 0}
    total = peak = peak_at = other_after_forward = 0
    for time, delta, category in events:
        live[category] += delta
        total += delta
        if total > peak:
            peak, peak_at = total, time
        if time >= forward_end and live["other"] > other_after_forward:
            other_after_forward = live["other"]
    return peak, peak_at, other_after_forward
