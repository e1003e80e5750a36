"""`analyze`: shapes, parameters, MACs and memory of any `nn.Module`, from one traced pass.

The pass runs on meta tensors (nothing computed, nothing allocated) wherever the model allows;
an op that needs real data (`nonzero`, `.item()`, a CPU-only argument) makes the analyzer run
the same trace on real CPU tensors instead, and the summary says so (`Summary.mode`).

The user's module is not changed: for the duration of the call only, each submodule's parameter
and buffer dictionaries are replaced by dictionaries of stand-ins of the same shapes (what
`torch.func.functional_call` does tensor by tensor), so no weight is copied to meta or moved and
no gradient lands on it. Every module's attributes and children are noted before the pass and
put back after it, whatever the forward assigned (a submodule it creates on first use, a
cached tensor); a pass on real tensors that runs an optimizer step steps copies of the weights.

This module knows no model by name: `cnnarch.analyze`, the front door, resolves zoo names and
their default input sizes, then calls `analyze` here.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import numbers
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parameter import UninitializedTensorMixin

from cnnarch import units
from cnnarch.analysis.deadline import AnalysisTimeout, run_with_time_limit
from cnnarch.analysis.fast_leaves import fast_leaves
from cnnarch.analysis.memory import live_peak
from cnnarch.analysis.nested import iter_tensors, map_tensors
from cnnarch.analysis.precision import dtype_name
from cnnarch.analysis.summary import LayerRow, Summary, make_row
from cnnarch.analysis.torch_internals import (
    child_modules,
    restore_functional_checks,
    swap_tensor_dicts,
    tensor_dicts,
)
from cnnarch.analysis.trace import (
    NEVER_FREED,
    FastMeta,
    Frame,
    Tracer,
    meta_empty,
    needs_data,
    storage_key,
)
from cnnarch.analysis.training_modes import StepTrace, TrainingStep, resolve_step
from cnnarch.errors import CnnarchError, CnnarchValueError, describe
from cnnarch.meta import accepts, meta_copy, smallest_square_side

DEVICES = ("auto", "meta", "cpu")

# An input size, one example's (the batch is prepended), or one per positional input.
InputSize = Sequence[int] | Sequence[Sequence[int]]


@dataclass
class _ParamInfo:
    numel: int
    nbytes: int
    trainable: bool
    dtype: torch.dtype


def analyze(
    model: nn.Module,
    input_size: InputSize | None = None,
    *,
    inputs: Any = None,
    batch_size: int = 1,
    dtype: torch.dtype | None = None,
    train: bool = False,
    optimizer: str | None = None,
    device: str = "auto",
    timeout: float | None = None,
    name: str | None = None,
    step: TrainingStep | None = None,
    default_input_size: Sequence[int] | None = None,
) -> Summary:
    """Analyze a module by tracing one pass, on meta tensors where possible.

    Args:
        model: any `nn.Module`, on any device or on meta (lazy modules included). (A zoo
            model's name is for `cnnarch.analyze`, which builds it and calls this.)
        input_size: the size of one example, without the batch dimension ((3, 224, 224) for
            an image), or a list of such sizes for a model with several inputs; () is a
            0-d (scalar) input, which has no batch dimension. Without it (and without
            `inputs` and `default_input_size`) no pass runs: the summary lists the module
            tree with its parameters and buffers only.
        inputs: instead of `input_size`: a tensor, a tuple of positional inputs, or a dict of
            keyword inputs (nested tensors allowed). On meta only their shapes and dtypes are
            used; a pass on real CPU tensors uses them as they are.
        batch_size: prepended to each `input_size`.
        dtype: analyze the model as if converted to this floating dtype (inputs, floating
            parameters and buffers). Default: the model's own dtypes, and inputs of the dtype
            that holds most of its floating parameters.
        train: trace in train mode and add the memory of a training step.
        optimizer: with `train`, a name in `training_modes.OPTIMIZERS` (default "sgd").
        device: "auto" traces on meta and falls back to real CPU tensors when an op needs
            data; "meta" never computes (an op that needs data is an error); "cpu" computes.
        timeout: seconds the model's code may run (None or `math.inf`: no limit); past it, an
            error names the layer the pass was in. With a limit the pass runs in a worker
            thread, so that a forward blocked in native code stops too (see `deadline`).
        name: the model's name in the summary and in messages (default: a `model_name`
            attribute, or the class name).
        step: with `train`, how the step runs (optimizer, mixed precision, checkpointing,
            accumulation; see `TrainingStep`), instead of `optimizer`.
        default_input_size: the size used when neither `input_size` nor `inputs` is given (a
            zoo model's card size); errors then say that the size was a default.
    """
    if not isinstance(model, nn.Module):
        raise CnnarchValueError(
            f"expected an nn.Module, got {type(model).__name__}"
            + ("; cnnarch.analyze also takes a zoo model's name" if isinstance(model, str) else "")
        )
    name = name or getattr(model, "model_name", None) or type(model).__name__
    training_step = resolve_step(step, optimizer, train)
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise CnnarchValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    if device not in DEVICES:
        raise CnnarchValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    seconds = _check_timeout(timeout)
    if inputs is not None and input_size is not None:
        raise CnnarchValueError("give either input_size or inputs, not both")
    sizes = None
    size_is_default = inputs is None and input_size is None and default_input_size is not None
    if inputs is None:
        _check_batch_size(batch_size)
        size = default_input_size if size_is_default else input_size
        sizes = None if size is None else _check_sizes(size)
    request = _Request(name, sizes, inputs, batch_size, dtype, train, training_step)
    if size_is_default:
        shown = units.shape(default_input_size)  # type: ignore[arg-type]
        request.default_note = (
            f" ({shown} is {name}'s default input size; give another with input_size= or --input)"
        )
    elif input_size is not None:
        request.given_size = True
    if seconds is not None:
        _load_meta_kernels()  # before the clock starts: an import is not to be stopped midway
    with _collector_paused():
        # The pass's own objects (tracer, frames, tensors) are freed when `_analyze` returns,
        # before the collector resumes and would otherwise walk them.
        try:
            return run_with_time_limit(
                lambda: _analyze(model, request, device), seconds, request.abandon
            )
        except CnnarchError:
            raise
        except AnalysisTimeout as stop:
            advice = "give it more time (timeout=, --timeout) or fix the forward pass"
            raise CnnarchError(
                f"{name}: the analysis did not finish within {seconds:g} s{stop.where}; {advice}"
            ) from stop
        except Exception as err:  # the analyzer's promise: one CnnarchError, whatever failed
            raise CnnarchError(f"{name}: the analysis failed: {describe(err)}") from err


@functools.cache
def _load_meta_kernels() -> None:
    """The first meta ops of a process make torch import its meta kernels (and sympy, and
    more: seconds); a time limit would count them, and could stop one of those imports
    halfway. So a timed analysis has them loaded first, once per process."""
    x = torch.empty(2, 3, 8, 8, device="meta")
    y = F.conv2d(x, torch.empty(4, 3, 3, 3, device="meta"), torch.empty(4, device="meta"))
    y = F.batch_norm(y, None, None, training=True).relu()
    F.linear(F.max_pool2d(y, 2).flatten(1), torch.empty(5, 36, device="meta"))


def _check_timeout(timeout: Any) -> float | None:
    """Seconds of the time limit, or None for none (`math.inf` is none too)."""
    if timeout is None:
        return None
    if (
        not isinstance(timeout, numbers.Real)
        or isinstance(timeout, bool)
        or math.isnan(timeout)
        or timeout <= 0
    ):
        raise CnnarchValueError(
            f"timeout must be a positive number of seconds (or None, or math.inf, for no "
            f"limit), got {timeout!r}"
        )
    return None if math.isinf(timeout) else float(timeout)


class _Snapshot:
    """Every module's attributes (parameter and buffer dictionaries, train/eval flag, anything
    a forward assigns) and children, as they were before the pass. `restore()` puts them back,
    once: at the end of the pass, or earlier from another thread when the pass is abandoned."""

    def __init__(self, modules: Iterable[nn.Module]) -> None:
        self.saved = [(m, m.__dict__.copy(), dict(child_modules(m))) for m in modules]
        self.lock = threading.Lock()
        self.restored = False

    def restore(self) -> None:
        with self.lock:
            if self.restored:
                return
            self.restored = True
        for module, attributes, children in self.saved:
            own = module.__dict__
            # A forward that set attributes of its own: remove them. (Deleting one attribute
            # and adding another in the same pass would go unseen; the deleted one comes back.)
            if len(own) != len(attributes):
                for key in own.keys() - attributes.keys():
                    del own[key]
            own.update(attributes)
            registered = child_modules(module)
            # The forward added or replaced a submodule (TorchScript's children are fixed).
            if isinstance(registered, dict) and registered != children:
                registered.clear()
                registered.update(children)


@dataclass
class _Request:
    """What to analyze, checked; and, while it runs, what to undo if it must be abandoned."""

    name: str
    sizes: list[tuple[int, ...]] | None
    inputs: Any
    batch_size: int
    dtype: torch.dtype | None
    train: bool
    step: TrainingStep | None  # with `train`: how the training step runs
    default_note: str = ""  # said in errors when the input size was a default
    given_size: bool = False  # `input_size` was the caller's own
    snapshots: list[_Snapshot] = field(default_factory=list)
    tracer: Tracer | None = None

    def abandon(self) -> str:
        """Undo what a pass blocked in native code changed (it undoes it again, harmlessly,
        if its native call ever returns); where it was, for the error."""
        for snapshot in self.snapshots:
            snapshot.restore()
        restore_functional_checks()
        said = []
        if self.tracer is not None:
            self.tracer.detach()
            frame = self.tracer.innermost()
            if frame is not None:
                said.append(f"the forward pass was in {_location(frame)}")
        said.append("blocked in native code, it is left running in a background thread")
        return f" ({'; '.join(said)})"


class _Lazy(Exception):
    """The model has lazy (uninitialized) parameters or buffers."""


class _NeedsData(Exception):
    """The meta pass reached an op that needs the values of its inputs (where, and which)."""


def _analyze(model: nn.Module, request: _Request, device: str) -> Summary:
    no_forward = getattr(model.forward, "__func__", None) is nn.Module.forward
    if no_forward or (request.sizes is None and request.inputs is None):
        reason = (
            f"{type(model).__name__} has no forward method"
            if no_forward
            else "no input size was given"
        )
        return _parameters_only(model, request, reason)
    if request.train and any(isinstance(m, torch.jit.ScriptModule) for m in model.modules()):
        raise CnnarchError(
            f"{request.name}: TorchScript modules run their own weights, which a training "
            f"pass would change: analyze the eager module for training memory"
        )
    try:
        return _traced_where_possible(model, request, device)
    except _Lazy:
        return _traced_where_possible(_materialized(model, request), request, device)


def _traced_where_possible(model: nn.Module, request: _Request, device: str) -> Summary:
    """On meta, unless the pass needs data (or `device` says otherwise): then on the CPU."""
    reason = ""
    if device != "cpu":
        try:
            return _traced(model, request, on_meta=True, reason="")
        except _NeedsData as need:
            if device == "meta":
                raise CnnarchError(
                    f"{request.name}: the pass needs real data {need}; analyze with "
                    f"device='cpu' or 'auto' to run it on CPU tensors"
                ) from need
            reason = (
                f"the meta pass needs data {need}; costs of data-dependent ops are those of "
                f"this input"
            )
    else:
        reason = "asked for (device='cpu')"
    return _traced(model, request, on_meta=False, reason=reason)


def _traced(model: nn.Module, request: _Request, on_meta: bool, reason: str) -> Summary:
    state = _stand_ins(model, request.dtype, request.train, on_meta)
    dtype = request.dtype or state.main_dtype()
    args, kwargs = _make_inputs(request, dtype, on_meta)
    tracer = _make_tracer(state, args, kwargs, on_meta)
    request.tracer = tracer
    session = StepTrace(request.step, tracer, model) if request.step is not None else None
    with _swapped(state, request):
        if session is None:
            output = _run_traced(model, request, tracer, state, args, kwargs)
        else:
            with session.forward(state.stand_in_params):
                output = _run_traced(model, request, tracer, state, args, kwargs)
            try:
                _run_backward(tracer, output, state)
                session.optimizer_step()
            except AnalysisTimeout:
                raise
            except Exception as err:
                raise CnnarchError(
                    f"{request.name}: the backward pass or optimizer step fails: {describe(err)}"
                ) from err
    inputs = iter_tensors((args, kwargs))
    return _build_summary(
        request, tracer, state, inputs, dtype, "meta" if on_meta else "cpu", reason, session
    )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector during the analysis: the pass creates thousands
    of small objects that all stay alive until the summary is built, so collections in between
    free nothing, and a full one (the heap holds all of torch) costs more than the analysis."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# -- inputs and model ----------------------------------------------------------------------------
def _check_batch_size(batch_size: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise CnnarchValueError(f"batch size must be a positive integer, got {batch_size!r}")


def _check_size(size: Any) -> tuple[int, ...]:
    if not isinstance(size, (tuple, list, torch.Size)) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in size
    ):
        raise CnnarchValueError(
            f"an input size is a tuple of ints like (3, 224, 224), got {size!r}"
        )
    if any(d <= 0 for d in size):
        raise CnnarchValueError(f"input sizes must be positive, got {tuple(size)}")
    return tuple(size)


def _check_sizes(input_size: Any) -> list[tuple[int, ...]]:
    several = (
        isinstance(input_size, (tuple, list))
        and bool(input_size)
        and all(isinstance(s, (tuple, list, torch.Size)) for s in input_size)
    )
    return [_check_size(s) for s in input_size] if several else [_check_size(input_size)]


def _shapes(request: _Request) -> list[tuple[int, ...]]:
    """The input shapes of `request.sizes`: the batch prepended, except to () (a 0-d input,
    a scalar, has no batch dimension)."""
    assert request.sizes is not None
    return [(request.batch_size, *s) if s else () for s in request.sizes]


def _make_inputs(
    request: _Request, dtype: torch.dtype, on_meta: bool
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The pass's inputs: meta tensors, or CPU tensors (zeros for sizes; the user's own tensors
    as they are, so that data-dependent ops see the data)."""
    convert = _meta_tensor if on_meta else _cpu_tensor
    inputs = request.inputs
    if inputs is not None:
        if isinstance(inputs, Mapping):
            return (), {k: map_tensors(v, convert) for k, v in inputs.items()}
        if isinstance(inputs, (tuple, list)):
            return tuple(map_tensors(v, convert) for v in inputs), {}
        return (map_tensors(inputs, convert),), {}
    if on_meta:
        return tuple(meta_empty(s, dtype) for s in _shapes(request)), {}
    return tuple(torch.zeros(s, dtype=dtype) for s in _shapes(request)), {}


