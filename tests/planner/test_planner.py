"""The planner's search and its answers, checked against the analyzer's traces replayed through
the allocator model by hand, and the command that prints them."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import cnnarch
from cnnarch.analysis.memory import GATHERED_PARAMETERS, INPUTS, PARAMETERS
from cnnarch.analysis.training_modes import TrainingStep
from cnnarch.cli import main
from cnnarch.errors import CnnarchError
from cnnarch.planner import CARDS, PeakLines, Plan, parse_bytes, peak_lines, plan, replay
from cnnarch.planner.device import GENERATIONS, MEASURED_ERROR, cublas_workspaces
from cnnarch.planner.lines import SEARCH_LIMIT
from cnnarch.planner.traces import REAL_RUN_BATCHES

SIZE = (3, 16, 16)
# A small budget's terms: a T4's cuBLAS workspaces, no context, no margin.
T4 = {"card": "t4", "context": 0, "margin": 0.0}


def net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 16 * 16, 10),
    )


def summary(batch: int, **step) -> cnnarch.Summary:
    return cnnarch.analyze(
        net(), SIZE, batch_size=batch, train=True, step=TrainingStep(**{"foreach": True, **step})
    )


def replayed(batch: int, limit: int, **step):
    """The step at `batch` replayed by hand: its storages, then a T4's cuBLAS workspaces."""
    lifetimes = summary(batch, **step).training.lifetimes
    persistent = [life.nbytes for life in lifetimes if life.start < 0]
    persistent += cublas_workspaces(GENERATIONS["turing"])
    return replay(persistent, [tuple(life) for life in lifetimes if life.start >= 0], limit=limit)


def test_parse_bytes_keeps_decimal_and_binary_apart_and_takes_runtime_bytes() -> None:
    assert parse_bytes("24GiB") == 24 * 2**30
    assert parse_bytes("24GB") == 24 * 10**9
    assert parse_bytes("1.5 MB") == 1_500_000
    assert parse_bytes("512mib") == 512 * 2**20
    assert parse_bytes("85198045184") == parse_bytes("85198045184B") == 85_198_045_184
    for bad in ("24G", "24", "GB", "-1GB", "1e9B", "1.5"):
        with pytest.raises(CnnarchError, match="GiB"):
            parse_bytes(bad)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_named_batch_replays_within_the_card_and_the_next_runs_out(optimizer: str) -> None:
    memory = 100 * 10**6
    result = plan(net(), memory, input_size=SIZE, optimizer=optimizer, **T4)
    assert result.searched and result.checked and result.fits
    fits, over = (
        replayed(result.batch, memory, optimizer=optimizer),
        replayed(result.batch + 1, memory, optimizer=optimizer),
    )
    assert not fits.out_of_memory and over.out_of_memory
    assert (result.reserved_bytes, result.allocated_bytes) == (
        fits.max_reserved,
        fits.max_allocated,
    )
    assert result.peak_bytes == summary(result.batch, optimizer=optimizer).training.peak_bytes
    assert result.total_bytes == result.reserved_bytes <= memory  # no context, margin, reserve
    assert sum(result.breakdown.values()) == result.peak_bytes


def test_each_term_comes_off_the_cards_memory() -> None:
    result = plan(net(), card="rtx4090", input_size=SIZE, reserve="1GB")
    card, ada = CARDS["rtx4090"], GENERATIONS["ada"]
    assert result.memory_bytes == card.total_memory and result.card == card
    assert result.context_bytes == ada.context_bytes
    assert result.cublas_bytes == 2 * ada.cublas_workspace_bytes  # forward and backward threads
    assert result.margin_bytes == math.ceil(MEASURED_ERROR * result.peak_bytes)
    assert result.reserve_bytes == 10**9
    held = result.reserved_bytes
    assert result.total_bytes == held + ada.context_bytes + result.margin_bytes + 10**9
    assert result.headroom_bytes == card.total_memory - result.total_bytes >= 0
    # the allocator's limit is the card less every other term: the replay there fits
    limit = card.total_memory - ada.context_bytes - result.margin_bytes - 10**9
    lifetimes = summary(result.batch).training.lifetimes
    persistent = [life.nbytes for life in lifetimes if life.start < 0] + cublas_workspaces(ada)
    step = [tuple(life) for life in lifetimes if life.start >= 0]
    assert replay(persistent, step, limit=limit).max_reserved == held


