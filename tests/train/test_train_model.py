"""Any model: `cnnarch train module:factory` (sized to the data), `--variant`, weights-only
files that load into the builder (and torchvision's keys for its variants), AdamW and label
smoothing from the config (the planner's optimizer memory is that run's), and a failed
allocation or a model that rejects the images in one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from train_helpers import TinyNet, tiny_config, write_tiny_fashion

from cnnarch import analyze
from cnnarch.cli import main
from cnnarch.errors import CnnarchError
from cnnarch.train import TrainConfig, build_config, fit
from cnnarch.train.trainer import training_loss
from cnnarch.zoo import create_model

REFERENCE = Path(__file__).parents[1] / "zoo" / "data" / "torchvision_state_dicts.json"

FACTORIES = '''
import torch
from torch import nn


def small(num_classes: int = 1000, in_channels: int = 3, width: int = 4) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(width, num_classes),
    )


def three_channels(**kwargs) -> nn.Module:  # torchvision's way: num_classes through **kwargs
    head = nn.Linear(4, kwargs["num_classes"])
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


class Hungry(nn.Module):
    """Asks for far more memory than any machine has, as a too-large batch does."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.fc = nn.Linear(1, num_classes)

    def forward(self, x):
        torch.empty(2**62, dtype=torch.uint8)
        return self.fc(x.mean((1, 2, 3))[:, None])