def _meta_tensor(t: torch.Tensor) -> torch.Tensor:
    """A meta tensor of the same shape, strides and dtype."""
    return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")


def _cpu_tensor(t: torch.Tensor) -> torch.Tensor:
    if t.device.type == "meta":
        return torch.zeros(t.shape, dtype=t.dtype)
    return t if t.device.type == "cpu" else t.cpu()


def _materialized(model: nn.Module, request: _Request) -> nn.Module:
    """A copy of a model with lazy modules (`nn.LazyLinear`), initialized by a dry pass on
    meta. The copy's tensors are meta stand-ins, so nothing is copied or allocated, and the
    user's module stays uninitialized."""
    twin = meta_copy(model, drop_hooks=False)  # lazy modules size themselves in a pre-hook
    # Uninitialized tensors have a dtype (`LazyLinear(4, dtype=torch.float16)`) but no size.
    floating = Counter(t.dtype for t in _model_tensors(model) if t.dtype.is_floating_point)
    dtype = request.dtype or (
        floating.most_common(1)[0][0] if floating else torch.get_default_dtype()
    )
    args, kwargs = _make_inputs(request, dtype, on_meta=True)
    try:
        with torch.no_grad(), torch.device("meta"):
            twin(*args, **kwargs)
    except AnalysisTimeout:
        raise
    except Exception as err:
        raise CnnarchError(
            f"{request.name}: the dry pass that gives the lazy modules their shapes fails: "
            f"{describe(err)}"
        ) from err
    return twin


