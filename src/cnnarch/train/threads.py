"""The CPU thread count a run trains with: the one given, or the fastest measured here.

torch's default, one thread per core, is the fastest on a quiet machine, but when other
processes share the cores it can be several times slower than one thread: the threads of each
operation wait for one another, and one busy core stalls them all. No fixed count is right on
every machine, so when none is given a run times a few real training steps (on a copy of its
model, so the run itself is untouched) at every count from 1 to the usable cores, interleaved
so that a change in load hits every count alike, and trains with the fastest.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from cnnarch.train.distributed import cpu_threads_per_process

PROBE_ROUNDS = 3  # timed steps per count, after one untimed warm-up step each


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count of a run and why: "given" (--threads), "measured" (fastest of
    `step_seconds`, the median seconds per step at each count), "resumed" (the count the
    checkpoint was trained with), "the only usable core", or "default" (a GPU run keeps
    torch's count; processes under torchrun split the cores evenly)."""

    threads: int
    how: str
    step_seconds: dict[int, float] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the user, e.g. '2 CPU threads, measured fastest (1: 0.31 s/step, ...)'."""
        count = cpu_threads(self.threads)
        if self.how == "measured":
            timings = ", ".join(f"{n}: {s:.3g} s/step" for n, s in self.step_seconds.items())
            return f"{count}, measured fastest here ({timings}); --threads N overrides"
        if self.how == "resumed":
            return f"{count}, as the run being resumed"
        return f"{count} ({self.how})"


def cpu_threads(count: int) -> str:
    """'1 CPU thread', '2 CPU threads'."""
    return f"{count} CPU thread{'' if count == 1 else 's'}"


def candidate_counts() -> list[int]:
    """1 to the number of cores this process may run on."""
    return list(range(1, cpu_threads_per_process(1) + 1))


def fastest(step_seconds: Mapping[int, float]) -> int:
    """The count with the shortest step time; a tie goes to fewer threads."""
    return min(step_seconds, key=lambda n: (step_seconds[n], n))


def time_steps(
    step: Callable[[], None],
    counts: Sequence[int],
    rounds: int = PROBE_ROUNDS,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[int, float]:
    """Median seconds of one `step()` at each thread count in `counts`.

    Each count first runs one untimed step (the first call at a new count pays for one-time
    setup), then the counts take turns, `rounds` times, so that load that comes and goes is
    spread over all of them. torch's thread count is left as it was.
    """
    before = torch.get_num_threads()
    times: dict[int, list[float]] = {n: [] for n in counts}
    try:
        for n in counts:
            torch.set_num_threads(n)
            step()
        for _ in range(rounds):
            for n in counts:
                torch.set_num_threads(n)
                start = clock()
                step()
                times[n].append(clock() - start)
    finally:
        torch.set_num_threads(before)
    return {n: statistics.median(t) for n, t in times.items()}


def measure_choice(
    step: Callable[[], None],
    counts: Sequence[int] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> ThreadChoice:
    """The fastest of `counts` (default: 1 to the usable cores) for `step`, timed here."""
    counts = list(counts) if counts is not None else candidate_counts()
    if len(counts) == 1:
        return ThreadChoice(counts[0], "the only usable core")
    seconds = time_steps(step, counts, clock=clock)
    return ThreadChoice(fastest(seconds), "measured", seconds)
