"""Every file the trainer reads is checked field by field, with one message naming the file and
the field: checkpoints (checksum, fields, safety), a run's config.json before --resume, its step
log; the data a run was trained on is checked on resume; messages stay one line."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from train_helpers import TinyNet, tiny_config, without_timing, write_idx, write_tiny_fashion

from cnnarch.cli import main
from cnnarch.errors import CnnarchError
from cnnarch.train import CheckpointError, fit, load_checkpoint
from cnnarch.train.checkpoint import payload_digest


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_fashion(tmp_path_factory.mktemp("fmnist"))


@pytest.fixture(scope="module")
def finished(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of two epochs: checkpoint.pt after epoch 2, checkpoint.prev.pt after epoch 1."""
    out = tmp_path_factory.mktemp("run") / "run"
    fit(tiny_config(data_dir, out, epochs=2), TinyNet)
    return out


def one_line(message: str, *needles: str) -> None:
    assert "\n" not in message and "Traceback" not in message, message
    for needle in needles:
        assert needle in message, message


def copy_run(run: Path, to: Path) -> Path:
    to.mkdir()
    for path in run.iterdir():
        if path.is_file():
            (to / path.name).write_bytes(path.read_bytes())
    return to


def rewrite(path: Path, change: Any) -> None:
    """Load the checkpoint at `path` (weights_only), let `change` edit it, save it back with a
    checksum that matches: a file that passes the checksum and must be caught by its fields."""
    ckpt = torch.load(path, weights_only=True)
    change(ckpt)
    ckpt["checksum"] = payload_digest(ckpt)
    torch.save(ckpt, path)


# --- checksum ------------------------------------------------------------------------------------


def flip_a_bit_in_a_weight(path: Path) -> None:
    """Flip one bit in the middle of the largest tensor record of a torch zip file: the file
    still loads, with one weight changed."""
    with zipfile.ZipFile(path) as archive:
        record = max(
            (i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size
        )
        # The record's data start after its local header: 30 bytes, the name, the extra field.
        with open(path, "rb") as raw:
            raw.seek(record.header_offset)
            header = raw.read(30)
        name_len = int.from_bytes(header[26:28], "little")
        extra_len = int.from_bytes(header[28:30], "little")
        at = record.header_offset + 30 + name_len + extra_len + record.file_size // 2
    data = bytearray(path.read_bytes())
    data[at] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_bit_flipped_inside_a_weight_is_found_and_the_previous_checkpoint_used(
    finished: Path, data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = copy_run(finished, tmp_path / "run")
    flip_a_bit_in_a_weight(run / "checkpoint.pt")
    torch.load(run / "checkpoint.pt", weights_only=True)  # loads without complaint
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(run / "checkpoint.pt")
    one_line(str(caught.value), "checkpoint.pt is corrupt", "do not match the checksum")
    history = fit(tiny_config(data_dir, run, epochs=3, resume=True), TinyNet)
    assert "resuming from the previous checkpoint" in caplog.text
    assert [row["epoch"] for row in history] == [1, 2, 3]  # epoch 2 recomputed from epoch 1


# --- fields --------------------------------------------------------------------------------------


def set_field(key: str, value: Any) -> Any:
    def change(ckpt: dict[str, Any]) -> None:
        ckpt[key] = value

    return change


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (set_field("epoch", "x"), "epoch must be an integer, got 'x'"),
        (set_field("epoch", -5), "epoch must be an integer >= 0, got -5"),
        (set_field("rng", []), "rng must be a list of at least 1 items"),
        (set_field("scheduler", {}), "scheduler has no field 'last_epoch'"),
        (set_field("history", "abc"), "history must be a list, got 'abc'"),
        (set_field("history", [{"epoch": 1}] * 2), "history[0] has no field 'train_loss'"),
        (set_field("history", []), "history must be one row for each of the 2 epochs done"),
        (set_field("partial", None), "partial must be a mapping"),
        (set_field("world_size", 0), "world_size must be an integer >= 1"),
        (set_field("config", {"epochs": "2"}), "config.epochs must be an integer, got '2'"),
        (set_field("model", {"w": [1.0]}), "model.w must be a torch tensor"),
        (set_field("data", {"classes": 3}), "data has no field 'num_classes'"),
        (
            lambda c: c["rng"][0].__setitem__("torch", torch.zeros(3, dtype=torch.uint8)),
            "rng[0].torch must be a uint8 tensor of 5056 bytes",
        ),
        (
            lambda c: c["rng"][0].__setitem__("python", (3, (1, 2), None)),
            "rng[0].python[1] must be 625 integers",
        ),
    ],
)
def test_a_checkpoint_that_loads_but_holds_wrong_fields_names_file_and_field(
    finished: Path, data_dir: Path, tmp_path: Path, change: Any, field: str
) -> None:
    run = copy_run(finished, tmp_path / "run")
    (run / "checkpoint.prev.pt").unlink()  # nothing to fall back to
    rewrite(run / "checkpoint.pt", change)
    with pytest.raises(CheckpointError) as caught:
        fit(tiny_config(data_dir, run, epochs=3, resume=True), TinyNet)
    one_line(str(caught.value), f"{run / 'checkpoint.pt'}: {field}", "no usable checkpoint")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (set_field("step", 9), "step must be below the 6 steps of an epoch, got 9"),
        (
            lambda c: c["scheduler"].__setitem__("last_epoch", 3),
            "scheduler.last_epoch must be the steps done (12), got 3",
        ),
    ],
)
def test_fields_that_contradict_the_run_are_named(
    finished: Path, data_dir: Path, tmp_path: Path, change: Any, field: str
) -> None:
    run = copy_run(finished, tmp_path / "run")
    rewrite(run / "checkpoint.pt", change)
    with pytest.raises(CnnarchError) as caught:
        fit(tiny_config(data_dir, run, epochs=3, resume=True), TinyNet)
    one_line(str(caught.value), f"checkpoint.pt: {field}")


