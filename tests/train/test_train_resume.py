"""Nothing lost: kills, signals and corrupt checkpoints, then `resume` gives the same numbers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import TinyNet, tiny_config, without_timing, write_tiny_fashion

from cnnarch.train import CheckpointError, TrainingInterrupted, fit, load_checkpoint

SCRIPT = Path(__file__).with_name("tiny_run.py")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_fashion(tmp_path_factory.mktemp("fmnist"))


def run_tiny(data_dir: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(data_dir), str(out), "--dropout", "0.2", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(out / "checkpoint.pt")["model"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_bitwise_the_uninterrupted_run(
    data_dir: Path, tmp_path: Path
) -> None:
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    expected = fit(tiny_config(data_dir, reference), lambda: TinyNet(dropout=0.2))
    # Checkpoints after steps 2 and 4 of each epoch; killed after step 3 of epoch 2.
    crash = run_tiny(data_dir, killed, "--checkpoint-every", "2", "--send-signal", "SIGKILL")
    assert crash.returncode == -signal.SIGKILL, crash.stderr
    ckpt = load_checkpoint(killed / "checkpoint.pt")
    assert (ckpt["epoch"], ckpt["step"]) == (1, 2)
    assert len((killed / "metrics.jsonl").read_text().splitlines()) == 1
    got = fit(
        tiny_config(data_dir, killed, checkpoint_every=2, resume=True),
        lambda: TinyNet(dropout=0.2),
    )
    assert len(got) == 3
    assert without_timing(got) == without_timing(expected)
    assert_same_weights(final_weights(killed), final_weights(reference))
    lines = (killed / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_writes_a_checkpoint_and_resume_continues_exactly(
    data_dir: Path, tmp_path: Path, signum: int
) -> None:
    def builder() -> TinyNet:
        return TinyNet(dropout=0.2)

    reference = fit(tiny_config(data_dir, tmp_path / "reference"), builder)

    def send(info) -> None:
        if (info.epoch, info.step) == (1, 4):
            os.kill(os.getpid(), signum)

    out = tmp_path / "stopped"
    with pytest.raises(TrainingInterrupted, match=f"stopped by {signal.Signals(signum).name}"):
        fit(tiny_config(data_dir, out), builder, on_step=send)
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert (ckpt["epoch"], ckpt["step"]) == (1, 4)
    history = fit(tiny_config(data_dir, out, resume=True), builder)
    assert without_timing(history) == without_timing(reference)
    assert_same_weights(final_weights(out), final_weights(tmp_path / "reference"))


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reference = fit(tiny_config(data_dir), TinyNet)

    def stop_after_epoch_2(info) -> None:
        if (info.epoch, info.step) == (1, 6):
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted):
        fit(tiny_config(data_dir, tmp_path), TinyNet, on_step=stop_after_epoch_2)
    latest = tmp_path / "checkpoint.pt"
    assert load_checkpoint(latest)["epoch"] == 2
    latest.write_bytes(latest.read_bytes()[:1000])  # truncated, as by a full disk
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        load_checkpoint(latest)
    history = fit(tiny_config(data_dir, tmp_path, resume=True), TinyNet)
    assert "resuming from the previous checkpoint" in caplog.text
    assert without_timing(history) == without_timing(reference)
    assert (tmp_path / "checkpoint.pt.corrupt").exists()
    assert load_checkpoint(latest)["epoch"] == 3


def test_no_usable_checkpoint_is_a_clear_error(data_dir: Path, tmp_path: Path) -> None:
    fit(tiny_config(data_dir, tmp_path, epochs=2), TinyNet)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a zip file at all")
    (tmp_path / "checkpoint.prev.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="no usable checkpoint left"):
        fit(tiny_config(data_dir, tmp_path, resume=True), TinyNet)


def test_foreign_or_unsafe_files_are_refused(tmp_path: Path) -> None:
    torch.save({"weights": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a cnnarch training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save({"format": "cnnarch-checkpoint-1", "path": tmp_path}, tmp_path / "unsafe.pt")
    with pytest.raises(CheckpointError, match="not a safe checkpoint"):
        load_checkpoint(tmp_path / "unsafe.pt")


def test_timed_checkpoints_are_written_inside_the_epoch(data_dir: Path, tmp_path: Path) -> None:
    seen = []

    def look(info) -> None:
        if info.epoch == 0 and info.step > 1:
            ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
            seen.append((ckpt["epoch"], ckpt["step"], ckpt["partial"]["count"]))

    fit(tiny_config(data_dir, tmp_path, epochs=1, checkpoint_minutes=0.0), TinyNet, on_step=look)
    # Called after step s, before that step's checkpoint: the file holds step s - 1.
    assert seen == [(0, s - 1, 16 * (s - 1)) for s in range(2, 7)]
