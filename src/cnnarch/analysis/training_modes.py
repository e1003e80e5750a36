"""How a training step is run, and what that changes in the traced pass: the optimizer (its step
is traced with torch's own implementation), mixed precision, activation checkpointing,
gradient accumulation and whether `zero_grad` frees the gradients.

`StepTrace` wraps one traced pass: `forward()` is the context the model's forward runs in,
`optimizer_step()` traces the step after backward, `memory()` sums it all up.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.checkpoint import checkpoint as checkpoint_call

from cnnarch.analysis.memory import (
    BREAKDOWN_ORDER,
    GATHERED_PARAMETERS,
    GRADIENT_BUCKETS,
    GRADIENTS,
    INPUTS,
    OPTIMIZER_STATE,
    PARAMETERS,
    REDUCE_BUFFER,
    StepTimeline,
    TrainingMemory,
    step_lifetimes,
    step_moments,
    step_peak,
)
from cnnarch.analysis.trace import FORWARD, Tracer, storage_key
from cnnarch.errors import CnnarchError

Observer = Callable[[tuple[Any, ...]], contextlib.AbstractContextManager[None]]

# torch.optim's defaults, except the learning rates (which cost no memory).
OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, {"lr": 0.01}),
    "momentum": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}),
    "adam": (torch.optim.Adam, {"lr": 1e-3}),
    "adamw": (torch.optim.AdamW, {"lr": 1e-3}),
    "adagrad": (torch.optim.Adagrad, {"lr": 0.01}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 0.01}),
}


def make_optimizer(
    name: str, params: Iterable[torch.Tensor], foreach: bool
) -> torch.optim.Optimizer:
    optimizer_class, defaults = OPTIMIZERS[name]
    return optimizer_class(params, foreach=foreach, **defaults)


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# With a world size above 1, every rank runs DistributedDataParallel; "zero1" also shards the
# optimizer state over the ranks (torch.distributed.optim.ZeroRedundancyOptimizer). "zero2"
# and "zero3" run FSDP instead (`fully_shard`): gradients, optimizer state and parameters
# sharded; "zero2" (SHARD_GRAD_OP, `reshard_after_forward=False`) keeps the gathered
# parameters from forward to backward, "zero3" (full shard) gathers them again for backward.
# See `sharded_breakdown`.
SHARDINGS = ("none", "zero1", "zero2", "zero3")
FULLY_SHARDED = ("zero2", "zero3")
# ZeRO-3 / FSDP: units whose full parameters are gathered at once, the running one and the
# next one prefetched (FSDP's default: one all-gather ahead, in forward and in backward).
GATHERED_UNITS = 2
# ZeRO-2/3: units whose full gradients exist at once in backward, the one computing them and
# the previous one, reduce-scattered meanwhile.
GRADIENT_UNITS = 2
# torch.amp.GradScaler's state for float16: the scale and the growth tracker (one float32 and
# one int32 scalar) and the found-inf flag of the one device (one float32).
GRAD_SCALER_BYTES = 4 + 4 + 4

# Autocast's cast policy for the ops CNNs use (PyTorch's aten/src/ATen/autocast_mode.cpp, CPU
# and CUDA lists): these run in the low precision, their floating inputs cast to it ...
LOW_PRECISION_FUNCTIONS = frozenset(
    {
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "linear",
        "matmul",
        "__matmul__",
        "mm",
        "bmm",
        "addmm",
        "addbmm",
        "baddbmm",
        "prelu",
    }
)
# ... these in float32, their inputs cast to it (the two devices' lists differ) ...
FLOAT32_FUNCTIONS = {
    "cpu": frozenset({"avg_pool3d", "adaptive_max_pool3d", "binary_cross_entropy", "cdist"}),
    "cuda": frozenset(
        {
            "pow",
            "__pow__",
            "__rpow__",
            "exp",
            "log",
            "log1p",
            "expm1",
            "reciprocal",
            "rsqrt",
            "softplus",
            "layer_norm",
            "group_norm",
            "norm",
            "nll_loss",
            "mse_loss",
            "l1_loss",
            "smooth_l1_loss",
            "binary_cross_entropy_with_logits",
            "cdist",
        }
    ),
}
# ... these (CUDA) compute in float32 from a low-precision input: dtype=float32 is passed ...
FLOAT32_OUTPUT_FUNCTIONS = {
    "cpu": frozenset(),
    "cuda": frozenset({"softmax", "log_softmax", "cumsum", "cumprod", "sum", "prod"}),
}
AUTOCAST_DEVICES = tuple(FLOAT32_FUNCTIONS)
PROMOTE_FUNCTIONS = frozenset({"cat", "stack", "index_copy"})


@dataclass(frozen=True)
class TrainingStep:
    """One optimizer step of training, as the user's loop runs it.

    optimizer: a name in `OPTIMIZERS`; foreach: torch.optim's multi-tensor step (torch's
    default for CUDA parameters) instead of the per-parameter loop (its default on the CPU);
    precision: "fp32", or "bf16"/"fp16" autocast (float32 master weights, float16 with a
    GradScaler); accumulate: micro-batches per step (gradients persist between them);
    set_to_none: `zero_grad(set_to_none=...)` (False keeps the gradients allocated);
    checkpoint: None, "stages" (each top-level child that holds parameters is recomputed in
    backward) or N (groups of N consecutive blocks, see `checkpoint_segments`);
    world_size: data-parallel ranks (DistributedDataParallel when above 1); bucket_view: DDP's
    `gradient_as_bucket_view` (gradients live in its buckets instead of beside them);
    sharding: "none", "zero1", "zero2" or "zero3" (`SHARDINGS`); autocast_device: whose
    autocast op lists apply ("cuda", what the planner plans for, or "cpu").
    """

    optimizer: str = "sgd"
    foreach: bool = False
    precision: str = "fp32"
    accumulate: int = 1
    set_to_none: bool = True
    checkpoint: str | int | None = None
    world_size: int = 1
    bucket_view: bool = False
    sharding: str = "none"
    autocast_device: str = "cuda"

    def __post_init__(self) -> None:
        _check_name("optimizer", self.optimizer, OPTIMIZERS)
        _check_name("precision", self.precision, PRECISIONS)
        _check_name("sharding", self.sharding, dict.fromkeys(SHARDINGS))
        _check_name("autocast device", self.autocast_device, dict.fromkeys(AUTOCAST_DEVICES))
        if not _positive_int(self.world_size):
            raise CnnarchError(f"world size must be a positive integer, got {self.world_size!r}")
        if not _positive_int(self.accumulate):
            raise CnnarchError(f"accumulate must be a positive integer, got {self.accumulate!r}")
        if self.checkpoint not in (None, "stages") and not _positive_int(self.checkpoint):
            raise CnnarchError(
                f'checkpoint must be "stages" or a positive number of blocks, got '
                f"{self.checkpoint!r}"
            )

    @property
    def grads_persist(self) -> bool:
        """Gradients exist before the backward pass that is the step's worst (the last
        micro-batch's when accumulating, every one's when zero_grad keeps them)."""
        in_buckets = self.world_size > 1 and self.bucket_view  # DDP's buckets hold them
        return self.accumulate > 1 or not self.set_to_none or in_buckets

    @property
    def bucket_copies(self) -> bool:
        """DDP without `gradient_as_bucket_view` keeps its buckets, one more copy of the
        gradients, for the whole run (ZeRO-2/3 run no DDP)."""
        return self.world_size > 1 and not self.bucket_view and not self.fully_sharded

    @property
    def fully_sharded(self) -> bool:
        """Gradients and optimizer state (ZeRO-2), and parameters (ZeRO-3), sharded."""
        return self.world_size > 1 and self.sharding in FULLY_SHARDED


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_name(what: str, name: Any, valid: dict[str, Any]) -> None:
    if name not in valid:
        raise CnnarchError(f"unknown {what} {name!r}; choose one of {', '.join(valid)}")


def resolve_step(
    step: TrainingStep | None, optimizer: str | None, train: bool
) -> TrainingStep | None:
    """The step `analyze` traces: `step`, or one with `optimizer` (SGD by default)."""
    if not train:
        if step is not None or optimizer is not None:
            raise CnnarchError(
                "an optimizer or training step only matters for training: pass train=True (--train)"
            )
        return None
    if step is not None:
        if optimizer is not None and optimizer != step.optimizer:
            raise CnnarchError("give the optimizer either by name or in the step, not both")
        return step
    return TrainingStep(optimizer=optimizer or "sgd")


# -- checkpointing -------------------------------------------------------------------------------
def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def checkpoint_segments(model: nn.Module, checkpoint: str | int) -> list[list[nn.Module]]:
    """The groups of modules that run under one checkpoint each.

    "stages": every top-level child that holds parameters, alone (a ResNet's layer1..layer4,
    its stem conv and its classifier). N: the blocks are the top-level children, each
    `nn.Sequential` among them replaced by its own children; runs of N consecutive blocks of
    one Sequential form a segment (they are a chain; an in-place block such as
    `ReLU(inplace=True)` joins the segment before it), other blocks with parameters are one
    segment each.
    """
    segments: list[list[nn.Module]] = []
    for child in model.children():
        if checkpoint == "stages" or not isinstance(child, nn.Sequential):
            if _has_params(child):
                segments.append([child])
            continue
        blocks = list(child.children())
        assert isinstance(checkpoint, int)
        chunks = [blocks[i : i + checkpoint] for i in range(0, len(blocks), checkpoint)]
        for index in range(len(chunks) - 1, 0, -1):
            # An in-place block would overwrite the input its checkpoint keeps for recomputing:
            # it ends the segment before instead.
            while chunks[index] and getattr(chunks[index][0], "inplace", False):
                chunks[index - 1].append(chunks[index].pop(0))
        segments += [chunk for chunk in chunks if chunk]
    return segments


class _Segment:
    """Consecutive modules of one chain run as one checkpoint: the first module's call runs
    them all (their own calls, hooks included) inside it; the others' calls, made by their
    container afterwards, pass their input through."""

    def __init__(self, modules: list[nn.Module], observer: Observer | None) -> None:
        self.modules = modules
        self.originals = [m.forward for m in modules]
        self.running = False
        self.observer = observer

    def run(self, *args: Any, **kwargs: Any) -> Any:
        with self.observer(args) if self.observer else contextlib.nullcontext():
            if len(self.modules) == 1:
                return self.originals[0](*args, **kwargs)
            self.running = True
            try:
                out = self.modules[0](*args, **kwargs)
                for module in self.modules[1:]:
                    out = module(out)
            finally:
                self.running = False
            return out

    def patch(self) -> None:
        for index, module in enumerate(self.modules):
            module.__dict__["forward"] = functools.partial(self._forward, index)

    def unpatch(self) -> None:
        for module in self.modules:
            module.__dict__.pop("forward", None)

    def _forward(self, index: int, *args: Any, **kwargs: Any) -> Any:
        if self.running:  # inside the checkpoint: the module's own code
            return self.originals[index](*args, **kwargs)
        if index == 0:
            return checkpoint_call(self.run, *args, use_reentrant=False, **kwargs)
        return args[0]  # already computed inside the segment's checkpoint


@contextlib.contextmanager
def checkpointed(
    model: nn.Module, checkpoint: str | int | None, observer: Observer | None = None
) -> Iterator[None]:
    """Run `model` with its segments (`checkpoint_segments`) under non-reentrant
    `torch.utils.checkpoint`; `observer(inputs)`, if given, is the context of each run of a
    segment (in the forward pass, and again when backward recomputes it)."""
    if checkpoint is None:
        yield
        return
    segments = [_Segment(m, observer) for m in checkpoint_segments(model, checkpoint)]
    try:
        for segment in segments:
            segment.patch()
        yield
    finally:
        for segment in segments:
            segment.unpatch()


# -- mixed precision -----------------------------------------------------------------------------
class AutocastOnMeta(TorchFunctionMode):
    """`torch.autocast` for a pass on meta tensors, which autocast itself skips (it casts only
    tensors of its own device type): the same casts, done where autocast does them, so that
    autograd saves what it saves under autocast. Casts of parameters are cached until the
    forward pass ends, as autocast caches them until its context exits."""

    def __init__(self, dtype: torch.dtype, device: str) -> None:
        super().__init__()
        self.dtype = dtype
        self.float32 = FLOAT32_FUNCTIONS[device]
        self.float32_output = FLOAT32_OUTPUT_FUNCTIONS[device]
        self.cache: dict[int, torch.Tensor] = {}

    def _cast(self, value: Any, dtype: torch.dtype) -> Any:
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            return value
        if value.dtype == dtype or value.dtype == torch.float64:
            return value
        cacheable = dtype == self.dtype and value.is_leaf and value.requires_grad
        if cacheable and id(value) in self.cache:
            return self.cache[id(value)]
        cast = value.to(dtype)
        if cacheable:
            self.cache[id(value)] = cast
        return cast

    def _cast_all(self, args: Any, kwargs: dict[str, Any], dtype: torch.dtype) -> Any:
        def cast(v: Any) -> Any:
            if isinstance(v, (list, tuple)):
                return type(v)(cast(x) for x in v)
            return self._cast(v, dtype)

        return cast(args), {k: cast(v) for k, v in kwargs.items()}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in LOW_PRECISION_FUNCTIONS:
            args, kwargs = self._cast_all(args, kwargs, self.dtype)
        elif name in self.float32:
            args, kwargs = self._cast_all(args, kwargs, torch.float32)
        elif name in self.float32_output and kwargs.get("dtype") is None:
            if any(t.dtype == self.dtype for t in _tensors(args)):
                kwargs = {**kwargs, "dtype": torch.float32}
        elif name in PROMOTE_FUNCTIONS:
            floats = [t.dtype for t in _tensors(args) if t.is_floating_point()]
            if floats:
                widest = max(floats, key=lambda d: torch.finfo(d).bits)
                args, kwargs = self._cast_all(args, kwargs, widest)
        elif getattr(func, "__module__", None) == F.__name__ and inspect.isfunction(func):
            with self, _functional_bodies_traced():
                return func(*args, **kwargs)
        return func(*args, **kwargs)


@contextlib.contextmanager
def _functional_bodies_traced() -> Iterator[None]:
    """A function of torch.nn.functional (local_response_norm, say) hands itself whole to an
    active mode; autocast acts on the ops inside it. For the duration, its module's checks for
    a mode say no, so that its body runs with the mode seeing each op it calls."""
    names = ("has_torch_function", "has_torch_function_unary", "has_torch_function_variadic")
    saved = {name: getattr(F, name) for name in names}
    try:
        for name in names:
            setattr(F, name, _never)
        yield
    finally:
        for name, check in saved.items():
            setattr(F, name, check)


def _never(*args: Any) -> bool:
    return False


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


# -- the traced step -----------------------------------------------------------------------------
class StepTrace:
    """The training-step parts of one traced pass (see the module's docstring)."""

    def __init__(self, step: TrainingStep, tracer: Tracer, model: nn.Module) -> None:
        self.step = step
        self.tracer = tracer
        self.model = model
        self.trainable: list[torch.Tensor] = []
        self.persistent_grads: list[torch.Tensor] = []
        self.state: list[torch.Tensor] = []
        self.weight_copies: set[int] = set()
        self.backward_start = 0
        self.step_start = 0
        # (storage keys of a checkpointed segment's inputs, clock range of its recomputation)
        self.recomputations: list[tuple[list[int], int, int]] = []
        self.units: list[list[torch.Tensor]] = []  # ZeRO-2/3: each unit's parameters

    @contextlib.contextmanager
    def forward(self, meta_params: Iterable[torch.Tensor]) -> Iterator[None]:
        """The context of the traced forward pass."""
        self.trainable = [p for p in meta_params if p.requires_grad]
        if self.step.fully_sharded:  # the units FSDP wraps, while the stand-ins are in place
            stages = checkpoint_segments(self.model, "stages")
            self.units = [list(module.parameters()) for (module,) in stages]
        if self.step.grads_persist:
            for p in self.trainable:
                p.grad = torch.empty_like(p)
                self.tracer.register(p.grad, "grad")
                self.persistent_grads.append(p.grad)
        dtype = PRECISIONS[self.step.precision]
        autocast = AutocastOnMeta(dtype, self.step.autocast_device) if dtype else None
        with checkpointed(self.model, self.step.checkpoint, self._segment_run):
            if autocast is None:
                yield
            else:
                with autocast:
                    yield
        if autocast is not None:
            self._keep_weight_copies(autocast.cache.values())

    @contextlib.contextmanager
    def _segment_run(self, inputs: tuple[Any, ...]) -> Iterator[None]:
        start = self.tracer.clock
        dtype = PRECISIONS[self.step.precision]
        # A checkpoint recomputes under the autocast state of the forward pass (a fresh cache).
        recomputing = self.tracer.phase != FORWARD and dtype is not None
        autocast = AutocastOnMeta(dtype, self.step.autocast_device) if recomputing else None
        try:
            with autocast if autocast is not None else contextlib.nullcontext():
                yield
        finally:  # a recomputation ends early with an exception once it has what is needed
            if self.tracer.phase != FORWARD:
                keys = [storage_key(t) for t in _tensors(inputs)]
                self.recomputations.append((keys, start, self.tracer.clock))

    def _keep_checkpoint_inputs(self) -> None:
        """A checkpoint holds its segment's inputs until backward is done with the segment,
        that is until the last read of what its recomputation made."""
        storages = self.tracer.storages
        for keys, start, stop in self.recomputations:
            made = [r.last_use for r in storages.values() if start <= r.created < stop]
            done = max(made, default=stop)
            for key in keys:
                record = storages.get(key)
                if record is not None:
                    record.last_use = max(record.last_use, done)

    def _keep_weight_copies(self, copies: Iterable[torch.Tensor]) -> None:
        """Autocast's cache holds the weight copies until the forward pass ends."""
        end = self.tracer.clock
        for copy in copies:
            key = storage_key(copy)
            record = self.tracer.storages.get(key)
            if record is not None:
                record.last_use = max(record.last_use, end)
                self.weight_copies.add(key)

    def optimizer_step(self) -> None:
        """Trace `optimizer.step()` after backward, in its steady state (second step)."""
        tracer = self.tracer
        self.backward_start = tracer.forward_end
        self.step_start = tracer.clock
        params = [p for p in self.trainable if p.grad is not None]
        if self.step.world_size > 1 and self.step.sharding == "zero1":
            params = largest_shard(params, self.step.world_size)
        if not params:
            return
        optimizer = make_optimizer(self.step.optimizer, params, self.step.foreach)
        with torch.no_grad():
            optimizer.step()  # the first step creates the state, unrecorded
        for values in optimizer.state.values():
            for value in values.values():
                if isinstance(value, torch.Tensor) and value.device.type == "meta":
                    tracer.register(value, "state")
                    self.state.append(value)
        tracer.phase = "step"
        with tracer.recording():
            optimizer.step()

    def memory(self, params_bytes: int, buffer_bytes: int, input_bytes: int) -> TrainingMemory:
        tracer = self.tracer
        self._keep_checkpoint_inputs()
        timeline = StepTimeline(self.backward_start, self.step_start)
        peak, peak_at, at_peak, backward_tmp, step_tmp = step_peak(
            tracer.storages, timeline, self.weight_copies
        )
        state_bytes = _storage_bytes(self.state)
        if self.step.precision == "fp16":
            state_bytes += GRAD_SCALER_BYTES
        persistent = _storage_bytes(self.persistent_grads)
        buckets = _storage_bytes(self.trainable) if self.step.bucket_copies else 0
        fixed = {
            PARAMETERS: params_bytes + buffer_bytes,
            INPUTS: input_bytes,
            OPTIMIZER_STATE: state_bytes,
            GRADIENT_BUCKETS: buckets,
        }
        breakdown = {**fixed, **at_peak}
        breakdown[GRADIENTS] += persistent
        phase = self._phase(peak_at)
        moments = []
        for clock, live in step_moments(tracer.storages, timeline, self.weight_copies):
            parts = {**fixed, **live}
            parts[GRADIENTS] += persistent
            moments.append((self._phase(clock), tuple(parts.get(c, 0) for c in BREAKDOWN_ORDER)))
        copies = sum(tracer.storages[k].nbytes for k in self.weight_copies)
        saved = sum(
            r.nbytes
            for k, r in tracer.storages.items()
            if r.saved and r.kind == "activation" and k not in self.weight_copies
        )
        peak_bytes = sum(fixed.values()) + persistent + peak
        lifetimes = step_lifetimes(tracer.storages, timeline, self.weight_copies)
        if self.step.fully_sharded:
            breakdown = sharded_breakdown(breakdown, self.step, self._units())
            peak_bytes, state_bytes = sum(breakdown.values()), breakdown[OPTIMIZER_STATE]
            moments = []  # not affine in the batch as traced: the planner traces each batch
            lifetimes = ()  # the sharded step's storages are not the ones traced
        return TrainingMemory(
            optimizer=self.step.optimizer,
            params_bytes=params_bytes,
            buffer_bytes=buffer_bytes,
            input_bytes=input_bytes,
            grads_bytes=_storage_bytes(self.trainable),  # float32, like the parameters
            optimizer_state_bytes=state_bytes,
            saved_bytes=saved,
            backward_transient_bytes=backward_tmp,
            step_transient_bytes=step_tmp,
            peak_bytes=peak_bytes,
            peak_phase=phase,
            at_peak=breakdown,
            precision=self.step.precision,
            weight_copies_bytes=copies,
            moments=tuple(moments),
            lifetimes=lifetimes,
        )

    def _phase(self, clock: int) -> str:
        if clock < self.backward_start:
            return "forward"
        return "backward" if clock < self.step_start else "step"

    def _units(self) -> list[tuple[int, int]]:
        """(parameter bytes, gradient bytes) of each unit FSDP wraps: the top-level children
        that hold parameters (`checkpoint_segments`'s "stages")."""
        return [
            (_storage_bytes(params), _storage_bytes(p for p in params if p.requires_grad))
            for params in self.units
        ]


def sharded_breakdown(
    traced: dict[str, int], step: TrainingStep, units: list[tuple[int, int]]
) -> dict[str, int]:
    """One rank's bytes at the traced step's peak under ZeRO-2 or ZeRO-3 (FSDP full shard),
    from the unsharded step's breakdown there, each term named:

    - parameters: 1/W of each (the rank's shard, kept throughout) plus the buffers;
    - gathered parameters: the full parameters gathered for the units' forward and backward:
      ZeRO-3 frees a unit's after its forward and after its backward, so the unit running and
      the one prefetched (`GATHERED_UNITS`: at most the two largest units) are alive; ZeRO-2
      (FSDP's SHARD_GRAD_OP, `reshard_after_forward=False`) keeps each from its forward to
      the end of its backward: all of them at the start of backward;
    - gradients being reduced: full gradients of the unit whose backward computes them and
      of the one being reduce-scattered meanwhile (`GRADIENT_UNITS`: at most the two largest
      units', at most the gradients alive at the peak); gradients: 1/W of the rest of those
      (each rank keeps its shard after the reduce-scatter);
    - optimizer state: 1/W of it (elementwise state of evenly sharded parameters);
    - inputs, weight copies, saved activations, temporaries: as traced (the rank's own
      micro-batch's).

    Shards are rounded up to whole bytes. It is arithmetic on the traced step: the moment of
    the peak is the unsharded step's."""
    world = step.world_size
    out = dict(traced)
    params = sum(p for p, _ in units)
    out[PARAMETERS] = -(-params // world) + traced[PARAMETERS] - params
    gathered = sorted((p for p, _ in units), reverse=True)
    out[GATHERED_PARAMETERS] = sum(
        gathered[:GATHERED_UNITS] if step.sharding == "zero3" else gathered
    )
    in_flight = sorted((g for _, g in units), reverse=True)[:GRADIENT_UNITS]
    reducing = min(sum(in_flight), traced[GRADIENTS])
    out[REDUCE_BUFFER] = reducing
    out[GRADIENTS] = -(-(traced[GRADIENTS] - reducing) // world)
    out[OPTIMIZER_STATE] = -(-traced[OPTIMIZER_STATE] // world)
    return out


def largest_shard(params: list[torch.Tensor], world_size: int) -> list[torch.Tensor]:
    """The parameters of the rank with the most, as ZeroRedundancyOptimizer partitions them:
    largest first, each to the rank holding the fewest elements so far (ties: lowest rank)."""
    shards: list[list[torch.Tensor]] = [[] for _ in range(world_size)]
    sizes = [0] * world_size
    for param in sorted(params, key=lambda t: t.numel(), reverse=True):
        rank = sizes.index(min(sizes))
        shards[rank].append(param)
        sizes[rank] += param.numel()
    return shards[sizes.index(max(sizes))]


def _storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind `tensors`."""
    return sum({storage_key(t): t.untyped_storage().nbytes() for t in tensors}.values())
