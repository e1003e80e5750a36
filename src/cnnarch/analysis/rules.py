"""The counting rules: what one aten op costs, in multiply-accumulates (MACs) and in FLOPs.

This table is the only place where costs are defined. MACs follow the convention of the ResNet
paper, GoogLeNet's Table 1 and torchvision's metadata: only convolutions and matrix products
(linear layers, ``matmul``, ``bmm``) have MACs. FLOPs count every op with the rule written next
to it; one MAC is two FLOPs. Ops that only move or allocate data (``cat``, ``copy_``, padding,
views) cost nothing. An op that is in none of these groups costs nothing too, and its name is
reported in ``Summary.uncounted_ops`` so that nothing is left out silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

aten = torch.ops.aten

# A rule maps (args, kwargs, output) of one aten call to (MACs, FLOPs).
Rule = Callable[[Sequence[Any], dict[str, Any], Any], tuple[int, int]]


@dataclass(frozen=True)
class CountingRule:
    ops: tuple[str, ...]
    rule: Rule
    macs: str  # the rule for MACs, in words
    flops: str  # the rule for FLOPs, in words


def _first_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    for item in value:
        if isinstance(item, torch.Tensor):
            return item
    raise TypeError("no tensor in op output")


def _conv(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
    x, weight, bias = args[0], args[1], args[2]
    transposed = bool(args[6]) if len(args) > 6 else bool(kwargs.get("transposed", False))
    # weight is (C_out, C_in/groups, *k), or (C_in, C_out/groups, *k) when transposed: each
    # output (input, when transposed) element takes weight[0].numel() multiply-accumulates.
    per_element = weight[0].numel()
    y = _first_tensor(out)
    macs = (x.numel() if transposed else y.numel()) * per_element
    return macs, 2 * macs + (y.numel() if bias is not None else 0)


def _mm(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
    a, b = args[0], args[1]
    macs = a.numel() * b.shape[-1]  # (m x k) @ (k x n), batched or not: m*k*n per matrix
    return macs, 2 * macs


def _addmm(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
    a, b = args[1], args[2]
    macs = a.numel() * b.shape[-1]
    return macs, 2 * macs + _first_tensor(out).numel()


def _per_output_element(flops: int) -> Rule:
    def rule(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
        return 0, flops * _first_tensor(out).numel()

    return rule


def _per_input_element(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
    return 0, _first_tensor(args).numel()


def _batch_norm(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
    # args: (input, weight, bias, running_mean, running_var, training, ...) for the
    # native_batch_norm family; `_native_batch_norm_legit` has no running stats when they are None.
    training = next((a for a in args[3:] if isinstance(a, bool)), False)
    return 0, (4 if training else 2) * args[0].numel()


def _pool_window(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> int:
    kernel = args[1] if len(args) > 1 else kwargs["kernel_size"]
    dims = _first_tensor(out).dim() - 2
    kernel = list(kernel) * dims if len(kernel) == 1 else list(kernel)
    return math.prod(kernel)


def _max_pool(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
    return 0, _first_tensor(out).numel() * (_pool_window(args, kwargs, out) - 1)


def _avg_pool(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
    return 0, _first_tensor(out).numel() * _pool_window(args, kwargs, out)


def _adaptive_pool(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
    return 0, args[0].numel() + _first_tensor(out).numel()


def _zero(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
    return 0, 0


_ELEMENTWISE = (
    "add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "neg", "abs",
    "relu", "relu_", "threshold", "threshold_", "hardtanh", "hardtanh_", "leaky_relu",
    "leaky_relu_", "elu", "elu_", "gelu", "silu", "silu_", "sigmoid", "sigmoid_", "tanh",
    "tanh_", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_", "exp", "log", "sqrt",
    "rsqrt", "pow", "reciprocal", "clamp", "clamp_", "clamp_min", "clamp_min_", "clamp_max",
    "maximum", "minimum", "where", "lerp", "addcmul", "addcdiv", "bernoulli_", "eq", "ne",
    "gt", "lt", "ge", "le", "square",
)  # fmt: skip

_DATA_MOVEMENT = (
    "cat", "stack", "copy_", "clone", "_to_copy", "contiguous", "constant_pad_nd",
    "reflection_pad2d", "replication_pad2d", "empty", "empty_like", "empty_strided",
    "new_empty", "new_empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full",
    "full_like", "new_zeros", "new_ones", "fill_", "zero_", "index", "index_select",
    "gather", "scatter", "masked_fill", "masked_fill_", "repeat", "roll", "flip",
    "upsample_nearest2d", "lift_fresh", "scalar_tensor", "arange", "detach_", "_unsafe_view",
    "alias", "bernoulli", "randn", "rand", "normal_", "uniform_", "argmax", "topk", "sort",
    "split", "unsafe_split", "split_with_sizes", "unsafe_split_with_sizes", "unbind", "chunk",
)  # fmt: skip

RULES: tuple[CountingRule, ...] = (
    CountingRule(
        ("convolution", "_convolution"),
        _conv,
        "output elements x C_in/groups x kernel area (transposed: input elements x "
        "C_out/groups x kernel area)",
        "2 x MACs, + 1 per output element with bias",
    ),
    CountingRule(("mm", "bmm"), _mm, "m x k x n per matrix product", "2 x MACs"),
    CountingRule(
        ("addmm", "baddbmm"), _addmm, "m x k x n per matrix product", "2 x MACs + m x n (bias)"
    ),
    CountingRule(
        (
            "native_batch_norm",
            "_native_batch_norm_legit",
            "_native_batch_norm_legit_no_training",
            "_native_batch_norm_legit_functional",
        ),
        _batch_norm,
        "0",
        "2 per element (scale and shift) in eval; 4 in training (statistics: +2)",
    ),
    CountingRule(
        ("native_layer_norm", "native_group_norm"),
        _per_output_element(4),
        "0",
        "4 per element (mean, variance, normalize, affine)",
    ),
    CountingRule(
        ("max_pool2d_with_indices", "max_pool3d_with_indices", "max_pool2d", "max_pool1d"),
        _max_pool,
        "0",
        "output elements x (window - 1) comparisons",
    ),
    CountingRule(
        ("avg_pool2d", "avg_pool3d", "avg_pool1d"),
        _avg_pool,
        "0",
        "output elements x window (window - 1 additions and one division)",
    ),
    CountingRule(
        ("_adaptive_avg_pool2d", "adaptive_max_pool2d", "_adaptive_avg_pool3d"),
        _adaptive_pool,
        "0",
        "input elements + output elements (one add or compare per input, one division per output)",
    ),
    CountingRule(
        ("mean", "sum", "amax", "amin", "max", "min", "var", "std", "norm", "logsumexp"),
        _per_input_element,
        "0",
        "1 per input element",
    ),
    CountingRule(
        ("_softmax", "_log_softmax", "_safe_softmax"),
        _per_output_element(5),
        "0",
        "5 per element (max, subtract, exp, sum, divide or log)",
    ),
    CountingRule(_ELEMENTWISE, _per_output_element(1), "0", "1 per output element"),
    CountingRule(_DATA_MOVEMENT, _zero, "0", "0 (data movement or allocation)"),
)

_RULE_BY_NAME: dict[str, Rule] = {name: entry.rule for entry in RULES for name in entry.ops}


def rule_for(op: torch._ops.OpOverload) -> Rule | None:
    """The counting rule of an aten op, or None when the table has no entry for it."""
    return _RULE_BY_NAME.get(op._overloadpacket.__name__)


def op_cost(op: torch._ops.OpOverload, args: Sequence[Any], kwargs: dict[str, Any], out: Any):
    """(MACs, FLOPs, counted) of one aten call; views cost nothing and are always counted."""
    rule = rule_for(op)
    if rule is None:
        return 0, 0, op.is_view
    macs, flops = rule(args, kwargs, out)
    return macs, flops, True
