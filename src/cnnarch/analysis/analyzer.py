"""`analyze`: shapes, parameters, MACs and memory of any `nn.Module`, from one traced pass.

The pass runs on meta tensors (nothing computed, nothing allocated) wherever the model allows;
an op that needs real data (`nonzero`, `.item()`, a CPU-only argument) makes the analyzer run
the same trace on real CPU tensors instead, and the summary says so (`Summary.mode`).

The user's module is not changed: for the duration of the call only, each submodule's parameter
and buffer dictionaries are replaced by dictionaries of stand-ins of the same shapes (what
`torch.func.functional_call` does tensor by tensor), so no weight is copied to meta or moved and
no gradient lands on it; the dictionaries and the train/eval flags are put back afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import numbers
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import (
    UninitializedBuffer,
    UninitializedParameter,
    UninitializedTensorMixin,
    is_lazy,
)

from cnnarch import units
from cnnarch.analysis.deadline import AnalysisTimeout, Deadline
from cnnarch.analysis.fast_leaves import fast_leaves
from cnnarch.analysis.memory import live_peak
from cnnarch.analysis.smallest import bisect_smallest_side
from cnnarch.analysis.summary import LayerRow, Summary, make_row
from cnnarch.analysis.torch_internals import (
    swap_tensor_dicts,
    tensor_dicts,
)
from cnnarch.analysis.trace import (
    NEVER_FREED,
    FastMeta,
    Frame,
    Tracer,
    iter_tensors,
    meta_empty,
    needs_data,
    storage_key,
)
from cnnarch.analysis.training_modes import StepTrace, TrainingStep, resolve_step
from cnnarch.errors import CnnarchError

DEVICES = ("auto", "meta", "cpu")


@dataclass
class _ParamInfo:
    numel: int
    nbytes: int
    trainable: bool
    dtype: torch.dtype


# Finds models by name and their default input sizes: `(model or name, variant) -> (model,
# name, default input size or None)`. The analyzer knows no model by name; the package that
# holds a model zoo installs one (`cnnarch` installs its zoo's).
ModelResolver = Callable[[Any, str], tuple[nn.Module, str, "tuple[int, ...] | None"]]
_resolver: ModelResolver | None = None


def set_model_resolver(resolver: ModelResolver | None) -> None:
    """Install the function that turns model names into models and gives default sizes."""
    global _resolver
    _resolver = resolver


def _resolve(model: Any, variant: str) -> tuple[nn.Module, str, tuple[int, ...] | None]:
    if _resolver is not None:
        return _resolver(model, variant)
    if isinstance(model, str):
        raise CnnarchError(f"no model zoo is installed to build {model!r}: pass an nn.Module")
    if not isinstance(model, nn.Module):
        raise CnnarchError(f"expected an nn.Module, got {type(model).__name__}")
    return model, getattr(model, "model_name", None) or type(model).__name__, None


def analyze(
    model_or_name: nn.Module | str,
    input_size: Sequence[int] | Sequence[Sequence[int]] | None = None,
    *,
    inputs: Any = None,
    batch_size: int = 1,
    dtype: torch.dtype | None = None,
    train: bool = False,
    optimizer: str | None = None,
    variant: str = "paper",
    device: str = "auto",
    timeout: float | None = None,
    name: str | None = None,
    step: TrainingStep | None = None,
) -> Summary:
    """Analyze a module by tracing one pass, on meta tensors where possible.

    Args:
        model_or_name: any `nn.Module`, on any device or on meta (lazy modules included), or
            the name of a model of the installed zoo (built on meta).
        input_size: (C, H, W) of one example, without the batch dimension, or a list of such
            sizes for a model with several inputs. Defaults to the zoo's input size for a zoo
            model; without one (and without `inputs`) no pass runs: the summary lists the
            module tree with its parameters and buffers only.
        inputs: instead of `input_size`: a tensor, a tuple of positional inputs, or a dict of
            keyword inputs (nested tensors allowed). On meta only their shapes and dtypes are
            used; a pass on real CPU tensors uses them as they are.
        batch_size: prepended to each `input_size`.
        dtype: analyze the model as if converted to this floating dtype (inputs, floating
            parameters and buffers). Default: the model's own dtypes, and inputs of the dtype
            that holds most of its floating parameters.
        train: trace in train mode and add the memory of a training step.
        optimizer: with `train`, a name in `training_modes.OPTIMIZERS` (default "sgd").
        variant: the zoo variant when `model_or_name` is a name.
        device: "auto" traces on meta and falls back to real CPU tensors when an op needs
            data; "meta" never computes (an op that needs data is an error); "cpu" computes.
        timeout: seconds the model's code may run (None: no limit); past it, an error names
            the layer the pass was in.
        name: the model's name in the summary and in messages (default: the zoo name, a
            `model_name` attribute, or the class name).
        step: with `train`, how the step runs (optimizer, mixed precision, checkpointing,
            accumulation; see `TrainingStep`), instead of `optimizer`.
    """
    model, found_name, default_size = _resolve(model_or_name, variant)
    name = name or found_name
    training_step = resolve_step(step, optimizer, train)
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise CnnarchError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    if device not in DEVICES:
        raise CnnarchError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if timeout is not None and (
        not isinstance(timeout, numbers.Real) or isinstance(timeout, bool) or timeout <= 0
    ):
        raise CnnarchError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if inputs is not None and input_size is not None:
        raise CnnarchError("give either input_size or inputs, not both")
    sizes = None
    size_is_default = inputs is None and input_size is None and default_size is not None
    if inputs is None:
        _check_batch_size(batch_size)
        size = default_size if size_is_default else input_size
        sizes = None if size is None else _check_sizes(size)
    request = _Request(
        name, sizes, inputs, batch_size, dtype, train, training_step, Deadline(timeout)
    )
    if size_is_default:
        shown = units.shape(default_size)
        request.default_note = (
            f" ({shown} is {name}'s default input size; give another with input_size= or --input)"
        )
    with _collector_paused():
        # The pass's own objects (tracer, frames, tensors) are freed when `_analyze` returns,
        # before the collector resumes and would otherwise walk them.
        try:
            return _analyze(model, request, device)
        except CnnarchError:
            raise
        except AnalysisTimeout as stop:
            raise CnnarchError(
                f"{name}: the analysis did not finish within {timeout:g} s{stop.where}; "
                f"give it more time (timeout=, --timeout) or fix the forward pass"
            ) from None
        except Exception as err:  # the analyzer's promise: one CnnarchError, whatever failed
            raise CnnarchError(f"{name}: the analysis failed: {_describe(err)}") from err


@dataclass
class _Request:
    """What to analyze, checked."""

    name: str
    sizes: list[tuple[int, ...]] | None
    inputs: Any
    batch_size: int
    dtype: torch.dtype | None
    train: bool
    step: TrainingStep | None  # with `train`: how the training step runs
    deadline: Deadline
    default_note: str = ""  # said in errors when the input size was a default


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
                ) from None
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
    session = StepTrace(request.step, tracer, model) if request.step is not None else None
    with _restore_modes(state, request.train), _swapped(state), request.deadline.running():
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
                    f"{request.name}: the backward pass or optimizer step fails: {_describe(err)}"
                ) from None
    inputs = list(iter_tensors((args, kwargs)))
    return _build_summary(
        request, tracer, state, inputs, dtype, "meta" if on_meta else "cpu", reason, session
    )


def _describe(err: BaseException) -> str:
    """The error's type and first sentence (PyTorch's messages go on with internals)."""
    text = str(err).strip()
    if not text:
        return type(err).__name__
    first = text.splitlines()[0]
    if len(first) > 120 and ". " in first:
        first = first[: first.index(". ") + 1]
    return f"{type(err).__name__}: {first}"


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
        raise CnnarchError(f"batch size must be a positive integer, got {batch_size!r}")


def _check_size(size: Any) -> tuple[int, ...]:
    if not isinstance(size, (tuple, list, torch.Size)) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in size
    ):
        raise CnnarchError(f"an input size is a tuple of ints like (3, 224, 224), got {size!r}")
    if not size:
        raise CnnarchError(
            "an input size needs at least one dimension, like (3, 224, 224) or (10,), got (); "
            "for a model that takes no input, pass inputs=()"
        )
    if any(d <= 0 for d in size):
        raise CnnarchError(f"input sizes must be positive, got {tuple(size)}")
    return tuple(size)


def _check_sizes(input_size: Any) -> list[tuple[int, ...]]:
    several = (
        isinstance(input_size, (tuple, list))
        and bool(input_size)
        and all(isinstance(s, (tuple, list, torch.Size)) for s in input_size)
    )
    return [_check_size(s) for s in input_size] if several else [_check_size(input_size)]


def _make_inputs(
    request: _Request, dtype: torch.dtype, on_meta: bool
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The pass's inputs: meta tensors, or CPU tensors (zeros for sizes; the user's own tensors
    as they are, so that data-dependent ops see the data)."""
    convert = _to_meta if on_meta else _to_cpu
    inputs = request.inputs
    if inputs is not None:
        if isinstance(inputs, Mapping):
            return (), {k: convert(v) for k, v in inputs.items()}
        if isinstance(inputs, (tuple, list)):
            return tuple(convert(v) for v in inputs), {}
        return (convert(inputs),), {}
    assert request.sizes is not None
    shapes = [(request.batch_size, *s) for s in request.sizes]
    if on_meta:
        return tuple(meta_empty(s, dtype) for s in shapes), {}
    return tuple(torch.zeros(s, dtype=dtype) for s in shapes), {}


