"""Predicted vs measured memory of one training step (forward, loss, backward, optimizer step).

Prediction: `cnnarch.analyze(model, batch_size=B, train=True, optimizer=...)`, a meta trace.
Measurement, on CPU: every allocation and free of the step, from the profiler's memory events
(`profile_memory=True`), summed in time order; the peak of that running sum plus what is alive
when the step starts (parameters, buffers, optimizer state, the batch and its labels, each
storage counted once). On CUDA (`--device cuda`): `torch.cuda.max_memory_allocated` over the
step. The step measured is the second one, so that optimizer state exists (steady state), with
gradients set to None before it as `zero_grad()` does by default.

    python benchmarks/bench_memory.py      # resnet18 and resnet50 at 8 and 32, vgg16 at 8
    python benchmarks/bench_memory.py --runs resnet18:8 --optimizer adam
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

import cnnarch
from profiler_memory import allocation_peak

DEFAULT_RUNS = ("resnet18:8", "resnet18:32", "resnet50:8", "resnet50:32", "vgg16:8")
MIB = 2**20


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.01)
    if name == "momentum":
        return torch.optim.SGD(params, lr=0.01, momentum=0.9)
    return torch.optim.Adam(params, lr=1e-3)


def storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())


def state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]


def train_step(model, optimizer, x, y) -> None:
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()


def measure(name: str, batch: int, optimizer_name: str, device: str) -> tuple[int, float]:
    """(peak bytes of the second training step, seconds it took)."""
    torch.manual_seed(0)
    model = cnnarch.create_model(name).to(device).train()
    card = cnnarch.model_card(name)
    optimizer = make_optimizer(optimizer_name, model.parameters())
    x = torch.randn(batch, *card.input_size, device=device)
    y = torch.randint(0, card.num_classes, (batch,), device=device)
    train_step(model, optimizer, x, y)  # first step: creates the optimizer state
    optimizer.zero_grad(set_to_none=True)
    gc.collect()
    start = time.perf_counter()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        train_step(model, optimizer, x, y)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated(), time.perf_counter() - start
    alive = [*model.parameters(), *model.buffers(), *state_tensors(optimizer), x, y]
    baseline = storage_bytes(alive)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        train_step(model, optimizer, x, y)
    seconds = time.perf_counter() - start
    return baseline + allocation_peak(prof), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="*", default=list(DEFAULT_RUNS), help="name:batch ...")
    parser.add_argument("--optimizer", default="momentum", choices=("sgd", "momentum", "adam"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = parser.parse_args()
    print(f"optimizer {args.optimizer}, device {args.device}, torch {torch.__version__}")
    header = f"{'model':10s} {'batch':>5s} {'predicted':>12s} {'measured':>12s} {'pred/meas':>9s}"
    print(header + f" {'analyze':>9s} {'step':>8s}  peak phase")
    for run in args.runs:
        name, _, batch_text = run.partition(":")
        batch = int(batch_text or 1)
        start = time.perf_counter()
        summary = cnnarch.analyze(name, batch_size=batch, train=True, optimizer=args.optimizer)
        analyze_seconds = time.perf_counter() - start
        assert summary.training is not None
        predicted = summary.training.peak_bytes
        measured, step_seconds = measure(name, batch, args.optimizer, args.device)
        print(
            f"{name:10s} {batch:5d} {predicted / MIB:10.1f}Mi {measured / MIB:10.1f}Mi "
            f"{predicted / measured:9.3f} {analyze_seconds * 1e3:7.0f}ms {step_seconds:7.1f}s  "
            f"{summary.training.peak_phase}"
        )
        gc.collect()


if __name__ == "__main__":
    main()
