"""One forward (and, for training, backward) pass on meta tensors, recorded op by op.

Three hooks see the pass at three levels:

- module hooks open a frame per module call, so every op is attributed to the call it ran in;
- a ``__torch_function__`` mode opens a frame per functional call (``torch.cat``, ``+``,
  ``F.relu``) made directly in a module that has children, so those calls get rows of their own;
- a ``__torch_dispatch__`` mode sees every aten op: it counts MACs and FLOPs by the rules of
  `cnnarch.analysis.rules` and records which tensor storages each op reads and creates, which
  is all the memory model needs.

Meta kernels cost nothing in memory but some are slow Python code (BatchNorm's decomposition,
``addmm``): `FastMeta` answers those from shape rules and from a per-pass cache of output
metadata keyed by the input metadata, so a ResNet's repeated blocks are computed once.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torch.overrides import TorchFunctionMode

from cnnarch.analysis.nested import iter_tensors as iter_tensors
from cnnarch.analysis.nested import map_tensors
from cnnarch.analysis.rules import op_cost, op_name
from cnnarch.analysis.torch_internals import (
    OpOverload,
    TorchDispatchMode,
    device_constructors,
    disable_torch_dispatch,
    disable_torch_function,
    op_schema,
    remove_global_hook,
    storage_id,
)

aten = torch.ops.aten

FORWARD, BACKWARD = "forward", "backward"
NEVER_FREED = 1 << 62  # last-use time of storages that live until the end of the step
META = torch.device("meta")


def meta_empty(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """`torch.empty(shape, dtype=dtype, device="meta")` in half the time: torch's argument
    parser takes a `size=` keyword and a device object faster than a positional size and a
    device string (about 0.8 us against 1.6 us a call, and a pass makes thousands).

    Args:
        shape: the sizes.
        dtype: the dtype.
    """
    return torch.empty(size=shape, dtype=dtype, device=META)


@functools.cache
def _tensor_positions(op: OpOverload) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Positions of an aten op's tensor arguments and of its tensor-list arguments, from its
    schema; None when a tensor could hide in another type."""
    singles: list[int] = []
    lists: list[int] = []
    for position, argument in enumerate(op_schema(op).arguments):
        kind = str(argument.type)
        if kind in ("Tensor", "Optional[Tensor]"):
            singles.append(position)
        elif kind in ("List[Tensor]", "List[Optional[Tensor]]"):
            lists.append(position)
        elif "Tensor" in kind:
            return None
    return tuple(singles), tuple(lists)


def op_inputs(op: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[torch.Tensor]:
    """The tensors an aten call reads: `iter_tensors` of its arguments, without walking the
    lists of ints (strides, sizes) that most calls carry.

    Args:
        op: the aten overload called.
        args: the call's positional arguments.
        kwargs: its keyword arguments.
    """
    positions = _tensor_positions(op)
    if positions is None:
        return iter_tensors(args) + iter_tensors(kwargs) if kwargs else iter_tensors(args)
    singles, lists = positions
    count = len(args)
    found = [args[i] for i in singles if i < count and isinstance(args[i], torch.Tensor)]
    for i in lists:
        if i < count:
            found.extend(t for t in args[i] if isinstance(t, torch.Tensor))
    if kwargs:
        found.extend(iter_tensors(kwargs))
    return found


storage_key = storage_id  # identity of the storage behind a tensor (views share it)


def _reduced_precision_stats_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _batch_norm_shape_rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    # Output like the input; the saved mean and inverse std have one entry per channel, in
    # float32 for half inputs. Checked against the meta kernel in the tests. Statistics of
    # the wrong size go to the kernel (and its error).
    x = args[0]
    stats_dtype = _reduced_precision_stats_dtype(x.dtype)
    channels = x.shape[1] if x.dim() > 1 else 0
    for t in args[1:5]:
        if isinstance(t, torch.Tensor) and t.numel() != channels:
            return None
    mean = meta_empty((channels,), stats_dtype)
    invstd = meta_empty((channels,), stats_dtype)
    return _like(x), mean, invstd


def _like(x: torch.Tensor) -> torch.Tensor:
    """`torch.empty_like(x)` (same strides for a dense x), without its slow meta path."""
    if x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last):
        return torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=META)
    return torch.empty_like(x)


