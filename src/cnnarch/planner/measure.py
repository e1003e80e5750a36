"""Measure the peak memory of a real training step on the CPU, the way `TrainingStep` describes
it, to check the planner's predictions against.

Measured = what is alive when the step starts (parameters, buffers, optimizer state, the batch
and its labels, gradients if they persist; each storage once) + the peak of the running sum of
the profiler's allocation events (`profile_memory=True`) during the step. The step measured is
the second one, so that the optimizer state exists (the steady state the planner predicts).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

from cnnarch.analysis.trace import iter_tensors
from cnnarch.analysis.training_modes import (
    OPTIMIZERS,
    PRECISIONS,
    TrainingStep,
    checkpoint_segments,
    checkpointed,
    make_optimizer,
)
from cnnarch.planner.torch_internals import fsdp_mem_tracker, profiler_events


def allocation_peak(prof: profile, after: str | None = None) -> int:
    """Most bytes allocated and held at once during the profiled code: every allocation and free,
    summed in time order (what was alive before the profiler started is not counted). With
    `after`, the name of a `record_function` range, only the moments from its start count."""
    memory, starts = profiler_events(prof)
    start = starts.get(after, 0) if after else 0
    running = peak = 0
    for event in memory:
        running += event.nbytes
        if event.time_ns >= start:
            peak = max(peak, running)
    return peak


def storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind `tensors`."""
    seen: dict[int, int] = {}
    for t in tensors:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())


class RealStep:
    """A real training step, run as `step` says, on the device of the model's parameters
    ("cpu" or "cuda": autocast and the GradScaler follow it)."""

    def __init__(self, model: nn.Module, step: TrainingStep) -> None:
        self.model = model.train()
        self.step = step
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(step.optimizer, trainable, step.foreach)
        device = next(model.parameters()).device.type
        dtype = PRECISIONS[step.precision]
        self.autocast = (
            torch.autocast(device, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        )
        self.scaler = torch.amp.GradScaler(device) if step.precision == "fp16" else None

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self.autocast:
            outputs = iter_tensors(self.model(x))
            loss = sum(F.cross_entropy(out.float(), y) for out in outputs)
        return loss / self.step.accumulate

    def run(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One optimizer step over `step.accumulate` micro-batches of `x`, then zero_grad."""
        with checkpointed(self.model, self.step.checkpoint):
            for _ in range(self.step.accumulate):
                loss = self.loss(x, y)
                (self.scaler.scale(loss) if self.scaler else loss).backward()
                del loss
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=self.step.set_to_none)

    def alive(self) -> list[torch.Tensor]:
        """What the step starts with besides the batch: parameters, buffers, optimizer state,
        gradients that persist, the GradScaler's state."""
        state = [v for s in self.optimizer.state.values() for v in s.values()]
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        tensors = [*self.model.parameters(), *self.model.buffers(), *state, *grads]
        if self.scaler is not None:
            tensors += [t for t in vars(self.scaler).values() if isinstance(t, torch.Tensor)]
        return [t for t in tensors if isinstance(t, torch.Tensor)]


def measure_step_peak(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: TrainingStep
) -> int:
    """Peak bytes of the second training step of `model` on micro-batch `x` with labels `y`.
    One torch thread, so that no kernel's per-thread buffers depend on the machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner = RealStep(model, step)
        runner.run(x, y)  # the first step creates the optimizer state
        gc.collect()
        baseline = storage_bytes([*runner.alive(), x, y])
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            runner.run(x, y)
    finally:
        torch.set_num_threads(threads)
    return baseline + allocation_peak(prof)


def measure_rank_peak(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: TrainingStep
) -> int:
    """This rank's peak bytes in the third data-parallel training step (DistributedDataParallel,
    and ZeroRedundancyOptimizer for "zero1"), inside an initialized process group: the first
    creates the optimizer state, the second rebuilds DDP's buckets (old and new alive at once
    for a moment, depending on when the communication thread lets go of the old ones). DDP's
    own memory is allocated while profiling, so it is measured, not assumed."""
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        baseline = storage_bytes([*model.parameters(), *model.buffers(), x, y])
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            ddp = DistributedDataParallel(model.train(), gradient_as_bucket_view=step.bucket_view)
            runner = RealStep(ddp, dataclasses.replace(step, world_size=1))
            if step.sharding == "zero1":
                optimizer_class, defaults = OPTIMIZERS[step.optimizer]
                runner.optimizer = ZeroRedundancyOptimizer(
                    ddp.parameters(),
                    optimizer_class=optimizer_class,
                    foreach=step.foreach,
                    **defaults,
                )
            runner.run(x, y)  # the first step creates the optimizer state
            runner.run(x, y)  # the second rebuilds DDP's buckets in the order gradients came
            with torch.profiler.record_function("steady step"):
                runner.run(x, y)
    finally:
        torch.set_num_threads(threads)
    return baseline + allocation_peak(prof, after="steady step")


def measure_fsdp_peak(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: TrainingStep
) -> tuple[int, int]:
    """This rank's peak bytes in the third training step under FSDP (`fully_shard`), inside an
    initialized process group: ZeRO-3 (full shard), or ZeRO-2 for "zero2"
    (`reshard_after_forward=False`: the gathered parameters stay until backward is done).
    Each top-level child holding parameters is one unit, the root one more (the units the
    planner assumes). Returns (the profiler's allocation peak, as `measure_rank_peak` counts
    it; PyTorch's `FSDPMemTracker` peak + the batch), both in the same third step."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        baseline = storage_bytes([*model.parameters(), *model.buffers(), x, y])
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            mesh = init_device_mesh("cpu", (step.world_size,))
            reshard = step.sharding == "zero3"
            for (unit,) in checkpoint_segments(model, "stages"):
                fully_shard(unit, mesh=mesh, reshard_after_forward=reshard)
            fully_shard(model, mesh=mesh, reshard_after_forward=reshard)
            runner = RealStep(model, dataclasses.replace(step, world_size=1, sharding="none"))
            runner.run(x, y)  # the first step creates the optimizer state
            tracker = fsdp_mem_tracker()(model, runner.optimizer)
            with tracker:
                runner.run(x, y)
                tracker.reset_mod_stats()
                with torch.profiler.record_function("steady step"):
                    runner.run(x, y)
            tracked = max(d["Total"] for d in tracker.get_tracker_snapshot("peak").values())
    finally:
        torch.set_num_threads(threads)
    return baseline + allocation_peak(prof, after="steady step"), tracked + storage_bytes([x, y])
