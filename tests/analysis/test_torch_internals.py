"""Each private PyTorch interface the analyzer relies on still behaves as it expects: a PyTorch
release that changes one fails here, by name."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook
from torch.overrides import TorchFunctionMode

from cnnarch.analysis import torch_internals as internals

aten = torch.ops.aten


class SeenOps(internals.TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[object] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func)
        return func(*args, **(kwargs or {}))


class SeenFunctions(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[object] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls.append(func)
        return func(*args, **(kwargs or {}))


def test_disable_torch_dispatch_hides_ops_from_dispatch_modes():
    x = torch.ones(2)
    with SeenOps() as mode:
        torch.add(x, x)
        with internals.disable_torch_dispatch():
            torch.mul(x, x)
    assert mode.ops == [aten.add.Tensor]


def test_disable_torch_function_hides_calls_from_function_modes():
    x = torch.ones(2)
    with SeenFunctions() as mode:
        torch.add(x, x)
        with internals.disable_torch_function():
            torch.mul(x, x)
    assert mode.calls == [torch.add]


def test_device_constructors_are_the_factories_a_device_context_redirects():
    factories = internals.device_constructors()
    assert {torch.empty, torch.zeros, torch.ones, torch.full, torch.arange, torch.tensor} <= (
        factories
    )
    with torch.device("meta"):
        assert all(f(2).device.type == "meta" for f in (torch.empty, torch.zeros, torch.ones))


def test_swapped_dictionaries_are_what_module_attributes_read():
    layer = nn.Linear(2, 3)
    params, buffers = internals.tensor_dicts(layer)
    assert params["weight"] is layer.weight and buffers == {}
    stand_in = torch.empty(3, 2, device="meta")
    originals = internals.swap_tensor_dicts([(layer, {"weight": stand_in, "bias": None}, {})])
    assert layer.weight is stand_in and layer.bias is None
    assert layer(torch.empty(4, 2, device="meta")).shape == (4, 3)  # forward reads them too
    internals.swap_tensor_dicts(originals)
    assert internals.tensor_dicts(layer)[0] is params
    assert isinstance(layer.weight, nn.Parameter) and layer.weight.device.type == "cpu"


def test_override_call_wraps_the_call_of_one_instance():
    one, other = nn.Identity(), nn.Identity()
    assert internals.call_is_plain(one)
    internals.override_call(one, lambda default: lambda x: ("wrapped", default(x)))
    assert not internals.call_is_plain(one) and internals.call_is_plain(other)
    assert one(1) == ("wrapped", 1) and other(1) == 1
    internals.restore_call(one)
    assert one(1) == 1 and internals.call_is_plain(one)


def test_hook_counts_see_global_and_own_hooks():
    before = internals.global_module_hook_counts()
    handle = register_module_forward_hook(lambda module, args, out: None)
    try:
        assert internals.global_module_hook_counts()[1] == before[1] + 1
    finally:
        handle.remove()
    assert internals.global_module_hook_counts() == before
    layer = nn.Identity()
    layer.register_forward_pre_hook(lambda module, args: None)
    assert not internals.call_is_plain(layer)


def test_op_schema_packet_and_names():
    op = aten.addmm.default
    assert isinstance(op, internals.OpOverload)
    packet = internals.op_packet(op)
    assert packet is aten.addmm and isinstance(packet, internals.OpOverloadPacket)
    assert internals.qualified_name(packet) == "aten::addmm"
    arguments = internals.op_schema(op).arguments
    assert [a.name for a in arguments[:3]] == ["self", "mat1", "mat2"]
    assert str(arguments[0].type) == "Tensor"
    in_place = internals.op_schema(aten.relu_.default)
    assert in_place.arguments[0].alias_info.is_write


def test_storage_id_is_shared_by_views_only():
    x = torch.zeros(4, device="meta")
    assert internals.storage_id(x) == internals.storage_id(x.view(2, 2))
    assert internals.storage_id(x) != internals.storage_id(x.clone())


def test_dispatch_mode_base_class_sees_aten_ops():
    assert issubclass(SeenOps, internals.TorchDispatchMode)
    with SeenOps() as mode:
        torch.ones(2, device="meta").relu()
    assert aten.relu.default in mode.ops


def test_child_modules_is_the_registry_of_children_names_and_none_included():
    model = nn.Sequential(nn.Linear(2, 2))
    model.add_module("nothing", None)
    children = internals.child_modules(model)
    assert list(children) == ["0", "nothing"] and children["nothing"] is None
    children["extra"] = nn.ReLU()  # the very dictionary: a change shows in the module
    assert isinstance(model.extra, nn.ReLU)


def test_drop_forward_hooks_silences_a_modules_hooks_and_call_override():
    layer = nn.Linear(2, 2)
    calls = []
    layer.register_forward_hook(lambda *_: calls.append("hook"))
    layer.register_forward_pre_hook(lambda *_: calls.append("pre"))
    internals.override_call(layer, lambda default: lambda x: calls.append("call") or default(x))
    internals.drop_forward_hooks(layer)
    layer(torch.ones(1, 2))
    assert calls == [] and internals.call_is_plain(layer)


def test_modes_suspended_hides_active_modes_and_puts_them_back():
    x = torch.ones(2)
    with SeenFunctions() as functions, SeenOps() as ops:
        with internals.modes_suspended():
            torch.mul(x, x)
        torch.add(x, x)
    assert functions.calls == [torch.add] and ops.ops == [aten.add.Tensor]


def test_functional_bodies_traced_lets_a_mode_see_inside_and_restores_the_checks():
    import torch.nn.functional as F

    original = F.has_torch_function_unary
    x = torch.ones(1, 4, 3, 3)
    with SeenFunctions() as mode:
        F.local_response_norm(x, 2)
    assert mode.calls == [F.local_response_norm]  # the whole function, handed to the mode
    with SeenFunctions() as mode, internals.functional_bodies_traced():
        F.local_response_norm(x, 2)
        assert F.has_torch_function_unary is not original
    assert len(mode.calls) > 1 and F.local_response_norm not in mode.calls  # its ops, one by one
    assert F.has_torch_function_unary is original  # put back
    F.has_torch_function_unary = lambda *a: False  # a stray patch ...
    internals.restore_functional_checks()  # ... is undone by the restore
    assert F.has_torch_function_unary is original


def test_raise_in_thread_reaches_a_thread_at_its_next_bytecode():
    import threading
    import time

    class Stop(Exception):
        pass

    stopped = []

    def loop():
        try:
            while True:
                time.sleep(0.001)
        except Stop:
            stopped.append(True)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    assert internals.raise_in_thread(thread.ident, Stop)
    thread.join(5)
    assert stopped == [True]
    assert not internals.raise_in_thread(thread.ident, Stop)  # no such thread any more


def test_thread_is_importing_sees_importlib_frames():
    import importlib
    import sys
    import threading

    seen = []

    class Finder:
        def find_spec(self, name, path=None, target=None):
            if name == "cnnarch_probe_module":
                seen.append(internals.thread_is_importing(threading.get_ident()))
            return None

    sys.meta_path.insert(0, Finder())
    try:
        with __import__("pytest").raises(ImportError):
            importlib.import_module("cnnarch_probe_module")
    finally:
        sys.meta_path.pop(0)
    assert seen == [True]
    assert not internals.thread_is_importing(threading.get_ident())


def test_removing_a_global_hook_leaves_no_entry_behind() -> None:
    assert not internals.any_global_module_hook()
    handle = register_module_forward_hook(
        lambda module, args, kwargs, out: None, with_kwargs=True, always_call=True
    )
    assert internals.any_global_module_hook()
    internals.remove_global_hook(handle)
    assert not internals.any_global_module_hook()
