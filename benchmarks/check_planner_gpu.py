"""Check the training-memory planner against a GPU's own counters.

On a machine with a CUDA GPU, for each cell of the grid (resnet18, resnet50, vgg16, googlenet;
float32 and bfloat16 autocast; SGD with momentum and Adam; three batch sizes):

- measured: `torch.cuda.max_memory_allocated()` and `max_memory_reserved()` over two training
  steps of a fresh model (the second in the steady state), and the bytes the process holds
  outside PyTorch's allocator, total - free (`torch.cuda.mem_get_info()`) - reserved (the CUDA
  context, the kernels it loaded, the libraries' own memory);
- predicted: the planner's replay of the same two steps through its allocator model, with no
  limit (`cnnarch.planner.replay`), and the context it assumes for this GPU's generation;
- then, for each model, precision and optimizer: the planner's largest batch on this card
  (`cnnarch.plan`, at the `total_memory` this GPU reports) trains one step, and that batch +
  10% runs out of memory.

Without a GPU (or with --dry-run) it measures nothing. It prints the grid and the planner's
predictions for every cell and each largest batch (on the card given by --card), and checks
only the planner's own arithmetic: the replay's allocated peak at least the trace's, reserved
at least allocated, the named batch's replay within the card and the next batch's out of
memory. It cannot check on the CPU: the measured peaks, the context, or whether the batch
trains.

    python benchmarks/check_planner_gpu.py                 # on the GPU machine
    python benchmarks/check_planner_gpu.py --dry-run --card h100-80gb
    python benchmarks/check_planner_gpu.py --models resnet18 --batches 8 --no-fit

Results also go to --json FILE (default benchmarks/results/check_planner_gpu.json).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import platform
import subprocess
import sys
import time
from typing import Any

import torch

import cnnarch
from cnnarch.analysis.training_modes import TrainingStep
from cnnarch.planner import CARDS, Card, plan, replay
from cnnarch.planner.device import GENERATIONS, cublas_workspaces
from cnnarch.planner.measure import RealStep
from cnnarch.units import byte_size
from json_results import add_json_option, write_results

MODELS = ("resnet18", "resnet50", "vgg16", "googlenet")
PRECISIONS = ("fp32", "bf16")
OPTIMIZERS = ("momentum", "adam")
BATCHES = (8, 32, 128)
VARIANT = "torchvision"  # what people train
OVER = 1.10  # the batch that must run out of memory: the planner's + 10%
# Compute capability -> GPU generation (the planner's CUDA context and cuBLAS workspace); a
# newer GPU is planned with Hopper's figures.
GENERATION_OF = {
    (7, 5): "turing",
    (8, 0): "ampere",
    (8, 6): "ampere",
    (8, 9): "ada",
    (9, 0): "hopper",
}


def step_of(precision: str, optimizer: str) -> TrainingStep:
    return TrainingStep(optimizer, foreach=True, precision=precision)


def this_card() -> Card:
    """The GPU here as a `Card`: the memory its runtime reports, its generation."""
    props = torch.cuda.get_device_properties(0)
    generation = GENERATION_OF.get((props.major, props.minor), "hopper")
    return Card("this", props.name, "?", props.total_memory, generation, "measured on this machine")


def predicted(name: str, batch: int, step: TrainingStep, card: Card) -> dict[str, int]:
    """The planner's figures for two steps with no memory limit: the trace's peak and the
    replay's allocated and reserved peaks (the cuBLAS workspaces among them)."""
    summary = cnnarch.analyze(name, batch_size=batch, train=True, step=step, variant=VARIANT)
    training = summary.training
    persistent = [life.nbytes for life in training.lifetimes if life.start < 0]
    persistent += cublas_workspaces(GENERATIONS[card.generation])
    own = [tuple(life) for life in training.lifetimes if life.start >= 0]
    result = replay(persistent, own)
    return {
        "peak": training.peak_bytes,
        "allocated": result.max_allocated,
        "reserved": result.max_reserved,
    }


def cuda_step(name: str, batch: int, step: TrainingStep, steps: int) -> dict[str, int]:
    """Run `steps` training steps of a fresh model on the GPU; the allocator's peaks and what
    the process holds outside it."""
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    card = cnnarch.model_card(name)
    model = cnnarch.create_model(name, variant=VARIANT).cuda()
    runner = RealStep(model, step)
    x = torch.randn(batch, *card.input_size, device="cuda")
    y = torch.randint(0, card.num_classes, (batch,), device="cuda")
    for _ in range(steps):
        runner.run(x, y)
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    measured = {
        "allocated": torch.cuda.max_memory_allocated(),
        "reserved": torch.cuda.max_memory_reserved(),
        "outside_allocator": total - free - torch.cuda.memory_reserved(),
        "free": free,
    }
    del runner, model, x, y
    return measured


def trains(name: str, batch: int, step: TrainingStep) -> bool:
    """Whether one training step (after the one that makes the optimizer state) runs."""
    try:
        cuda_step(name, batch, step, steps=2)
        return True
    except torch.OutOfMemoryError:
        return False
    finally:
        gc.collect()
        torch.cuda.empty_cache()


def ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "-"