def test_a_larger_margin_or_context_names_a_smaller_batch() -> None:
    memory = 200 * 10**6
    base = plan(net(), memory, input_size=SIZE, **T4).batch
    assert plan(net(), memory, input_size=SIZE, card="t4", context=0, margin=0.2).batch < base
    assert plan(net(), memory, input_size=SIZE, card="t4", context="50MB", margin=0).batch < base


def test_a_given_batch_answers_fits_or_not() -> None:
    fits = plan(net(), "100MB", batch_size=8, input_size=SIZE, **T4)
    assert not fits.searched and fits.fits and fits.headroom_bytes >= 0
    over = plan(net(), "30MB", batch_size=512, input_size=SIZE, **T4)
    assert not over.fits and "does NOT fit" in over.to_text()


def test_accumulation_splits_the_batch_into_micro_batches() -> None:
    result = plan(net(), "100MB", batch_size=32, accumulate=4, input_size=SIZE, **T4)
    assert (result.batch, result.global_batch) == (8, 32)
    assert result.peak_bytes == summary(8, accumulate=4).training.peak_bytes
    with pytest.raises(CnnarchError, match="batch of 30 does not split evenly over 4"):
        plan(net(), "100MB", batch_size=30, accumulate=4, input_size=SIZE, **T4)


def test_the_batch_is_batch_size_as_in_analyze() -> None:
    with pytest.raises(CnnarchError, match="batch_size="):
        plan(net(), "100MB", batch=8, input_size=SIZE, **T4)


def test_plan_and_the_command_both_plan_a_training_step_by_default(capsys) -> None:
    assert plan("resnet20", "2GiB").train
    assert main(["plan", "resnet20", "--memory", "2GiB"]) == 0
    assert "training, sgd (foreach)" in capsys.readouterr().out
    assert main(["plan", "resnet20", "--memory", "2GiB", "--inference"]) == 0
    assert "inference (no gradients)" in capsys.readouterr().out


def test_an_inference_plan_names_the_input_bytes_inputs() -> None:
    result = plan(net(), "100MB", train=False, input_size=SIZE, **T4)
    pass_ = cnnarch.analyze(net(), SIZE, batch_size=result.batch)
    assert result.breakdown[INPUTS] == pass_.input_bytes
    assert result.breakdown[PARAMETERS] == pass_.param_bytes + pass_.buffer_bytes
    assert GATHERED_PARAMETERS not in result.breakdown
    assert result.reserved_bytes is None  # the allocator is replayed for training steps
    # inference: one cuBLAS workspace (no backward thread); its allocated peak against the rest
    assert result.cublas_bytes == GENERATIONS["turing"].cublas_workspace_bytes
    assert result.peak_bytes + result.cublas_bytes <= 100 * 10**6
    after = cnnarch.analyze(net(), SIZE, batch_size=result.batch + 1)
    assert after.inference_peak_bytes + result.cublas_bytes > 100 * 10**6


def test_a_budget_below_what_every_batch_needs_says_by_how_much() -> None:
    weights = sum(p.numel() * 4 for p in net().parameters())
    workspaces = sum(cublas_workspaces(GENERATIONS["turing"]))
    # what is left for the step holds the weights, not their gradients too
    with pytest.raises(CnnarchError, match=r"below what the step needs .* by "):
        plan(net(), workspaces + weights, input_size=SIZE, **T4)


def test_an_answer_beyond_the_search_limit_says_so_and_gives_it() -> None:
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
    with pytest.raises(CnnarchError, match=r"more than 16,777,216 examples per device fit"):
        plan(mlp, "24GB", input_size=(32,))
    assert SEARCH_LIMIT == 16_777_216


