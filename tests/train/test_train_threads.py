"""The thread count: the fastest measured (from injected timings), --threads overriding it,
the choice reported and recorded, and a resume reusing the recorded count."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from train_helpers import TinyNet, tiny_config, without_timing, write_tiny_fashion

from cnnarch.train import TrainingInterrupted, fit, load_checkpoint, summary_line, threads
from cnnarch.train.threads import ThreadChoice, fastest, measure_choice, time_steps


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_fashion(tmp_path_factory.mktemp("fmnist"))


class FakeClock:
    """A clock that only `step()` advances, by the cost given for torch's thread count."""

    def __init__(self, cost: dict[int, list[float]]) -> None:
        self.cost = {n: list(c) for n, c in cost.items()}
        self.now = 0.0
        self.seen: list[int] = []

    def __call__(self) -> float:
        return self.now

    def step(self) -> None:
        n = torch.get_num_threads()
        self.seen.append(n)
        self.now += self.cost[n].pop(0)


def test_fastest_is_the_shortest_step_and_a_tie_goes_to_fewer_threads() -> None:
    assert fastest({1: 0.30, 2: 0.20, 3: 0.25}) == 2
    assert fastest({1: 0.10, 2: 0.20}) == 1
    assert fastest({3: 0.2, 1: 0.2, 2: 0.2}) == 1


def test_time_steps_skips_the_warm_up_interleaves_and_takes_the_median() -> None:
    before = torch.get_num_threads()
    # Warm-up steps (first per count) cost 100 s and must not count; then rounds 1..3.
    clock = FakeClock({1: [100.0, 0.30, 0.32, 0.90], 2: [100.0, 0.20, 5.00, 0.21]})
    seconds = time_steps(clock.step, [1, 2], rounds=3, clock=clock)
    assert seconds == pytest.approx({1: 0.32, 2: 0.21})  # 2's one slow step is outvoted
    assert clock.seen == [1, 2, 1, 2, 1, 2, 1, 2]  # warm-ups, then the counts take turns
    assert torch.get_num_threads() == before


def test_measure_choice_picks_the_faster_count_and_says_so() -> None:
    clock = FakeClock({1: [1.0, 0.102, 0.101, 0.1], 2: [1.0, 0.155, 0.154, 0.156]})
    choice = measure_choice(clock.step, [1, 2], clock=clock)
    assert (choice.threads, choice.how) == (1, "measured")
    assert choice.step_seconds == pytest.approx({1: 0.101, 2: 0.155})
    line = choice.describe()
    assert line.startswith("1 CPU thread, measured fastest here (1: 0.101 s/step, 2: 0.155")
    assert "--threads N overrides" in line
    assert measure_choice(clock.step, [4]) == ThreadChoice(4, "the only usable core")
    assert ThreadChoice(2, "resumed").describe() == "2 CPU threads, as the run being resumed"


@pytest.fixture
def timings(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[int, float]], list[int]]:
    """Make runs measure counts 1 and 2 with the given seconds per step (each probe still runs
    its real step once); returns the list that counts the measurements."""
    calls: list[int] = []

    def install(seconds: dict[int, float]) -> list[int]:
        def fake_time_steps(step, counts, rounds=3, clock=None) -> dict[int, float]:
            step()  # the real probe step, on the run's copy of the model
            calls.append(len(counts))
            return {n: seconds[n] for n in counts}

        monkeypatch.setattr(threads, "candidate_counts", lambda: [1, 2])
        monkeypatch.setattr(threads, "time_steps", fake_time_steps)
        return calls

    return install


def test_unset_threads_trains_with_the_fastest_count_and_records_it(
    data_dir: Path, tmp_path: Path, timings, caplog: pytest.LogCaptureFixture
) -> None:
    calls = timings({1: 0.5, 2: 0.25})
    with caplog.at_level(logging.INFO, logger="cnnarch.train"):
        history = fit(
            tiny_config(data_dir, tmp_path / "auto", threads=None, progress=True),
            lambda: TinyNet(dropout=0.2),
        )
    assert calls == [2]
    assert "2 CPU threads, measured fastest here (1: 0.5 s/step, 2: 0.25" in caplog.text
    assert [row["threads"] for row in history] == [2, 2, 2]
    assert load_checkpoint(tmp_path / "auto" / "checkpoint.pt")["threads"] == 2
    config = tiny_config(data_dir, tmp_path / "auto")
    assert f"s on 2 CPU threads; files in {tmp_path / 'auto'}" in summary_line(config, history)
    # The probe ran on a copy with the random state restored: the run is the one that
    # --threads 2 gives, bit for bit (dropout draws from the same generator).
    given = fit(tiny_config(data_dir, threads=2), lambda: TinyNet(dropout=0.2))
    assert without_timing(history) == without_timing(given)


def test_threads_given_overrides_the_measurement(data_dir: Path, timings) -> None:
    calls = timings({1: 0.5, 2: 0.25})
    history = fit(tiny_config(data_dir, threads=1), TinyNet)
    assert calls == []
    assert [row["threads"] for row in history] == [1, 1, 1]


def test_resume_keeps_the_recorded_count_and_continues_exactly(
    data_dir: Path, tmp_path: Path, timings, caplog: pytest.LogCaptureFixture
) -> None:
    reference = fit(tiny_config(data_dir, threads=2), lambda: TinyNet(dropout=0.2))
    calls = timings({1: 0.5, 2: 0.25})

    def stop(info) -> None:
        if (info.epoch, info.step) == (1, 3):
            os.kill(os.getpid(), signal.SIGTERM)

    out = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        fit(tiny_config(data_dir, out, threads=None), lambda: TinyNet(dropout=0.2), on_step=stop)
    assert calls == [2]
    timings({1: 0.1, 2: 0.9})  # the machine got busier: 1 thread would now measure faster
    resumed = fit(
        tiny_config(data_dir, out, threads=None, resume=True), lambda: TinyNet(dropout=0.2)
    )
    assert calls == [2]  # not measured again
    assert [row["threads"] for row in resumed] == [2, 2, 2]
    assert without_timing(resumed) == without_timing(reference)
    caplog.clear()
    # An explicit count that differs from the recorded one wins, with a note.
    fit(tiny_config(data_dir, out, threads=1, resume=True), lambda: TinyNet(dropout=0.2))
    assert "was trained with 2 threads; continuing with 1" in caplog.text
