"""A run is never lost and its logs are the ones people open: the default run folder, --resume
of the newest run, steps.jsonl beside the metrics, TensorBoard events, best.pt and model.pt,
log lines through `logging`, and the --format json summary."""

from __future__ import annotations

import json
import os
import signal
from datetime import datetime, timezone
from pathlib import Path

import pytest
import torch
from train_helpers import TinyNet, tiny_config, write_tiny_fashion

from cnnarch.cli import main
from cnnarch.train import TrainingInterrupted, fit
from cnnarch.train.config import default_out, newest_run
from cnnarch.train.runfiles import tensorboard_writer_class
from cnnarch.zoo import create_model

HAS_TENSORBOARD = tensorboard_writer_class() is not None


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_fashion(tmp_path_factory.mktemp("fmnist"), n_train=64, n_test=20)


def test_a_plain_train_leaves_a_run_folder_with_every_log(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["train", "resnet20", "--data-dir", str(data_dir), "--epochs", "1", "--subset", "48"]
    assert main([*argv, "--batch-size", "16", "--threads", "1", "--format", "json"]) == 0
    captured = capsys.readouterr()
    (out,) = (tmp_path / "runs").iterdir()
    assert out.name.startswith("resnet20-") and out.name.endswith("Z")
    assert f"cnnarch: run folder runs/{out.name}\n" in captured.err  # said at the start
    summary = json.loads(captured.out)
    assert summary["out"] == f"runs/{out.name}" and summary["epochs"] == 1
    names = {"config.json", "metrics.jsonl", "metrics.csv", "steps.jsonl", "checkpoint.pt"}
    names |= {"model.pt", "best.pt"}
    assert names <= set(summary["files"])
    assert summary["best"] == {
        "metric": "test_error",
        "epoch": 1,
        "value": summary["last"]["test_error"],
    }
    assert summary["images_per_s"] > 0 and summary["threads"] == 1
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [row["global_step"] for row in steps] == [1, 2, 3]  # 48 images in batches of 16
    assert all(row["loss"] > 0 and row["images_per_s"] > 0 for row in steps)
    # The step schedule over 3 steps: lr/10 from step 1.5 on, /100 from 2.25 (none reached).
    assert [row["lr"] for row in steps] == pytest.approx([0.1, 0.1, 0.01])
    epoch_loss = json.loads((out / "metrics.jsonl").read_text())["train_loss"]
    assert sum(row["loss"] for row in steps) / 3 == pytest.approx(epoch_loss)  # equal batches
    model = create_model("resnet20", num_classes=10, in_channels=1)
    model.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    if HAS_TENSORBOARD:
        events = list((out / "tensorboard").glob("events.out.tfevents.*"))
        assert events and any(f"tensorboard/{e.name}" in summary["files"] for e in events)
        assert "'tensorboard'" not in captured.err


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="the tensorboard package is not installed")
def test_tensorboard_events_hold_the_step_and_epoch_scalars(data_dir: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fit(tiny_config(data_dir, tmp_path / "run", epochs=2, tensorboard=True), TinyNet)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/images_per_s", "epoch/test_error"} <= tags
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 9))  # 4 steps x 2
    assert [e.step for e in events.Scalars("epoch/test_error")] == [4, 8]


