"""Training speed at each CPU thread count, and the count `fit` chooses when none is given.

    python benchmarks/bench_threads.py [--model resnet20] [--steps 30] [--batch-size 128]

Trains `--steps` steps of one epoch on Fashion-MNIST at 1, 2, ... threads (up to the usable
cores), then once with the thread count left to `fit`, and prints images/s per count as a ratio
to 1 thread, with the load average before and after (timings on a shared machine are noisy).
The results also go to `--json FILE` (default benchmarks/results/bench_threads.json).
"""

from __future__ import annotations

import argparse
import os

from cnnarch.train import TrainConfig, fit
from cnnarch.train.threads import candidate_counts
from json_results import add_json_option, write_results


def images_per_s(model: str, steps: int, batch: int, threads: int | None) -> tuple[float, int]:
    """(training images/s, thread count used) of one epoch of `steps` steps."""
    cfg = TrainConfig(
        model=model,
        epochs=1,
        batch_size=batch,
        subset=steps * batch,
        test_subset=batch,
        threads=threads,
        progress=threads is None,  # the chosen count and its timings on stderr
    )
    row = fit(cfg)[-1]
    return row["images_per_s"], row["threads"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", "--batch", type=int, default=128)
    add_json_option(parser, __file__)
    args = parser.parse_args()
    load_before = os.getloadavg()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}")
    speeds = {
        n: images_per_s(args.model, args.steps, args.batch_size, n)[0] for n in candidate_counts()
    }
    for n, speed in speeds.items():
        print(f"threads={n}: {speed:7.1f} img/s ({speed / speeds[1]:.2f}x 1 thread)")
    speed, chosen = images_per_s(args.model, args.steps, args.batch_size, None)
    print(f"chosen by fit: threads={chosen}, {speed:7.1f} img/s ({speed / speeds[1]:.2f}x)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    write_results(
        args,
        {
            "load_average_before": list(load_before),
            "images_per_s": {str(n): s for n, s in speeds.items()},
            "ratio_to_1_thread": {str(n): s / speeds[1] for n, s in speeds.items()},
            "chosen": {"threads": chosen, "images_per_s": speed, "ratio": speed / speeds[1]},
        },
    )


if __name__ == "__main__":
    main()