def _convolution_shape_rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    # The meta kernel (Python, ~0.1 ms) returns a contiguous tensor of this shape; for anything
    # it would reject or treat specially (transposed, channel mismatch, a kernel larger than
    # the padded input, shorthand argument lists), None defers to it. Checked in the tests.
    if kwargs or len(args) != 9 or args[6]:
        return None
    x, weight, _, stride, padding, dilation, _, _, groups = args
    sizes = x.shape[2:]
    kernel = weight.shape[2:]
    dims = len(sizes)
    if not (len(stride) == len(padding) == len(dilation) == len(kernel) == dims):
        return None
    if x.shape[1] == 0 or weight.shape[1] * groups != x.shape[1]:
        return None
    shape = [x.shape[0], weight.shape[0]]
    for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation, strict=True):
        if n + 2 * p < d * (k - 1) + 1:
            return None
        shape.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
    return meta_empty(shape, x.dtype)


def _matmul_shape_rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    # mm(a, b) and addmm(bias, a, b): (m x k) @ (k x n) -> a contiguous m x n. addmm's meta
    # kernel is a Python decomposition that takes milliseconds; unusual bias shapes, dtype
    # mixes and mismatched sizes go to it (and its error messages). Checked in the tests.
    bias, a, b = (None, *args) if len(args) == 2 else args[:3]
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0] or a.dtype != b.dtype:
        return None
    shape = (a.shape[0], b.shape[1])
    if bias is not None and (bias.dtype != a.dtype or bias.shape not in ((shape[1],), shape)):
        return None
    return meta_empty(shape, a.dtype)


def _plain(x: Any) -> bool:
    """A floating tensor in the standard layout that no other layout could claim (the
    kernels' layout choice is only mirrored for these)."""
    return (
        isinstance(x, torch.Tensor)
        and x.dtype.is_floating_point
        and 0 < x.dim() <= 4
        and x.is_contiguous()
        and not (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))
    )


def _elementwise_shape_rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    # relu(x), add/sub/mul/div(x, y) of equal shapes and dtypes: an output like x. The meta
    # kernels are Python references (~0.1-0.2 ms a call). Checked in the tests.
    x = args[0]
    if not _plain(x) or any(
        not _plain(y) or y.shape != x.shape or y.dtype != x.dtype for y in args[1:2]
    ):
        return None
    return meta_empty(x.shape, x.dtype)


def _empty_shape_rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    # empty(size, dtype=..., layout=strided, device=meta), as F.batch_norm makes its "reserve"
    # tensor: cheaper than the cache's lookup (~3 us). Other layouts and devices, pinned
    # memory and memory formats go to the kernel.
    if set(kwargs) - {"dtype", "layout", "device"} or kwargs.get("device") != META:
        return None
    if kwargs.get("layout") not in (None, torch.strided):
        return None
    return meta_empty(args[0], kwargs.get("dtype") or torch.get_default_dtype())


def _in_place_relu_shape_rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # relu_(x) of a plain tensor returns x itself (its meta kernel checks nothing more).
    return args[0] if _plain(args[0]) else None


