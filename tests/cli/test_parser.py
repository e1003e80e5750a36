"""The command line's flags: defaults and choices taken from the library, one spelling of the
batch size (`--batch-size`) in every command with `--batch` still accepted."""

from __future__ import annotations

import argparse
import dataclasses
from importlib import metadata

import pytest

import cnnarch
from cnnarch.analysis.analyzer import DEVICES
from cnnarch.analysis.loading import DTYPES
from cnnarch.analysis.training_modes import OPTIMIZERS, PRECISIONS, SHARDINGS, TrainingStep
from cnnarch.cli import build_parser
from cnnarch.data import DATASETS
from cnnarch.train.config import SCHEDULES, TRAIN_DEVICES, TRAIN_PRESETS, TrainConfig


def command(name: str) -> argparse.ArgumentParser:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]


def flag(parser: argparse.ArgumentParser, option: str) -> argparse.Action:
    return next(a for a in parser._actions if option in a.option_strings)


def help_text(parser: argparse.ArgumentParser, option: str) -> str:
    action = flag(parser, option)
    return (action.help or "") % {"default": action.default}


def test_every_train_flag_shows_the_default_of_its_config_field() -> None:
    train = command("train")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    shown = []
    for action in train._actions:
        if action.dest not in fields or action.dest == "model":
            continue
        # Left out, a flag must not override the preset or the resumed run's saved value.
        assert action.default is None, action.option_strings
        default = fields[action.dest].default
        if default is not None and not isinstance(default, bool):
            text = help_text(train, action.option_strings[0])
            assert text.endswith((f"(default {default})", f"default {default}")), text
            shown.append(action.dest)
    assert {"epochs", "batch_size", "schedule", "dataset", "optimizer"} <= set(shown)
    assert "default 128" in help_text(train, "--batch-size")  # TrainConfig's, by hand
    # lr and weight decay default to the optimizer's own (OPTIMIZER_DEFAULTS), each named.
    assert help_text(train, "--lr").endswith("(default sgd 0.1, adamw 0.001)")
    assert help_text(train, "--weight-decay") == "default sgd 0.0001, adamw 0.01"


def test_choices_are_the_library_registries() -> None:
    train, summary, plan = command("train"), command("summary"), command("plan")
    assert flag(train, "--schedule").choices == SCHEDULES == ("step", "cosine", "constant")
    assert flag(train, "--device").choices == TRAIN_DEVICES == ("auto", "cpu", "cuda")
    assert tuple(flag(train, "--preset").choices) == tuple(TRAIN_PRESETS) == ("paper",)
    assert all(name in help_text(train, "--dataset") for name in DATASETS)
    assert flag(summary, "--device").choices == DEVICES == ("auto", "meta", "cpu")
    assert tuple(flag(summary, "--optimizer").choices) == tuple(OPTIMIZERS)
    assert all(name in help_text(summary, "--dtype") for name in DTYPES)
    assert all(name in help_text(plan, "--optimizer") for name in OPTIMIZERS)
    assert all(name in help_text(plan, "--precision") for name in PRECISIONS)
    assert all(name in help_text(plan, "--sharding") for name in SHARDINGS)
    assert f"default {TrainingStep.optimizer})" in help_text(plan, "--optimizer")
    assert "(default fp32;" in help_text(plan, "--precision")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["summary", "resnet20"], 1),
        (["plan", "resnet20", "--memory", "1GB"], None),
        (["report"], 32),
        (["train", "resnet20"], None),
    ],
)
def test_batch_size_has_one_spelling_and_the_old_one_still_works(
    argv: list[str], expected: int | None
) -> None:
    parser = build_parser()
    assert parser.parse_args(argv).batch_size == expected
    assert parser.parse_args([*argv, "--batch-size", "6"]).batch_size == 6
    assert parser.parse_args([*argv, "--batch", "6"]).batch_size == 6
    usage = command(argv[0]).format_help()
    assert "--batch-size N, --batch N" in usage


def test_a_variant_defaults_to_the_paper_in_every_command() -> None:
    for name in ("summary", "plan", "diagram"):
        assert flag(command(name), "--variant").default == "paper"


def test_version_is_the_packages(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"cnnarch {cnnarch.__version__}\n"
    assert cnnarch.__version__ == metadata.version("cnnarch") != "0+unknown"


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "resnet20"],
        ["diagram", "resnet18"],
        ["report"],
        ["experiment", "degradation"],
    ],
)
def test_every_out_flag_takes_its_short_form(argv: list[str]) -> None:
    # -o is what most tools name an output; each command that writes takes it as --out.
    assert build_parser().parse_args([*argv, "-o", "somewhere"]).out == "somewhere"
