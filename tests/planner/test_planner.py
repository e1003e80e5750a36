"""The planner's search and its answers, checked against the analyzer's own numbers."""

from __future__ import annotations

import json

import pytest
from torch import nn

import cnnarch
from cnnarch.analysis.training_modes import TrainingStep
from cnnarch.cli import main
from cnnarch.errors import CnnarchError
from cnnarch.planner import PeakLines, Plan, parse_bytes, peak_lines, plan


def net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 16 * 16, 10),
    )


def peak(batch: int, **step) -> int:
    summary = cnnarch.analyze(
        net(), (3, 16, 16), batch_size=batch, train=True, step=TrainingStep(**step)
    )
    return summary.training.peak_bytes


def test_parse_bytes_keeps_decimal_and_binary_apart() -> None:
    assert parse_bytes("24GiB") == 24 * 2**30
    assert parse_bytes("24GB") == 24 * 10**9
    assert parse_bytes("1.5 MB") == 1_500_000
    assert parse_bytes("512mib") == 512 * 2**20
    for bad in ("24G", "24", "GB", "-1GB", "1e9B"):
        with pytest.raises(CnnarchError, match="GiB"):
            parse_bytes(bad)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_named_batch_fits_and_the_next_does_not(optimizer: str) -> None:
    budget = 10**7
    result = plan(
        net(), budget, reserve=0, optimizer=optimizer, foreach=False, input_size=(3, 16, 16)
    )
    assert result.searched and result.fits
    assert peak(result.batch, optimizer=optimizer) == result.peak_bytes <= budget
    assert peak(result.batch + 1, optimizer=optimizer) > budget
    assert result.next_peak_bytes == peak(result.batch + 1, optimizer=optimizer)
    assert result.margin_bytes == budget - result.peak_bytes
    assert sum(result.breakdown.values()) == result.peak_bytes


def test_a_budget_equal_to_a_peak_names_that_batch() -> None:
    exact = peak(37, optimizer="momentum")
    result = plan(
        net(), exact, reserve=0, optimizer="momentum", foreach=False, input_size=(3, 16, 16)
    )
    assert result.batch == 37 and result.margin_bytes == 0
    result = plan(
        net(), exact - 1, reserve=0, optimizer="momentum", foreach=False, input_size=(3, 16, 16)
    )
    assert result.batch == 36


def test_the_reserve_comes_off_the_budget() -> None:
    exact = peak(20)
    result = plan(net(), exact + 10**6, reserve=10**6, foreach=False, input_size=(3, 16, 16))
    assert result.batch == 20 and result.usable_bytes == exact


def test_a_given_batch_answers_fits_and_by_how_much() -> None:
    fits = plan(net(), "10MB", batch=8, reserve=0, foreach=False, input_size=(3, 16, 16))
    assert not fits.searched and fits.fits
    assert fits.margin_bytes == 10**7 - peak(8)
    over = plan(net(), "1MB", batch=64, reserve=0, foreach=False, input_size=(3, 16, 16))
    assert not over.fits and over.margin_bytes == 10**6 - peak(64)
    assert "does NOT fit" in over.to_text() and "over by" in over.to_text()


def test_accumulation_splits_the_batch_into_micro_batches() -> None:
    result = plan(
        net(), "10MB", batch=32, accumulate=4, reserve=0, foreach=False, input_size=(3, 16, 16)
    )
    assert (result.batch, result.global_batch) == (8, 32)
    assert result.peak_bytes == peak(8, accumulate=4)
    with pytest.raises(
        CnnarchError, match="batch of 30 does not split evenly over 4 micro-batches"
    ):
        plan(net(), "10MB", batch=30, accumulate=4, reserve=0, input_size=(3, 16, 16))


def test_fixed_part_and_growth() -> None:
    result = plan(net(), "10MB", reserve=0, optimizer="adam", foreach=False, input_size=(3, 16, 16))
    weights = sum(p.numel() * 4 for p in net().parameters())
    buffers = sum(b.numel() * b.element_size() for b in net().buffers())
    # parameters + buffers + gradients + Adam's two moments
    assert result.fixed_bytes == 4 * weights + buffers
    assert result.per_example_bytes == peak(result.batch + 1, optimizer="adam") - result.peak_bytes


def test_budget_below_the_fixed_part_says_by_how_much() -> None:
    weights = sum(p.numel() * 4 for p in net().parameters())
    with pytest.raises(CnnarchError, match=r"below what the step needs .* by "):
        plan(net(), weights, reserve=0, input_size=(3, 16, 16))


def test_planning_inference() -> None:
    result = plan(net(), "5MB", train=False, reserve=0, input_size=(3, 16, 16))
    summary = cnnarch.analyze(net(), (3, 16, 16), batch_size=result.batch)
    assert result.peak_bytes == summary.inference_peak_bytes <= 5 * 10**6
    after = cnnarch.analyze(net(), (3, 16, 16), batch_size=result.batch + 1)
    assert after.inference_peak_bytes > 5 * 10**6


def test_zoo_model_plan_json() -> None:
    result = plan("resnet20", "1GB", reserve="100MB", precision="bf16", optimizer="adamw")
    assert isinstance(result, Plan)
    data = json.loads(result.to_json())
    assert data["batch"] == result.batch and data["fits"] is True
    assert data["usable_bytes"] == 900 * 10**6


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--train", "--optimizer", "lion"], "choose one of sgd, momentum, adam, adamw"),
        (["--train", "--precision", "int8"], "choose one of fp32, bf16, fp16"),
        (["--train", "--checkpoint", "layers"], "stages"),
        (["--train", "--accumulate", "3", "--batch", "10"], "over 3 micro-batches"),
        (
            ["--train", "--world-size", "4", "--batch", "10"],
            "over world size 4: choose a multiple of 4",
        ),
        (
            ["--train", "--sharding", "zero4"],
            "unknown sharding 'zero4'; choose one of none, zero1, zero2, zero3",
        ),
        (["--optimizer", "adam"], "only for training"),
        (["--train", "--reserve", "3GB"], "leaves nothing"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(argv, message, capsys) -> None:
    assert main(["plan", "resnet20", "--memory", "2GB", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cli_prints_the_plan(capsys) -> None:
    assert main(["plan", "resnet20", "--memory", "2GiB", "--train", "--reserve", "0GB"]) == 0
    out = capsys.readouterr().out
    result = plan("resnet20", "2GiB", reserve=0)
    assert f"Largest batch that fits: {result.batch}" in out
    assert f"Batch {result.batch + 1} would peak at" in out


def test_peak_lines_by_hand() -> None:
    # Two moments: 10 and 5 bytes at batch 1, 12 and 9 at batch 2: lines 8 + 2B and 1 + 4B.
    lines = PeakLines.through(1, [10, 5], [12, 9])
    assert lines.peak(1) == 10 and lines.peak(4) == 17 and lines.peak(5) == 21
    assert lines.largest_batch(20) == 4  # 17 fits, 21 does not
    assert lines.largest_batch(9) == 0  # not even batch 1


def test_peak_lines_equal_the_traces_and_plan_checks_them_with_two() -> None:
    lines = peak_lines(net(), input_size=(3, 16, 16), optimizer="adam", foreach=False)
    for batch in (1, 3, 50):
        assert lines.peak(batch) == peak(batch, optimizer="adam")
    budget = 10**7
    result = plan(net(), budget, reserve=0, optimizer="adam", foreach=False, input_size=(3, 16, 16))
    assert result.batch == lines.largest_batch(budget)
    assert sorted(result.traced) == [1, 2, result.batch, result.batch + 1]
