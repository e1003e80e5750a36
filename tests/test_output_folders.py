"""cnnarch never overwrites or deletes what it did not write: every command that writes a folder
(report, train, experiment degradation) refuses one holding a user's file, in one line naming
it, and leaves every file as it was; `--out .` in a project is safe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnarch import files
from cnnarch.cli import main
from train.train_helpers import write_tiny_fashion


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def refused(capsys: pytest.CaptureFixture, folder: Path, foreign: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("cnnarch: error: ") and err.count("\n") == 1, err
    assert f"holds {foreign}, which cnnarch did not write" in err, err


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_fashion(tmp_path_factory.mktemp("data"), n_train=32, n_test=10)


def user_files(folder: Path, *names: str) -> dict[str, bytes]:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(f"the user's own {name}".encode())
    return snapshot(folder)


# --- report --------------------------------------------------------------------------------------


def test_report_refuses_a_folder_holding_the_users_figures_tables_and_page(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "d"
    before = user_files(out, "figures/thesis.png", "tables/my.csv", "index.html")
    assert main(["report", "--models", "resnet18", "--out", str(out)]) == 2
    refused(capsys, out, "figures/thesis.png")
    assert snapshot(out) == before


def test_report_out_dot_in_a_project_refuses_instead_of_replacing_its_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = user_files(tmp_path, "figures/plot.svg", "README.md")
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--models", "resnet18", "--out", "."]) == 2
    refused(capsys, Path("."), "README.md")
    assert snapshot(tmp_path) == before


# --- train ---------------------------------------------------------------------------------------


def train_argv(data: Path, out: str) -> list[str]:
    return [
        "train", "resnet20", "--data-dir", str(data), "--epochs", "1", "--batch-size", "16",
        "--threads", "1", "--no-progress", "--out", out,
    ]  # fmt: skip


def test_train_out_dot_keeps_the_users_config_and_metrics(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = user_files(tmp_path, "config.json", "metrics.csv")
    monkeypatch.chdir(tmp_path)
    assert main(train_argv(data, ".")) == 2
    refused(capsys, Path("."), "config.json")
    assert snapshot(tmp_path) == before


def test_train_refuses_a_run_folder_the_user_added_a_file_to(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert main(train_argv(data, str(out))) == 0
    before = user_files(out, "notes/todo.txt")
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--no-progress"]) == 2
    refused(capsys, out, "notes/todo.txt")
    assert snapshot(out) == before
    (out / "notes" / "todo.txt").unlink()
    (out / "notes").rmdir()
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--no-progress"]) == 0


# --- experiment degradation ----------------------------------------------------------------------


def experiment_argv(data: Path, out: Path) -> list[str]:
    return [
        "experiment", "degradation", "--data-dir", str(data), "--depths", "8,14", "--seeds", "1",
        "--epochs", "1", "--subset", "32", "--threads", "1", "--out", str(out),
    ]  # fmt: skip


def test_experiment_refuses_a_folder_holding_the_users_results(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "deg"
    before = user_files(out, "results.json")
    assert main(experiment_argv(data, out)) == 2
    refused(capsys, out, "results.json")
    assert snapshot(out) == before


@pytest.mark.slow
def test_experiment_refuses_a_user_file_inside_one_of_its_runs(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "deg"
    assert main([*experiment_argv(data, out), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)  # what was written and measured, parseable
    assert summary["files"] == files.written_files(out)
    assert {"results.json", "table.csv", "runs/plain8-seed0/checkpoint.pt"} <= set(summary["files"])
    assert summary["complete"] and summary["runs"] == 4 and len(summary["table"]) == 4
    assert set(summary["images_per_s"]) == {
        f"{m}-seed0" for m in ("plain8", "plain14", "resnet8", "resnet14")
    }
    before = user_files(out, "runs/plain8-seed0/mine.txt")
    capsys.readouterr()
    assert main([*experiment_argv(data, out), "--resume"]) == 2
    refused(capsys, out, "runs/plain8-seed0/mine.txt")
    assert snapshot(out) == before
