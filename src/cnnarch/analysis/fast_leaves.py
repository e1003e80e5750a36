"""Inference fast path: common leaf modules run their aten ops directly.

A layer such as ``nn.Conv2d`` reaches its single aten op through several layers of Python:
``Module.__call__`` with the tracer's global hooks, the layer's ``forward``, ``F.conv2d``, the
tracer's ``__torch_function__`` mode, the dispatcher and its way back into the tracer's
``__torch_dispatch__``. For the module types below, in inference, the analyzer hands the
tracer the very aten ops that this path would dispatch, with the same arguments
(`Tracer.call_op`), so it records the same ops (same costs from the same counting rules, same
storages, same order) at a fraction of the overhead. The module's frame is opened and closed
by the same tracer methods as the hooks use.

Only instances of exactly these types (not subclasses, which may override ``forward``), without
hooks of their own and without an instance ``forward``, take the fast path, and only for one
positional 4-D input (2-D for Linear); any other call runs the module's own ``_call_impl``. The
fast path is installed as an instance attribute for the duration of the pass and removed
afterwards, also when the pass raises. ``tests/analysis`` checks that every zoo model gives the
same summary with and without it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from cnnarch.analysis.torch_internals import (
    call_is_plain,
    global_module_hook_counts,
    override_call,
    restore_call,
    tensor_dicts,
)
from cnnarch.analysis.trace import Tracer, own_code

aten = torch.ops.aten

ENABLED = True  # the tests turn it off to compare against the exact path

Call = Callable[..., Any]  # `Tracer.call_op`: (aten op, *args, **kwargs) -> its output


def _conv2d(call: Call, m: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return call(
        aten.convolution.default,
        x, m.weight, m.bias, list(m.stride), list(m.padding), list(m.dilation), False, [0, 0],
        m.groups,
    )  # fmt: skip


def _batch_norm_2d(call: Call, m: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    # F.batch_norm in eval with running statistics: an empty "reserve" tensor, then the op.
    call(aten.empty.memory_format, [0], dtype=torch.uint8, layout=torch.strided, device=x.device)
    momentum = 0.0 if m.momentum is None else m.momentum
    out = call(
        aten.native_batch_norm.default,
        x, m.weight, m.bias, m.running_mean, m.running_var, False, momentum, m.eps,
    )  # fmt: skip
    return out[0]


def _relu(call: Call, m: nn.ReLU, x: torch.Tensor) -> torch.Tensor:
    return call(aten.relu_.default if m.inplace else aten.relu.default, x)


def _max_pool_2d(call: Call, m: nn.MaxPool2d, x: torch.Tensor) -> torch.Tensor:
    out, _ = call(
        aten.max_pool2d_with_indices.default,
        x, _pair(m.kernel_size), _pair(m.stride), _pair(m.padding), _pair(m.dilation), m.ceil_mode,
    )  # fmt: skip
    return out


def _linear(call: Call, m: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    weight_t = call(aten.t.default, m.weight)
    if m.bias is None:
        return call(aten.mm.default, x, weight_t)
    return call(aten.addmm.default, m.bias, x, weight_t)


def _identity(call: Call, m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x  # nn.Identity, and nn.Dropout in eval: no op at all


def _pair(value: int | tuple[int, ...]) -> list[int]:
    return [value, value] if isinstance(value, int) else list(value)


def _batch_norm_takes_fast_path(m: nn.Module) -> bool:
    # Eval with running statistics; otherwise F.batch_norm computes batch statistics.
    return m.running_mean is not None and m.running_var is not None


# type -> (the aten ops of one call, whether an instance qualifies, the input's dimensions
# handled: None for any)
FAST_LEAVES: dict[type[nn.Module], tuple[Callable[..., torch.Tensor], Any, int | None]] = {
    nn.Conv2d: (_conv2d, lambda m: isinstance(m.padding, tuple) and m.padding_mode == "zeros", 4),
    nn.BatchNorm2d: (_batch_norm_2d, _batch_norm_takes_fast_path, 4),
    nn.ReLU: (_relu, lambda m: True, None),
    nn.MaxPool2d: (_max_pool_2d, lambda m: not m.return_indices, 4),
    nn.Linear: (_linear, lambda m: True, 2),
    nn.Identity: (_identity, lambda m: True, None),
    nn.Dropout: (_identity, lambda m: not m.inplace, None),
}


def _only_tracer_global_hooks() -> bool:
    """The fast path skips global module hooks, so it is used only when the tracer's two are
    the only ones."""
    return global_module_hook_counts() == (1, 1, 0, 0)


def _fast_call(
    tracer: Tracer, m: nn.Module, ops: Callable, dims: int | None, slow_call: Callable[..., Any]
) -> Callable[..., Any]:
    # The functional layers check some things before any aten op runs (F.conv2d and F.linear:
    # input and weight of one dtype and device; F.batch_norm: statistics of the input's
    # width). An input that fails them takes the slow path, and so gets the same error in the
    # same words.
    weight = tensor_dicts(m)[0].get("weight") if isinstance(m, (nn.Conv2d, nn.Linear)) else None
    width = m.num_features if isinstance(m, nn.BatchNorm2d) else None

    def call(*args: Any, **kwargs: Any) -> Any:
        x = args[0] if len(args) == 1 and not kwargs else None
        with own_code():  # reading x's metadata is not the model's code
            usable = (
                isinstance(x, torch.Tensor)
                and (dims is None or x.dim() == dims)
                and not tracer.failed
                and (weight is None or (x.dtype == weight.dtype and x.device == weight.device))
                and (width is None or x.shape[1] == width)
            )
        if not usable:
            return slow_call(*args, **kwargs)
        tracer.enter_module(m)
        try:
            out = ops(tracer.call_op, m, x)
        except Exception:
            tracer.exit_module_raising(m, args)
            raise
        tracer.exit_module(m, args, {}, out)
        return out

    return call


@contextlib.contextmanager
def fast_leaves(tracer: Tracer, modules: Iterable[nn.Module]) -> Iterator[None]:
    """Give the qualifying modules their fast path for the duration of the block.

    Args:
        tracer: the tracer that records the ops.
        modules: the model's modules; those that qualify take the fast path.
    """
    installed: list[nn.Module] = []
    try:
        if ENABLED and _only_tracer_global_hooks():
            for m in modules:
                entry = FAST_LEAVES.get(type(m))
                if entry is None or not call_is_plain(m):
                    continue
                ops, qualifies, dims = entry
                if not qualifies(m):
                    continue
                override_call(m, functools.partial(_fast_call, tracer, m, ops, dims))
                installed.append(m)
        yield
    finally:
        for m in installed:
            restore_call(m)