# --- safety and messages ---------------------------------------------------------------------


class RunsCode:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("container", ["torch", "pickle"])
def test_a_checkpoint_that_tries_to_run_code_says_so_and_never_advises_unsafe_loading(
    tmp_path: Path, container: str
) -> None:
    path = tmp_path / "checkpoint.pt"
    payload = {"format": "cnnarch-checkpoint-2", "model": RunsCode()}
    if container == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    one_line(message, "the file tried to run code", "system", "was not loaded")
    for advice in ("weights_only", "trusted source", "arbitrary code", "\x1b["):
        assert advice not in message


def test_a_checkpoint_for_another_model_is_one_line(
    finished: Path, tmp_path: Path, data_dir
) -> None:
    run = copy_run(finished, tmp_path / "run")
    with pytest.raises(CnnarchError) as caught:
        fit(tiny_config(data_dir, run, epochs=3, resume=True), lambda: TinyNet(bn=False))
    one_line(
        str(caught.value),
        "does not fit this model",
        "1 of the model's weights missing (conv.bias)",
        "5 weights the model does not have (bn.weight and 4 more)",
    )


def test_a_checkpoint_that_is_a_pipe_is_refused_without_waiting(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="is a named pipe, not a regular file"):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_an_older_format_is_named(tmp_path: Path) -> None:
    torch.save({"format": "cnnarch-checkpoint-1"}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="written by an earlier cnnarch"):
        load_checkpoint(tmp_path / "old.pt")


