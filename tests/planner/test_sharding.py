"""ZeRO-2 and ZeRO-3 (FSDP full shard) per rank: the arithmetic by hand on a small net, and the
prediction against PyTorch's FSDPMemTracker in two gloo processes running `fully_shard`."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
from plan_nets import BATCH, WIDE, run_ranks, small_net, wide_net

import cnnarch
from cnnarch.analysis.memory import (
    GATHERED_PARAMETERS,
    GRADIENTS,
    OPTIMIZER_STATE,
    PARAMETERS,
    REDUCE_BUFFER,
)
from cnnarch.analysis.training_modes import TrainingStep
from cnnarch.planner import plan
from cnnarch.planner.measure import measure_fsdp_peak

# small_net's units (top-level children holding parameters), counted from its layers:
# conv 3->16 3x3, BatchNorm(16), [conv 16->32, BatchNorm(32), conv 32->32], fc 8192->64, fc 64->10.
UNIT_PARAMS = [3 * 16 * 9 + 16, 2 * 16, (16 * 32 * 9 + 32) + 2 * 32 + (32 * 32 * 9 + 32)]
UNIT_PARAMS += [32 * 16 * 16 * 64 + 64, 64 * 10 + 10]
PARAM_BYTES = 4 * sum(UNIT_PARAMS)


def training(step: TrainingStep):
    return cnnarch.analyze(small_net(), (3, 32, 32), batch_size=BATCH, train=True, step=step)


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("sharding", ["zero2", "zero3"])
def test_each_term_by_hand(sharding: str, world: int) -> None:
    whole = training(TrainingStep("momentum")).training
    assert whole.params_bytes == PARAM_BYTES
    step = TrainingStep("momentum", world_size=world, sharding=sharding)
    rank = training(step).training
    traced, got = whole.at_peak, rank.at_peak
    buffers = traced[PARAMETERS] - PARAM_BYTES  # BatchNorm's running statistics
    assert got[PARAMETERS] == -(-PARAM_BYTES // world) + buffers
    largest_two = 4 * (UNIT_PARAMS[3] + UNIT_PARAMS[2])  # fc 8192->64 and the conv block
    assert got[GATHERED_PARAMETERS] == (largest_two if sharding == "zero3" else PARAM_BYTES)
    reducing = min(largest_two, traced[GRADIENTS])  # the same two units' gradients
    assert got[REDUCE_BUFFER] == reducing
    assert got[GRADIENTS] == -(-(traced[GRADIENTS] - reducing) // world)
    assert got[OPTIMIZER_STATE] == -(-whole.optimizer_state_bytes // world)
    assert whole.optimizer_state_bytes == PARAM_BYTES  # momentum: one buffer per parameter
    for term in ("inputs", "saved activations", "temporaries"):
        assert got[term] == traced[term]
    assert rank.peak_bytes == sum(got.values())


def test_plan_takes_the_sharding_and_names_it() -> None:
    result = plan(
        small_net(),
        10**8,
        card="t4",
        context=0,
        margin=0.0,
        input_size=(3, 32, 32),
        world_size=4,
        sharding="zero3",
    )
    # The allocator is not replayed for ZeRO-3: its allocated peak and cuBLAS workspaces count.
    assert result.fits and result.reserved_bytes is None
    assert result.peak_bytes + result.cublas_bytes <= 10**8
    assert result.next_peak_bytes + result.cublas_bytes > 10**8
    assert "ZeRO-3 / FSDP full shard" in result.to_text()
    assert result.breakdown[GATHERED_PARAMETERS] > 0


# (net, input size, sharding, bounds of predicted / FSDPMemTracker's peak). Measured, 2 ranks,
# batch 8, momentum: wide_net zero3 0.997 and zero2 1.096; small_net zero3 0.981. ZeRO-2's
# figure is an upper bound: it adds all the parameters gathered in forward, alive at the start
# of backward, to the gradients alive at its end. Without sharding, wide_net's prediction
# would be 1.33x the tracked zero3 peak: the check can tell.
# Bands of predicted / tracked peak. wide_net's ZeRO-3 peak as tracked varies from run to run
# with the timing of gloo's collectives (9.52 and 10.01 MB seen for one prediction, 9.49 MB):
# its band's low end allows for the higher reading.
MEASURED = [
    (wide_net, (WIDE,), "zero3", 0.94, 1.03),
    (wide_net, (WIDE,), "zero2", 1.0, 1.12),
    (small_net, (3, 32, 32), "zero3", 0.97, 1.03),
]


def _rank(rank: int, port: int, results: dict) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        for index, (make, size, sharding, _, _) in enumerate(MEASURED):
            torch.manual_seed(rank)
            x = torch.randn(BATCH, *size)
            y = torch.randint(0, 10, (BATCH,))
            step = TrainingStep("momentum", world_size=2, sharding=sharding)
            results[(index, rank)] = measure_fsdp_peak(make(), x, y, step)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def measured() -> dict:
    return run_ranks(_rank)


@pytest.mark.slow  # two gloo processes running FSDP
@pytest.mark.parametrize("index", range(len(MEASURED)))
def test_prediction_against_fsdp_mem_tracker(measured: dict, index: int) -> None:
    make, size, sharding, low, high = MEASURED[index]
    step = TrainingStep("momentum", world_size=2, sharding=sharding)
    summary = cnnarch.analyze(make(), size, batch_size=BATCH, train=True, step=step)
    tracked = max(measured[(index, rank)][1] for rank in range(2))
    assert low <= summary.training.peak_bytes / tracked <= high, (summary.training, tracked)
    if make is wide_net:
        whole = cnnarch.analyze(
            make(), size, batch_size=BATCH, train=True, step=TrainingStep("momentum")
        )
        # Unsharded, the prediction falls outside the band: the check tells them apart.
        assert whole.training.peak_bytes / tracked > high