def _cat_shape_rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    # cat(tensors, dim) of plain tensors that differ only along dim (Python meta: ~50 us).
    tensors = args[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    first = tensors[0] if tensors else None
    if first is None or not all(_plain(t) and t.dim() == first.dim() for t in tensors):
        return None
    if not -first.dim() <= dim < first.dim():
        return None
    dim %= first.dim()
    shape = list(first.shape)
    for t in tensors[1:]:
        if t.dtype != first.dtype or any(
            a != b for d, (a, b) in enumerate(zip(t.shape, first.shape, strict=True)) if d != dim
        ):
            return None
        shape[dim] += t.shape[dim]
    return meta_empty(shape, first.dtype)


# Ops whose output metadata follows from a rule, skipping a slow meta kernel; a rule that
# returns None leaves the call to the kernel.
SHAPE_RULES = {
    aten.native_batch_norm.default: _batch_norm_shape_rule,
    aten._native_batch_norm_legit.default: _batch_norm_shape_rule,
    aten._native_batch_norm_legit.no_stats: _batch_norm_shape_rule,
    aten.convolution.default: _convolution_shape_rule,
    aten.mm.default: _matmul_shape_rule,
    aten.addmm.default: _matmul_shape_rule,
    aten.relu.default: _elementwise_shape_rule,
    aten.relu_.default: _in_place_relu_shape_rule,
    aten.add.Tensor: _elementwise_shape_rule,
    aten.sub.Tensor: _elementwise_shape_rule,
    aten.mul.Tensor: _elementwise_shape_rule,
    aten.div.Tensor: _elementwise_shape_rule,
    aten.cat.default: _cat_shape_rule,
    aten.empty.memory_format: _empty_shape_rule,
}


FRESH, IN_PLACE, OTHER = "fresh", "in-place", "other"


@functools.cache
def _op_kind(op: OpOverload) -> str:
    """FRESH: mutates nothing and returns only new tensors (outputs can be rebuilt from
    metadata); IN_PLACE: mutates and returns its first argument only (``add_``, ``relu_``)."""
    schema = op_schema(op)
    args, returns = schema.arguments, schema.returns
    if not returns or any(str(ret.type) != "Tensor" for ret in returns):
        return OTHER
    if all(a.alias_info is None for a in args) and all(r.alias_info is None for r in returns):
        return FRESH
    first = args[0].alias_info if args else None
    if (
        len(returns) == 1
        and first is not None
        and first.is_write
        and returns[0].alias_info is not None
        and returns[0].alias_info.before_set == first.before_set
        and all(a.alias_info is None for a in args[1:])
    ):
        return IN_PLACE
    return OTHER


def _meta_key(value: Any) -> Any:
    """A hashable stand-in for an op argument: tensors by their metadata, the rest as is."""
    if isinstance(value, torch.Tensor):
        return (value.shape, value.stride(), value.dtype, value.storage_offset())
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], (int, float)):  # aten lists are of one type
            return tuple(value)
        return tuple([_meta_key(item) for item in value])
    if isinstance(value, dict):
        return tuple([(k, _meta_key(v)) for k, v in value.items()])
    return value


