"""The fastest step: when "auto" compiles, and that a resumed run stays bit-exact for each
setting (eager, channels_last, torch.compile), the choice recorded in the checkpoint."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from train_helpers import TinyNet, tiny_config, without_timing, write_tiny_fashion

from cnnarch.train import TrainingInterrupted, fit, load_checkpoint
from cnnarch.train.speed import COMPILE_GAIN, COMPILE_SECONDS, choose_compile

CPU, GPU = torch.device("cpu"), torch.device("cuda", 0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_fashion(tmp_path_factory.mktemp("fmnist"))


def test_auto_compiles_when_the_saving_exceeds_the_compile_time() -> None:
    # Break-even: steps x seconds a step x the gain = the compile time.
    even = COMPILE_SECONDS / COMPILE_GAIN  # eager seconds left at which compiling pays off
    assert choose_compile("auto", CPU, 0.2, int(even / 0.2) + 10).compiled
    assert not choose_compile("auto", CPU, 0.2, int(even / 0.2) - 10).compiled
    # The standard degradation preset: 48 epochs of 157 steps of ResNet-20 at ~0.2 s compile;
    # the quick preset's 6 epochs of 63 steps do not.
    assert choose_compile("auto", CPU, 0.2, 48 * 157).compiled
    assert not choose_compile("auto", CPU, 0.2, 6 * 63).compiled
    why = choose_compile("auto", CPU, 0.2, 6 * 63).why
    assert why.startswith("auto: compiling does not pay for itself here (saves about ")


def test_given_resumed_and_unmeasured_choices() -> None:
    assert choose_compile("on", CPU, None, 1).compiled
    assert not choose_compile("off", CPU, 10.0, 10**9).compiled
    assert choose_compile("auto", CPU, 0.0, 1, resumed=True).compiled  # the checkpoint's choice
    assert not choose_compile("auto", CPU, 10.0, 10**9, resumed=False).compiled
    assert not choose_compile("auto", GPU, 10.0, 10**9).compiled  # not measured there: eager
    assert choose_compile("on", CPU, None, 1, resumed=False).compiled  # given wins


def interrupted_and_resumed(
    data_dir: Path, out: Path, resume_with: dict[str, Any] | None = None, **settings: Any
) -> list[dict]:
    """A run stopped by SIGTERM in epoch 2, then resumed (with `resume_with` changed)."""

    def stop(info) -> None:
        if (info.epoch, info.step) == (1, 3):
            os.kill(os.getpid(), signal.SIGTERM)

    def build() -> TinyNet:
        return TinyNet(dropout=0.2)

    with pytest.raises(TrainingInterrupted):
        fit(tiny_config(data_dir, out, **settings), build, on_step=stop)
    resumed = {**settings, **(resume_with or {})}
    return fit(tiny_config(data_dir, out, resume=True, **resumed), build)


def test_channels_last_resumes_bit_exactly(data_dir: Path, tmp_path: Path) -> None:
    straight = fit(
        tiny_config(data_dir, tmp_path / "a", channels_last=True), lambda: TinyNet(dropout=0.2)
    )
    resumed = interrupted_and_resumed(data_dir, tmp_path / "b", channels_last=True)
    assert without_timing(resumed) == without_timing(straight)


@pytest.mark.slow
def test_a_compiled_run_resumes_bit_exactly_and_compiled(data_dir: Path, tmp_path: Path) -> None:
    straight = fit(
        tiny_config(data_dir, tmp_path / "a", compile="on"), lambda: TinyNet(dropout=0.2)
    )
    assert all(row["compiled"] for row in straight)
    # Resumed under "auto", the run keeps the choice its checkpoint records: compiled.
    resumed = interrupted_and_resumed(
        data_dir, tmp_path / "b", resume_with={"compile": "auto"}, compile="on"
    )
    assert without_timing(resumed) == without_timing(straight)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["compiled"] is True
    eager = fit(tiny_config(data_dir, compile="off"), lambda: TinyNet(dropout=0.2))
    assert not any(row["compiled"] for row in eager)
