"""`TrainConfig`: every choice of a training run, saved with the run and in its checkpoints."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cnnarch.errors import CnnarchError
from cnnarch.files import Fields, FormatError, is_regular_file, read_json

CONFIG_JSON = "config.json"  # a run folder's settings

SCHEDULES = ("step", "cosine", "constant")
TRAIN_DEVICES = ("auto", "cpu", "cuda")
# The optimizers a run can take, named as the planner names them
# (`cnnarch.analysis.training_modes.OPTIMIZERS`): "sgd" with `momentum` > 0 is the planner's
# "momentum"; see `TrainConfig.planner_optimizer`.
TRAIN_OPTIMIZERS = ("sgd", "adamw")
# What `lr` and `weight_decay` left unset (None) mean for each optimizer: SGD's are He et al.
# 2015's CIFAR-10 recipe; AdamW's are torch.optim.AdamW's own defaults (lr 1e-3, weight decay
# 1e-2).
OPTIMIZER_DEFAULTS: dict[str, dict[str, float]] = {
    "sgd": {"lr": 0.1, "weight_decay": 1e-4},
    "adamw": {"lr": 1e-3, "weight_decay": 1e-2},
}
# torch.compile: "auto" compiles where the compile time pays for itself within the run.
COMPILE_CHOICES = ("auto", "on", "off")
# The metric that picks best.pt (lower is better for each).
BEST_METRICS = ("test_error", "test_loss", "train_error", "train_loss")
# A model's options that come from the data or the command line, never from `model_kwargs`.
RESERVED_MODEL_OPTIONS = ("variant", "num_classes", "in_channels", "in_chans")

# Fields that change what a run computes: a resumed run must keep them.
RESULT_FIELDS = (
    "model",
    "variant",
    "dataset",
    "batch_size",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "nesterov",
    "label_smoothing",
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

    `model` is a zoo name (built in `variant`) or "module.path:factory". `optimizer` "sgd"
    (with `momentum`, `nesterov`) or "adamw"; `lr` and `weight_decay` left None take the
    optimizer's defaults (`OPTIMIZER_DEFAULTS`). `label_smoothing` mixes that share of a
    uniform distribution into the cross-entropy's targets.
    `schedule`: "step" divides the learning rate by 10 at 50% and 75% of the steps (He et al.
    2015, CIFAR-10: at 32k and 48k of 64k iterations), "cosine" anneals it to 0, "constant"
    keeps it. `warmup_steps` first runs at lr/10. `subset` trains on that many training images
    (drawn with a fixed seed, the same for every run; more than the data holds is an error),
    `test_subset` likewise for the test set.
    `out=None` writes no files. `checkpoint_every` also checkpoints every that many steps
    inside an epoch (0: only at epoch ends and every `checkpoint_minutes` minutes).
    `best_metric` picks the epoch whose weights `best.pt` holds. `tensorboard`: True writes
    TensorBoard event files (an error without the `tensorboard` package), None writes them when
    it is installed, False never.
    `image_size` resizes every batch (bilinear, after augmentation) to that square side, so that
    the ImageNet models, which need large inputs, train on 28x28 or 32x32 images.
    `channels_last` trains in NHWC (measured faster on the CPU: `benchmarks/bench_train.py`).
    `compile`: "on" trains through `torch.compile`, "off" eagerly, "auto" compiles where the
    compile time pays for itself within the run (`cnnarch.train.speed`).
    """

    model: str = "resnet20"
    variant: str = "paper"
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    nesterov: bool = False
    label_smoothing: float = 0.0
    schedule: str = "step"
    warmup_steps: int = 0
    subset: int | None = None
    test_subset: int | None = None
    seed: int = 0
    out: str | None = None
    resume: bool = False
    amp: bool = False
    channels_last: bool = True
    compile: str = "auto"
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
    best_metric: str = "test_error"
    tensorboard: bool | None = None

    def __post_init__(self) -> None:
        self.validate()
        defaults = OPTIMIZER_DEFAULTS[self.optimizer]
        if self.lr is None:
            self.lr = defaults["lr"]
        if self.weight_decay is None:
            self.weight_decay = defaults["weight_decay"]

    def validate(self) -> None:
        """Raise `CnnarchError` naming the first setting that cannot work."""
        check_types(self.to_dict(), Fields(""))
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
            if value is not None and (not math.isfinite(value) or value < 0):
                raise CnnarchError(f"{name} must be a finite number >= 0, got {value}")
        if not 0 <= self.label_smoothing < 1:
            raise CnnarchError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        for name in ("pad", "warmup_steps", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise CnnarchError(f"{name} must be >= 0, got {getattr(self, name)}")
        choices = {
            "schedule": SCHEDULES,
            "device": TRAIN_DEVICES,
            "optimizer": TRAIN_OPTIMIZERS,
            "compile": COMPILE_CHOICES,
            "best_metric": BEST_METRICS,
        }
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise CnnarchError(
                    f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(valid)}"
                )
        check_model_kwargs(self.model_kwargs, Fields(""))
        if self.resume and self.out is None:
            raise CnnarchError("resume needs the run folder (--out) that holds the checkpoint")

    def planner_optimizer(self) -> str:
        """This run's optimizer as `cnnarch plan --optimizer` and `analyze(optimizer=...)` name
        it, so that the planner's memory figures are those of this run."""
        if self.optimizer == "sgd":
            return "momentum" if self.momentum > 0 else "sgd"
        return self.optimizer

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


