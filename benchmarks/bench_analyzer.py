"""Speed, memory and agreement of cnnarch's analyzer against torchinfo, fvcore, ptflops and thop.

Every tool analyzes the same CPU model (built once per model with real weights, eval mode) at
the model's default input. Protocol per tool and model: one untimed warm-up call, then the
fastest of `--repeats` timed calls (wall clock). torch runs on `--threads` threads (default 1:
on a shared machine, more threads than free cores make the peers' real forward passes wait on
each other and their times meaningless; give `--threads 2` on an idle 2-core machine).
Peak memory is measured in a separate, untimed call: the peak of torch's CPU allocations
(profiler memory events) plus the peak of Python allocations (tracemalloc). The peers run
real forward passes, so they are timed at batch 1 only unless `--peer-batches` says otherwise;
cnnarch is timed at batch 1 and 64 (and measured on vgg16 at 256 for its memory). Peers are
optional: a missing one is reported and skipped. The table also goes to `--json FILE` (default
benchmarks/results/bench_analyzer.json).

    python benchmarks/bench_analyzer.py                       # every ImageNet model of the zoo
    python benchmarks/bench_analyzer.py --models vgg16 resnet50
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

import cnnarch
from cnnarch.planner.measure import allocation_peak
from json_results import add_json_option, write_results

MIB = 2**20


@dataclass
class Result:
    seconds: float
    params: int | None
    macs: int | None


# -- the tools: (model, input tensor) -> (params, MACs) -------------------------------------------
def run_cnnarch(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    summary = cnnarch.analyze(model, inputs=x)
    return summary.total_params, summary.total_macs


def run_torchinfo(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    import torchinfo

    stats = torchinfo.summary(model, input_data=x, verbose=0, device="cpu")
    return stats.total_params, stats.total_mult_adds


def run_fvcore(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    from fvcore.nn import FlopCountAnalysis, parameter_count

    flops = FlopCountAnalysis(model, x)
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return parameter_count(model)[""], int(flops.total())


def run_ptflops(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    from ptflops import get_model_complexity_info

    macs, params = get_model_complexity_info(
        model,
        tuple(x.shape[1:]),
        input_constructor=lambda _: {"x": x},
        as_strings=False,
        print_per_layer_stat=False,
        verbose=False,
    )
    return int(params), int(macs) * x.shape[0]  # ptflops reports MACs per example


def run_thop(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    from thop import profile as thop_profile

    macs, params = thop_profile(model, inputs=(x,), verbose=False)
    return int(params), int(macs)


TOOLS: dict[str, Callable[[nn.Module, torch.Tensor], tuple[int, int]]] = {
    "cnnarch": run_cnnarch,
    "torchinfo": run_torchinfo,
    "fvcore": run_fvcore,
    "ptflops": run_ptflops,
    "thop": run_thop,
}


def available_tools() -> list[str]:
    names = ["cnnarch"]
    for name in ("torchinfo", "fvcore", "ptflops", "thop"):
        try:
            __import__(name)
            names.append(name)
        except ImportError as err:
            print(f"{name} is not installed ({err}); skipped")
    return names


# -- measuring -----------------------------------------------------------------------------------
def quiet(call: Callable[[], tuple[int, int]]) -> tuple[int, int]:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        return call()


def timed(tool: str, model: nn.Module, x: torch.Tensor, repeats: int) -> Result:
    quiet(lambda: TOOLS[tool](model, x))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        params, macs = quiet(lambda: TOOLS[tool](model, x))
        best = min(best, time.perf_counter() - start)
    return Result(best, params, macs)


def peak_memory(tool: str, model: nn.Module, x: torch.Tensor) -> int:
    """Most bytes held at once by the call: torch CPU allocations plus Python objects."""
    gc.collect()
    tracemalloc.start()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        quiet(lambda: TOOLS[tool](model, x))
    _, python_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return allocation_peak(prof) + python_peak


def lecture_models() -> list[str]:
    return [n for n in cnnarch.list_models() if cnnarch.model_card(n).input_size[1] >= 200]


# -- report --------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", help="default: every ImageNet model of the zoo")
    parser.add_argument("--peer-batches", nargs="*", type=int, default=[1])
    parser.add_argument("--no-memory", action="store_true", help="skip the memory pass")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--repeats", "--repeat", type=int, default=3, help="timed calls; the fastest counts"
    )
    add_json_option(parser, __file__)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tools = available_tools()
    peers = [t for t in tools if t != "cnnarch"]
    models = args.models or lecture_models()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, tools: {tools}")
    cnnarch.analyze(nn.Conv2d(3, 3, 3), (3, 8, 8))  # first-use imports, outside any timing

    totals: dict[tuple[str, int], float] = {}
    rows: list[dict[str, object]] = []
    head = f"{'model':14s} {'tool':10s} {'batch':>5s} {'time ms':>9s} {'params':>12s} {'MACs':>15s}"
    print(head + f" {'peak MiB':>9s}  notes")
    for name in models:
        card = cnnarch.model_card(name)
        torch.manual_seed(0)
        model = cnnarch.create_model(name).eval()
        ours_params = ours_macs = 0
        for batch in sorted({1, 64, *args.peer_batches}):
            x = torch.randn(batch, *card.input_size)
            for tool in tools:
                if tool != "cnnarch" and batch not in args.peer_batches:
                    continue
                try:
                    result = timed(tool, model, x, args.repeats)
                except Exception as err:  # a peer that cannot handle a model
                    failure = f"{type(err).__name__}: {err}"
                    print(f"{name:14s} {tool:10s} {batch:5d}  failed: {failure}")
                    rows.append({"model": name, "tool": tool, "batch": batch, "failed": failure})
                    continue
                key = (tool, batch)
                totals[key] = totals.get(key, 0.0) + result.seconds
                peak = None if args.no_memory else peak_memory(tool, model, x)
                memory = "" if peak is None else f"{peak / MIB:9.1f}"
                if tool == "cnnarch":
                    ours_params, ours_macs = result.params, result.macs
                    notes = ""
                else:
                    notes = "params equal" if result.params == ours_params else "PARAMS DIFFER"
                    notes += f"; MACs x{result.macs / ours_macs:.4f}" if ours_macs else ""
                print(
                    f"{name:14s} {tool:10s} {batch:5d} {result.seconds * 1e3:9.1f} "
                    f"{result.params:12,} {result.macs:15,} {memory:>9s}  {notes}"
                )
                rows.append(
                    {
                        "model": name,
                        "tool": tool,
                        "batch": batch,
                        "seconds": result.seconds,
                        "params": result.params,
                        "macs": result.macs,
                        "peak_bytes": peak,
                        "notes": notes,
                    }
                )
        del model
        gc.collect()

    print("\nTotals over", len(models), "models (sum of each model's fastest timed call)")
    ours_1 = totals.get(("cnnarch", 1), float("nan"))
    ours_64 = totals.get(("cnnarch", 64), float("nan"))
    print(f"cnnarch  batch 1: {ours_1 * 1e3:8.1f} ms   batch 64: {ours_64 * 1e3:8.1f} ms")
    print(f"cnnarch batch 64 / batch 1: {ours_64 / ours_1:.2f}x")
    for peer in peers:
        for batch in args.peer_batches:
            if (peer, batch) in totals:
                theirs = totals[(peer, batch)]
                ours = totals[("cnnarch", batch)]
                print(
                    f"{peer:9s} batch {batch:3d}: {theirs * 1e3:9.1f} ms   "
                    f"cnnarch is {theirs / ours:6.1f}x faster"
                )
    fastest = min((totals[(p, 1)], p) for p in peers if (p, 1) in totals) if peers else None
    if fastest:
        print(
            f"fastest peer at batch 1: {fastest[1]}; cnnarch is {fastest[0] / ours_1:.1f}x faster"
        )
    vgg16_peak = None
    if "vgg16" in models and not args.no_memory:
        with torch.device("meta"):
            vgg = cnnarch.create_model("vgg16")
        x = torch.empty(256, 3, 224, 224, device="meta")
        vgg16_peak = peak_memory("cnnarch", vgg, x)
        print(f"cnnarch on vgg16 (meta) at batch 256: analysis peak {vgg16_peak / MIB:.1f} MiB")
    write_results(
        args,
        {
            "tools": tools,
            "rows": rows,
            "total_seconds": [
                {"tool": tool, "batch": batch, "seconds": seconds}
                for (tool, batch), seconds in totals.items()
            ],
            "cnnarch_vgg16_meta_batch_256_peak_bytes": vgg16_peak,
        },
    )


if __name__ == "__main__":
    main()
