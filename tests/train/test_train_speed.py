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
from cnnarch.train.speed import COMPILE_SAVES, choose_compile, compile_seconds

CPU, GPU = torch.device("cpu"), torch.device("cuda", 0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_fashion(tmp_path_factory.mktemp("fmnist"))


def test_auto_compiles_when_the_saving_exceeds_the_compile_time() -> None:
    layers = 39  # ResNet-20's modules with parameters: 19 conv + 19 batch norm + 1 linear
    for channels_last in (False, True):
        # Break-even: steps x seconds a step x the share saved = the compile time.
        even = compile_seconds(layers) / COMPILE_SAVES[channels_last] / 0.2  # steps of 0.2 s
        assert choose_compile("auto", CPU, 0.2, int(even) + 10, layers, channels_last).compiled
        assert not choose_compile("auto", CPU, 0.2, int(even) - 10, layers, channels_last).compiled
    # The standard degradation preset's ResNet-20 (48 epochs of 157 steps) at one thread on a
    # loaded machine, ~0.2 s a step: it pays in NCHW, not in channels_last.
    assert choose_compile("auto", CPU, 0.2, 48 * 157, layers, False).compiled
    assert not choose_compile("auto", CPU, 0.2, 48 * 157, layers, True).compiled
    why = choose_compile("auto", CPU, 0.2, 6 * 63, layers, False).why
    assert why.startswith("eager: compiling does not pay for itself here (it would save about ")


def test_given_resumed_and_unmeasured_choices() -> None:
    assert choose_compile("on", CPU, None, 1, 1, True).compiled
    assert not choose_compile("off", CPU, 10.0, 10**9, 1, False).compiled
    assert choose_compile("auto", CPU, 0.0, 1, 1, True, resumed=True).compiled  # the checkpoint's
    assert not choose_compile("auto", CPU, 10.0, 10**9, 1, False, resumed=False).compiled
    assert not choose_compile("auto", GPU, 10.0, 10**9, 1, False).compiled  # unmeasured: eager
    assert choose_compile("on", CPU, None, 1, 1, True, resumed=False).compiled  # given wins


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
