"""`cnnarch train`: flags, the summary line, resume from the saved config, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnarch.cli import main
from train.train_helpers import write_tiny_fashion


def test_train_then_resume_with_the_saved_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = write_tiny_fashion(tmp_path / "data", n_train=64, n_test=20)
    out = tmp_path / "run"
    argv = ["train", "resnet20", "--data-dir", str(data), "--epochs", "1", "--batch-size", "32"]
    argv += ["--lr", "0.05", "--schedule", "cosine", "--out", str(out), "--no-progress"]
    assert main([*argv, "--threads", "1", "--seed", "7"]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("resnet20 on fashion-mnist, 1 epochs: test error ")
    assert str(out) in summary
    config = json.loads((out / "config.json").read_text())
    assert (config["lr"], config["schedule"], config["seed"], config["batch_size"]) == (
        0.05, "cosine", 7, 32,
    )  # fmt: skip
    # Only the folder and the new length: model, data and the rest come from config.json.
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--no-progress"]) == 0
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2]
    assert json.loads((out / "config.json").read_text())["seed"] == 7


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "resnet21"], "unknown model 'resnet21'"),
        (["train", "resnet20", "--data-dir", "/nonexistent"], "apt-get install"),
        (["train", "resnet20", "--epochs", "0"], "epochs must be at least 1"),
        (["train", "resnet20", "--resume"], "no run of resnet20 in runs/ to resume"),
        (["train", "--resume"], "resume needs the run folder"),
        (["train"], "name the model"),
    ],
)
def test_mistakes_end_in_one_line_and_status_2(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # where a run without --out would make runs/
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnarch: error: ") and message in err
    assert err.count("\n") == 1
