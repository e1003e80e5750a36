"""Training speed on this machine: eager against channels_last (each at one thread and at every
thread count) against torch.compile, for the degradation experiment's models and batch sizes.

Each setting is the trainer's own step (`cnnarch.train.trainer`: crop and flip, normalization,
forward, cross-entropy, backward, SGD with momentum) on the experiment's images (Fashion-MNIST,
1x28x28, when installed; random images of that shape otherwise). A case (model, batch size) first
builds every setting and times its first step (for a compiled one, the compile), then runs
`--rounds` rounds in which every setting trains `--steps` steps, in an order that rotates each
round, so that load from other processes hits every setting alike; the median round is kept.
Each rate is printed with its ratio to eager at one thread, measured in the same rounds, twice:
by the wall clock, and by this process's CPU time (`time.process_time`), which on a machine that
other processes load counts the work of the step and not the waiting for a core.

The FLOP rate counts 3 x forward MACs x 2 FLOPs per training image (forward, and a backward that
costs about twice the forward), the forward MACs from `cnnarch.analyze` (on meta tensors). The
CPU's peak is threads x clock x FP32 FMAs per cycle x 2 (`fma_per_cycle`: SIMD lanes x FMA
pipes, from the vendor, family and flags in /proc/cpuinfo; the clock from its "cpu MHz", which a
hypervisor reports as the nominal clock: a turbo clock would make the true fraction lower).

    python benchmarks/bench_train.py                       # resnet20/56, plain20/56; batch 32, 128
    python benchmarks/bench_train.py --models resnet20 --batch-sizes 32 --rounds 3

Compiles are cold (a fresh TorchInductor cache in a temporary folder) unless --warm-cache. The
table also goes to `--json FILE` (default benchmarks/results/bench_train.json).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnarch.data import CropFlip, ImageDataset, Normalize, load_dataset, pad_crop_flip
from cnnarch.errors import CnnarchError
from cnnarch.train import TrainConfig
from cnnarch.train.distributed import cpu_threads_per_process
from cnnarch.train.trainer import make_optimizer, training_loss
from cnnarch.zoo import create_model
from json_results import add_json_option, write_results

SETTINGS = ("eager", "channels_last", "compile", "compile+channels_last")


def cpu_info() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo."""
    info: dict[str, str] = {}
    path = Path("/proc/cpuinfo")
    for line in path.read_text().splitlines() if path.exists() else []:
        if not line.strip():
            break
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def fma_per_cycle(info: dict[str, str]) -> tuple[int, str]:
    """FP32 fused multiply-adds one core issues per cycle, and why: SIMD lanes x FMA pipes.

    AMD Zen 4 (family 25 with AVX-512) runs 512-bit instructions on its two 256-bit FMA pipes
    (chipsandcheese.com, "AMD's Zen 4 Part 1: Frontend and Execution Engine", 2022): 8 lanes x 2.
    Zen 5 (family 26) has 512-bit pipes: 16 x 2. Zen 2 and 3: 8 x 2. Intel with AVX-512:
    16 x 2 (the Xeon Gold/Platinum count; some parts have one 512-bit FMA unit: --fma-per-cycle).
    AVX2 with FMA: 8 x 2; else 4 x 1 (SSE).
    """
    flags = set(info.get("flags", "").split())
    vendor, family = info.get("vendor_id", ""), int(info.get("cpu family", "0") or 0)
    if vendor == "AuthenticAMD" and {"avx2", "fma"} <= flags:
        lanes = 16 if family >= 26 else 8
        return lanes * 2, f"AMD family {family}: {lanes} FP32 lanes x 2 FMA pipes"
    if "avx512f" in flags:
        return 32, "AVX-512: 16 FP32 lanes x 2 FMA units"
    if {"avx2", "fma"} <= flags:
        return 16, "AVX2: 8 FP32 lanes x 2 FMA units"
    return 4, "SSE: 4 FP32 lanes, no FMA"