def _model_tensors(model: nn.Module) -> Iterator[torch.Tensor]:
    """Every parameter and buffer as each module holds it (a tied one once per holder)."""
    for module in model.modules():
        for tensors in tensor_dicts(module):
            yield from (t for t in tensors.values() if t is not None)


@dataclass
class _State:
    """Stand-ins for the model's parameters and buffers (ties kept: one per object), and
    what the trace needs to know about the model's modules."""

    params: dict[int, _ParamInfo]  # id of the user's parameter -> what it costs
    own_params: dict[int, list[int]]  # id of a module -> ids of its own parameters
    stand_in_params: list[torch.Tensor]
    buffers: list[torch.Tensor]
    names: dict[int, str]  # id of a module -> its path
    leaves: set[int]  # ids of modules without children
    # (module, its parameter dict, its buffer dict) with stand-ins in place of the originals
    swaps: list[tuple[nn.Module, dict[str, Any], dict[str, Any]]]
    scripted: set[int] = field(default_factory=set)  # ids of TorchScript modules

    def modules(self) -> Iterator[nn.Module]:
        return (module for module, _, _ in self.swaps)

    def first_seen_params(self, module_id: int, seen: set[int]) -> tuple[int, int]:
        """Trainable and frozen elements of the module's own parameters not in `seen`
        (which they join): a parameter counts in the first row that holds it.

        Args:
            module_id: id of the module.
            seen: ids of the parameters counted already (updated).
        """
        trainable = frozen = 0
        for pid in self.own_params[module_id]:
            if pid in seen:
                continue
            seen.add(pid)
            info = self.params[pid]
            if info.trainable:
                trainable += info.numel
            else:
                frozen += info.numel
        return trainable, frozen

    def main_dtype(self) -> torch.dtype:
        """The floating dtype that holds most parameter elements (else buffer elements), or
        torch's default dtype for a model with neither: the dtype of the inputs."""
        for sizes in (
            [(p.dtype, p.numel) for p in self.params.values()],
            [(b.dtype, b.numel()) for b in self.buffers],
        ):
            counts: Counter[torch.dtype] = Counter()
            for dtype, numel in sizes:
                if dtype.is_floating_point:
                    counts[dtype] += numel
            if counts:
                return counts.most_common(1)[0][0]
        return torch.get_default_dtype()

    def totals(self) -> tuple[int, int, int, int]:
        """(trainable, frozen) parameter elements, parameter bytes, buffer bytes."""
        params = self.params.values()
        trainable = sum(p.numel for p in params if p.trainable)
        frozen = sum(p.numel for p in params if not p.trainable)
        param_bytes = sum(p.nbytes for p in params)
        buffer_bytes = sum(b.numel() * b.element_size() for b in self.buffers)
        return trainable, frozen, param_bytes, buffer_bytes