# --- config.json before --resume ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda c: {**c, "epochs": "2"}, "config.json: epochs must be an integer, got '2'"),
        (lambda c: [c], "config.json must be a mapping, got [{"),
        (lambda c: {**c, "epochs": -1}, "config.json: epochs must be at least 1, got -1"),
        (lambda c: {**c, "lr": "fast"}, "config.json: lr must be a number, got 'fast'"),
        (
            lambda c: {**c, "model_kwargs": {"num_classes": 5}},
            "config.json: model_kwargs.num_classes cannot be set: num_classes comes from the data",
        ),
        (
            lambda c: {**c, "model_kwargs": "abc"},
            "config.json: model_kwargs must be a mapping, got 'abc'",
        ),
        (
            lambda c: {**c, "model_kwargs": {"zero_init": {"x": 1}}},
            "config.json: model_kwargs.zero_init must be a number, string",
        ),
        (lambda c: {**c, "schedule": "linear"}, "config.json: unknown schedule 'linear'"),
    ],
)
def test_a_tampered_config_json_is_named_before_resuming(
    data_dir: Path, tmp_path: Path, tamper: Any, message: str, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    argv = ["train", "resnet20", "--data-dir", str(data_dir), "--epochs", "1", "--batch-size", "32"]
    assert main([*argv, "--out", str(out), "--no-progress", "--threads", "1"]) == 0
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps(tamper(config)))
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnarch: error: ") and err.count("\n") == 1, err
    assert message in err, err


def test_a_malformed_step_log_names_its_line(
    finished: Path, data_dir: Path, tmp_path: Path
) -> None:
    run = copy_run(finished, tmp_path / "run")
    lines = (run / "steps.jsonl").read_text().splitlines()
    lines[3] = json.dumps({**json.loads(lines[3]), "loss": "low"})
    (run / "steps.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(CnnarchError, match=r"steps\.jsonl, line 4: loss must be a number"):
        fit(tiny_config(data_dir, run, epochs=3, resume=True), TinyNet)


# --- the data a run was trained on -------------------------------------------------------------


def test_resuming_on_other_data_is_refused(data_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    for path in data_dir.iterdir():
        (other / path.name).write_bytes(path.read_bytes())
    images = torch.zeros(96, 8, 8, dtype=torch.uint8)  # same size and labels, other pixels
    write_idx(other / "train-images-idx3-ubyte", images)
    out = tmp_path / "run"
    fit(tiny_config(data_dir, out, epochs=1), TinyNet)
    with pytest.raises(CnnarchError) as caught:
        fit(tiny_config(other, out, epochs=2, resume=True), TinyNet)
    one_line(str(caught.value), "was trained on other train images", f"({data_dir})")
    write_tiny_fashion(other, n_train=80)  # fewer images
    with pytest.raises(CnnarchError, match="was trained on 96 train images, these data give 80"):
        fit(tiny_config(other, out, epochs=2, resume=True), TinyNet)
    history = fit(tiny_config(data_dir, out, epochs=2, resume=True), TinyNet)  # the same: fine
    assert len(history) == 2


def test_resuming_with_other_classes_is_refused(tmp_path: Path) -> None:
    from PIL import Image

    def folder(root: Path, classes: list[str]) -> Path:
        for split in ("train", "test"):
            for i, name in enumerate(classes):
                (root / split / name).mkdir(parents=True)
                for j in range(4):
                    pixels = torch.full((8, 8), 40 * i + j, dtype=torch.uint8).numpy()
                    Image.fromarray(pixels).save(root / split / name / f"{j}.png")
        return root

    a, b = folder(tmp_path / "a", ["cat", "dog"]), folder(tmp_path / "b", ["car", "dog"])
    out = tmp_path / "run"
    fit(tiny_config(a, out, dataset="folder", epochs=1, batch_size=4), lambda: TinyNet())
    with pytest.raises(CnnarchError) as caught:
        fit(
            tiny_config(b, out, dataset="folder", epochs=2, batch_size=4, resume=True),
            lambda: TinyNet(),
        )
    one_line(str(caught.value), "its classes were ['cat', 'dog'], these are ['car', 'dog']")


def test_resume_is_unchanged_by_the_checks(finished: Path, data_dir: Path, tmp_path: Path) -> None:
    run = copy_run(finished, tmp_path / "run")
    (run / "checkpoint.pt").unlink()  # resume from checkpoint.prev.pt, after epoch 1
    resumed = fit(tiny_config(data_dir, run, epochs=2, resume=True), TinyNet)
    metrics = (finished / "metrics.jsonl").read_text().splitlines()
    assert without_timing(resumed) == without_timing([json.loads(row) for row in metrics])