def cpu_peak(threads: int, args: argparse.Namespace) -> tuple[float, str]:
    """FP32 FLOP/s of `threads` cores at their FMA peak, and how it was derived."""
    info = cpu_info()
    fmas, why = fma_per_cycle(info)
    if args.fma_per_cycle:
        fmas, why = args.fma_per_cycle, "given"
    ghz = args.ghz or float(info.get("cpu MHz", "2000")) / 1000
    peak = threads * ghz * 1e9 * fmas * 2
    how = (
        f"{info.get('model name', '?')}: {threads} core(s) x {ghz:.3f} GHz x {fmas} FMA/cycle "
        f"({why}) x 2 FLOP = {peak / 1e9:.1f} GFLOP/s"
    )
    return peak, how


def experiment_images(n: int) -> ImageDataset:
    """`n` Fashion-MNIST training images, or random ones of that shape if it is not installed."""
    try:
        return load_dataset("fashion-mnist").subset(n)
    except CnnarchError:
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=gen)
        labels = torch.randint(0, 10, (n,), generator=gen)
        return ImageDataset(images, labels, [str(i) for i in range(10)], name="random")


def forward_macs(name: str, shape: tuple[int, ...]) -> int:
    """One image's forward MACs through `name` (10 classes), counted by `cnnarch.analyze` in a
    child process: the analyzer's global module hooks leave an entry in torch's hook tables
    after removal (`register_module_forward_hook(..., with_kwargs=True)`), and every later
    module call in this process would then take torch's slower path with hooks."""
    code = (
        "import sys, torch, cnnarch; from cnnarch.zoo import create_model\n"
        "with torch.device('meta'):\n"
        f"    m = create_model({name!r}, num_classes=10, in_channels={shape[0]})\n"
        f"print(cnnarch.analyze(m, {tuple(shape)!r}).total_macs)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


@dataclass
class Setting:
    """One way of running a case's training step."""

    name: str
    threads: int
    step: Callable[[int], None]
    first_step_s: float = 0.0
    rounds_s: list[float] | None = None  # wall seconds of each round
    rounds_cpu_s: list[float] | None = None  # this process's CPU seconds of each round

    @property
    def label(self) -> str:
        return f"{self.name} @{self.threads}"


def make_step(
    model_name: str, data: ImageDataset, batch: int, setting: str
) -> Callable[[int], None]:
    """The trainer's step for `setting`: one call trains global batch `i` of a fixed order."""
    config = TrainConfig(model=model_name, batch_size=batch, lr=0.025)
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=10, in_channels=data.in_channels)
    layout = torch.channels_last if "channels_last" in setting else torch.contiguous_format
    model = model.to(memory_format=layout).train()
    forward = torch.compile(model) if setting.startswith("compile") else model
    optimizer = make_optimizer(config, model.parameters())
    normalize = Normalize(data.mean, data.std)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))

    def step(i: int) -> None:
        start = (i * batch) % (len(data) - batch + 1)
        index = order[start : start + batch]
        params = CropFlip.draw(batch, config.pad, True, torch.Generator().manual_seed(i))
        x = normalize(pad_crop_flip(data.images[index], params, config.pad))
        objective, _, _ = training_loss(
            forward(x.contiguous(memory_format=layout)), data.labels[index], config.aux_weight
        )
        (objective / batch).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def run_case(
    model_name: str, batch: int, data: ImageDataset, args: argparse.Namespace
) -> list[Setting]:
    """Build every setting of one case, time its first step, then the alternating rounds."""
    settings = []
    for name in args.settings:
        for threads in args.threads if not name.startswith("compile") else [1]:
            torch.set_num_threads(threads)
            step = make_step(model_name, data, batch, name)
            started = time.perf_counter()
            step(0)
            setting = Setting(name, threads, step, time.perf_counter() - started, [], [])
            settings.append(setting)
            print(f"    built {setting.label}: first step {setting.first_step_s:.1f} s", flush=True)
    for r in range(args.rounds):
        turn = settings[r % len(settings) :] + settings[: r % len(settings)]
        for setting in turn:
            torch.set_num_threads(setting.threads)
            started, cpu_started = time.perf_counter(), time.process_time()
            for i in range(args.steps):
                setting.step(1 + r * args.steps + i)
            assert setting.rounds_s is not None and setting.rounds_cpu_s is not None
            setting.rounds_s.append(time.perf_counter() - started)
            setting.rounds_cpu_s.append(time.process_time() - cpu_started)
    return settings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["resnet20", "plain20", "resnet56", "plain56"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[32, 128])
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    p.add_argument(
        "--threads",
        nargs="+",
        type=int,
        default=sorted({1, cpu_threads_per_process(1)}),
        help="thread counts of the eager settings (default: 1 and every core; compiled: 1)",
    )
    p.add_argument("--steps", type=int, default=3, help="steps a setting trains per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--warm-cache", action="store_true", help="keep TorchInductor's own cache")
    p.add_argument("--ghz", type=float, help="CPU clock for the peak (default: /proc/cpuinfo)")
    p.add_argument(
        "--fma-per-cycle", type=int, help="FP32 FMAs per core per cycle (default: found)"
    )
    add_json_option(p, __file__)
    args = p.parse_args()
    if not args.warm_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-train-inductor-")
    data = experiment_images(args.images)
    peak_1, how = cpu_peak(1, args)
    print(f"CPU peak: {how}")
    print(
        f"{data.name}: {len(data)} images {'x'.join(map(str, data.images.shape[1:]))}; "
        f"torch {torch.__version__}; {args.rounds} rounds of {args.steps} steps per setting, "
        f"median round; load average {os.getloadavg()[0]:.1f}"
    )
    rows = []
    for batch in args.batch_sizes:
        for model_name in args.models:
            macs = forward_macs(model_name, tuple(data.images.shape[1:]))
            print(f"{model_name}, batch {batch} ({macs / 1e6:.1f} M forward MACs an image):")
            settings = run_case(model_name, batch, data, args)
            images = args.steps * batch
            wall = {s.label: images / statistics.median(s.rounds_s or [0.0]) for s in settings}
            cpu = {s.label: images / statistics.median(s.rounds_cpu_s or [0.0]) for s in settings}
            base = settings[0].label
            for s in settings:
                flops = cpu[s.label] * 3 * 2 * macs  # per CPU second: the work, not the wait
                # One CPU second of a thread is at most one core's peak, whatever the count.
                compile_s = s.first_step_s - batch / wall[s.label]
                compile_s = max(compile_s, 0.0) if s.name.startswith("compile") else 0.0
                label = s.label
                print(
                    f"  {label:26s} {wall[label]:7.1f} img/s  x{wall[label] / wall[base]:5.2f}"
                    f"  | {cpu[label]:7.1f} img/CPU-s  x{cpu[label] / cpu[base]:5.2f}  "
                    f"{flops / 1e9:5.1f} GFLOP/CPU-s = {flops / peak_1:6.1%} of a core's peak"
                    + (f"  | compile {compile_s:.0f} s" if compile_s else ""),
                    flush=True,
                )
                rows.append(
                    {
                        "model": model_name,
                        "batch_size": batch,
                        "setting": s.name,
                        "threads": s.threads,
                        "images_per_s": wall[s.label],
                        "ratio_to_eager_1_thread": wall[s.label] / wall[base],
                        "images_per_cpu_s": cpu[s.label],
                        "cpu_ratio_to_eager_1_thread": cpu[s.label] / cpu[base],
                        "flop_per_cpu_s": flops,
                        "fraction_of_core_peak": flops / peak_1,
                        "wall_fraction_of_peak": wall[label] * 6 * macs / (peak_1 * s.threads),
                        "first_step_s": s.first_step_s,
                        "compile_s": compile_s,
                        "rounds_s": s.rounds_s,
                        "rounds_cpu_s": s.rounds_cpu_s,
                    }
                )
            print(f"  (load average now {os.getloadavg()[0]:.1f})", flush=True)
    write_results(args, {"peak": how, "peak_flop_per_s_one_core": peak_1, "rows": rows})


if __name__ == "__main__":
    main()