def _cpu_stand_in(
    tensor: torch.Tensor, dtype: torch.dtype, is_param: bool, train: bool
) -> torch.Tensor:
    """The tensor a pass on the CPU uses: zeros for a tensor on meta; else the tensor itself
    for a parameter in inference, and a copy for a buffer (a training pass updates it in
    place) and for a parameter in training (the traced optimizer step updates it)."""
    if tensor.device.type == "meta":
        return torch.zeros(tensor.shape, dtype=dtype)
    alias = tensor.detach()
    copied = alias.to("cpu", dtype)
    return alias.clone() if copied is alias and (train or not is_param) else copied


def _stand_ins(model: nn.Module, dtype: torch.dtype | None, train: bool, on_meta: bool) -> _State:
    """Stand-ins for the model's tensors: meta tensors of the same shapes, or the tensors the
    pass uses on the CPU; floating ones in `dtype` if given. Raises `_Lazy` for a model with
    uninitialized (lazy) tensors."""
    by_id: dict[int, torch.Tensor] = {}
    state = _State({}, {}, [], [], {}, set(), [])
    scripted: list[nn.Module] = []

    def stand_in(tensor: torch.Tensor, is_param: bool) -> torch.Tensor:
        twin = by_id.get(id(tensor))
        if twin is None:
            if isinstance(tensor, UninitializedTensorMixin):  # `is_lazy`, without a call
                raise _Lazy
            target = dtype if dtype is not None and tensor.is_floating_point() else tensor.dtype
            twin = by_id[id(tensor)] = (
                meta_empty(tensor.shape, target)
                if on_meta
                else _cpu_stand_in(tensor, target, is_param, train)
            )
            if is_param:
                trainable = tensor.requires_grad
                if train and trainable:
                    twin.requires_grad_(True)
                nbytes = twin.numel() * twin.element_size()
                state.params[id(tensor)] = _ParamInfo(twin.numel(), nbytes, trainable, twin.dtype)
                state.stand_in_params.append(twin)
            else:
                state.buffers.append(twin)
        return twin

    for path, module in model.named_modules():
        state.names[id(module)] = path
        if all(child is None for child in child_modules(module).values()):
            state.leaves.add(id(module))
        own, own_buffers = tensor_dicts(module)
        params = {k: None if p is None else stand_in(p, True) for k, p in own.items()}
        buffers = {k: None if b is None else stand_in(b, False) for k, b in own_buffers.items()}
        state.own_params[id(module)] = [id(p) for p in own.values() if p is not None]
        state.swaps.append((module, params, buffers))
        if isinstance(module, torch.jit.ScriptModule):
            scripted.append(module)
    for module in scripted:
        if id(module) not in state.scripted:
            # Compiled code calls its submodules without Python, so they get no frames of
            # their own: the outermost scripted module is one row holding all of it.
            inner = list(module.modules())
            state.scripted.update(id(m) for m in inner)
            state.leaves.add(id(module))
            state.own_params[id(module)] = [id(p) for p in module.parameters()]
    return state


