"""`cnnarch.analyze(name)`: a zoo model built once per process and reused, against a build for
every call (the baseline, measured in the same run by clearing the cache before each call).

Each model is analyzed as the report and the planner analyze it: a training step (SGD with
momentum) at batch 2, on meta. The fastest of `--repeats` calls, each way, alternated.

    python benchmarks/bench_zoo_names.py
    python benchmarks/bench_zoo_names.py --models resnet152 inception_v4 --repeats 7
"""

from __future__ import annotations

import argparse
import time

import cnnarch
from cnnarch.analysis.training_modes import TrainingStep
from cnnarch.zoo_models import _built_on_meta

STEP = TrainingStep(optimizer="momentum", foreach=True)


def timed(name: str, fresh: bool) -> float:
    if fresh:
        _built_on_meta.cache_clear()
    started = time.perf_counter()
    cnnarch.analyze(name, batch_size=2, train=True, step=STEP)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet152", "inception_v4"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'model':<16}{'built each call':>17}{'built once':>12}{'ratio':>8}")
    for name in args.models:
        timed(name, fresh=False)  # imports and the first build, untimed
        built, reused = [], []
        for _ in range(args.repeats):
            built.append(timed(name, fresh=True))
            reused.append(timed(name, fresh=False))
        fast_built, fast_reused = min(built), min(reused)
        print(
            f"{name:<16}{fast_built * 1e3:>14.0f} ms{fast_reused * 1e3:>9.0f} ms"
            f"{fast_built / fast_reused:>7.2f}x"
        )


if __name__ == "__main__":
    main()
