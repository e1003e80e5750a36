"""Every private PyTorch (and CPython) interface cnnarch relies on, in one place.

Each is tested in ``tests/analysis/test_torch_internals.py``, so a PyTorch release that changes
one of them fails there, by name, rather than somewhere deep in a trace. Nothing else in
cnnarch names a private attribute of torch (``tests/test_private_torch.py`` checks the source),
and this module imports nothing of cnnarch, so any package may use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
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
    """The dictionaries `Module.__getattr__` reads a module's parameters and buffers from.

    Args:
        module: a module
    """
    own = module.__dict__
    return own["_parameters"], own["_buffers"]


Swap = tuple[nn.Module, dict[str, Any], dict[str, Any]]  # (module, parameters, buffers)


def swap_tensor_dicts(swaps: Iterable[Swap]) -> list[Swap]:
    """Give each module new parameter and buffer dictionaries, so that every later
    `module.weight` reads the new tensors (what `torch.func.functional_call` does tensor by
    tensor, here in two assignments); returns the old ones, to swap back.

    Args:
        swaps: (module, parameters, buffers) triples: the dictionaries to install.
    """
    previous = []
    for module, params, buffers in swaps:
        own = module.__dict__
        previous.append((module, own["_parameters"], own["_buffers"]))
        own["_parameters"] = params
        own["_buffers"] = buffers
    return previous


def child_modules(module: nn.Module) -> Mapping[str, nn.Module | None]:
    """The dictionary a module's children are registered in, by attribute name (a name may
    hold None, and one child may be registered under two names; `Module.children()` skips
    both): the very dictionary, so that a change to it can be undone.

    Args:
        module: a module
    """
    return module.__dict__["_modules"]


def drop_forward_hooks(module: nn.Module) -> None:
    """Remove every forward hook and forward pre-hook registered on `module` itself, and an
    instance's own `_call_impl` (`override_call`'s), so that a call runs the class's code.

    Args:
        module: the module whose own hooks go (not its children's).
    """
    module._forward_hooks.clear()
    module._forward_pre_hooks.clear()
    restore_call(module)


@contextlib.contextmanager
def modes_suspended() -> Iterator[None]:
    """For the block, no `__torch_function__` or `__torch_dispatch__` mode of this thread is
    active (a tracer's, say); they are put back, in order, afterwards."""
    from torch.overrides import _pop_mode as pop_function_mode
    from torch.overrides import _push_mode as push_function_mode
    from torch.utils._python_dispatch import _pop_mode as pop_dispatch_mode
    from torch.utils._python_dispatch import _push_mode as push_dispatch_mode

    functions = [pop_function_mode() for _ in range(torch._C._len_torch_function_stack())]
    dispatches = [pop_dispatch_mode() for _ in range(torch._C._len_torch_dispatch_stack())]
    try:
        yield
    finally:
        for mode in reversed(dispatches):
            push_dispatch_mode(mode)
        for mode in reversed(functions):
            push_function_mode(mode)


def call_is_plain(module: nn.Module) -> bool:
    """Whether `module(...)` runs its class's `_call_impl` with no hooks of the module's own
    and no `forward` or `_call_impl` set on the instance.

    Args:
        module: a module
    """
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
    `Module.__call__` looks `_call_impl` up on the instance.

    Args:
        module: the instance whose calls change.
        wrap: takes the class's `_call_impl`, bound, and returns what a call runs instead.
    """
    module.__dict__["_call_impl"] = wrap(module._call_impl)


def restore_call(module: nn.Module) -> None:
    """Undo `override_call` (nothing to undo is fine: the override may be gone already).

    Args:
        module: a module
    """
    module.__dict__.pop("_call_impl", None)


def remove_global_hook(handle: Any) -> None:
    """Remove a hook registered with `register_module_forward_hook` or `..._pre_hook`.

    `handle.remove()` alone leaves the hook's `with_kwargs` flag behind (torch 2.13), and while
    any global entry is left every module call takes the slow path and `torch.compile` warns
    of global hooks.

    Args:
        handle: the `RemovableHandle` the registration returned.
    """
    handle.remove()
    _module_globals._global_forward_hooks_with_kwargs.pop(handle.id, None)


def any_global_module_hook() -> bool:
    """Whether anything is left in PyTorch's global module hook tables."""
    return bool(_module_globals._has_any_global_hook())


def global_module_hook_counts() -> tuple[int, int, int, int]:
    """(forward pre-hooks, forward hooks, backward hooks, backward pre-hooks) registered for
    every module with `register_module_*_hook`."""
    return (
        len(_module_globals._global_forward_pre_hooks),
        len(_module_globals._global_forward_hooks),
        len(_module_globals._global_backward_hooks),
        len(_module_globals._global_backward_pre_hooks),
    )


OpOverload = torch._ops.OpOverload  # one overload of an operator: `aten.add.Tensor`
OpOverloadPacket = torch._ops.OpOverloadPacket  # all of them: `aten.add`


def op_schema(op: OpOverload) -> torch._C.FunctionSchema:
    """The aten schema of an op overload: its arguments' types and alias annotations.

    Args:
        op: one overload of an operator.
    """
    return op._schema


def op_packet(op: OpOverload) -> OpOverloadPacket:
    """The overload packet (`aten.add`) of an overload (`aten.add.Tensor`).

    Args:
        op: one overload of an operator.
    """
    return op._overloadpacket


def storage_id(tensor: torch.Tensor) -> int:
    """An identity of the storage behind a tensor, shared by its views and in-place results.

    Args:
        tensor: any tensor, meta ones included.
    """
    return tensor.untyped_storage()._cdata


def qualified_name(packet: OpOverloadPacket) -> str:
    """`aten::add`, `mylib::op`.

    Args:
        packet: an operator's overload packet.
    """
    return packet._qualified_op_name


# The checks by which a function of torch.nn.functional hands itself whole to an active
# `__torch_function__` mode, as PyTorch defines them (`functional_bodies_traced` replaces them
# for a while and puts these back).
_FUNCTIONAL_MODE_CHECKS = {
    name: getattr(F, name)
    for name in ("has_torch_function", "has_torch_function_unary", "has_torch_function_variadic")
}


def _no_torch_function(*args: Any) -> bool:
    return False


@contextlib.contextmanager
def functional_bodies_traced() -> Iterator[None]:
    """For the block, the functions of torch.nn.functional run their own bodies under an active
    `__torch_function__` mode instead of handing the whole call to it, so that the mode sees each
    op they call (autocast acts on the ops inside `local_response_norm`, say). Their module's
    checks for a mode say no meanwhile; the block's end puts PyTorch's checks back. The change
    is to the module, so it holds in every thread for the duration of the block."""
    try:
        for name in _FUNCTIONAL_MODE_CHECKS:
            setattr(F, name, _no_torch_function)
        yield
    finally:
        restore_functional_checks()


def restore_functional_checks() -> None:
    """Put PyTorch's own mode checks back into torch.nn.functional (idempotent)."""
    for name, check in _FUNCTIONAL_MODE_CHECKS.items():
        setattr(F, name, check)


def raise_in_thread(thread_id: int, exception: type[BaseException] | None) -> bool:
    """Make the thread `thread_id` raise `exception` at its next Python bytecode (CPython's
    `PyThreadState_SetAsyncExc`; a thread blocked in native code raises when that call
    returns). None withdraws an exception set but not yet raised. Returns whether a thread
    of that id was found.

    Args:
        thread_id: the thread's `threading.get_ident()`.
        exception: the exception class to raise there, or None.
    """
    found = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception) if exception else None
    )
    return bool(found)


def thread_is_importing(thread_id: int) -> bool:
    """Whether the thread `thread_id` is inside an `import` (CPython's `sys._current_frames`:
    importlib's frames are on its stack). An exception raised into it there would leave the
    module half-imported.

    Args:
        thread_id: the thread's `threading.get_ident()`.
    """
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False
