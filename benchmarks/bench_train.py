"""Training speed: cnnarch's trainer against a minimal hand-written PyTorch loop.

Both train the same model (same seed, same initial weights) on the same in-memory images with
the same batch operations (`pad_crop_flip` and `Normalize` from `cnnarch.data`), SGD with
momentum; so the ratio isolates what the trainer adds per step (scheduler, running sums,
signal and NaN checks, the progress machinery). Each is run for `--epochs` epochs and the last
one is timed (the first warms up), `--repeats` times in alternating order; the best of each
is kept. On a shared machine, compare only numbers printed with a low load average.

The FLOP rate counts 3 x forward MACs x 2 FLOPs per training image (forward, and a backward
that costs about twice the forward), with the forward MACs counted by `cnnarch.analyze` (on
meta tensors: nothing is computed). CPU peak = threads x clock x FP32 lanes x 2 (an FMA is 2
FLOPs) x FMA units per core: lanes from /proc/cpuinfo's flags (avx512f: 16, avx2+fma: 8, else
4), the clock from its "cpu MHz" (under a hypervisor this is the nominal clock; a turbo clock
would make the true fraction lower), FMA units per core assumed 2 (override with --fma-units /
--ghz).

    python benchmarks/bench_train.py                      # CPU: resnet20 and resnet56, batch 128
    python benchmarks/bench_train.py --device cuda --amp --batch-size 512 --images 50000

The table also goes to `--json FILE` (default benchmarks/results/bench_train.json).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import cnnarch
from cnnarch.data import CropFlip, ImageDataset, Normalize, pad_crop_flip
from cnnarch.train import TrainConfig, fit
from cnnarch.zoo import create_model
from json_results import add_json_option, write_results


def forward_macs(name: str, shape: tuple[int, int, int]) -> int:
    """Multiply-accumulates of one image's forward pass through `name` built for 10 classes."""
    with torch.device("meta"):
        model = create_model(name, num_classes=10, in_channels=shape[0])
    return cnnarch.analyze(model, shape).total_macs


def cpu_peak_flops(threads: int, ghz: float | None, fma_units: int) -> tuple[float, str]:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set()
    mhz = None
    for line in info.splitlines():
        if line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
        if line.startswith("cpu MHz") and mhz is None:
            mhz = float(line.split(":", 1)[1])
    lanes = 16 if "avx512f" in flags else 8 if {"avx2", "fma"} <= flags else 4
    clock = ghz if ghz else (mhz or 2000.0) / 1000
    peak = threads * clock * 1e9 * lanes * 2 * fma_units
    how = (
        f"{threads} threads x {clock:.3f} GHz x {lanes} FP32 lanes x 2 (FMA) x {fma_units} "
        f"FMA units = {peak / 1e9:.0f} GFLOP/s"
    )
    return peak, how


def synthetic_cifar(n: int, seed: int = 0) -> ImageDataset:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (n,), generator=gen)
    return ImageDataset(images, labels, [str(i) for i in range(10)], name="synthetic-cifar")


