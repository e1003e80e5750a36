"""How long building a zoo model takes on the meta device, against building it on the CPU.

`cnnarch.analyze("resnet50")`, `cnnarch plan` and the report build each model on the meta
device (shapes, no values) before tracing it; the CPU build, with real weights, is the
baseline measured in the same run. Protocol per model: one untimed warm-up build of each,
then the fastest of `--repeats` timed builds (wall clock, one torch thread). The table also
goes to `--json FILE` (default benchmarks/results/bench_build.json).

    python benchmarks/bench_build.py
    python benchmarks/bench_build.py --models resnet152 vgg16 --repeats 5
"""

from __future__ import annotations

import argparse
import time

import torch

import cnnarch
from json_results import add_json_option, write_results

DEFAULT_MODELS = (
    "alexnet",
    "vgg16",
    "googlenet",
    "inception_v3",
    "resnet18",
    "resnet50",
    "resnet152",
    "resnet110",
)


def fastest_build(name: str, device: str, repeats: int) -> float:
    """Seconds of the fastest of `repeats` builds of `name` on `device`, after a warm-up."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        with torch.device(device):
            cnnarch.create_model(name)
        times.append(time.perf_counter() - start)
    return min(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--repeats", type=int, default=3)
    add_json_option(parser, __file__)
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows = []
    print(f"{'model':<14}{'meta ms':>10}{'CPU ms':>10}{'meta/CPU':>10}")
    for name in args.models:
        meta = fastest_build(name, "meta", args.repeats)
        cpu = fastest_build(name, "cpu", args.repeats)
        rows.append({"model": name, "meta_s": meta, "cpu_s": cpu, "ratio": meta / cpu})
        print(f"{name:<14}{1e3 * meta:>10.1f}{1e3 * cpu:>10.1f}{meta / cpu:>10.3f}")
    meta_total = sum(r["meta_s"] for r in rows)
    cpu_total = sum(r["cpu_s"] for r in rows)
    ratio = meta_total / cpu_total
    print(f"{'all':<14}{1e3 * meta_total:>10.1f}{1e3 * cpu_total:>10.1f}{ratio:>10.3f}")
    write_results(args, {"rows": rows, "meta_over_cpu": ratio})


if __name__ == "__main__":
    main()
