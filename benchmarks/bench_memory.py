"""Predicted vs measured peak memory of one training step, in every training mode, with the
figures other tools give for the same step.

Prediction: `cnnarch.analyze(name, batch_size=B, train=True, step=TrainingStep(...))`, a meta
trace. Measurement, on the CPU: `cnnarch.planner.measure.measure_step_peak`: what is alive when the
second step starts (parameters, buffers, optimizer state, batch, labels, persisting gradients)
plus the peak of the profiler's allocation events during that step (forward, loss, backward,
optimizer step, zero_grad), one torch thread; data-parallel modes run 2 gloo processes and
report the larger of their two peaks in the third step (`measure_rank_peak`; ZeRO-2/3 run
FSDP's `fully_shard`, `measure_fsdp_peak`, whose MemTracker column is PyTorch's
FSDPMemTracker in that same step, batch included). Memory is
counted, not timed, so a busy machine does not change it (except DDP's, which can hold one
more gradient bucket when its communication thread lags). Peers, for the same cells:

- MemTracker: PyTorch's `torch.distributed._tools.mem_tracker.MemTracker`, run by hand over two
  steps of the same loop under `FakeTensorMode` (its peak over the second);
- Accelerate: `accelerate estimate-memory`'s training figure, by its documented formula (4x the
  model's size in the dtype: parameters, gradients, Adam's two moments); not installed here;
- DeepSpeed: `estimate_zero2_model_states_mem_needs` (no offload), by its published formula:
  4 + 16 / world size bytes per parameter; not installed here;
- torchinfo's "Estimated Total Size" when torchinfo is installed (fp32 forward, input + 2x the
  outputs of layers with parameters + parameters), else left out.

    python benchmarks/bench_memory.py                       # 4 models x 9 modes, batch 8
    python benchmarks/bench_memory.py --runs resnet18:16 --modes bf16 checkpoint

The table also goes to `--json FILE` (default benchmarks/results/bench_memory.json).
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import time
from collections.abc import Callable
from functools import partial

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import cnnarch
from cnnarch.analysis.training_modes import TrainingStep
from cnnarch.planner.measure import (
    RealStep,
    measure_fsdp_peak,
    measure_rank_peak,
    measure_step_peak,
)
from cnnarch.planner.torch_internals import mem_tracker
from json_results import add_json_option, write_results

DEFAULT_RUNS = ("resnet18:8", "resnet50:8", "vgg16:8", "googlenet:8")
MODES = {
    "fp32": TrainingStep("momentum"),
    "bf16": TrainingStep("adam", precision="bf16", autocast_device="cpu"),
    "checkpoint": TrainingStep("momentum", checkpoint="stages"),
    "checkpoint4": TrainingStep("momentum", checkpoint=4),
    "accumulate4": TrainingStep("momentum", accumulate=4),
    "adamw-foreach": TrainingStep("adamw", foreach=True),
}
# Per rank, 2 gloo processes; each rank's micro-batch is the run's batch.
DISTRIBUTED_MODES = {
    "ddp": TrainingStep("adam", world_size=2),
    "ddp-bucket-view": TrainingStep("adam", world_size=2, bucket_view=True),
    "zero1": TrainingStep("adam", world_size=2, sharding="zero1"),
    "zero2": TrainingStep("adam", world_size=2, sharding="zero2"),
    "zero3": TrainingStep("adam", world_size=2, sharding="zero3"),
}
MB = 1e6


def timed(function: Callable[[], int]) -> tuple[int, float]:
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def memtracker_peak(name: str, batch: int, step: TrainingStep) -> int | None:
    """MemTracker's peak over the second of two steps of the same loop, on fake tensors; None
    where it cannot follow the loop (it refuses several forward calls in one iteration, as
    gradient accumulation makes; data parallelism needs its FSDP variant)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    card = cnnarch.model_card(name)
    with FakeTensorMode():
        model = cnnarch.create_model(name)
        runner = RealStep(model, step)
        x = torch.randn(batch, *card.input_size)
        y = torch.randint(0, card.num_classes, (batch,))
        tracker = mem_tracker()()
        tracker.track_external(model, runner.optimizer)
        if step.accumulate > 1 or step.world_size > 1:
            return None
        with tracker:
            runner.run(x, y)
            tracker.reset_mod_stats()
            runner.run(x, y)
        snapshot = tracker.get_tracker_snapshot("peak")
    return max(device["Total"] for device in snapshot.values())


def torchinfo_total(name: str, batch: int) -> int | None:
    try:
        import torchinfo
    except ImportError:
        return None
    card = cnnarch.model_card(name)
    stats = torchinfo.summary(
        cnnarch.create_model(name), (batch, *card.input_size), verbose=0, device="cpu"
    )
    return int(stats.total_input + stats.total_output_bytes + stats.total_param_bytes)


def formula_peers(name: str, step: TrainingStep) -> dict[str, int]:
    """Accelerate: 4x the model in its dtype. DeepSpeed's ZeRO-2 estimate per GPU (its closest
    to ZeRO-1 and to one GPU; no offload): 4 bytes per parameter + 16 / world size."""
    params = cnnarch.analyze(name).total_params
    dtype_bytes = 2 if step.precision != "fp32" else 4
    return {
        "Accelerate": 4 * params * dtype_bytes,
        "DeepSpeed": 4 * params + 16 * params // step.world_size,
    }