def hand_loop(
    model: nn.Module, data: ImageDataset, args: argparse.Namespace, channels_last: bool
) -> float:
    """Images per second of the last epoch of a plain loop."""
    device = torch.device(args.device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    images, labels = data.images.to(device), data.labels.to(device)
    normalize = Normalize(data.mean, data.std)
    gen = torch.Generator().manual_seed(0)
    rate = 0.0
    for _ in range(args.epochs):
        order = torch.randperm(len(data), generator=gen)
        sync(device)
        start = time.perf_counter()
        for s in range(0, len(data), args.batch_size):
            index = order[s : s + args.batch_size].to(device)
            params = CropFlip.draw(len(index), 4, True, gen)
            x = normalize(pad_crop_flip(images[index], params, 4)).contiguous(memory_format=fmt)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
                out = model(x)
            loss = F.cross_entropy(out.float(), labels[index])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        sync(device)
        rate = len(data) / (time.perf_counter() - start)
    return rate


def trainer(name: str, data: ImageDataset, args: argparse.Namespace, channels_last: bool) -> float:
    cfg = TrainConfig(
        model=name,
        dataset="synthetic",
        epochs=args.epochs,
        batch_size=args.batch_size,
        test_subset=args.batch_size,
        schedule="constant",
        progress=False,
        channels_last=channels_last,
        amp=args.amp,
        device=args.device,
        deterministic=False,
    )
    # A builder: `fit` seeds (seed 0) before calling it, so the weights equal the hand loop's.
    history = fit(cfg, lambda: create_model(name, num_classes=10, in_channels=3), data=(data, data))
    return history[-1]["images_per_s"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class GpuUtilization:
    """Mean of `nvidia-smi`'s utilization.gpu sampled every 0.2 s while active."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        while not self._stop.is_set():
            try:
                out = subprocess.run(query, capture_output=True, text=True, timeout=5).stdout
                self.samples.append(float(out.split()[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return
            self._stop.wait(0.2)

    def __enter__(self) -> GpuUtilization:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["resnet20", "resnet56"])
    p.add_argument("--images", type=int, default=1024, help="training images per epoch")
    p.add_argument("--batch-size", "--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=2, help="the last one is timed")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    p.add_argument("--ghz", type=float, help="CPU clock for the peak (default: /proc/cpuinfo)")
    p.add_argument("--fma-units", type=int, default=2, help="FMA units per core (default 2)")
    add_json_option(p, __file__)
    args = p.parse_args()

    data = synthetic_cifar(args.images)
    threads = torch.get_num_threads()
    if args.device == "cpu":
        peak, how = cpu_peak_flops(threads, args.ghz, args.fma_units)
        print(f"CPU peak estimate: {how}")
    else:
        peak, how = 0.0, torch.cuda.get_device_name()
        print(f"GPU: {how}")
    print(
        f"{args.images} images 3x32x32, batch {args.batch_size}, device {args.device}, "
        f"amp {args.amp}, torch {torch.__version__}, {threads} threads, "
        f"load average {os.getloadavg()[0]:.1f} (best of {args.repeats} runs each)"
    )
    header = (
        f"{'model':10s} {'format':14s} {'hand img/s':>11s} {'cnnarch img/s':>14s} {'ratio':>6s}"
    )
    header += f" {'GFLOP/s':>8s} {'of peak':>8s}" if peak else f" {'TFLOP/s':>8s} {'GPU util':>8s}"
    print(header)
    rows = []
    for name in args.models:
        macs = forward_macs(name, (3, 32, 32))
        flops_per_image = 3 * macs * 2
        for channels_last in (False, True):
            hand, ours, util = 0.0, 0.0, None
            for repeat in range(args.repeats):
                # Alternate the order (hand, trainer, trainer, hand, ...) so that a change of
                # the machine's load hits both alike.
                for which in ("hand", "ours") if repeat % 2 == 0 else ("ours", "hand"):
                    if which == "hand":
                        torch.manual_seed(0)
                        model = create_model(name, num_classes=10, in_channels=3)
                        hand = max(hand, hand_loop(model, data, args, channels_last))
                    elif args.device == "cuda":
                        with GpuUtilization() as gpu:
                            ours = max(ours, trainer(name, data, args, channels_last))
                        util = gpu.mean
                    else:
                        ours = max(ours, trainer(name, data, args, channels_last))
            rate = ours * flops_per_image
            fmt = "channels_last" if channels_last else "contiguous"
            line = f"{name:10s} {fmt:14s} {hand:11.0f} {ours:14.0f} {ours / hand:6.2f}"
            if peak:
                line += f" {rate / 1e9:8.1f} {rate / peak:8.1%}"
            else:
                line += f" {rate / 1e12:8.2f} {'' if util is None else f'{util:.0f}%':>8s}"
            print(line, flush=True)
            rows.append(
                {
                    "model": name,
                    "format": fmt,
                    "forward_macs": macs,
                    "hand_images_per_s": hand,
                    "cnnarch_images_per_s": ours,
                    "ratio": ours / hand,
                    "flop_per_s": rate,
                    "fraction_of_peak": rate / peak if peak else None,
                    "gpu_utilization": util,
                }
            )
        print(
            f"  ({name}: {macs / 1e6:.2f} M forward MACs per image; "
            f"load average now {os.getloadavg()[0]:.1f})"
        )
    write_results(args, {"peak": how, "peak_flop_per_s": peak or None, "rows": rows})


if __name__ == "__main__":
    main()