@functools.cache
def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _check_value(value: object, hint: Any, name: str, fields: Fields) -> None:
    """`value` must be of the type `hint` (int, float, bool, str, dict, or X | None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return
    kind = next(o for o in options if o is not type(None))
    kind = typing.get_origin(kind) or kind
    checks: dict[Any, Callable[[object, str], object]] = {
        int: fields.integer,
        float: fields.number,
        bool: fields.boolean,
        str: fields.text,
        dict: fields.mapping,
    }
    checks[kind](value, name)


def check_types(values: dict[str, Any], fields: Fields, prefix: str = "") -> None:
    """Each `TrainConfig` field in `values` must have the field's type; other keys are left
    alone. Errors name `fields.source` and the field.

    Args:
        values: a config as a dict (`config.json`, a checkpoint's `config`, `to_dict()`).
        fields: the checker of the file they come from.
        prefix: prepended to field names in messages ("config.").
    """
    for name, hint in _field_types().items():
        if name in values:
            _check_value(values[name], hint, prefix + name, fields)


def check_model_kwargs(values: object, fields: Fields, prefix: str = "") -> None:
    """`model_kwargs`: a mapping of option names to plain values (numbers, strings, booleans,
    null, or lists of them), none of them the options the data or the command line set."""
    kwargs = fields.mapping(values, f"{prefix}model_kwargs")
    for key, value in kwargs.items():
        where = f"{prefix}model_kwargs.{key}"
        if key in RESERVED_MODEL_OPTIONS:
            source = "the variant setting (--variant)" if key == "variant" else "the data"
            raise fields.error(where, f"cannot be set: {key} comes from {source}")
        items = value if isinstance(value, list) else [value]
        if not all(v is None or isinstance(v, (bool, int, float, str)) for v in items):
            fields.fail(where, "a number, string, boolean, null or a list of them", value)


def read_run_config(path: Path) -> dict[str, Any]:
    """The settings a run folder's `config.json` records, checked field by field (each
    `TrainConfig` field's type and value); other keys it holds are run facts, returned as
    they are.

    Args:
        path: the `config.json` of a run.
    """
    fields = Fields(path)
    saved = fields.mapping(read_json(path, "run config"), "")
    check_types(saved, fields)
    if "model_kwargs" in saved:
        check_model_kwargs(saved["model_kwargs"], fields)
    try:
        TrainConfig.from_dict(saved)
    except CnnarchError as err:
        raise FormatError(f"{path}: {err}") from None
    return saved


# --- run folders -----------------------------------------------------------------------------

RUNS_DIR = Path("runs")  # where `cnnarch train` puts a run when --out is not given
_STAMP = "%Y%m%dT%H%M%SZ"


def run_slug(model: str) -> str:
    """`model` as the start of a folder name: 'resnet20', 'torchvision.models_resnet18'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model)


def default_out(model: str, now: datetime | None = None, runs: Path = RUNS_DIR) -> Path:
    """A new run folder for `model`: runs/<model>-<UTC time>, with -2, -3, ... if taken.

    Args:
        model: the model's name or spec.
        now: the time to stamp (default: now).
        runs: the folder of runs.
    """
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime(_STAMP)
    folder = runs / f"{run_slug(model)}-{stamp}"
    count = 1
    while folder.exists():
        count += 1
        folder = runs / f"{run_slug(model)}-{stamp}-{count}"
    return folder


def newest_run(model: str, runs: Path = RUNS_DIR) -> Path:
    """The newest folder `default_out` made for `model` that holds a run of it.

    Args:
        model: the model's name or spec.
        runs: the folder of runs.
    """
    pattern = re.compile(re.escape(run_slug(model)) + r"-(\d{8}T\d{6}Z)(?:-(\d+))?")
    found = []
    if runs.is_dir():
        for folder in runs.iterdir():
            match = pattern.fullmatch(folder.name)
            if match and is_regular_file(folder / CONFIG_JSON):
                found.append((match.group(1), int(match.group(2) or 1), folder))
    for _stamp, _count, folder in sorted(found, reverse=True):
        saved = read_run_config(folder / CONFIG_JSON)
        if saved.get("model") == model:
            return folder
    raise CnnarchError(
        f"no run of {model} in {runs}/ to resume; name its folder with --out, or start one "
        "without --resume"
    )


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


def build_config(
    options: dict[str, Any], preset: str | None = None, new_folder: bool = False
) -> TrainConfig:
    """A config from explicitly given `options` (None values are ignored), over the `preset`,
    over the saved config of the run being resumed, over the defaults.

    So `cnnarch train --out runs/x --resume` continues run x with the settings it had, and
    `cnnarch train resnet20 --resume` the newest run of resnet20 in runs/.

    Args:
        options: the settings given (the command line's flags).
        preset: a name in `TRAIN_PRESETS`, or None.
        new_folder: give a new run without `out` a new folder (`default_out`).
    """
    given = {k: v for k, v in options.items() if v is not None}
    values: dict[str, Any] = {}
    if given.get("resume") and not given.get("out"):
        if not given.get("model"):
            raise CnnarchError(
                "resume needs the run folder (--out), or the model whose newest run in "
                f"{RUNS_DIR}/ to continue"
            )
        given["out"] = str(newest_run(given["model"]))
    if given.get("resume") and given.get("out"):
        saved = Path(given["out"]) / CONFIG_JSON
        if "model" not in given and not saved.exists():
            found = "no such folder" if not saved.parent.exists() else "no config.json there"
            raise CnnarchError(
                f"no run to resume in {saved.parent} ({found}); check --out, or start a new "
                "run there by naming the model, without --resume"
            )
        if saved.exists():
            values.update(read_run_config(saved))
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
    if new_folder and not values.get("out") and not values.get("resume"):
        values["out"] = str(default_out(values["model"]))
    return TrainConfig.from_dict(values)
