"""Per-rank peak of data-parallel training (DDP, DDP with gradient_as_bucket_view, ZeRO-1)
against two gloo processes on the CPU, each measuring its own step."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
from plan_nets import BATCH, run_ranks, small_net

import cnnarch
from cnnarch.analysis.training_modes import TrainingStep, largest_shard
from cnnarch.planner.measure import measure_rank_peak

STEPS = [
    TrainingStep("adam", world_size=2),
    TrainingStep("adam", world_size=2, bucket_view=True),
    TrainingStep("adam", world_size=2, sharding="zero1"),
    TrainingStep("momentum", foreach=True, world_size=2, sharding="zero1"),
]


def _rank(rank: int, port: int, results: dict) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        for index, step in enumerate(STEPS):
            torch.manual_seed(rank)
            x = torch.randn(BATCH, 3, 32, 32)
            y = torch.randint(0, 10, (BATCH,))
            results[(index, rank)] = measure_rank_peak(small_net(), x, y, step)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def measured() -> dict:
    return run_ranks(_rank)


@pytest.mark.slow  # two gloo processes per step
@pytest.mark.parametrize("index", range(len(STEPS)), ids=[repr(s) for s in STEPS])
def test_per_rank_peak_matches_the_worst_rank(measured: dict, index: int) -> None:
    step = STEPS[index]
    summary = cnnarch.analyze(small_net(), (3, 32, 32), batch_size=BATCH, train=True, step=step)
    # The prediction leaves out the loss and gloo's small work buffers: 128 to 1,168 bytes
    # measured per rank and step, varying with the communication thread's timing. A rank's
    # peak also sometimes holds one more copy of a gradient bucket (here all the gradients,
    # far below DDP's 25 MB bucket size), depending on when the gloo thread finishes a
    # reduction: a timing the model does not follow. With ZeRO-1 that copy can even lift the
    # rank with the smaller shard above the one the prediction is for.
    extras = [measured[(index, rank)] - summary.training.peak_bytes for rank in range(2)]
    bucket = summary.training.grads_bytes
    assert any(0 <= e < 2048 or 0 <= e - bucket < 2048 for e in extras), extras  # as predicted
    assert all(e < bucket + 2048 for e in extras), extras  # none beyond it but for a bucket


def test_ddp_buckets_and_zero1_shards() -> None:
    net = small_net()
    weights = sum(p.numel() * 4 for p in net.parameters())

    def training(**kw):
        step = TrainingStep("adam", **kw)
        return cnnarch.analyze(net, (3, 32, 32), batch_size=BATCH, train=True, step=step).training

    single, ddp = training(), training(world_size=2)
    assert ddp.at_peak["DDP gradient buckets"] == weights
    assert ddp.peak_bytes == single.peak_bytes + weights
    zero1 = training(world_size=2, sharding="zero1")
    shard = largest_shard(list(net.parameters()), 2)
    assert zero1.optimizer_state_bytes == 2 * sum(p.numel() * 4 for p in shard)
    # The wide linear layer's weight (8192 x 64) is more than all the rest: one rank holds it.
    assert shard == [net[5].weight]
