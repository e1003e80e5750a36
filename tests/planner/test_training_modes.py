"""Each training mode's predicted peak against the peak of a real step on the CPU (profiler
allocation events), on a small model: a conv trunk with BatchNorm (activations dominate) and a
wide linear layer (so that optimizer state and its temporaries matter)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from plan_nets import BATCH, pooled_net, small_net
from torch import nn

import cnnarch
from cnnarch.analysis.training_modes import AutocastOnMeta, TrainingStep, checkpoint_segments
from cnnarch.errors import CnnarchError
from cnnarch.planner.measure import measure_step_peak


def predicted_and_measured(step: TrainingStep) -> tuple[int, int]:
    summary = cnnarch.analyze(small_net(), (3, 32, 32), batch_size=BATCH, train=True, step=step)
    assert summary.training is not None
    x = torch.randn(BATCH, 3, 32, 32)
    y = torch.randint(0, 10, (BATCH,))
    return summary.training.peak_bytes, measure_step_peak(small_net(), x, y, step)


# The prediction leaves out the loss (cross-entropy of (8, 10) logits: a few hundred bytes).
EXACT_MODES = [
    TrainingStep("sgd"),
    TrainingStep("momentum"),
    TrainingStep("adam"),
    TrainingStep("adam", foreach=True),
    TrainingStep("adamw"),
    TrainingStep("adamw", foreach=True),
    TrainingStep("adagrad"),
    TrainingStep("adagrad", foreach=True),
    TrainingStep("rmsprop"),
    TrainingStep("rmsprop", foreach=True),
    TrainingStep("momentum", accumulate=4),
    TrainingStep("adam", set_to_none=False),
]


@pytest.mark.parametrize("step", EXACT_MODES, ids=repr)
def test_fp32_modes_match_a_real_step_within_a_kilobyte(step: TrainingStep) -> None:
    predicted, measured = predicted_and_measured(step)
    assert 0 <= measured - predicted < 1024


# A checkpoint also saves the CPU's random-number state (a 5,056-byte tensor) for each segment:
# host memory, not the device's, so it is outside the prediction.
RNG_STATE = torch.get_rng_state().numel()


@pytest.mark.parametrize("checkpoint", ["stages", 1, 2, 3], ids=repr)
def test_checkpointing_matches_a_real_step(checkpoint: str | int) -> None:
    step = TrainingStep("sgd", checkpoint=checkpoint)
    segments = len(checkpoint_segments(small_net(), checkpoint))
    predicted, measured = predicted_and_measured(step)
    assert 0 <= measured - predicted < 1024 + segments * RNG_STATE


def test_checkpointing_saves_memory() -> None:
    def peak(checkpoint: str | int | None) -> int:
        step = TrainingStep("sgd", checkpoint=checkpoint)
        t = cnnarch.analyze(small_net(), (3, 32, 32), batch_size=BATCH, train=True, step=step)
        return t.training.saved_bytes

    assert peak("stages") < peak(None)
    assert peak(2) < peak(None)


# Autocast on the CPU: its bfloat16 convolutions with many input channels fall back to an
# im2col kernel whose per-sample column buffers, and its bfloat16 linear layers to a copy of the
# weight, neither of which a GPU makes (and neither of which the model counts): this net keeps
# them off the peak, so that what is checked is autocast itself: the cached low-precision
# weights, activations saved in bfloat16/float16, float32 gradients, the GradScaler's state.
@pytest.mark.parametrize(
    "step",
    [
        TrainingStep("adam", precision="bf16", autocast_device="cpu"),
        TrainingStep("momentum", precision="fp16", autocast_device="cpu"),
    ],
    ids=repr,
)
def test_autocast_matches_a_real_step(step: TrainingStep) -> None:
    summary = cnnarch.analyze(pooled_net(), (3, 32, 32), batch_size=BATCH, train=True, step=step)
    x = torch.randn(BATCH, 3, 32, 32)
    y = torch.randint(0, 10, (BATCH,))
    measured = measure_step_peak(pooled_net(), x, y, step)
    assert abs(measured - summary.training.peak_bytes) < 1024
    # Autocast casts the convolution's and the linear layer's weights and biases, not BN's.
    net = pooled_net()
    cast = [*net[0].parameters(), *net[6].parameters()]
    assert summary.training.weight_copies_bytes == sum(p.numel() * 2 for p in cast)


def test_modes_change_the_peak_the_way_they_should() -> None:
    def peak(**kw) -> int:
        step = TrainingStep(**kw)
        t = cnnarch.analyze(small_net(), (3, 32, 32), batch_size=BATCH, train=True, step=step)
        return t.training.peak_bytes

    weights = sum(p.numel() * 4 for p in small_net().parameters())
    # Gradients alive from the start of the step instead of appearing during backward.
    assert peak(optimizer="sgd", accumulate=2) > peak(optimizer="sgd")
    assert peak(optimizer="sgd", accumulate=2) == peak(optimizer="sgd", set_to_none=False)
    # Adam keeps two copies of the weights, momentum one.
    assert peak(optimizer="adam") - peak(optimizer="momentum") == weights
    assert peak(optimizer="sgd", precision="bf16") < peak(optimizer="sgd")


def test_training_step_rejects_bad_names() -> None:
    with pytest.raises(CnnarchError, match="sgd, momentum, adam, adamw, adagrad, rmsprop"):
        TrainingStep("lion")
    with pytest.raises(CnnarchError, match="fp32, bf16, fp16"):
        TrainingStep(precision="int8")
    with pytest.raises(CnnarchError, match="accumulate"):
        TrainingStep(accumulate=0)
    with pytest.raises(CnnarchError, match="checkpoint"):
        TrainingStep(checkpoint="layers")


def _lrn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.LocalResponseNorm(5),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 16 * 16, 10),
    )


def test_autocast_inside_torch_functional() -> None:
    """CPU autocast runs local_response_norm's inner average pool in float32: the ops inside a
    torch.nn.functional function get autocast's casts too. (On the CPU, local_response_norm's
    backward also holds one float32 activation more than its meta trace shows, in float32 as
    well: the check is that bfloat16 adds no error of its own.)"""

    def error(step: TrainingStep) -> int:
        summary = cnnarch.analyze(_lrn_net(), (3, 32, 32), batch_size=BATCH, train=True, step=step)
        x = torch.randn(BATCH, 3, 32, 32)
        y = torch.randint(0, 10, (BATCH,))
        return measure_step_peak(_lrn_net(), x, y, step) - summary.training.peak_bytes

    bf16 = TrainingStep("sgd", precision="bf16", autocast_device="cpu")
    assert abs(error(bf16) - error(TrainingStep("sgd"))) < 256


@pytest.mark.parametrize(
    ("call", "shape"),
    [
        (lambda x: F.conv2d(x, torch.randn(4, 3, 3, 3)), (2, 3, 8, 8)),
        (lambda x: F.linear(x, torch.randn(5, 8)), (2, 8)),
        (lambda x: x @ torch.randn(8, 3), (2, 8)),
        (lambda x: F.avg_pool3d(x, 2), (2, 3, 4, 8, 8)),
        (lambda x: F.local_response_norm(x, 3), (2, 6, 8, 8)),
        (lambda x: F.max_pool2d(x, 2), (2, 3, 8, 8)),
        (lambda x: F.adaptive_avg_pool2d(x, 1), (2, 3, 8, 8)),
        (lambda x: torch.cat([x, x.float()], 1), (2, 3, 8, 8)),
        (lambda x: F.relu(x) + x, (2, 3, 8, 8)),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_cast_policy_is_autocasts(call, shape, dtype) -> None:
    """The emulation's output dtype on real CPU tensors equals real CPU autocast's."""
    x = torch.randn(shape, dtype=dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = call(x).dtype
    with AutocastOnMeta(torch.bfloat16, "cpu"):
        emulated = call(x).dtype
    assert emulated == expected


def test_checkpointing_under_autocast_matches_a_real_step() -> None:
    step = TrainingStep("adam", precision="bf16", autocast_device="cpu", checkpoint="stages")
    summary = cnnarch.analyze(pooled_net(), (3, 32, 32), batch_size=BATCH, train=True, step=step)
    x = torch.randn(BATCH, 3, 32, 32)
    y = torch.randint(0, 10, (BATCH,))
    segments = len(checkpoint_segments(pooled_net(), "stages"))
    measured = measure_step_peak(pooled_net(), x, y, step)
    assert 0 <= measured - summary.training.peak_bytes < 1024 + segments * RNG_STATE


def test_no_segment_starts_in_place() -> None:
    net = nn.Sequential(
        nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3), nn.ReLU(inplace=True)
        )
    )
    blocks = list(net[0])
    assert checkpoint_segments(net, 1) == [blocks[:2], blocks[2:]]


class _SelfCheckpointed(nn.Module):
    """A model that checkpoints its own trunk."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = small_net()[:4]
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 16 * 16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        return self.head(checkpoint(self.trunk, x, use_reentrant=False))


def test_a_model_that_checkpoints_itself() -> None:
    step = TrainingStep("sgd")
    torch.manual_seed(0)
    summary = cnnarch.analyze(_SelfCheckpointed(), (3, 32, 32), batch_size=BATCH, train=True)
    x = torch.randn(BATCH, 3, 32, 32)
    y = torch.randint(0, 10, (BATCH,))
    measured = measure_step_peak(_SelfCheckpointed(), x, y, step)
    assert 0 <= measured - summary.training.peak_bytes < 1024 + RNG_STATE