def batch_of(name: str, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    card = cnnarch.model_card(name)
    return torch.randn(batch, *card.input_size), torch.randint(0, card.num_classes, (batch,))


def measure(name: str, batch: int, step: TrainingStep) -> int:
    x, y = batch_of(name, batch, 0)
    return measure_step_peak(cnnarch.create_model(name), x, y, step)


def _rank(rank: int, port: int, name: str, batch: int, step: TrainingStep, out: dict) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=step.world_size)
    try:
        x, y = batch_of(name, batch, rank)
        model = cnnarch.create_model(name)
        if step.fully_sharded:
            out[rank] = measure_fsdp_peak(model, x, y, step)
        else:
            out[rank] = (measure_rank_peak(model, x, y, step), None)
    finally:
        dist.destroy_process_group()


def measure_distributed(name: str, batch: int, step: TrainingStep) -> tuple[int, int | None]:
    """The largest per-rank peak of `step.world_size` gloo processes, and for ZeRO-2/3 (FSDP)
    the largest per-rank peak of PyTorch's FSDPMemTracker in the same step."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_rank, args=(port, name, batch, step, out), nprocs=step.world_size)
        measured, tracked = zip(*out.values(), strict=True)
        return max(measured), None if None in tracked else max(tracked)


def error(value: int | None, measured: int) -> str:
    return "-" if value is None else f"{100 * (value / measured - 1):+.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="*", default=list(DEFAULT_RUNS), help="name:batch ...")
    every = [*MODES, *DISTRIBUTED_MODES]
    parser.add_argument("--modes", nargs="*", default=every, choices=every)
    parser.add_argument("--no-peers", dest="peers", action="store_false")
    add_json_option(parser, __file__)
    args = parser.parse_args()
    print(f"torch {torch.__version__}; sizes in MB (10^6 bytes); error = predicted / measured - 1")
    steps = {**MODES, **DISTRIBUTED_MODES}
    for mode in args.modes:
        print(f"  {mode}: {steps[mode]}")
    columns = "model      batch mode          measured  cnnarch  error  analyze"
    peers = "  MemTracker error   time  Accelerate error  DeepSpeed error  torchinfo error"
    print(columns + (peers if args.peers else ""))
    # The largest error of the prediction: against the profiler for single-device and DDP
    # steps, against FSDPMemTracker for ZeRO-2/3 (the profiler counts allocations there that
    # the tracker does not; see docs/planner.md). The planner's margin is the first.
    worst = {"profiler": (0.0, ""), "FSDPMemTracker": (0.0, "")}
    cells: list[dict[str, object]] = []
    for run in args.runs:
        name, _, batch_text = run.partition(":")
        batch = int(batch_text or 8)
        for mode in args.modes:
            step = steps[mode]
            summary, analyze_seconds = timed(
                partial(cnnarch.analyze, name, batch_size=batch, train=True, step=step)
            )
            predicted = summary.training.peak_bytes
            fsdp_tracked = None
            if step.world_size > 1:
                measured, fsdp_tracked = measure_distributed(name, batch, step)
            else:
                measured = measure(name, batch, step)
            reference = "profiler" if fsdp_tracked is None else "FSDPMemTracker"
            error_here = abs(predicted / (measured if fsdp_tracked is None else fsdp_tracked) - 1)
            worst[reference] = max(worst[reference], (error_here, f"{name}:{batch} {mode}"))
            cell: dict[str, object] = {
                "model": name,
                "batch": batch,
                "mode": mode,
                "measured_bytes": measured,
                "predicted_bytes": predicted,
                "analyze_seconds": analyze_seconds,
            }
            line = (
                f"{name:10s} {batch:5d} {mode:13s} {measured / MB:8.1f} {predicted / MB:8.1f} "
                f"{error(predicted, measured):>6s} {analyze_seconds * 1e3:6.0f}ms"
            )
            if args.peers:
                tracked, tracker_seconds = timed(partial(memtracker_peak, name, batch, step))
                if fsdp_tracked is not None:  # FSDPMemTracker, run beside the measurement
                    tracked, tracker_seconds = fsdp_tracked, 0.0
                formulas = formula_peers(name, step)
                info = torchinfo_total(name, batch) if mode == "fp32" else None
                cell.update(
                    memtracker_bytes=tracked,
                    accelerate_bytes=formulas["Accelerate"],
                    deepspeed_bytes=formulas["DeepSpeed"],
                    torchinfo_bytes=info,
                )
                line += (
                    f"  {tracked / MB if tracked else 0:10.1f} {error(tracked, measured):>6s} "
                    f"{tracker_seconds:5.1f}s"
                    f"  {formulas['Accelerate'] / MB:10.1f} "
                    f"{error(formulas['Accelerate'], measured):>6s}"
                    f"  {formulas['DeepSpeed'] / MB:9.1f} "
                    f"{error(formulas['DeepSpeed'], measured):>6s}"
                    + (f"  {info / MB:9.1f} {error(info, measured):>6s}" if info else "")
                )
            print(line, flush=True)
            cells.append(cell)
            gc.collect()
    for reference, (error_value, cell_name) in worst.items():
        if cell_name:
            print(
                f"largest cnnarch error against the {reference}: {100 * error_value:.2f}% "
                f"({cell_name})"
            )
    write_results(
        args,
        {
            "cells": cells,
            "largest_error": worst["profiler"][0],
            "largest_error_cell": worst["profiler"][1],
            "largest_sharded_error": worst["FSDPMemTracker"][0],
        },
    )


if __name__ == "__main__":
    main()
