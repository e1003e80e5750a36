"""The counting rules: what one aten op costs, in multiply-accumulates (MACs) and in FLOPs.

This table is the only place where costs are defined. MACs follow the convention of the ResNet
paper, GoogLeNet's Table 1 and torchvision's metadata: only convolutions and matrix products
(linear layers, ``matmul``, ``bmm``) have MACs. FLOPs count every op with the rule written next
to it; one MAC is two FLOPs. Ops that only move or allocate data (``cat``, ``copy_``, padding,
views) cost nothing. An op that is in none of these groups costs nothing too, and its name is
reported in ``Summary.uncounted_ops`` so that nothing is left out silently; `register_rule`
gives such an op (a custom op, say) a rule of its own.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from cnnarch.analysis.torch_internals import (
    OpOverload,
    OpOverloadPacket,
    op_packet,
    qualified_name,
)
from cnnarch.errors import CnnarchValueError

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


def _fused_attention(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
    # query (..., L, E), key (..., S, E), value (..., S, Ev): Q K^T takes L x S x E MACs per
    # batch and head, (softmax) x V takes L x S x Ev.
    query, key, value = args[0], args[1], args[2]
    length, embed = query.shape[-2], query.shape[-1]
    source = key.shape[-2]
    heads = query.numel() // (length * embed) if length * embed else 0
    macs = heads * length * source * (embed + value.shape[-1])
    return macs, 2 * macs + 5 * heads * length * source


def _vector_norm(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
    return 0, 2 * args[0].numel()


# FLOPs per output element of interpolation: a 1-D linear interpolation (a + w (b - a)) is 3,
# bilinear 3 of them, trilinear 7; bicubic is 5 four-tap interpolations (4 mul + 3 add each).
_LINEAR, _BILINEAR, _TRILINEAR, _BICUBIC = 3, 9, 21, 35
_GRID_SAMPLE_MODES = {0: _BILINEAR, 1: 0, 2: _BICUBIC}  # bilinear, nearest, bicubic


def _grid_sample(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
    mode = args[2] if len(args) > 2 else kwargs["interpolation_mode"]
    return 0, _GRID_SAMPLE_MODES.get(mode, 0) * _first_tensor(out).numel()


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
    "upsample_nearest1d", "upsample_nearest3d", "_upsample_nearest_exact1d",
    "_upsample_nearest_exact2d", "_upsample_nearest_exact3d", "_local_scalar_dense",
    "lift_fresh_copy", "new_full", "slice_scatter", "select_scatter", "index_put", "index_put_",
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
        (
            "_scaled_dot_product_flash_attention",
            "_scaled_dot_product_flash_attention_for_cpu",
            "_scaled_dot_product_efficient_attention",
            "_scaled_dot_product_cudnn_attention",
            "_scaled_dot_product_fused_attention_overrideable",
        ),
        _fused_attention,
        "batch x heads x L x S x (E + Ev) (the two matrix products)",
        "2 x MACs + 5 per attention score (softmax)",
    ),
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
    CountingRule(("linalg_vector_norm",), _vector_norm, "0", "2 per input element"),
    CountingRule(("upsample_linear1d",), _per_output_element(_LINEAR), "0", "3 per output element"),
    CountingRule(
        ("upsample_bilinear2d", "_upsample_bilinear2d_aa"),
        _per_output_element(_BILINEAR),
        "0",
        "9 per output element (3 linear interpolations)",
    ),
    CountingRule(
        ("upsample_trilinear3d",),
        _per_output_element(_TRILINEAR),
        "0",
        "21 per output element (7 linear interpolations)",
    ),
    CountingRule(
        ("upsample_bicubic2d", "_upsample_bicubic2d_aa"),
        _per_output_element(_BICUBIC),
        "0",
        "35 per output element (5 four-tap interpolations)",
    ),
    CountingRule(
        ("grid_sampler_2d",),
        _grid_sample,
        "0",
        "per output element: bilinear 9, bicubic 35, nearest 0",
    ),
    CountingRule(_ELEMENTWISE, _per_output_element(1), "0", "1 per output element"),
    CountingRule(_DATA_MOVEMENT, _zero, "0", "0 (data movement or allocation)"),
)


def describe_rules(pattern: str = "*") -> list[dict[str, str]]:
    """The counting rules in words, for people: with the default pattern one row per rule
    (its ops, its MACs, its FLOPs); with any other, one row per op whose name matches the
    fnmatch `pattern` ("conv*", "*softmax"). Ops of newer PyTorch releases are listed too.

    Args:
        pattern: fnmatch pattern of op names ("*": one row per rule).
    """
    if pattern == "*":
        return [{"ops": ", ".join(r.ops), "macs": r.macs, "flops": r.flops} for r in RULES]
    return [
        {"ops": op, "macs": r.macs, "flops": r.flops}
        for r in RULES
        for op in r.ops
        if fnmatch.fnmatchcase(op, pattern)
    ]


# An op's rule, keyed by its overload packet (`aten.mm`, `torch.ops.mylib.op`).
_RULE_BY_OP: dict[Any, Rule] = {
    getattr(aten, name): entry.rule
    for entry in RULES
    for name in entry.ops
    if hasattr(aten, name)  # ops of newer PyTorch releases are skipped on older ones
}
_BUILT_IN = frozenset(_RULE_BY_OP)


def op_name(op: OpOverload) -> str:
    """`mm` for an aten op, `mylib::op` for any other.

    Args:
        op: one overload of an operator.
    """
    packet = op_packet(op)
    qualified = qualified_name(packet)
    return packet.__name__ if qualified.startswith("aten::") else qualified


# The rule of each overload seen, by `id` (asked once per op of a pass; cleared whenever a
# rule is registered or removed).
_RULE_BY_OVERLOAD: dict[int, Rule | None] = {}


def rule_for(op: OpOverload) -> Rule | None:
    """The counting rule of an aten op, or None when the table has no entry for it.

    Args:
        op: one overload of an operator.
    """
    rule = _RULE_BY_OVERLOAD.get(id(op), _RULE_BY_OVERLOAD)
    if rule is _RULE_BY_OVERLOAD:  # not seen yet
        rule = _RULE_BY_OVERLOAD[id(op)] = _RULE_BY_OP.get(op_packet(op))
    return rule  # type: ignore[return-value]


def op_cost(
    op: OpOverload, args: Sequence[Any], kwargs: dict[str, Any], out: Any
) -> tuple[int, int, bool]:
    """(MACs, FLOPs, counted) of one aten call. Views, and in-place changes of a view's
    geometry (`as_strided_`), cost nothing and are always counted.

    Args:
        op: the overload called.
        args: its positional arguments.
        kwargs: its keyword arguments.
        out: what it returned.
    """
    rule = rule_for(op)
    if rule is None:
        return 0, 0, op.is_view or torch.Tag.inplace_view in op.tags
    macs, flops = rule(args, kwargs, out)
    return macs, flops, True


# A user rule maps (args, kwargs, output) of one call of the op to a count.
Count = Callable[[Sequence[Any], dict[str, Any], Any], int]


class RuleHandle:
    """What `register_rule` returns: `remove()` takes the rule out again."""

    def __init__(self, packet: Any) -> None:
        self._packet = packet

    def remove(self) -> None:
        _RULE_BY_OP.pop(self._packet, None)
        _RULE_BY_OVERLOAD.clear()


def register_rule(op: Any, *, macs: Count | None = None, flops: Count | None = None) -> RuleHandle:
    """Count an op that has no rule (a custom op, or an aten op this table lacks).

    `op` is the operator object: `torch.ops.mylib.myop` (every overload) or one overload of it.
    `macs` and `flops` are called with the aten call's arguments, keyword arguments and output
    (tensors on meta: shapes and dtypes only) and return a count; FLOPs default to 2 x MACs,
    and MACs to 0. An op has at most one rule: registering a second is an error.

    Args:
        op: the operator, or one overload of it.
        macs: its multiply-accumulates per call.
        flops: its FLOPs per call.
    """
    if isinstance(op, OpOverload):
        op = op_packet(op)
    if not isinstance(op, OpOverloadPacket):
        raise CnnarchValueError(
            f"register_rule takes an operator such as torch.ops.aten.mm or "
            f"torch.ops.mylib.myop, got {op!r}"
        )
    name = qualified_name(op)
    if op in _RULE_BY_OP:
        origin = "a built-in counting rule" if op in _BUILT_IN else "a counting rule already"
        raise CnnarchValueError(
            f"{name} has {origin}; an op takes one rule (remove the earlier one with the "
            f"handle register_rule returned)"
        )
    if macs is None and flops is None:
        raise CnnarchValueError(f"register_rule({name}) needs macs=, flops= or both")

    def rule(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> tuple[int, int]:
        mac_count = int(macs(args, kwargs, out)) if macs is not None else 0
        flop_count = int(flops(args, kwargs, out)) if flops is not None else 2 * mac_count
        return mac_count, flop_count

    _RULE_BY_OP[op] = rule
    _RULE_BY_OVERLOAD.clear()
    return RuleHandle(op)