'''


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_fashion(tmp_path_factory.mktemp("fmnist"), n_train=48, n_test=20)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's project folder holding mymodels.py, as the current folder."""
    (tmp_path / "mymodels.py").write_text(FACTORIES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def train_argv(data_dir: Path, model: str, *more: str) -> list[str]:
    return [
        "train", model, "--data-dir", str(data_dir), "--epochs", "1", "--batch-size", "16",
        "--threads", "1", "--no-progress", *more,
    ]  # fmt: skip


def test_a_factory_trains_sized_to_the_data_and_its_weights_load_back(
    data_dir: Path, project: Path
) -> None:
    assert main(train_argv(data_dir, "mymodels:small", "--out", "run")) == 0
    config = json.loads((project / "run" / "config.json").read_text())
    assert config["model"] == "mymodels:small" and config["data"]["num_classes"] == 10
    import mymodels

    model = mymodels.small(num_classes=10, in_channels=1)  # 1 channel, 10 classes: the data's
    model.load_state_dict(torch.load(project / "run" / "model.pt", weights_only=True))
    best = torch.load(project / "run" / "best.pt", weights_only=True)  # one epoch: the same
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())


def test_a_model_that_rejects_the_images_is_one_line(
    data_dir: Path, project: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(train_argv(data_dir, "mymodels:three_channels", "--out", "run")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cnnarch: error: "), err
    assert "mymodels:three_channels failed on its first batch of 1x8x8 images" in err
    assert "expected input" in err and "to have 3 channels" in err


def test_a_failed_large_allocation_is_one_line_and_status_2(
    data_dir: Path, project: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(train_argv(data_dir, "mymodels:Hungry", "--out", "run")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cnnarch: error: out of memory in "), err
    assert "at 16 images a step" in err and "try a smaller --batch-size" in err
    assert "no checkpoint had been written" in err


def test_variant_is_a_zoo_option_and_not_a_factory_one(
    data_dir: Path, project: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(train_argv(data_dir, "mymodels:small", "--variant", "torchvision")) == 2
    assert "--variant is for zoo models" in capsys.readouterr().err
    assert main(train_argv(data_dir, "resnet20", "--variant", "torchvision")) == 2
    assert "has no variant 'torchvision'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_torchvision_variant_gives_torchvision_s_keys_and_shapes(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    argv = train_argv(data_dir, "resnet18", "--variant", "torchvision", "--out", str(out))
    assert main(argv) == 0
    weights = torch.load(out / "model.pt", weights_only=True)
    expected = json.loads(REFERENCE.read_text())["resnet18"]["state_dict"]
    assert list(weights) == list(expected)  # the same keys, in torchvision's order
    for key, shape in expected.items():
        if key == "conv1.weight":  # the data has 1 channel where ImageNet has 3
            shape = [shape[0], 1, *shape[2:]]
        elif key in ("fc.weight", "fc.bias"):  # 10 classes where ImageNet has 1000
            shape = [10, *shape[1:]]
        assert list(weights[key].shape) == shape, key
    rebuilt = create_model("resnet18", variant="torchvision", num_classes=10, in_channels=1)
    rebuilt.load_state_dict(weights)


# --- optimizers and losses ---------------------------------------------------------------------


def test_label_smoothing_mixes_uniform_targets_into_the_loss() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    labels = torch.tensor([0])
    # log-softmax: [2 - log(e^2 + 2), -log(e^2 + 2), -log(e^2 + 2)]
    z = math.log(math.exp(2) + 2)
    plain = -(2 - z)
    # eps = 0.3 over 3 classes: targets 0.7 + 0.1 on the label, 0.1 on each other class.
    smoothed = -(0.8 * (2 - z) + 0.1 * -z + 0.1 * -z)
    _, loss, _ = training_loss(logits, labels, 0.3, label_smoothing=0.0)
    assert loss.item() == pytest.approx(plain)
    _, loss, _ = training_loss(logits, labels, 0.3, label_smoothing=0.3)
    assert loss.item() == pytest.approx(smoothed)
    assert smoothed == pytest.approx(F.cross_entropy(logits, labels, label_smoothing=0.3).item())


def test_adamw_takes_its_own_defaults_and_the_cli_reads_them_from_the_config() -> None:
    config = TrainConfig(optimizer="adamw")
    assert (config.lr, config.weight_decay) == (1e-3, 1e-2)  # torch.optim.AdamW's
    assert (TrainConfig().lr, TrainConfig().weight_decay) == (0.1, 1e-4)  # He et al.'s SGD
    given = build_config({"model": "resnet20", "optimizer": "adamw", "label_smoothing": 0.1})
    assert (given.optimizer, given.lr, given.label_smoothing) == ("adamw", 1e-3, 0.1)
    with pytest.raises(CnnarchError, match=r"label_smoothing must lie in \[0, 1\)"):
        TrainConfig(label_smoothing=1.0)
    with pytest.raises(CnnarchError, match="unknown optimizer 'adam'"):
        TrainConfig(optimizer="adam")


@pytest.mark.parametrize(("optimizer", "momentum"), [("adamw", 0.9), ("sgd", 0.9), ("sgd", 0.0)])
def test_the_planner_counts_the_optimizer_state_this_run_keeps(
    data_dir: Path, tmp_path: Path, optimizer: str, momentum: float
) -> None:
    config = tiny_config(
        data_dir, tmp_path / "run", epochs=1, optimizer=optimizer, momentum=momentum
    )
    fit(config, TinyNet)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["optimizer"]
    # AdamW's step counts are float32 scalars that torch keeps on the host (unless capturable
    # or fused), not in the device memory the planner models.
    kept = sum(
        t.numel() * t.element_size()
        for per_param in state["state"].values()
        for name, t in per_param.items()
        if isinstance(t, torch.Tensor) and name != "step"
    )
    planned = analyze(TinyNet(), (1, 8, 8), train=True, optimizer=config.planner_optimizer())
    assert planned.training is not None
    assert planned.training.optimizer_state_bytes == kept
    # TinyNet: conv 8x1x3x3 = 72, batch norm 2 x 8, linear 128 x 10 + 10: 1,378 values.
    # AdamW keeps two float32 moments of each, SGD a momentum buffer when momentum > 0.
    expected = {"adamw": 2 * 4 * 1_378, "momentum": 4 * 1_378, "sgd": 0}
    assert kept == expected[config.planner_optimizer()]