def _map_tensors(value: Any, convert: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """`convert` applied to every tensor, in the same nesting."""
    if isinstance(value, torch.Tensor):
        return convert(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
        return type(value)(*(_map_tensors(v, convert) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_map_tensors(v, convert) for v in value)
    if isinstance(value, Mapping):
        return {k: _map_tensors(v, convert) for k, v in value.items()}
    return value


def _to_meta(value: Any) -> Any:
    """Meta tensors of the same shapes, strides and dtypes, in the same nesting."""
    return _map_tensors(
        value,
        lambda t: torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta"),
    )


def _cpu_tensor(t: torch.Tensor) -> torch.Tensor:
    if t.device.type == "meta":
        return torch.zeros(t.shape, dtype=t.dtype)
    return t if t.device.type == "cpu" else t.cpu()


def _to_cpu(value: Any) -> Any:
    return _map_tensors(value, _cpu_tensor)


def _tensors(model: nn.Module) -> Iterator[torch.Tensor]:
    for module in model.modules():
        for tensors in tensor_dicts(module):
            yield from (t for t in tensors.values() if t is not None)


def _materialized(model: nn.Module, request: _Request) -> nn.Module:
    """A copy of a model with lazy modules (`nn.LazyLinear`), initialized by a dry pass on
    meta. The copy's tensors are meta stand-ins, so nothing is copied or allocated, and the
    user's module stays uninitialized."""
    memo: dict[int, Any] = {}
    for t in _tensors(model):
        if id(t) in memo:
            continue
        if is_lazy(t):
            kind = UninitializedParameter if isinstance(t, nn.Parameter) else UninitializedBuffer
            memo[id(t)] = kind(requires_grad=t.requires_grad, device="meta", dtype=t.dtype)
        elif isinstance(t, nn.Parameter):
            memo[id(t)] = nn.Parameter(meta_empty(t.shape, t.dtype), t.requires_grad)
        else:
            memo[id(t)] = meta_empty(t.shape, t.dtype)
    twin = copy.deepcopy(model, memo)
    # Uninitialized tensors have a dtype (`LazyLinear(4, dtype=torch.float16)`) but no size.
    floating = Counter(t.dtype for t in _tensors(model) if t.dtype.is_floating_point)
    dtype = request.dtype or (
        floating.most_common(1)[0][0] if floating else torch.get_default_dtype()
    )
    args, kwargs = _make_inputs(request, dtype, on_meta=True)
    try:
        with request.deadline.running(), torch.no_grad(), torch.device("meta"):
            twin(*args, **kwargs)
    except AnalysisTimeout:
        raise
    except Exception as err:
        raise CnnarchError(
            f"{request.name}: the dry pass that gives the lazy modules their shapes fails: "
            f"{_describe(err)}"
        ) from None
    return twin


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
        (which they join): a parameter counts in the first row that holds it."""
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


def _cpu_stand_in(tensor: torch.Tensor, dtype: torch.dtype, is_param: bool) -> torch.Tensor:
    """The tensor a pass on the CPU uses: the tensor itself (a copy for buffers, which a
    training pass updates in place), or zeros for a tensor on meta."""
    if tensor.device.type == "meta":
        return torch.zeros(tensor.shape, dtype=dtype)
    alias = tensor.detach()
    copied = alias.to("cpu", dtype)
    return alias.clone() if copied is alias and not is_param else copied


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
                else _cpu_stand_in(tensor, target, is_param)
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
        if all(child is None for child in module._modules.values()):
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
def _swapped(state: _State) -> Iterator[None]:
    """Give every module its stand-in parameters and buffers for the duration of the block,
    then put the user's own dictionaries (and so the very same tensors) back, and every other
    attribute the forward pass reassigned: a forward that caches a tensor in an attribute
    (torchvision's anchor generators move theirs to the input's device) must not keep a
    stand-in there."""
    attributes = [(m, m.__dict__.copy()) for m, _, _ in state.swaps]
    originals = swap_tensor_dicts((m, dict(p), dict(b)) for m, p, b in state.swaps)
    try:
        yield
    finally:
        swap_tensor_dicts(originals)
        for module, before in attributes:
            module.__dict__.update(before)


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


@contextlib.contextmanager
def _restore_modes(state: _State, train: bool) -> Iterator[None]:
    # Only the modules whose flag differs are touched (Module.__setattr__ is slow Python).
    changed = [module for module in state.modules() if module.training != train]
    for module in changed:
        module.training = train
    try:
        yield
    finally:
        for module in changed:
            module.training = not train


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
    except CnnarchError as err:
        raise CnnarchError(f"{err}{_where(tracer)}") from None
    except AnalysisTimeout as stop:
        frame = tracer.innermost()
        stop.where = f" (the forward pass was in {_location(frame)})" if frame else ""
        raise
    except Exception as err:
        if tracer.on_meta and needs_data(err):
            frame = tracer.innermost()
            where = f"in {_location(frame)}" if frame else "before any module ran"
            raise _NeedsData(f"{where}: {_describe(err)}") from None
        raise CnnarchError(_failure_message(model, request, tracer, args, kwargs, err)) from None
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
    message = f"{request.name}: the forward pass fails {where}: {_describe(err)}"
    message += request.default_note
    x = args[0] if len(args) == 1 and not kwargs else None
    if (
        tracer.on_meta
        and isinstance(x, torch.Tensor)
        and x.dim() == 4
        and isinstance(err, (RuntimeError, ValueError))
    ):
        side = min(x.shape[-2:])
        smallest = _smallest_side(model, x, limit=4096)
        if smallest is not None and smallest > side:
            channels = x.shape[1]
            message += (
                f"; the input is too small: the smallest square input that works is "
                f"{channels}x{smallest}x{smallest}"
            )
    return message


def _accepts(model: nn.Module, x: torch.Tensor, side: int) -> bool:
    probe = torch.empty(*x.shape[:2], side, side, dtype=x.dtype, device="meta")
    try:
        with torch.no_grad(), torch.device("meta"), FastMeta():
            model(probe)
    except Exception:
        return False
    return True


def _smallest_side(model: nn.Module, x: torch.Tensor, limit: int) -> int | None:
    """Smallest square side accepted, by bisection on meta; None if none up to `limit` is."""
    start = max(8, int(min(x.shape[-2:])) * 2)
    return bisect_smallest_side(lambda side: _accepts(model, x, side), start, limit)


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
    except _Lazy:
        raise CnnarchError(
            f"{request.name}: its lazy modules have no parameter shapes until a forward pass; "
            f"give an input size (input_size=, --input)"
        ) from None
    rows: list[LayerRow] = []
    seen_params: set[int] = set()
    seen_modules: set[int] = set()

    def visit(module: nn.Module, path: str, depth: int) -> tuple[int, int]:
        index = len(rows)
        rows.append(None)  # type: ignore[arg-type]  # filled below, after the subtree
        reused = id(module) in seen_modules
        seen_modules.add(id(module))
        trainable, frozen = state.first_seen_params(id(module), seen_params)
        children = [(n, c) for n, c in module._modules.items() if c is not None]
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
        dtype=str(request.dtype or state.main_dtype()).removeprefix("torch."),
        mode="parameters",
        mode_reason=reason,
        param_dtypes=_param_dtypes(state),
    )


def _param_dtypes(state: _State) -> dict[str, int]:
    """Parameter elements by dtype."""
    counts: Counter[torch.dtype] = Counter()
    for info in state.params.values():
        counts[info.dtype] += info.numel
    return {str(dtype).removeprefix("torch."): n for dtype, n in counts.items()}


# -- rows and totals -----------------------------------------------------------------------------
class _RowBuilder:
    def __init__(self, tracer: Tracer, state: _State) -> None:
        self.tracer = tracer
        self.state = state
        self.seen_params: set[int] = set()
        self.seen_modules: set[int] = set()
        self.rows: list[LayerRow] = []

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
        dtype=str(dtype).removeprefix("torch."),
        uncounted_ops=dict(tracer.uncounted_ops),
        input_shapes=input_shapes,
        mode=mode,
        mode_reason=reason,
        param_dtypes=_param_dtypes(state),
    )