def grid(
    args: argparse.Namespace, card: Card, on_gpu: bool, problems: list[str]
) -> list[dict[str, Any]]:
    print(
        "\nmodel      prec opt        batch  predicted alloc / reserved    measured alloc / "
        "reserved    ratio alloc reserved  outside allocator"
    )
    cells = []
    for name, precision, optimizer, batch in itertools.product(
        args.models, args.precisions, args.optimizers, args.batches
    ):
        step = step_of(precision, optimizer)
        guess = predicted(name, batch, step, card)
        if not guess["peak"] <= guess["allocated"] <= guess["reserved"]:
            problems.append(f"{name} {precision} {optimizer} {batch}: {guess}")
        cell: dict[str, Any] = {
            "model": name,
            "precision": precision,
            "optimizer": optimizer,
            "batch": batch,
            "predicted": guess,
        }
        line = (
            f"{name:10s} {precision:4s} {optimizer:9s} {batch:6d}  "
            f"{byte_size(guess['allocated']):>10s} / {byte_size(guess['reserved']):>10s}"
        )
        if on_gpu:
            got = cuda_step(name, batch, step, steps=2)
            cell["measured"] = got
            line += (
                f"    {byte_size(got['allocated']):>10s} / {byte_size(got['reserved']):>10s}"
                f"    {ratio(guess['allocated'], got['allocated']):>5s} "
                f"{ratio(guess['reserved'], got['reserved']):>8s}  "
                f"{byte_size(got['outside_allocator']):>10s}"
            )
        print(line, flush=True)
        cells.append(cell)
    return cells


def fits(
    args: argparse.Namespace, card: Card, on_gpu: bool, problems: list[str]
) -> list[dict[str, Any]]:
    print(f"\nlargest batch on {card.name} ({card.total_memory:,} bytes), and + 10%")
    checks = []
    for name, precision, optimizer in itertools.product(
        args.models, args.precisions, args.optimizers
    ):
        step = step_of(precision, optimizer)
        started = time.perf_counter()
        result = plan(name, card=card, variant=VARIANT, precision=precision, optimizer=optimizer)
        seconds = time.perf_counter() - started
        over = math.ceil(result.batch * OVER)
        # the planner's own arithmetic, all a CPU can check
        held = [result.peak_bytes, result.allocated_bytes, result.reserved_bytes]
        if not (result.fits and result.checked and result.headroom_bytes >= 0) or held != sorted(
            held
        ):
            problems.append(f"{name} {precision} {optimizer}: {result!r}, {held}")
        check: dict[str, Any] = {
            "model": name,
            "precision": precision,
            "optimizer": optimizer,
            "batch": result.batch,
            "over": over,
            "plan": result.to_dict(),
            "plan_seconds": seconds,
        }
        line = (
            f"{name:10s} {precision:4s} {optimizer:9s} batch {result.batch:5d} "
            f"(reserved {byte_size(result.reserved_bytes)}, total {byte_size(result.total_bytes)}"
            f", planned in {seconds:.1f} s)"
        )
        if on_gpu:
            check["batch_trains"] = trains(name, result.batch, step)
            check["over_runs_out"] = not trains(name, over, step)
            if not (check["batch_trains"] and check["over_runs_out"]):
                problems.append(f"{name} {precision} {optimizer}: {check}")
            line += (
                f"  batch trains: {check['batch_trains']}; {over} runs out of memory: "
                f"{check['over_runs_out']}"
            )
        print(line, flush=True)
        checks.append(check)
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="measure nothing, even on a GPU")
    parser.add_argument("--card", default="h100-80gb", help="the card planned for without a GPU")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--precisions", nargs="*", default=list(PRECISIONS))
    parser.add_argument("--optimizers", nargs="*", default=list(OPTIMIZERS))
    parser.add_argument("--batches", nargs="*", type=int, default=list(BATCHES))
    parser.add_argument("--no-fit", dest="fit", action="store_false", help="skip the fit checks")
    add_json_option(parser, __file__)
    args = parser.parse_args()
    on_gpu = torch.cuda.is_available() and not args.dry_run
    machine: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version()}
    if on_gpu:
        card = this_card()
        props = torch.cuda.get_device_properties(0)
        machine.update(
            gpu=props.name,
            total_memory=props.total_memory,
            capability=f"{props.major}.{props.minor}",
            cuda=torch.version.cuda,
            driver=_driver(),
        )
        known = [c for c in CARDS.values() if c.name.lower() in props.name.lower()]
        if known:
            machine["table_figure"] = known[0].total_memory
        print(
            f"GPU: {props.name}, {props.total_memory:,} bytes, generation {card.generation}; "
            f"CUDA {torch.version.cuda}, driver {machine['driver']}, torch {torch.__version__}"
        )
        if known:
            print(f"the planner's table says {known[0].key}: {known[0].total_memory:,} bytes")
        print(f"context the planner assumes: {GENERATIONS[card.generation].context_bytes:,} bytes")
    else:
        card = CARDS[args.card]
        print(
            "No GPU (or --dry-run): measuring nothing. Checked here: the planner's own arithmetic "
            "(replayed allocated >= traced peak, reserved >= allocated, the named batch's "
            "replay fits the card and the next's does not). Not checked: the measured peaks, "
            f"the CUDA context, whether the batch trains. Planning for {card.name}."
        )
    problems: list[str] = []
    results: dict[str, Any] = {"machine": machine, "on_gpu": on_gpu, "card": card.key}
    results["cells"] = grid(args, card, on_gpu, problems)
    if args.fit:
        results["fits"] = fits(args, card, on_gpu, problems)
    results["problems"] = problems
    write_results(args, results)
    for problem in problems:
        print(f"FAILED: {problem}")
    sys.exit(1 if problems else 0)


def _driver() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


if __name__ == "__main__":
    main()