class ItemNet(nn.Module):
    """A net whose forward pass needs a value: `.item()` (the meta pass cannot give one)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = 1.0 + 0.0 * x.detach().abs().mean().item()
        return self.fc(self.conv(x).flatten(1)) * scale


def test_a_model_that_needs_data_runs_only_at_the_smallest_batches_unless_allowed() -> None:
    options = {"input_size": SIZE, **T4}
    result = plan(ItemNet(), "150MB", **options)
    assert max(result.traced) <= REAL_RUN_BATCHES < result.batch  # no real pass at the answer
    assert not result.checked and any("--allow-run" in note for note in result.notes)
    allowed = plan(ItemNet(), "150MB", allow_run=True, **options)
    assert allowed.checked and {allowed.batch, allowed.batch + 1} <= set(allowed.traced)
    assert allowed.batch == result.batch  # what the small batches said, checked by real passes
    with pytest.raises(CnnarchError, match="--allow-run"):
        plan(ItemNet(), "150MB", batch_size=result.batch, **options)


def test_zoo_model_plan_json() -> None:
    result = plan("resnet20", card="a100-80gb", precision="bf16", optimizer="adamw")
    assert isinstance(result, Plan)
    data = json.loads(result.to_json())
    assert data["batch"] == result.batch and data["fits"] is True
    assert data["memory_bytes"] == CARDS["a100-80gb"].total_memory
    for key in ("reserved_bytes", "context_bytes", "cublas_bytes", "margin_bytes", "total_bytes"):
        assert data[key] == getattr(result, key)
    assert data["card"]["key"] == "a100-80gb"


def test_a_plan_shows_itself_in_a_notebook() -> None:
    result = plan(net(), "100MB", input_size=SIZE, **T4)
    text = repr(result)
    assert "\n" not in text and f"batch={result.batch}" in text and len(text) < 120
    html = result._repr_html_()
    assert html.startswith("<div>") and "<table>" in html and "CUDA context" in html
    assert f"{result.reserved_bytes:,}" in html
    markdown = result._repr_markdown_()
    assert "| term | bytes | size |" in markdown and f"| {result.total_bytes:,} |" in markdown


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimizer", "lion"], "choose one of sgd, momentum, adam, adamw"),
        (["--precision", "int8"], "choose one of fp32, bf16, fp16"),
        (["--checkpoint", "layers"], "stages"),
        (["--accumulate", "3", "--batch", "10"], "over 3 micro-batches"),
        (["--world-size", "4", "--batch", "10"], "over world size 4: choose a multiple of 4"),
        (["--sharding", "zero4"], "unknown sharding 'zero4'; choose one of none, zero1, zero2"),
        (["--inference", "--optimizer", "adam"], "only for training, leave out --inference"),
        (["--reserve", "3GB"], "leave nothing"),
        (["--card", "rtx5090"], "unknown card 'rtx5090': choose one of t4, l4"),
        (["--card", "a100"], "card 'a100' is ambiguous (a100-40gb, a100-80gb)"),
        (["--memory", "24"], "has no unit"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(argv, message, capsys) -> None:
    device = [] if "--card" in argv or "--memory" in argv else ["--memory", "2GB"]
    assert main(["plan", "resnet20", *device, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cli_prints_the_batch_and_every_term(capsys) -> None:
    argv = ["plan", "resnet20", "--card", "rtx4090", "--train", "--precision", "bf16"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    result = plan("resnet20", card="rtx4090", precision="bf16")
    assert f"Largest batch that fits: {result.batch}" in out
    assert "Card: NVIDIA GeForce RTX 4090 (24 GB): " in out
    for name in ("reserved by the caching allocator", "CUDA context", "cuDNN workspace bound"):
        assert name in out
    assert "margin (4.73% of the peak)" in out and "allocated at most" in out
    assert main([*argv, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["batch"] == result.batch


def test_peak_lines_by_hand() -> None:
    # Two moments: 10 and 5 bytes at batch 1, 12 and 9 at batch 2: lines 8 + 2B and 1 + 4B.
    lines = PeakLines.through(1, [10, 5], [12, 9])
    assert lines.peak(1) == 10 and lines.peak(4) == 17 and lines.peak(5) == 21
    assert lines.largest_batch(20) == 4  # 17 fits, 21 does not
    assert lines.largest_batch(9) == 0  # not even batch 1
    assert PeakLines.through(1, [10], [10]).largest_batch(20, limit=99) == 99  # flat: the limit


def test_peak_lines_as_plain_data() -> None:
    lines = PeakLines.through(1, [10, 5], [12, 9])
    data = json.loads(json.dumps(lines.to_dict()))
    assert data == {
        "smallest": 1,
        "lines": [{"start": 8, "per_example": 2}, {"start": 1, "per_example": 4}],
    }
    assert PeakLines.from_dict(data) == lines
    with pytest.raises(CnnarchError, match="to_dict writes"):
        PeakLines.from_dict({"smallest": 1, "lines": [{"start": 8}]})


def test_peak_lines_equal_the_traces_and_plan_checks_them_with_two() -> None:
    lines = peak_lines(net(), input_size=SIZE, optimizer="adam")
    for batch in (1, 3, 50):
        assert lines.peak(batch) == summary(batch, optimizer="adam").training.peak_bytes
    result = plan(net(), "100MB", input_size=SIZE, optimizer="adam", **T4)
    assert sorted(result.traced) == [1, 2, result.batch, result.batch + 1]