@contextlib.contextmanager
def _swapped(state: _State, request: _Request) -> Iterator[None]:
    """Give every module its stand-in parameters and buffers and the train/eval flag of the
    request for the duration of the block, then put back every module as it was (`_Snapshot`):
    the user's own dictionaries (and so the very same tensors), flags, and whatever else the
    forward pass assigned (a forward that caches a tensor in an attribute, as torchvision's
    anchor generators do, or builds a submodule on first use, must not leave a stand-in or a
    meta weight behind)."""
    snapshot = _Snapshot(state.modules())
    request.snapshots.append(snapshot)
    try:
        # Only the flags that differ are set (Module.__setattr__ is slow Python).
        for module in state.modules():
            if module.training != request.train:
                module.training = request.train
        swap_tensor_dicts((m, dict(p), dict(b)) for m, p, b in state.swaps)
        yield
    finally:
        snapshot.restore()


def _make_tracer(
    state: _State, args: tuple[Any, ...], kwargs: dict[str, Any], on_meta: bool
) -> Tracer:
    tracer = Tracer(state.names, state.leaves, on_meta=on_meta)
    for param in state.stand_in_params:
        tracer.register(param, "param")
    for buffer in state.buffers:
        tracer.register(buffer, "buffer")
    for tensor in iter_tensors((args, kwargs)):
        tracer.register(tensor, "input")
    return tracer


