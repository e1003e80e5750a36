"""`TrainConfig`: every choice of a training run, saved with the run and in its checkpoints."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnarch.errors import CnnarchError

SCHEDULES = ("step", "cosine", "constant")
TRAIN_DEVICES = ("auto", "cpu", "cuda")

# Fields that change what a run computes: a resumed run must keep them.
RESULT_FIELDS = (
    "model",
    "dataset",
    "batch_size",
    "lr",
    "momentum",
    "weight_decay",
    "nesterov",
    "schedule",
    "warmup_steps",
    "subset",
    "test_subset",
    "seed",
    "augment",
    "pad",
    "image_size",
    "aux_weight",
    "amp",
    "model_kwargs",
)


@dataclass
class TrainConfig:
    """A training run. Defaults: SGD with momentum on Fashion-MNIST, on a CUDA GPU if torch
    sees one (`device="auto"`), else on the CPU.

    `schedule`: "step" divides the learning rate by 10 at 50% and 75% of the steps (He et al.
    2015, CIFAR-10: at 32k and 48k of 64k iterations), "cosine" anneals it to 0, "constant"
    keeps it. `warmup_steps` first runs at lr/10. `subset` trains on that many training images
    (drawn with a fixed seed, the same for every run; more than the data holds is an error),
    `test_subset` likewise for the test set.
    `out=None` writes no files. `checkpoint_every` also checkpoints every that many steps
    inside an epoch (0: only at epoch ends and every `checkpoint_minutes` minutes).
    `image_size` resizes every batch (bilinear, after augmentation) to that square side, so that
    the ImageNet models, which need large inputs, train on 28x28 or 32x32 images.
    """

    model: str = "resnet20"
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    schedule: str = "step"
    warmup_steps: int = 0
    subset: int | None = None
    test_subset: int | None = None
    seed: int = 0
    out: str | None = None
    resume: bool = False
    amp: bool = False
    channels_last: bool = False
    augment: bool = True
    pad: int = 4
    image_size: int | None = None
    aux_weight: float = 0.3
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    device: str = "auto"
    threads: int | None = None
    eval_batch_size: int = 512
    checkpoint_every: int = 0
    checkpoint_minutes: float = 10.0
    deterministic: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `CnnarchError` naming the first setting that cannot work."""
        positive = ("epochs", "batch_size", "eval_batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise CnnarchError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("subset", "test_subset", "threads", "image_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise CnnarchError(f"{name} must be at least 1, got {value}")
        for name in ("lr", "momentum", "weight_decay", "aux_weight", "checkpoint_minutes"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise CnnarchError(f"{name} must be a finite number >= 0, got {value}")
        for name in ("pad", "warmup_steps", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise CnnarchError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.schedule not in SCHEDULES:
            raise CnnarchError(
                f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}"
            )
        if self.device not in TRAIN_DEVICES:
            raise CnnarchError(
                f"device must be one of {', '.join(TRAIN_DEVICES)}, got {self.device!r}"
            )
        if self.resume and self.out is None:
            raise CnnarchError("resume needs the run folder (--out) that holds the checkpoint")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def result_differences(self, other: dict[str, Any]) -> list[str]:
        """The result-changing settings in which `other` (a saved config) differs from this one."""
        mine = self.to_dict()
        return [
            f"{name}: {other.get(name)!r} -> {mine[name]!r}"
            for name in RESULT_FIELDS
            if other.get(name) != mine[name]
        ]


def paper_preset(model: str) -> dict[str, Any]:
    """He et al. 2015, Section 4.2 (CIFAR-10): SGD, batch 128, lr 0.1 divided by 10 at 32k and
    48k iterations, stopped at 64k (164 epochs of 50k images), weight decay 1e-4, momentum 0.9,
    4-pixel padding, random 32x32 crops and flips; for 110 layers, lr 0.01 for the first 400
    iterations ("until the training error is below 80%")."""
    depth = "".join(ch for ch in model if ch.isdigit())
    return {
        "epochs": 164,
        "batch_size": 128,
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "schedule": "step",
        "augment": True,
        "pad": 4,
        "warmup_steps": 400 if depth and int(depth) >= 110 else 0,
    }


# `cnnarch train --preset NAME`: the settings of a published recipe for a model.
TRAIN_PRESETS = {"paper": paper_preset}


def build_config(options: dict[str, Any], preset: str | None = None) -> TrainConfig:
    """A config from explicitly given `options` (None values are ignored), over the `preset`,
    over the saved config of the run being resumed, over the defaults.

    So `cnnarch train --out runs/x --resume` continues run x with the settings it had.
    """
    given = {k: v for k, v in options.items() if v is not None}
    values: dict[str, Any] = {}
    if given.get("resume") and given.get("out"):
        saved = Path(given["out"]) / "config.json"
        if "model" not in given and not saved.is_file():
            found = "no such folder" if not saved.parent.exists() else "no config.json there"
            raise CnnarchError(
                f"no run to resume in {saved.parent} ({found}); check --out, or start a new "
                "run there by naming the model, without --resume"
            )
        if saved.is_file():
            try:
                values.update(json.loads(saved.read_text("utf-8")))
            except (OSError, ValueError) as err:
                raise CnnarchError(f"cannot read {saved}: {err}") from None
    if preset is not None:
        if preset not in TRAIN_PRESETS:
            raise CnnarchError(
                f"unknown preset {preset!r}; choose one of {', '.join(TRAIN_PRESETS)}"
            )
        model = given.get("model", values.get("model", TrainConfig.model))
        values.update(TRAIN_PRESETS[preset](model))
    values.update(given)
    if "model" not in values:
        raise CnnarchError("name the model to train (see `cnnarch models`)")
    return TrainConfig.from_dict(values)