class FastMeta(TorchDispatchMode):
    """Runs meta ops, answering slow ones from shape rules or from earlier identical calls."""

    def __init__(self) -> None:
        super().__init__()
        # input metadata -> output metadata (FRESH ops) or None (IN_PLACE ops: checked once)
        self._outputs: dict[Any, tuple[tuple[Any, ...], bool] | None] = {}

    def run(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """`func(*args, **kwargs)` on meta: from a shape rule, from an earlier identical call,
        or from the kernel.

        Args:
            func: the aten overload called.
            args: the call's positional arguments.
            kwargs: its keyword arguments.
        """
        rule = SHAPE_RULES.get(func)
        if rule is not None:
            out = rule(args, kwargs)
            if out is not None:
                return out
        kind = _op_kind(func)
        if kind == OTHER:
            return func(*args, **kwargs)
        try:
            key = (func, _meta_key(args), _meta_key(kwargs))
            seen = key in self._outputs
        except TypeError:  # an unhashable argument: run the kernel
            return func(*args, **kwargs)
        if kind == IN_PLACE:
            # The kernel only checks the arguments (shapes, dtypes); equal metadata, equal verdict.
            if seen:
                return args[0]
            out = func(*args, **kwargs)
            self._outputs[key] = None
            return out
        if seen:
            cached = self._outputs[key]
            assert cached is not None
            specs, single = cached
            outs = tuple(
                torch.empty_strided(shape, stride, dtype=dtype, device=META)
                for shape, stride, dtype in specs
            )
            return outs[0] if single else outs
        out = func(*args, **kwargs)
        single = isinstance(out, torch.Tensor)
        outs = (out,) if single else tuple(out)
        if all(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in outs):
            self._outputs[key] = (tuple((t.shape, t.stride(), t.dtype) for t in outs), single)
        return out

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return self.run(func, args, kwargs or {})


# Ops whose CPU kernels require these arguments to have one dtype and whose meta kernels do
# not check it, by `id` of the op (an op's own hash is Python code, and this is asked per op).
_SAME_DTYPE_ARGS = {
    id(aten.convolution.default): (0, 1, 2),  # input, weight, bias
    id(aten.mm.default): (0, 1),
    id(aten.bmm.default): (0, 1),
    id(aten.addmm.default): (0, 1, 2),
    id(aten.baddbmm.default): (0, 1, 2),
}
CPU_REPLAY_LIMIT = 64 * 2**20  # bytes of uninitialized CPU tensors a replay may allocate


def needs_data(err: BaseException) -> bool:
    """Whether a meta pass failed for want of real data: an op without a meta kernel
    (`nonzero`, `nms`), `.item()` or `bool()` of a tensor, a copy to the CPU, an argument
    that must be a CPU tensor. PyTorch's messages for all of these name the meta device.

    Args:
        err: what the meta pass raised.
    """
    return isinstance(err, (RuntimeError, NotImplementedError, ValueError)) and (
        "meta" in str(err).lower()
    )


def _same_dtypes(args: tuple[Any, ...], positions: tuple[int, ...]) -> bool:
    dtype = args[0].dtype
    for i in positions:
        if i < len(args) and args[i] is not None and args[i].dtype != dtype:
            return False
    return True


def cpu_error(func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Exception | None:
    """The error PyTorch's CPU kernel raises for this call, replayed on uninitialized CPU
    tensors of the same shapes, strides and dtypes; None when it accepts the call, or when
    the tensors would take more than `CPU_REPLAY_LIMIT` bytes.

    Args:
        func: the aten overload called.
        args: the call's positional arguments.
        kwargs: its keyword arguments.
    """
    meta_tensors = [t for t in iter_tensors((args, kwargs)) if t.device.type == "meta"]
    if sum(t.numel() * t.element_size() for t in meta_tensors) > CPU_REPLAY_LIMIT:
        return None
    if not all(t.is_floating_point() for t in meta_tensors):
        return None  # integer arguments (indices, lengths) would be garbage: no replay

    def on_cpu(t: torch.Tensor) -> torch.Tensor:
        if t.device.type == "meta":
            return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype)
        return t

    with disable_torch_function(), disable_torch_dispatch():
        try:
            func(*map_tensors(args, on_cpu), **map_tensors(kwargs, on_cpu))
        except Exception as err:
            return err
    return None


@dataclass(eq=False, slots=True)
class Frame:
    """One module call or one functional call, with what ran inside it."""

    path: str
    type: str
    depth: int
    kind: str  # "module", "op" or "root" (the sentinel above the model)
    leaf: bool
    module: nn.Module | None = None
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)
    input_keys: list[int] = field(default_factory=list)  # storages of the tensors it read
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    output_keys: list[int] = field(default_factory=list)
    output_elements: int = 0
    output_bytes: int = 0
    children: list[Frame] = field(default_factory=list)
    macs: int = 0
    flops: int = 0
    new_keys: list[int] = field(default_factory=list)  # storages first written in this frame
    saved_keys: list[int] = field(default_factory=list)  # storages autograd saved here first
    ops: int = 0


@dataclass(slots=True)
class StorageRecord:
    """One storage seen in the pass: its size and the interval in which it is alive."""

    nbytes: int
    created: int  # clock of the op that first wrote it; -1 for storages made before the pass
    last_use: int  # clock of the last op that read or wrote it (forward and backward)
    last_forward_use: int
    kind: str  # "param", "buffer", "input", "activation" (anything the pass created)
    handle: Any = None  # keeps the storage alive, so that its key is never reused
    itemsize: int = 1
    saved: bool = False
    is_grad: bool = False


def _shapes(value: Any) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for t in iter_tensors(value)]


def _function_name(func: Any) -> str:
    name = getattr(func, "__name__", None) or type(func).__name__
    if name.startswith("__i") and name.endswith("__") and name != "__index__":
        return name[3:-2] + "_"  # __iadd__ -> add_
    if name.startswith("__") and name.endswith("__"):
        return name.strip("_")
    return name


_FACTORIES = device_constructors()


