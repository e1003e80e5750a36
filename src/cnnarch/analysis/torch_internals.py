"""Every private PyTorch interface the analyzer relies on, in one place.

Each is tested in ``tests/analysis/test_torch_internals.py``, so a PyTorch release that changes
one of them fails there, by name, rather than somewhere deep in a trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as _module_globals

# The base class of the tracer's aten-level mode (re-exported from here).
from torch.utils._python_dispatch import TorchDispatchMode as TorchDispatchMode

# Turns off `__torch_dispatch__` modes for the block: the tracer runs one aten op itself,
# outside the dispatcher, as the dispatcher would run it inside the mode.
disable_torch_dispatch = torch._C._DisableTorchDispatch

# Turns off `__torch_function__` modes for the block (public, but undocumented): the hooks'
# own reading of shapes is not the model's code.
disable_torch_function = torch._C.DisableTorchFunction


def device_constructors() -> frozenset[Callable[..., Any]]:
    """The factory functions (`torch.empty`, `torch.zeros`, `torch.tensor`, ...) that
    `with torch.device(...)` redirects: the ones whose device the tracer redirects to meta."""
    from torch.utils._device import _device_constructors

    return frozenset(_device_constructors())


def tensor_dicts(module: nn.Module) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dictionaries `Module.__getattr__` reads a module's parameters and buffers from."""
    own = module.__dict__
    return own["_parameters"], own["_buffers"]


Swap = tuple[nn.Module, dict[str, Any], dict[str, Any]]  # (module, parameters, buffers)


def swap_tensor_dicts(swaps: Iterable[Swap]) -> list[Swap]:
    """Give each module new parameter and buffer dictionaries, so that every later
    `module.weight` reads the new tensors (what `torch.func.functional_call` does tensor by
    tensor, here in two assignments); returns the old ones, to swap back."""
    previous = []
    for module, params, buffers in swaps:
        own = module.__dict__
        previous.append((module, own["_parameters"], own["_buffers"]))
        own["_parameters"] = params
        own["_buffers"] = buffers
    return previous


def call_is_plain(module: nn.Module) -> bool:
    """Whether `module(...)` runs its class's `_call_impl` with no hooks of the module's own
    and no `forward` or `_call_impl` set on the instance."""
    return not (
        "forward" in module.__dict__
        or "_call_impl" in module.__dict__
        or module._forward_hooks
        or module._forward_pre_hooks
        or module._backward_hooks
        or module._backward_pre_hooks
    )


def override_call(
    module: nn.Module, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> None:
    """Make `module(...)` run `wrap(the class's _call_impl)`, for this instance only:
    `Module.__call__` looks `_call_impl` up on the instance."""
    module.__dict__["_call_impl"] = wrap(module._call_impl)


def restore_call(module: nn.Module) -> None:
    del module.__dict__["_call_impl"]


def global_module_hook_counts() -> tuple[int, int, int, int]:
    """(forward pre-hooks, forward hooks, backward hooks, backward pre-hooks) registered for
    every module with `register_module_*_hook`."""
    return (
        len(_module_globals._global_forward_pre_hooks),
        len(_module_globals._global_forward_hooks),
        len(_module_globals._global_backward_hooks),
        len(_module_globals._global_backward_pre_hooks),
    )


def op_schema(op: torch._ops.OpOverload) -> Any:
    """The aten schema of an op overload: its arguments' types and alias annotations."""
    return op._schema


def op_packet(op: torch._ops.OpOverload) -> Any:
    """The overload packet (`aten.add`) of an overload (`aten.add.Tensor`)."""
    return op._overloadpacket


def storage_id(tensor: torch.Tensor) -> int:
    """An identity of the storage behind a tensor, shared by its views and in-place results."""
    return tensor.untyped_storage()._cdata


OpOverload = torch._ops.OpOverload  # one overload of an operator: `aten.add.Tensor`
OpOverloadPacket = torch._ops.OpOverloadPacket  # all of them: `aten.add`


def qualified_name(packet: Any) -> str:
    """`aten::add`, `mylib::op`."""
    return packet._qualified_op_name
