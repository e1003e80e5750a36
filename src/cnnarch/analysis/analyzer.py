"""`analyze`: shapes, parameters, MACs and memory of any `nn.Module`, from one pass on meta.

The user's module is not changed: for the duration of the call only, each submodule's parameter
and buffer dictionaries are replaced by dictionaries of meta tensors of the same shapes (what
`torch.func.functional_call` does tensor by tensor), so no weight is copied or moved and no
gradient lands on it; the dictionaries and the train/eval flags are put back afterwards.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnarch.analysis.fast_leaves import fast_leaves
from cnnarch.analysis.memory import live_peak
from cnnarch.analysis.summary import LayerRow, Summary, make_row
from cnnarch.analysis.trace import (
    NEVER_FREED,
    FastMeta,
    Frame,
    Tracer,
    iter_tensors,
    meta_empty,
    storage_key,
)
from cnnarch.analysis.training_modes import StepTrace, TrainingStep, resolve_step
from cnnarch.errors import CnnarchError
from cnnarch.zoo.common import bisect_smallest_side

DEFAULT_INPUT_SIZE = (3, 224, 224)


@dataclass
class _ParamInfo:
    numel: int
    nbytes: int
    trainable: bool


def analyze(
    model_or_name: nn.Module | str,
    input_size: Sequence[int] | Sequence[Sequence[int]] | None = None,
    *,
    inputs: Any = None,
    batch_size: int = 1,
    dtype: torch.dtype = torch.float32,
    train: bool = False,
    optimizer: str | None = None,
    variant: str = "paper",
    step: TrainingStep | None = None,
) -> Summary:
    """Analyze a module (or a zoo model by name) by tracing one pass on meta tensors.

    Args:
        model_or_name: any `nn.Module` (on any device, or on meta), or a zoo name, which is
            built on meta with `create_model(name, variant=variant)`.
        input_size: (C, H, W) of one example, without the batch dimension, or a list of such
            sizes for a model with several inputs. Defaults to the zoo card's input size (for
            a name, or a model made by `create_model`), else (3, 224, 224).
        inputs: instead of `input_size`: a tensor, a tuple of positional inputs, or a dict of
            keyword inputs (nested tensors allowed); only their shapes and dtypes are used.
        batch_size: prepended to each `input_size`.
        dtype: floating dtype of the inputs and of the floating parameters and buffers.
        train: trace in train mode and add the memory of a training step.
        optimizer: with `train`, a name in `training_modes.OPTIMIZERS` (default "sgd").
        variant: the zoo variant when `model_or_name` is a name.
        step: with `train`, how the step runs (optimizer, mixed precision, checkpointing,
            accumulation; see `TrainingStep`), instead of `optimizer`.
    """
    model, name, default_size = _resolve_model(model_or_name, variant)
    training_step = resolve_step(step, optimizer, train)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise CnnarchError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    if inputs is not None and input_size is not None:
        raise CnnarchError("give either input_size or inputs, not both")
    size = (input_size or default_size) if inputs is None else None
    args, kwargs = _make_inputs(size, inputs, batch_size, dtype)
    with _collector_paused():
        # The pass's own objects (tracer, frames, meta tensors) are freed when `_analyze`
        # returns, before the collector resumes and would otherwise walk them.
        return _analyze(model, name, args, kwargs, dtype, training_step, batch_size)


def _analyze(
    model: nn.Module,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    dtype: torch.dtype,
    step: TrainingStep | None,
    batch_size: int,
) -> Summary:
    train = step is not None
    state = _meta_state(model, dtype, train)
    tracer = _make_tracer(state, args, kwargs)
    session = StepTrace(step, tracer, model) if step is not None else None
    with _restore_modes(state, train), _swapped(state):
        if session is None:
            output = _run_traced(model, name, tracer, state, args, kwargs, train)
        else:
            with session.forward(state.meta_params):
                output = _run_traced(model, name, tracer, state, args, kwargs, train)
            try:
                _run_backward(tracer, output, state)
                session.optimizer_step()
            except Exception as err:
                detail = (str(err).strip().splitlines() or [""])[0]
                raise CnnarchError(
                    f"{name}: the backward pass or optimizer step fails: "
                    f"{type(err).__name__}: {detail}"
                ) from None
    inputs = list(iter_tensors((args, kwargs)))
    return _build_summary(name, tracer, state, inputs, session, batch_size, dtype)


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
def _resolve_model(
    model_or_name: nn.Module | str, variant: str
) -> tuple[nn.Module, str, tuple[int, ...]]:
    if isinstance(model_or_name, str):
        from cnnarch.zoo import create_model, model_card

        card = model_card(model_or_name)
        with torch.device("meta"):
            model = create_model(model_or_name, variant=variant)
        return model, model_or_name, tuple(card.input_size)
    if not isinstance(model_or_name, nn.Module):
        raise CnnarchError(
            f"expected an nn.Module or a model name, got {type(model_or_name).__name__}"
        )
    name = getattr(model_or_name, "model_name", None) or type(model_or_name).__name__
    return model_or_name, name, _card_input_size(model_or_name) or DEFAULT_INPUT_SIZE


def _card_input_size(model: nn.Module) -> tuple[int, ...] | None:
    """The card's input size of a model made by `create_model` (which records its name)."""
    spec = getattr(model, "build_spec", None)
    if not spec:
        return None
    from cnnarch.zoo import model_card

    try:
        return tuple(model_card(spec[0]).input_size)
    except CnnarchError:
        return None


