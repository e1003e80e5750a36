"""Counting rules: fused attention, interpolation and norms, ops that cost nothing, and rules a
user registers for ops of their own."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnarch
from cnnarch import CnnarchError
from cnnarch.analysis import register_rule
from cnnarch.analysis.rules import op_cost

aten = torch.ops.aten


def _meta(*shape: int) -> torch.Tensor:
    return torch.empty(shape, device="meta")


# query (B, H, L, E) = (2, 3, 5, 4), key (2, 3, 7, 4), value (2, 3, 7, 6):
# Q K^T: 2 x 3 x 5 x 7 x 4 MACs; (softmax) x V: 2 x 3 x 5 x 7 x 6.
ATTENTION_MACS = 2 * 3 * 5 * 7 * (4 + 6)


@pytest.mark.parametrize(
    ("op", "extra"),
    [
        (aten._scaled_dot_product_flash_attention.default, ()),
        (aten._scaled_dot_product_flash_attention_for_cpu.default, ()),
        (aten._scaled_dot_product_efficient_attention.default, (None, False)),
        (aten._scaled_dot_product_cudnn_attention.default, (None, False)),
    ],
)
def test_fused_attention_ops_have_mac_rules(op, extra):
    args = (_meta(2, 3, 5, 4), _meta(2, 3, 7, 4), _meta(2, 3, 7, 6), *extra)
    macs, flops, counted = op_cost(op, args, {}, (_meta(2, 3, 5, 6),))
    assert counted and macs == ATTENTION_MACS
    assert flops == 2 * ATTENTION_MACS + 5 * 2 * 3 * 5 * 7  # + softmax per score


class Attention(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_attention_counts_the_same_fused_on_cpu_and_decomposed_on_meta():
    inputs = (torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 6))
    meta = cnnarch.analyze(Attention(), inputs=inputs)
    cpu = cnnarch.analyze(Attention(), inputs=inputs, device="cpu")
    assert meta.total_macs == cpu.total_macs == ATTENTION_MACS
    assert not meta.uncounted_ops and not cpu.uncounted_ops


class Resample(nn.Module):
    def forward(self, x, grid):
        up = F.interpolate(x, scale_factor=2, mode="bilinear")
        nearest = F.interpolate(x, scale_factor=2, mode="nearest")
        sampled = F.grid_sample(x, grid, align_corners=False)
        norms = torch.linalg.vector_norm(x, dim=1)
        x.new_empty(4).as_strided_((2,), (2,))  # costs nothing: not "uncounted"
        return up, nearest, sampled, norms


def test_interpolation_grid_sampling_and_norms_have_flop_rules():
    x, grid = torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 3, 2)
    summary = cnnarch.analyze(Resample(), inputs=(x, grid))
    # bilinear: 9 per output element (1x2x8x8); nearest: 0; grid sample (bilinear): 9 per
    # output element (1x2x3x3); vector norm: 2 per input element (1x2x4x4).
    assert summary.total_flops == 9 * 128 + 0 + 9 * 18 + 2 * 32
    assert summary.uncounted_ops == {}


# -- user rules ----------------------------------------------------------------------------------
@torch.library.custom_op("cnnarch_test::scaled_matmul", mutates_args=())
def scaled_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 2 * (a @ b)


@scaled_matmul.register_fake
def _(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.new_empty(a.shape[0], b.shape[1])


class UsesCustomOp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(4, 3))

    def forward(self, x):
        return scaled_matmul(x, self.weight)


def test_a_registered_rule_counts_a_custom_op():
    op = torch.ops.cnnarch_test.scaled_matmul
    before = cnnarch.analyze(UsesCustomOp(), (4,), batch_size=5)
    assert before.total_macs == 0 and before.uncounted_ops == {"cnnarch_test::scaled_matmul": 1}
    assert "cnnarch.analysis.register_rule" in before.to_table()
    handle = register_rule(op, macs=lambda args, kwargs, out: args[0].numel() * args[1].shape[1])
    try:
        after = cnnarch.analyze(UsesCustomOp(), (4,), batch_size=5)
        assert after.total_macs == 5 * 4 * 3 and after.total_flops == 2 * 5 * 4 * 3
        assert after.uncounted_ops == {}
        with pytest.raises(CnnarchError, match="cnnarch_test::scaled_matmul has a counting rule"):
            register_rule(op.default, flops=lambda args, kwargs, out: 1)
    finally:
        handle.remove()
    assert cnnarch.analyze(UsesCustomOp(), (4,)).total_macs == 0


def test_register_rule_refuses_built_in_ops_and_non_ops():
    with pytest.raises(CnnarchError, match="aten::mm has a built-in counting rule"):
        register_rule(aten.mm, macs=lambda args, kwargs, out: 0)
    with pytest.raises(CnnarchError, match="takes an operator"):
        register_rule("mm", macs=lambda args, kwargs, out: 0)
    with pytest.raises(CnnarchError, match="needs macs=, flops= or both"):
        register_rule(torch.ops.cnnarch_test.scaled_matmul)
