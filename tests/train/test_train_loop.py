"""The training loop in one process: schedule, batches, losses, determinism, files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from train_helpers import TinyNet, tiny_config, without_timing, write_tiny_fashion

from cnnarch.data import load_dataset
from cnnarch.errors import CnnarchError
from cnnarch.train import TrainConfig, build_config, fit, load_checkpoint
from cnnarch.train.distributed import DistContext
from cnnarch.train.trainer import EpochBatches, lr_factor, steps_per_epoch, training_loss


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_fashion(tmp_path_factory.mktemp("fmnist"))


def test_step_schedule_divides_by_ten_at_half_and_three_quarters() -> None:
    total = 200
    assert [lr_factor(s, total, "step", 0) for s in (0, 99, 100, 149)] == [1, 1, 0.1, 0.1]
    assert lr_factor(150, total, "step", 0) == pytest.approx(0.01)
    assert lr_factor(199, total, "step", 0) == pytest.approx(0.01)


def test_cosine_schedule_and_warmup() -> None:
    assert lr_factor(0, 100, "cosine", 0) == 1.0
    assert lr_factor(50, 100, "cosine", 0) == pytest.approx(0.5)
    assert lr_factor(100, 100, "cosine", 0) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(25, 100, "cosine", 0) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    # He et al.'s 110-layer warm-up: lr 0.01 (a tenth of 0.1) for the first steps.
    assert [lr_factor(s, 100, "constant", 3) for s in (0, 2, 3)] == [0.1, 0.1, 1.0]


def test_steps_per_epoch_keeps_a_partial_batch_every_process_can_share() -> None:
    assert steps_per_epoch(100, 32, 1) == 4  # 3 full + 4 images
    assert steps_per_epoch(97, 32, 2) == 3  # 1 left over: 1 < 2 processes, dropped
    assert steps_per_epoch(98, 32, 2) == 4  # 2 left over: one each
    assert steps_per_epoch(96, 32, 4) == 3


def test_shares_of_all_processes_make_up_the_single_process_batch() -> None:
    single = EpochBatches(50, 16, seed=3, dist=DistContext())
    ranks = [EpochBatches(50, 16, 3, DistContext(rank=r, world_size=3)) for r in range(3)]
    for epoch in (0, 1):
        single.set_epoch(epoch)
        for b in ranks:
            b.set_epoch(epoch)
        seen = []
        for step in range(single.steps):
            index, share = single.batch(step)
            assert share == slice(0, len(index))
            parts = [b.batch(step)[0][b.batch(step)[1]] for b in ranks]
            assert torch.equal(torch.cat(parts), index)
            seen.append(index)
        assert sorted(torch.cat(seen).tolist()) == list(range(50))
    single.set_epoch(0)
    first = single.order.clone()
    single.set_epoch(1)
    assert not torch.equal(first, single.order)


def test_auxiliary_heads_add_three_tenths_of_their_loss() -> None:
    gen = torch.Generator().manual_seed(0)
    main, aux1, aux2 = (torch.randn(4, 10, generator=gen) for _ in range(3))
    y = torch.tensor([1, 2, 3, 4])
    objective, loss, logits = training_loss((main, aux1, aux2), y, 0.3)
    ce = [F.cross_entropy(t, y, reduction="sum") for t in (main, aux1, aux2)]
    assert torch.allclose(objective, ce[0] + 0.3 * (ce[1] + ce[2]))
    assert torch.allclose(loss, ce[0])
    assert logits is main
    plain, _, _ = training_loss(main, y, 0.3)
    assert torch.allclose(plain, ce[0])
    with pytest.raises(CnnarchError, match="expected logits"):
        training_loss({"logits": main}, y, 0.3)


def test_same_seed_same_numbers_other_seed_other_numbers(data_dir: Path) -> None:
    runs = [
        fit(tiny_config(data_dir, seed=seed), lambda: TinyNet(dropout=0.2)) for seed in (0, 0, 1)
    ]
    assert without_timing(runs[0]) == without_timing(runs[1])
    assert without_timing(runs[0]) != without_timing(runs[2])
    assert [row["epoch"] for row in runs[0]] == [1, 2, 3]
    # 96 images in batches of 16: 6 steps an epoch; lr /10 at step 9 (epoch 2) and 13.5.
    assert [row["global_step"] for row in runs[0]] == [6, 12, 18]
    assert [row["lr"] for row in runs[0]] == pytest.approx([0.05, 0.05, 0.005])


def test_training_learns_the_tiny_task(data_dir: Path) -> None:
    history = fit(tiny_config(data_dir, epochs=4, schedule="cosine", augment=False), TinyNet())
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_error"] < 60  # chance is 90%


def test_model_with_auxiliary_head_trains(data_dir: Path) -> None:
    history = fit(tiny_config(data_dir, epochs=1), TinyNet(aux=True))
    assert len(history) == 1 and math.isfinite(history[0]["train_loss"])


def test_run_folder_holds_config_metrics_and_a_safe_checkpoint(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    history = fit(tiny_config(data_dir, out, epochs=2), TinyNet())
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == history
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["test_error"]) for r in rows] == [r["test_error"] for r in history]
    assert list(rows[0]) == list(history[0])
    config = json.loads((out / "config.json").read_text())
    assert config["batch_size"] == 16 and config["train_images"] == 96
    assert config["steps_per_epoch"] == 6
    ckpt = load_checkpoint(out / "checkpoint.pt")  # weights_only=True inside
    assert (ckpt["epoch"], ckpt["step"]) == (2, 0)
    assert ckpt["history"] == history
    assert set(ckpt["rng"][0]) == {"torch", "numpy", "python", "cuda"}
    torch.load(out / "checkpoint.pt", weights_only=True)
    assert load_checkpoint(out / "checkpoint.prev.pt")["epoch"] == 1
    assert not list(out.glob(".*tmp"))


def test_an_existing_run_is_not_overwritten(data_dir: Path, tmp_path: Path) -> None:
    fit(tiny_config(data_dir, tmp_path, epochs=1), TinyNet())
    with pytest.raises(CnnarchError, match="--resume"):
        fit(tiny_config(data_dir, tmp_path, epochs=1), TinyNet())


def test_resume_refuses_other_settings(data_dir: Path, tmp_path: Path) -> None:
    fit(tiny_config(data_dir, tmp_path, epochs=1), TinyNet())
    with pytest.raises(CnnarchError, match=r"lr: 0\.05 -> 0\.1"):
        fit(tiny_config(data_dir, tmp_path, epochs=2, lr=0.1, resume=True), TinyNet())


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data_dir: Path, tmp_path: Path) -> None:
    model = TinyNet()

    def poison(info) -> None:
        if (info.epoch, info.step) == (1, 2):
            with torch.no_grad():
                model.fc.weight.fill_(float("nan"))

    with pytest.raises(CnnarchError, match="loss became nan in epoch 2"):
        fit(tiny_config(data_dir, tmp_path, epochs=3), model, on_step=poison)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert (ckpt["epoch"], ckpt["step"]) == (1, 0)
    assert torch.isfinite(ckpt["model"]["fc.weight"]).all()
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"schedule": "linear"}, "unknown schedule"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"resume": True}, "resume needs the run folder"),
        ({"subset": 0}, "subset must be at least 1"),
    ],
)
def test_bad_settings_are_named(change: dict, message: str) -> None:
    with pytest.raises(CnnarchError, match=message):
        TrainConfig(**change)


def test_build_config_layers_flags_over_preset_over_defaults() -> None:
    cfg = build_config({"model": "resnet110", "epochs": 3, "lr": None}, preset="paper")
    assert (cfg.epochs, cfg.lr, cfg.weight_decay, cfg.warmup_steps) == (3, 0.1, 1e-4, 400)
    assert build_config({"model": "resnet20"}, preset="paper").warmup_steps == 0
    with pytest.raises(CnnarchError, match="name the model"):
        build_config({"epochs": 3})


def test_datasets_passed_in_memory_train_like_the_files(data_dir: Path) -> None:
    data = (load_dataset("fashion-mnist", data_dir), load_dataset("fashion-mnist", data_dir, False))
    from_files = fit(tiny_config(data_dir, epochs=1), TinyNet)
    in_memory = fit(tiny_config(Path("/nonexistent"), epochs=1), TinyNet, data=data)
    assert without_timing(in_memory) == without_timing(from_files)


def test_channels_last_and_bfloat16_autocast_train_the_same_task(data_dir: Path) -> None:
    base = fit(tiny_config(data_dir, epochs=1, channels_last=False), TinyNet)
    nhwc = fit(tiny_config(data_dir, epochs=1), TinyNet)  # channels_last, the default
    assert without_timing(nhwc)[0] == pytest.approx(without_timing(base)[0], rel=1e-4)
    amp = fit(tiny_config(data_dir, epochs=1, amp=True, channels_last=False), TinyNet)
    # bfloat16 keeps 8 bits of mantissa: the first epoch's loss agrees to about 1%.
    assert amp[0]["train_loss"] == pytest.approx(base[0]["train_loss"], rel=0.02)