# -- the pass ------------------------------------------------------------------------------------
def _run_traced(
    model: nn.Module,
    request: _Request,
    tracer: Tracer,
    state: _State,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    train = request.train
    saved_hooks = (
        torch.autograd.graph.saved_tensors_hooks(tracer.pack_saved, lambda t: t)
        if train
        else contextlib.nullcontext()
    )
    # Training stays on the exact path: autograd's saved tensors come from the layers' code.
    fast_path = contextlib.nullcontext() if train else fast_leaves(tracer, state.modules())
    try:
        with torch.set_grad_enabled(train), saved_hooks, tracer.recording(), fast_path:
            output = model(*args, **kwargs)
    except CnnarchError as err:  # the model's own, one line already
        hint = _batch_hint(model, request, args) if tracer.on_meta else ""
        raise CnnarchError(f"{err}{_where(tracer)}{hint}") from err
    except AnalysisTimeout as stop:
        frame = tracer.innermost()
        stop.where = f" (the forward pass was in {_location(frame)})" if frame else ""
        raise
    except Exception as err:
        if tracer.on_meta and needs_data(err):
            frame = tracer.innermost()
            where = f"in {_location(frame)}" if frame else "before any module ran"
            raise _NeedsData(f"{where}: {describe(err)}") from err
        raise CnnarchError(_failure_message(model, request, tracer, args, kwargs, err)) from err
    if not tracer.top.children:
        raise CnnarchError(f"{request.name}: the forward pass did not call the model")
    tracer.end_forward(output)
    return output


def _location(frame: Frame) -> str:
    shapes = ", ".join(str(s) for s in frame.input_shapes)
    return f"`{frame.path or '(model)'}` ({frame.type})" + (f" on input {shapes}" if shapes else "")


def _where(tracer: Tracer) -> str:
    frame = tracer.innermost()
    return f" (the forward pass fails in {_location(frame)})" if frame else ""


def _failure_message(
    model: nn.Module,
    request: _Request,
    tracer: Tracer,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    err: Exception,
) -> str:
    frame = tracer.innermost()
    if frame is not None:
        where = f"in {_location(frame)}"
    else:
        shapes = ", ".join(str(tuple(t.shape)) for t in iter_tensors((args, kwargs)))
        where = f"before any module ran (inputs {shapes or 'without tensors'})"
    message = f"{request.name}: the forward pass fails {where}: {describe(err)}"
    message += request.default_note
    if not tracer.on_meta or not isinstance(err, (RuntimeError, ValueError)):
        return message
    x = args[0] if len(args) == 1 and not kwargs else None
    hint = _batch_hint(model, request, args)
    if hint:
        message += hint
    elif isinstance(x, torch.Tensor) and x.dim() == 4:
        side = min(x.shape[-2:])
        smallest = smallest_square_side(
            meta_copy(model, drop_hooks=True),
            x.shape[1],
            batch=x.shape[0],
            dtype=x.dtype,
            start=max(8, 2 * side),
            within=FastMeta,
        )
        if smallest is not None and smallest > side:
            channels = x.shape[1]
            message += (
                f"; the input is too small: the smallest square input that works is "
                f"{channels}x{smallest}x{smallest}"
            )
    return message


def _batch_hint(model: nn.Module, request: _Request, args: tuple[Any, ...]) -> str:
    """When a pass on the caller's `input_size` fails and the same sizes read as whole
    shapes, batch included (torchinfo's convention), run: the note that says so, else ""
    (a meta pass on a copy: a failing analysis only)."""
    sizes = request.sizes or []
    if not request.given_size or not all(sizes) or len(args) != len(sizes):
        return ""
    inputs = [meta_empty(s, t.dtype) for s, t in zip(sizes, args, strict=True)]
    with FastMeta():
        if not accepts(meta_copy(model, drop_hooks=True), inputs):
            return ""
    one = [s[1:] for s in sizes] if len(sizes) > 1 else sizes[0][1:]
    return (
        f"; note that input_size is one example's size, without the batch (batch_size="
        f"{request.batch_size} is prepended): the model runs on the sizes as given, so their "
        f"first number is a batch: write input_size={one}, batch_size={sizes[0][0]} "
        f"(cnnarch.summary takes sizes with the batch, as torchinfo does)"
    )


def _run_backward(tracer: Tracer, output: Any, state: _State) -> None:
    """Trace backward from every floating output that needs a gradient (seeded with ones)."""
    roots = [t for t in iter_tensors(output) if t.requires_grad]
    tracer.start_backward()
    if roots:
        with tracer.recording():
            seeds = [torch.ones_like(t) for t in roots]
            torch.autograd.backward(roots, seeds)
    for param in state.stand_in_params:
        if param.grad is not None:
            key = storage_key(param.grad)
            if key not in tracer.storages:
                tracer.register(param.grad, "activation")
                tracer.storages[key].created = tracer.clock
            record = tracer.storages[key]
            record.is_grad = True
            record.last_use = NEVER_FREED


# -- parameters only -----------------------------------------------------------------------------
def _parameters_only(model: nn.Module, request: _Request, reason: str) -> Summary:
    """The module tree with parameters and buffers, when no pass can run."""
    try:
        state = _stand_ins(model, request.dtype, train=False, on_meta=True)
    except _Lazy as lazy:
        raise CnnarchError(
            f"{request.name}: its lazy modules have no parameter shapes until a forward pass; "
            f"give an input size (input_size=, --input)"
        ) from lazy
    rows: list[LayerRow] = []
    seen_params: set[int] = set()
    seen_modules: set[int] = set()

    def visit(module: nn.Module, path: str, depth: int) -> tuple[int, int]:
        index = len(rows)
        rows.append(None)  # type: ignore[arg-type]  # filled below, after the subtree
        reused = id(module) in seen_modules
        seen_modules.add(id(module))
        trainable, frozen = state.first_seen_params(id(module), seen_params)
        children = [(n, c) for n, c in child_modules(module).items() if c is not None]
        if not reused:
            for child_name, child in children:
                t, f = visit(child, f"{path}.{child_name}" if path else child_name, depth + 1)
                trainable += t
                frozen += f
        rows[index] = LayerRow(
            path=path,
            type=type(module).__name__,
            depth=depth,
            input_shapes=(),
            output_shapes=(),
            params=trainable + frozen,
            trainable_params=trainable,
            frozen_params=frozen,
            macs=0,
            flops=0,
            output_elements=0,
            output_bytes=0,
            is_leaf=not children,
            reused=reused,
        )
        return trainable, frozen

    visit(model, "", 0)
    trainable, frozen, param_bytes, buffer_bytes = state.totals()
    return Summary(
        model_name=request.name,
        input_shape=(),
        rows=rows,
        total_params=trainable + frozen,
        trainable_params=trainable,
        frozen_params=frozen,
        total_macs=0,
        total_flops=0,
        activation_elements=0,
        activation_bytes=0,
        input_elements=0,
        input_bytes=0,
        param_bytes=param_bytes,
        buffer_bytes=buffer_bytes,
        inference_peak_bytes=0,
        batch_size=request.batch_size,
        dtype=dtype_name(request.dtype or state.main_dtype()),
        mode="parameters",
        mode_reason=reason,
        param_dtypes=_param_dtypes(state),
    )


def _param_dtypes(state: _State) -> dict[str, int]:
    """Parameter elements by dtype."""
    counts: Counter[torch.dtype] = Counter()
    for info in state.params.values():
        counts[info.dtype] += info.numel
    return {dtype_name(dtype): n for dtype, n in counts.items()}


# -- rows and totals -----------------------------------------------------------------------------
class _RowBuilder:
    def __init__(self, tracer: Tracer, state: _State) -> None:
        self.tracer = tracer
        self.state = state
        self.seen_params: set[int] = set()
        self.seen_modules: set[int] = set()
        self.rows: list[LayerRow] = []
        self.tensor_ids: dict[int, int] = {}  # storage key -> its number in the summary

    def number(self, keys: list[int]) -> tuple[int, ...]:
        """The summary's numbers of these storages (a new one for each storage not seen yet)."""
        ids = self.tensor_ids
        if len(keys) == 1:  # most calls: one tensor in, one out
            return (ids.setdefault(keys[0], len(ids)),)
        return tuple([ids.setdefault(key, len(ids)) for key in keys])

    def build(self, frame: Frame) -> LayerRow:
        index = len(self.rows)
        self.rows.append(None)  # type: ignore[arg-type]  # filled below, after the subtree
        reused = False
        trainable = frozen = 0
        if frame.module is not None:
            reused = id(frame.module) in self.seen_modules
            self.seen_modules.add(id(frame.module))
            trainable, frozen = self.state.first_seen_params(id(frame.module), self.seen_params)
        act_elements, act_bytes = self._new_outputs(frame)
        storages = self.tracer.storages
        saved = sum(storages[k].nbytes for k in frame.saved_keys) if frame.saved_keys else 0
        macs, flops = frame.macs, frame.flops
        for child in frame.children:
            row = self.build(child)
            trainable += row.trainable_params
            frozen += row.frozen_params
            macs += row.macs
            flops += row.flops
            act_elements += row.activation_elements
            act_bytes += row.activation_bytes
            saved += row.saved_bytes
        input_ids = self.number(frame.input_keys)
        row = make_row(
            path=frame.path,
            type=(
                f"{frame.module.original_name} (TorchScript)"
                if id(frame.module) in self.state.scripted
                else frame.type
            ),
            depth=frame.depth,
            input_shapes=tuple(frame.input_shapes),
            output_shapes=tuple(frame.output_shapes),
            params=trainable + frozen,
            trainable_params=trainable,
            frozen_params=frozen,
            macs=macs,
            flops=flops,
            output_elements=frame.output_elements,
            output_bytes=frame.output_bytes,
            saved_bytes=saved,
            activation_elements=act_elements,
            activation_bytes=act_bytes,
            kind=frame.kind,
            is_leaf=not frame.children,
            reused=reused,
            input_ids=input_ids,
            output_ids=self.number(frame.output_keys),
        )
        self.rows[index] = row
        return row

    def _new_outputs(self, frame: Frame) -> tuple[int, int]:
        """Elements and bytes of the frame's outputs that it allocated itself."""
        elements = nbytes = 0
        if frame.new_keys:  # most frames of modules with children allocate nothing directly
            outputs = set(frame.output_keys)
            storages = self.tracer.storages
            # A TorchScript module's layers have no rows: everything it allocates is its own.
            scripted = id(frame.module) in self.state.scripted
            for key in frame.new_keys:
                if scripted or key in outputs:
                    record = storages[key]
                    elements += record.nbytes // record.itemsize
                    nbytes += record.nbytes
        return elements, nbytes


def _build_summary(
    request: _Request,
    tracer: Tracer,
    state: _State,
    inputs: list[torch.Tensor],
    dtype: torch.dtype,
    mode: str,
    reason: str,
    session: StepTrace | None,
) -> Summary:
    builder = _RowBuilder(tracer, state)
    builder.number([storage_key(t) for t in inputs])  # the model's inputs are 0, 1, ...
    builder.build(tracer.top.children[0])
    rows = builder.rows
    trainable, frozen, param_bytes, buffer_bytes = state.totals()
    distinct_inputs = {storage_key(t): t for t in inputs}.values()
    input_bytes = sum(t.untyped_storage().nbytes() for t in distinct_inputs)
    input_elements = sum(t.numel() for t in distinct_inputs)
    records = tracer.storages.values()
    forward_peak, _, _ = live_peak(records, forward_end=tracer.forward_end, training=False)
    baseline = param_bytes + buffer_bytes + input_bytes
    training = None
    if session is not None:
        training = session.memory(param_bytes, buffer_bytes, input_bytes)
    input_shapes = tuple(tuple(t.shape) for t in inputs)
    root = rows[0]
    return Summary(
        model_name=request.name,
        input_shape=input_shapes[0] if input_shapes else (),
        rows=rows,
        total_params=trainable + frozen,
        trainable_params=trainable,
        frozen_params=frozen,
        total_macs=root.macs,
        total_flops=root.flops,
        activation_elements=root.activation_elements,
        activation_bytes=root.activation_bytes,
        input_elements=input_elements,
        input_bytes=input_bytes,
        param_bytes=param_bytes,
        buffer_bytes=buffer_bytes,
        inference_peak_bytes=baseline + forward_peak,
        training=training,
        batch_size=request.batch_size,
        dtype=dtype_name(dtype),
        uncounted_ops=dict(tracer.uncounted_ops),
        input_shapes=input_shapes,
        mode=mode,
        mode_reason=reason,
        param_dtypes=_param_dtypes(state),
    )