# The hooks' own tensor inspection (shapes, storages) bypasses `_FunctionFrames`: it is not the
# model's code, and a mode call per attribute read is most of the hooks' cost.
own_code = disable_torch_function


class _FunctionFrames(TorchFunctionMode):
    """Gives functional calls made directly in a non-leaf module a frame of their own, and
    (on meta) puts the tensors that the forward pass creates with a factory function on meta,
    whatever device it names: `torch.zeros(n)` and `torch.empty(n, device="cpu")` allocate
    nothing."""

    def __init__(self, tracer: Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tracer = self.tracer
        if func in _FACTORIES and tracer.on_meta:
            kwargs["device"] = META
        top = tracer.stack[-1]
        if top.leaf or top.kind != "module" or tracer.failed or tracer.phase != FORWARD:
            return func(*args, **kwargs)
        frame = tracer.open_op(_function_name(func), args, kwargs)
        try:
            out = func(*args, **kwargs)
        except Exception:
            tracer.fail()
            raise
        tracer.close_op(frame, out)
        return out


class Tracer(FastMeta):
    """Records one pass; use as ``with tracer.recording(): model(x)``."""

    def __init__(
        self, module_names: dict[int, str], leaves: set[int], on_meta: bool = True
    ) -> None:
        super().__init__()
        self.on_meta = on_meta  # False: the pass runs on real CPU tensors
        self.module_names = module_names
        self.leaves = leaves
        self.top = Frame(path="", type="", depth=-1, kind="root", leaf=False)
        self.stack: list[Frame] = [self.top]
        self.storages: dict[int, StorageRecord] = {}
        self.clock = 0
        self.phase = FORWARD
        self.failed = False
        self.failed_in: Frame | None = None
        self.forward_end = 0  # clock at the end of the forward pass
        self.uncounted_ops: Counter[str] = Counter()
        self._handles: list[Any] = []

    # -- registration of what exists before the pass ------------------------------------------
    def register(self, tensor: torch.Tensor, kind: str) -> None:
        """Note a tensor that exists before the pass (its storage, once).

        Args:
            tensor: the tensor.
            kind: "param", "buffer", "input", "grad", "state" or "activation".
        """
        key = storage_key(tensor)
        if key not in self.storages:
            storage = tensor.untyped_storage()
            self.storages[key] = StorageRecord(
                storage.nbytes(), -1, -1, -1, kind, storage, tensor.element_size()
            )

    # -- module hooks -------------------------------------------------------------------------
    def attach(self) -> None:
        # Global hooks (two registrations, whatever the model's size); calls of modules that
        # are not the model's own (a zoo model's size check builds a twin) are ignored.
        self._handles.append(register_module_forward_pre_hook(self._enter_module))
        # always_call: the hook also runs when the forward raises, so the failing module is
        # known before any caller (a zoo model's size check, say) runs code of its own.
        self._handles.append(
            register_module_forward_hook(self._exit_module, with_kwargs=True, always_call=True)
        )

    def detach(self) -> None:
        for handle in self._handles:
            remove_global_hook(handle)
        self._handles.clear()

    # Frames are for the forward pass: in backward, activation checkpointing reruns modules
    # (and stops them early with an exception of its own).
    def _enter_module(self, module: nn.Module, args: Any) -> None:
        if id(module) in self.module_names and not self.failed and self.phase == FORWARD:
            self.enter_module(module)

    def _exit_module(self, module: nn.Module, args: Any, *kwargs_and_output: Any) -> None:
        # Torch passes (kwargs, output) normally, and (output,) alone when it calls the hook
        # because the forward raised.
        if id(module) not in self.module_names or self.phase != FORWARD:
            return
        if len(kwargs_and_output) == 1:
            self.exit_module_raising(module, args)
        elif not self.failed:
            self.exit_module(module, args, *kwargs_and_output)

    def enter_module(self, module: nn.Module) -> None:
        """Open the frame of a call of one of the model's modules.

        Args:
            module: one of the model's modules, about to run.
        """
        parent = self.stack[-1]
        frame = Frame(
            path=self.module_names[id(module)],
            type=type(module).__name__,
            depth=parent.depth + 1,
            kind="module",
            leaf=id(module) in self.leaves,
            module=module,
        )
        parent.children.append(frame)
        self.stack.append(frame)

    def exit_module(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        """Close the frame of a module call that returned `output`.

        Args:
            module: the module that ran.
            args: its positional inputs.
            kwargs: its keyword inputs.
            output: what it returned.
        """
        with own_code():
            frame = self.stack.pop()
            tensors = iter_tensors(args) + iter_tensors(kwargs) if kwargs else iter_tensors(args)
            frame.input_shapes = [tuple(t.shape) for t in tensors]
            frame.input_keys = [storage_key(t) for t in tensors]
            self._finish(frame, output)

    def exit_module_raising(self, module: nn.Module, args: Any) -> None:
        """A module's forward raised: keep its frame open, it is where the pass failed.

        Args:
            module: the module whose forward raised.
            args: its positional inputs.
        """
        self.fail()
        if self.failed_in is not None and self.failed_in.module is module:
            with own_code():
                self.failed_in.input_shapes = self.failed_in.input_shapes or _shapes(args)

    def _finish(self, frame: Frame, output: Any) -> None:
        tensors = list(iter_tensors(output))
        frame.output_shapes = [tuple(t.shape) for t in tensors]
        frame.output_keys = [storage_key(t) for t in tensors]
        frame.output_elements = sum(t.numel() for t in tensors)
        frame.output_bytes = sum(t.numel() * t.element_size() for t in tensors)

    # -- functional-call frames ---------------------------------------------------------------
    def open_op(self, name: str, args: Any, kwargs: Any) -> Frame:
        """Open the frame of a functional call made in a module with children.

        Args:
            name: the function's name (`add`, `cat`).
            args: its positional arguments.
            kwargs: its keyword arguments.
        """
        parent = self.stack[-1]
        prefix = f"{parent.path}." if parent.path else ""
        with own_code():
            tensors = iter_tensors(args) + iter_tensors(kwargs)
            input_shapes = [tuple(t.shape) for t in tensors]
            input_keys = [storage_key(t) for t in tensors]
        frame = Frame(
            path=f"{prefix}{name}()",
            type=name,
            depth=parent.depth + 1,
            kind="op",
            leaf=True,
            input_shapes=input_shapes,
            input_keys=input_keys,
        )
        self.stack.append(frame)
        return frame

    def close_op(self, frame: Frame, output: Any) -> None:
        """Close the frame `open_op` opened (dropped if the call allocated and counted nothing).

        Args:
            frame: the frame.
            output: what the function returned.
        """
        self.stack.pop()
        # Calls that ran no op, or only views (x.view, x[:, 0], x.size()), get no row.
        if frame.ops and (frame.new_keys or frame.flops):
            with own_code():
                self._finish(frame, output)
            self.stack[-1].children.append(frame)
        else:
            self.stack[-1].saved_keys.extend(frame.saved_keys)

    # -- aten ops -----------------------------------------------------------------------------
    def run(self, func: OpOverload, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """`func(*args, **kwargs)`: on meta as `FastMeta` runs it, with the CPU kernel's checks
        and wording of errors; on the CPU as it is.

        Args:
            func: the aten overload called.
            args: the call's positional arguments.
            kwargs: its keyword arguments.
        """
        if not self.on_meta:
            return func(*args, **kwargs)
        positions = _SAME_DTYPE_ARGS.get(id(func))
        if positions is not None and not _same_dtypes(args, positions):
            # The meta kernels skip this check of the CPU and CUDA kernels.
            error = cpu_error(func, args, kwargs)
            if error is not None:
                raise error
        try:
            return FastMeta.run(self, func, args, kwargs)
        except RuntimeError as err:
            # Meta kernels word some errors their own way ("Invalid channel dimensions"):
            # PyTorch's real message comes from its CPU kernel, given the same call.
            if needs_data(err):
                raise
            error = cpu_error(func, args, kwargs)
            if error is not None and type(error) is type(err):
                raise error from err
            raise

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.failed:
            return func(*args, **kwargs)
        try:
            out = self.run(func, args, kwargs)
        except BaseException:
            self.fail()
            raise
        self._record(func, args, kwargs, out)
        return out

    def call_op(self, func: OpOverload, *args: Any, **kwargs: Any) -> Any:
        """Run and record one aten op as `__torch_dispatch__` would, without the trip through
        the dispatcher (a few microseconds an op). Inside `__torch_dispatch__` torch has
        taken this mode off the stack and turned `__torch_function__` off; here both are
        switched off to the same end (a kernel's own ops are not recorded).

        Args:
            func: the aten overload to run.
            *args: its positional arguments.
            **kwargs: its keyword arguments.
        """
        with own_code(), disable_torch_dispatch():
            return self.__torch_dispatch__(func, (), args, kwargs)

    def _record(self, func: Any, args: Any, kwargs: Any, out: Any) -> None:
        """Advance the clock; note the storages the op read, the ones it created, its cost."""
        now = self.clock
        self.clock += 1
        storages = self.storages
        read = op_inputs(func, args, kwargs)
        for tensor in read:
            record = storages.get(storage_key(tensor))
            if record is not None:
                record.last_use = now
                if self.phase == FORWARD:
                    record.last_forward_use = now
            else:  # a tensor made outside the pass (a constant attribute, say)
                self.register(tensor, "activation")
        frame = self.stack[-1]
        for tensor in iter_tensors(out):
            key = storage_key(tensor)
            record = storages.get(key)
            if record is None:
                storage = tensor.untyped_storage()
                storages[key] = StorageRecord(
                    storage.nbytes(), now, now, now, "activation", storage, tensor.element_size()
                )
                if self.phase == FORWARD:
                    frame.new_keys.append(key)
            else:
                record.last_use = now
                if self.phase == FORWARD:
                    record.last_forward_use = now
                record.nbytes = max(record.nbytes, tensor.untyped_storage().nbytes())
        if self.phase != FORWARD:
            return
        frame.ops += 1
        macs, flops, counted = op_cost(func, args, kwargs, out)
        frame.macs += macs
        frame.flops += flops
        if not counted:
            self.uncounted_ops[op_name(func)] += 1

    # -- autograd -----------------------------------------------------------------------------
    def pack_saved(self, tensor: torch.Tensor) -> torch.Tensor:
        """`saved_tensors_hooks`' pack: note that autograd keeps `tensor` for backward.

        Args:
            tensor: a tensor autograd saves.
        """
        key = storage_key(tensor)
        record = self.storages.get(key)
        if record is None:
            self.register(tensor, "activation")
            record = self.storages[key]
        if not record.saved and record.kind == "activation":
            self.stack[-1].saved_keys.append(key)
        record.saved = True
        return tensor

    def end_forward(self, output: Any) -> None:
        """Close the forward pass; the model's outputs stay alive to its end.

        Args:
            output: the model's output.
        """
        self.forward_end = self.clock
        for tensor in iter_tensors(output):
            key = storage_key(tensor)
            record = self.storages.get(key)
            if record is None:
                self.register(tensor, "activation")
            elif record.kind == "activation":
                record.last_forward_use = max(record.last_forward_use, self.forward_end)
                record.last_use = max(record.last_use, self.forward_end)

    def start_backward(self) -> None:
        self.forward_end = self.clock
        self.phase = BACKWARD

    def fail(self) -> None:
        """Note where the pass failed; from now on ops pass through unrecorded."""
        if not self.failed:
            self.failed = True
            self.failed_in = self.stack[-1] if len(self.stack) > 1 else None

    def innermost(self) -> Frame | None:
        """Where the pass failed (the deepest frame open at the first error), if it did."""
        return self.failed_in if self.failed else (self.stack[-1] if len(self.stack) > 1 else None)

    def recording(self) -> _Recording:
        return _Recording(self)


class _Recording:
    """Context that turns on both modes around the model call."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.functions = _FunctionFrames(tracer)

    def __enter__(self) -> Tracer:
        self.tracer.attach()
        self.functions.__enter__()
        self.tracer.__enter__()
        return self.tracer

    def __exit__(self, *exc: Any) -> None:
        self.tracer.__exit__(*exc)
        self.functions.__exit__(*exc)
        self.tracer.detach()