def test_without_tensorboard_the_run_says_so_or_stops_if_it_was_asked_for(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import cnnarch.train.runfiles as runfiles
    import cnnarch.train.trainer as trainer

    for module in (runfiles, trainer):
        monkeypatch.setattr(module, "tensorboard_writer_class", lambda: None)
    with caplog.at_level("INFO", logger="cnnarch.train"):
        fit(tiny_config(data_dir, tmp_path / "a", epochs=1, progress=True), TinyNet)
    assert "pip install 'cnnarch[tensorboard]'" in caplog.text
    assert not (tmp_path / "a" / "tensorboard").exists()
    with pytest.raises(Exception, match=r"need the tensorboard package.*leave out --tensorboard"):
        fit(tiny_config(data_dir, tmp_path / "b", epochs=1, tensorboard=True), TinyNet)


def test_resume_without_a_folder_continues_the_newest_run_of_the_model(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    earlier = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert default_out("resnet20", earlier) == Path("runs/resnet20-20240102T030405Z")
    argv = ["train", "resnet20", "--data-dir", str(data_dir), "--subset", "32", "--epochs", "1"]
    argv += ["--batch-size", "16", "--threads", "1", "--no-progress"]
    assert main([*argv, "--out", str(default_out("resnet20", earlier))]) == 0
    assert main(argv) == 0  # a new folder, stamped now: the newest
    assert main(["train", "plain20", *argv[2:]]) == 0  # another model's run is not a candidate
    newest = newest_run("resnet20")
    assert newest != Path("runs/resnet20-20240102T030405Z")
    assert main(["train", "resnet20", "--resume", "--epochs", "2", "--no-progress"]) == 0
    assert len((newest / "metrics.jsonl").read_text().splitlines()) == 2
    assert (
        len((tmp_path / "runs/resnet20-20240102T030405Z/metrics.jsonl").read_text().splitlines())
        == 1
    )
    taken = default_out("resnet20", earlier)  # the same second again: a suffix
    assert taken == Path("runs/resnet20-20240102T030405Z-2")


def test_the_step_log_of_a_killed_and_resumed_run_is_the_uninterrupted_one(
    data_dir: Path, tmp_path: Path
) -> None:
    def rows(out: Path) -> list[dict]:
        lines = (out / "steps.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k != "images_per_s"} for x in lines]

    fit(tiny_config(data_dir, tmp_path / "a", epochs=2), lambda: TinyNet(dropout=0.2))

    def stop(info) -> None:
        if (info.epoch, info.step) == (1, 2):
            os.kill(os.getpid(), signal.SIGTERM)

    out = tmp_path / "b"
    with pytest.raises(TrainingInterrupted):
        fit(tiny_config(data_dir, out, epochs=2), lambda: TinyNet(dropout=0.2), on_step=stop)
    with (out / "steps.jsonl").open("a") as log:  # a row logged after the checkpoint, then killed
        log.write(json.dumps({**rows(out)[-1], "global_step": 7, "images_per_s": 1.0}) + "\n{")
    fit(tiny_config(data_dir, out, epochs=2, resume=True), lambda: TinyNet(dropout=0.2))
    assert rows(out) == rows(tmp_path / "a")
    assert [row["global_step"] for row in rows(out)] == list(range(1, 9))


def test_best_pt_holds_the_best_epoch_by_the_chosen_metric(data_dir: Path, tmp_path: Path) -> None:
    built: list[TinyNet] = []

    def build() -> TinyNet:  # called after seeding: the same initial weights in both runs
        built.append(TinyNet())
        return built[-1]

    def spoil_after_epoch_1(info) -> None:  # confident and mostly wrong: a high test loss
        if info.epoch >= 1 and info.step == 4:
            with torch.no_grad():
                built[0].fc.weight.zero_()
                built[0].fc.bias.copy_(torch.arange(10, 0, -1).float())

    # A constant schedule, so that epoch 1 is the same in a run of 1 epoch.
    settings = {"schedule": "constant", "best_metric": "test_loss"}
    history = fit(
        tiny_config(data_dir, tmp_path / "a", epochs=3, **settings),
        build,
        on_step=spoil_after_epoch_1,
    )
    losses = [row["test_loss"] for row in history]
    assert losses[0] < 3 < min(losses[1:])  # ln 10 = 2.3 at chance; about 5 when spoiled
    fit(tiny_config(data_dir, tmp_path / "b", epochs=1, **settings), build)
    best = torch.load(tmp_path / "a" / "best.pt", weights_only=True)
    epoch_1 = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    last = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    assert best.keys() == epoch_1.keys()
    assert all(torch.equal(best[k], epoch_1[k]) for k in best)
    assert not torch.equal(last["fc.bias"], best["fc.bias"])