def _check_size(size: Sequence[Any]) -> tuple[int, ...]:
    if not isinstance(size, (tuple, list, torch.Size)) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in size
    ):
        raise CnnarchError(f"an input size is a tuple of ints like (3, 224, 224), got {size!r}")
    if not size or any(d <= 0 for d in size):
        raise CnnarchError(f"input sizes must be positive, got {tuple(size)}")
    return tuple(size)


def _make_inputs(
    input_size: Any, inputs: Any, batch_size: int, dtype: torch.dtype
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if inputs is not None:
        if isinstance(inputs, Mapping):
            return (), {k: _to_meta(v) for k, v in inputs.items()}
        if isinstance(inputs, (tuple, list)):
            return tuple(_to_meta(v) for v in inputs), {}
        return (_to_meta(inputs),), {}
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise CnnarchError(f"batch size must be a positive integer, got {batch_size!r}")
    several = isinstance(input_size, (tuple, list)) and all(
        isinstance(s, (tuple, list, torch.Size)) for s in input_size
    )
    sizes = [_check_size(s) for s in input_size] if several else [_check_size(input_size)]
    return tuple(torch.empty(batch_size, *s, dtype=dtype, device="meta") for s in sizes), {}


def _to_meta(value: Any) -> Any:
    """Meta tensors of the same shapes and dtypes, in the same nesting."""
    if isinstance(value, torch.Tensor):
        return torch.empty_strided(value.shape, value.stride(), dtype=value.dtype, device="meta")
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
        return type(value)(*(_to_meta(v) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_to_meta(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _to_meta(v) for k, v in value.items()}
    return value


@dataclass
class _MetaState:
    """Meta stand-ins for the model's parameters and buffers (ties kept: one per object), and
    what the trace needs to know about the model's modules."""

    params: dict[int, _ParamInfo]  # id of the user's parameter -> what it costs
    own_params: dict[int, list[int]]  # id of a module -> ids of its own parameters
    meta_params: list[torch.Tensor]
    buffers: list[torch.Tensor]
    names: dict[int, str]  # id of a module -> its path
    leaves: set[int]  # ids of modules without children
    # (module, its parameter dict, its buffer dict) with meta tensors in place of the originals
    swaps: list[tuple[nn.Module, dict[str, Any], dict[str, Any]]]

    def modules(self) -> Iterator[nn.Module]:
        return (module for module, _, _ in self.swaps)


def _meta_like(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    target = dtype if tensor.is_floating_point() else tensor.dtype
    return meta_empty(tensor.shape, target)


def _meta_state(model: nn.Module, dtype: torch.dtype, train: bool) -> _MetaState:
    by_id: dict[int, torch.Tensor] = {}
    state = _MetaState({}, {}, [], [], {}, set(), [])

    def stand_in(tensor: torch.Tensor, is_param: bool) -> torch.Tensor:
        meta = by_id.get(id(tensor))
        if meta is None:
            meta = by_id[id(tensor)] = _meta_like(tensor, dtype)
            if is_param:
                trainable = tensor.requires_grad
                if train and trainable:
                    meta.requires_grad_(True)
                nbytes = meta.numel() * meta.element_size()
                state.params[id(tensor)] = _ParamInfo(meta.numel(), nbytes, trainable)
                state.meta_params.append(meta)
            else:
                state.buffers.append(meta)
        return meta

    for path, module in model.named_modules():
        state.names[id(module)] = path
        if all(child is None for child in module._modules.values()):
            state.leaves.add(id(module))
        params = {
            k: None if p is None else stand_in(p, True) for k, p in module._parameters.items()
        }
        buffers = {k: None if b is None else stand_in(b, False) for k, b in module._buffers.items()}
        state.own_params[id(module)] = [id(p) for p in module._parameters.values() if p is not None]
        state.swaps.append((module, params, buffers))
    return state


@contextlib.contextmanager
def _swapped(state: _MetaState) -> Iterator[None]:
    """Give every module its meta parameters and buffers for the duration of the block, then
    put the user's own dictionaries (and so the very same tensors) back."""
    originals = [(m, m.__dict__["_parameters"], m.__dict__["_buffers"]) for m, _, _ in state.swaps]
    try:
        for module, params, buffers in state.swaps:
            module.__dict__["_parameters"] = dict(params)
            module.__dict__["_buffers"] = dict(buffers)
        yield
    finally:
        for module, params, buffers in originals:
            module.__dict__["_parameters"] = params
            module.__dict__["_buffers"] = buffers


def _make_tracer(state: _MetaState, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tracer:
    tracer = Tracer(state.names, state.leaves)
    for meta in state.meta_params:
        tracer.register(meta, "param")
    for buffer in state.buffers:
        tracer.register(buffer, "buffer")
    for tensor in iter_tensors((args, kwargs)):
        tracer.register(tensor, "input")
    return tracer


@contextlib.contextmanager
def _restore_modes(state: _MetaState, train: bool) -> Iterator[None]:
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
    name: str,
    tracer: Tracer,
    state: _MetaState,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    train: bool,
) -> Any:
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
    except Exception as err:
        raise CnnarchError(_failure_message(model, name, tracer, args, err)) from None
    if not tracer.top.children:
        raise CnnarchError(f"{name}: the forward pass did not call the model")
    tracer.end_forward(output)
    return output


def _where(tracer: Tracer) -> str:
    frame = tracer.innermost()
    if frame is None:
        return ""
    shapes = ", ".join(str(s) for s in frame.input_shapes)
    return (
        f" (the forward pass fails in `{frame.path or '(model)'}` ({frame.type}), input {shapes})"
    )


def _failure_message(
    model: nn.Module, name: str, tracer: Tracer, args: tuple[Any, ...], err: Exception
) -> str:
    frame = tracer.innermost()
    detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
    where = (
        f"in `{frame.path or '(model)'}` ({frame.type}) on input "
        f"{', '.join(str(s) for s in frame.input_shapes)}"
        if frame is not None
        else "before any module ran"
    )
    message = f"{name}: the forward pass fails {where}: {type(err).__name__}: {detail}"
    if len(args) == 1 and args[0].dim() == 4 and isinstance(err, (RuntimeError, ValueError)):
        side = min(args[0].shape[-2:])
        smallest = _smallest_side(model, args[0], limit=4096)
        if smallest is not None and smallest > side:
            channels = args[0].shape[1]
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


def _run_backward(tracer: Tracer, output: Any, state: _MetaState) -> None:
    """Trace backward from every floating output that needs a gradient (seeded with ones)."""
    roots = [t for t in iter_tensors(output) if t.requires_grad]
    tracer.start_backward()
    if roots:
        with tracer.recording():
            seeds = [torch.ones_like(t) for t in roots]
            torch.autograd.backward(roots, seeds)
    for meta in state.meta_params:
        if meta.grad is not None:
            key = storage_key(meta.grad)
            if key not in tracer.storages:
                tracer.register(meta.grad, "activation")
                tracer.storages[key].created = tracer.clock
            record = tracer.storages[key]
            record.is_grad = True
            record.last_use = NEVER_FREED


# -- rows and totals -----------------------------------------------------------------------------
class _RowBuilder:
    def __init__(self, tracer: Tracer, state: _MetaState) -> None:
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
            trainable, frozen = self._params_first_seen(id(frame.module))
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
            type=frame.type,
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

    def _params_first_seen(self, module_id: int) -> tuple[int, int]:
        """Trainable and frozen elements of the module's own parameters not counted before."""
        trainable = frozen = 0
        for pid in self.state.own_params[module_id]:
            if pid in self.seen_params:
                continue
            self.seen_params.add(pid)
            info = self.state.params[pid]
            if info.trainable:
                trainable += info.numel
            else:
                frozen += info.numel
        return trainable, frozen

    def _new_outputs(self, frame: Frame) -> tuple[int, int]:
        """Elements and bytes of the frame's outputs that it allocated itself."""
        elements = nbytes = 0
        if frame.new_keys:  # most frames of modules with children allocate nothing directly
            outputs = set(frame.output_keys)
            storages = self.tracer.storages
            for key in frame.new_keys:
                if key in outputs:
                    record = storages[key]
                    elements += record.nbytes // record.itemsize
                    nbytes += record.nbytes
        return elements, nbytes


def _build_summary(
    name: str,
    tracer: Tracer,
    state: _MetaState,
    inputs: list[torch.Tensor],
    session: StepTrace | None,
    batch_size: int,
    dtype: torch.dtype,
) -> Summary:
    builder = _RowBuilder(tracer, state)
    builder.build(tracer.top.children[0])
    rows = builder.rows
    params = state.params.values()
    trainable = sum(p.numel for p in params if p.trainable)
    frozen = sum(p.numel for p in params if not p.trainable)
    param_bytes = sum(p.nbytes for p in params)
    buffer_bytes = sum(b.numel() * b.element_size() for b in state.buffers)
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
        model_name=name,
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
        batch_size=batch_size,
        dtype=str(dtype).removeprefix("torch."),
        uncounted_ops=dict(tracer.uncounted_ops),
        input_shapes=input_shapes,
    )
