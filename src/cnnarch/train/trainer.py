"""The training loop: `fit(config)` trains, evaluates, logs and checkpoints one run.

Exact resumption comes from two choices. The data order and the augmentation of every batch are
functions of (seed, epoch, step) alone, not of a generator's running state, so any step can be
replayed (`cnnarch.train.sources` states the rule for a dataset's own transforms). Everything
else that changes (weights, optimizer, scheduler, every RNG, the epoch's running sums) is in the
checkpoint. A run killed mid-epoch resumes from its last checkpoint (epoch end, every
`checkpoint_every` steps, every `checkpoint_minutes`, or on SIGINT/SIGTERM) and recomputes the
lost steps bit for bit, with the same thread count and the same choice of `torch.compile`.

Under `torchrun`, each global batch is the one a single process would use; every process takes
its contiguous share, and the loss is scaled so that DDP's gradient average equals the mean over
the global batch.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from cnnarch.data import CropFlip, load_dataset, pad_crop_flip
from cnnarch.errors import CnnarchError
from cnnarch.files import FolderLock, WriteError, check_output_folder
from cnnarch.train.checkpoint import (
    LATEST,
    PREVIOUS,
    load_latest,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cnnarch.train.config import TrainConfig
from cnnarch.train.distributed import DistContext, cpu_threads_per_process
from cnnarch.train.runfiles import (
    BEST_PT,
    MODEL_PT,
    RunFiles,
    tensorboard_writer_class,
)
from cnnarch.train.sources import (
    EVALUATION,
    Batch,
    BatchKey,
    DataSource,
    EpochBatches,
    RunData,
    Transform,
    check_same_data,
    derived_seed,
    open_data,
    steps_per_epoch,
)
from cnnarch.train.speed import CompileChoice, choose_compile
from cnnarch.train.threads import ThreadChoice, cpu_threads, measure_choice, time_steps
from cnnarch.zoo.common import ZooModel
from cnnarch.zoo.registry import state_dict_mismatch

__all__ = [
    "EpochBatches",
    "StepInfo",
    "TrainingInterrupted",
    "derived_seed",
    "fit",
    "lr_factor",
    "run_summary",
    "steps_per_epoch",
    "summary_line",
    "training_loss",
]

ModelSource = nn.Module | Callable[[], nn.Module] | None
LOG_EVERY = 10  # steps between progress updates and step-log writes (each synchronizes)
logger = logging.getLogger("cnnarch.train")


class TrainingInterrupted(CnnarchError):
    """The run was stopped by SIGINT or SIGTERM after writing a checkpoint."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


@dataclass(frozen=True)
class StepInfo:
    """Where a run is, passed to `fit`'s `on_step` after every optimizer step."""

    epoch: int  # 0-based epoch in progress
    step: int  # steps done in this epoch
    global_step: int
    rank: int


def lr_factor(step: int, total: int, schedule: str, warmup_steps: int) -> float:
    """Multiplier of the base learning rate before optimizer step `step` of `total`."""
    if step < warmup_steps:
        return 0.1
    if schedule == "step":
        return 0.1 ** sum(step >= m * total for m in (0.5, 0.75))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / total))
    return 1.0


def split_outputs(output: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(main logits, auxiliary logits) of a model output: a tensor, or a tuple (main, aux...)."""
    if isinstance(output, torch.Tensor):
        return output, []
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0], [o for o in output[1:] if isinstance(o, torch.Tensor)]
    raise CnnarchError(
        f"the model returned {type(output).__name__}; expected logits or a tuple (logits, aux...)"
    )


def training_loss(
    output: Any, labels: torch.Tensor, aux_weight: float, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(objective, main loss, main logits); losses are sums over the batch, not means.

    The objective adds `aux_weight` times the loss of each auxiliary head (GoogLeNet: 0.3,
    Szegedy et al. 2014, "Going deeper with convolutions"), when the model returns them. Every
    cross-entropy takes `label_smoothing` (Szegedy et al. 2016, "Rethinking the Inception
    Architecture", Section 7).
    """
    main, aux = split_outputs(output)

    def loss(logits: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits.float(), labels, reduction="sum", label_smoothing=label_smoothing
        )

    loss_sum = loss(main)
    objective = loss_sum
    for logits in aux:
        objective = objective + aux_weight * loss(logits)
    return objective, loss_sum, main


def make_optimizer(cfg: TrainConfig, params: Iterator[nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer `cfg` names, with its settings."""
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)  # type: ignore[arg-type]
    return torch.optim.SGD(
        params,
        lr=cfg.lr,  # type: ignore[arg-type]
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,  # type: ignore[arg-type]
        nesterov=cfg.nesterov,
    )


def is_out_of_memory(err: BaseException) -> bool:
    """A failed allocation: torch's OutOfMemoryError, Python's MemoryError, or the CPU
    allocator's RuntimeError."""
    if isinstance(err, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and (
        "DefaultCPUAllocator" in text or "can't allocate memory" in text
    )


def first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


class _StopSignals(AbstractContextManager):
    """Turns SIGINT/SIGTERM into a flag checked between steps; a second SIGINT stops at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _empty_partial() -> dict[str, Any]:
    """The running sums of an epoch not yet begun (global loss, correct, images; seconds)."""
    return {"loss_sum": 0.0, "correct": 0, "count": 0, "train_s": 0.0, "wall_s": 0.0}


def pick_device(device: str, dist: DistContext) -> torch.device:
    """This process's device for `device` ("auto", "cpu" or "cuda"): under torchrun, the GPU
    of its local rank (made current)."""
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if not use_cuda:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise CnnarchError("device cuda was asked for, but torch sees no CUDA GPU")
    torch.cuda.set_device(dist.local_rank)
    return torch.device("cuda", dist.local_rank)


def build_from_spec(
    spec: str, variant: str, num_classes: int | None, in_channels: int, options: dict[str, Any]
) -> nn.Module:
    """The model a config names: a zoo name built in `variant`, or `module.path:factory`
    called with `options`, and with `num_classes` and `in_channels` where it takes them by
    name (torchvision's builders take `num_classes` through `**kwargs`: a factory with
    `**kwargs` gets `num_classes` only).

    Args:
        spec: a zoo name or "module.path:factory".
        variant: the zoo variant (a factory takes none).
        num_classes: the data's number of classes, or None when it does not say.
        in_channels: the images' channels.
        options: the config's `model_kwargs`.
    """
    if ":" not in spec:
        from cnnarch.zoo import create_model

        if num_classes is None:
            raise CnnarchError(
                f"the data does not say how many classes it has (no `classes`, `num_classes` "
                f"or `targets`), which {spec} needs; give the dataset one of them"
            )
        return create_model(
            spec, variant=variant, num_classes=num_classes, in_channels=in_channels, **options
        )
    from cnnarch.analysis.loading import resolve_factory

    if variant != TrainConfig.variant:
        raise CnnarchError(f"--variant is for zoo models; {spec} is a factory (drop --variant)")
    factory = resolve_factory(spec)
    if isinstance(factory, nn.Module):
        return factory
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    given = dict(options)
    if num_classes is not None and ("num_classes" in parameters or takes_kwargs):
        given["num_classes"] = num_classes
    if "in_channels" in parameters:
        given["in_channels"] = in_channels
    try:
        model = factory(**given)
    except Exception as err:
        raise CnnarchError(f"{spec} raised {type(err).__name__}: {first_line(err)}") from err
    if not isinstance(model, nn.Module):
        raise CnnarchError(f"{spec} returned a {type(model).__name__}, not an nn.Module")
    return model


class _Run:
    """One call of `fit`: the state that lives from setup to the last epoch."""

    def __init__(
        self,
        cfg: TrainConfig,
        model: ModelSource,
        on_step: Callable[[StepInfo], None] | None,
        data: tuple[DataSource, DataSource] | None,
        transform: Transform | None,
    ) -> None:
        self.cfg = cfg
        self.on_step = on_step
        self.threads_before = torch.get_num_threads()
        self.created_group = False
        self.lock: FolderLock | None = None
        self.files: RunFiles | None = None
        if model is None and ":" not in cfg.model:
            from cnnarch.zoo import model_card

            model_card(cfg.model)  # an unknown name fails before the data is read
        self.dist = DistContext.from_env()
        self.device = pick_device(cfg.device, self.dist)
        self.created_group = self.dist.init(self.device)
        try:
            self._setup(model, data, transform)
        except BaseException:
            self.close()
            raise

    def _setup(
        self,
        model: ModelSource,
        data: tuple[DataSource, DataSource] | None,
        transform: Transform | None,
    ) -> None:
        cfg = self.cfg
        self.out = Path(cfg.out) if cfg.out else None
        if self.out is not None and self.dist.is_main:
            # One run per folder, checked before anything is loaded: a second run fails at once,
            # and so does a folder holding files cnnarch did not write.
            self.lock = FolderLock(self.out, purpose="training run")
            self.lock.acquire()
            if self.lock.stale_note:
                logger.warning(self.lock.stale_note)
            check_output_folder(self.out)
        self._configure_backend()
        self._seed_everything()
        if data is None:
            data = (
                load_dataset(cfg.dataset, cfg.data_dir, train=True),
                load_dataset(cfg.dataset, cfg.data_dir, train=False),
            )
        self.data: RunData = open_data(
            data, (cfg.subset, cfg.test_subset), self.device, cfg.seed, transform, cfg.batch_size
        )
        self.model = self._build_model(model)
        self.optimizer = make_optimizer(cfg, self.model.parameters())
        self.batches = EpochBatches(len(self.data.train), cfg.batch_size, cfg.seed, self.dist)
        self.total_steps = cfg.epochs * self.batches.steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: lr_factor(step, self.total_steps, cfg.schedule, cfg.warmup_steps),
        )
        self.ddp = self._wrap_ddp()
        self.step_model: nn.Module = self.ddp  # torch.compile's wrapper, when compiled
        self.history: list[dict[str, Any]] = []
        self.resumed_threads: int | None = None  # the thread count the checkpoint was made with
        self.resumed_compiled: bool | None = None
        self.threads = ThreadChoice(torch.get_num_threads(), "default")
        self.compiled = CompileChoice(False, "not chosen yet")
        self.epoch, self.step = 0, 0
        self.steps_done_here = 0
        self.partial = _empty_partial()
        self.last_save = time.monotonic()
        self.step_buffer: list[tuple[int, int, float, torch.Tensor, int]] = []
        self.buffer_start = time.perf_counter()

    # --- setup -------------------------------------------------------------------------------

    def _configure_backend(self) -> None:
        if self.device.type == "cuda":
            torch.backends.cudnn.deterministic = self.cfg.deterministic
            torch.backends.cudnn.benchmark = not self.cfg.deterministic

    def _choose_threads(self) -> ThreadChoice:
        """Set torch's thread count: given, the checkpoint's on resume, or the fastest measured.

        A resumed run keeps the count it was trained with: CPU results depend on it (it changes
        the order of floating-point sums), so resuming is bit-exact only on the same count.
        """
        if self.cfg.threads is not None:
            choice = ThreadChoice(self.cfg.threads, "given")
            if self.resumed_threads not in (None, choice.threads) and self.dist.is_main:
                logger.warning(
                    f"note: {self.out} was trained with {self.resumed_threads} threads; "
                    f"continuing with {choice.threads} changes the numbers slightly"
                )
        elif self.device.type == "cpu" and self.dist.enabled:
            choice = ThreadChoice(cpu_threads_per_process(self.dist.local_world_size), "default")
        elif self.device.type != "cpu":
            choice = ThreadChoice(torch.get_num_threads(), "default")
        elif self.resumed_threads is not None:
            choice = ThreadChoice(self.resumed_threads, "resumed")
        elif self.epoch >= self.cfg.epochs:
            choice = ThreadChoice(torch.get_num_threads(), "default")  # nothing left to train
        else:
            choice = measure_choice(self._probe_step())
        torch.set_num_threads(choice.threads)
        return choice

    def _choose_compile(self) -> CompileChoice:
        """Eager or `torch.compile` (`cnnarch.train.speed`), timing an eager step here when
        "auto" needs one and the thread probe did not."""
        steps_left = self.total_steps - (self.epoch * self.batches.steps + self.step)
        step_seconds = None
        needs_timing = self.cfg.compile == "auto" and self.resumed_compiled is None
        if needs_timing and self.device.type == "cpu" and steps_left > 0:
            timed = self.threads.step_seconds.get(self.threads.threads)
            step_seconds = (
                timed
                or time_steps(self._probe_step(), [self.threads.threads], 1)[self.threads.threads]
            )
        layers = sum(1 for m in self.model.modules() if list(m.parameters(recurse=False)))
        choice = choose_compile(
            self.cfg.compile,
            self.device,
            step_seconds,
            steps_left,
            layers,
            self.cfg.channels_last,
            self.resumed_compiled,
        )
        if choice.compiled:
            self.step_model = torch.compile(self.ddp)
        return choice

    def _probe_step(self) -> Callable[[], None]:
        """One training step on the first batch, on a copy of the model and optimizer, with the
        random state restored afterwards: timing it leaves the run exactly as it was."""
        model = copy.deepcopy(self.model)
        optimizer = make_optimizer(self.cfg, model.parameters())
        count = min(self.cfg.batch_size, len(self.data.train))
        rows = tuple(self.data.train.rows[:count].tolist())
        key = BatchKey(EVALUATION, 0, tuple(range(count)), rows)
        with torch.random.fork_rng(devices=[]):
            images, labels = next(self.data.train.read([key]))

        def step() -> None:
            with torch.random.fork_rng(devices=[]):
                x = images
                if self.cfg.augment:
                    params = CropFlip.draw(count, self.cfg.pad, True, torch.Generator())
                    x = pad_crop_flip(x, params, self.cfg.pad)
                try:
                    with self._autocast():
                        output = model(self._model_input(x))
                    objective, _, _ = training_loss(output, labels, self.cfg.aux_weight)
                    objective.backward()
                    optimizer.step()
                except CnnarchError:
                    raise
                except Exception as err:
                    error = self._user_error(err, "in the first step", images.shape, True)
                    if error is None:
                        raise
                    raise error from err
                optimizer.zero_grad(set_to_none=True)

        return step

    def _seed_everything(self) -> None:
        seed = self.cfg.seed
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)

    def _build_model(self, model: ModelSource) -> nn.Module:
        data = self.data
        if model is not None and not isinstance(model, nn.Module):
            model = model()  # a builder: called after seeding, so the same seed, same weights
        if model is None:
            model = build_from_spec(
                self.cfg.model,
                self.cfg.variant,
                data.num_classes,
                data.train.in_channels,
                self.cfg.model_kwargs,
            )
            self._check_image_size(model)
        if not isinstance(model, nn.Module):
            raise CnnarchError(f"the model is a {type(model).__name__}, not an nn.Module")
        if self.dist.rank:
            # Different dropout masks per process; the weights come from rank 0 (DDP broadcast).
            torch.manual_seed(derived_seed(self.cfg.seed, self.dist.rank))
        fmt = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        return model.to(self.device, memory_format=fmt)

    def _check_image_size(self, model: nn.Module) -> None:
        """Fail before training, with the fix, when the images are too small for the model."""
        side = self.cfg.image_size or min(self.data.train.image_size)
        smallest = model.min_input_side() if isinstance(model, ZooModel) else None
        if smallest is not None and side < smallest:
            raise CnnarchError(
                f"{self.cfg.model} needs inputs of at least {smallest}x{smallest}, and these "
                f"images are {side}x{side}: add --image-size {smallest} (or larger) to resize them"
            )

    def _wrap_ddp(self) -> nn.Module:
        if not self.dist.enabled:
            return self.model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(self.model, device_ids=ids)

    # --- checkpoints ---------------------------------------------------------------------------

    def _resume_or_start(self) -> None:
        """Load the checkpoint to resume from, if any; refuse to overwrite a run without resume."""
        if self.out is None:
            return
        latest_exists = (self.out / LATEST).exists() or (self.out / PREVIOUS).exists()
        if not self.cfg.resume:
            if latest_exists:
                raise CnnarchError(
                    f"{self.out} already holds a run; pass --resume to continue it, "
                    "or choose another --out"
                )
            return
        ckpt, warnings = load_latest(self.out, rename_corrupt=self.dist.is_main)
        if self.dist.is_main:
            for warning in warnings:
                logger.warning(warning)
        if ckpt is None:
            if self.dist.is_main:
                logger.warning(f"no checkpoint in {self.out}; starting afresh")
            return
        self._restore(ckpt)

    def _data_record(self) -> dict[str, Any]:
        return self.data.record(self.cfg.dataset, self.cfg.data_dir)

    def _start_files(self) -> None:
        """Write the run's config and make its logs hold exactly what the run has done."""
        if self.out is None or not self.dist.is_main:
            return
        self.files = RunFiles(self.out)
        self.files.write_config(self._config_record())
        position = self.epoch * self.batches.steps + self.step
        self.files.reset_logs(self.history, position)
        wanted = self.cfg.tensorboard
        if wanted is None and tensorboard_writer_class() is None:
            if self.cfg.progress:
                logger.info(
                    "no TensorBoard event files: the tensorboard package is not installed "
                    "(pip install 'cnnarch[tensorboard]')"
                )
        elif wanted is not False:
            self.files.open_tensorboard(position if position else None)

    def _restore(self, ckpt: dict[str, Any]) -> None:
        where = self.out / LATEST if self.out else LATEST
        differences = self.cfg.result_differences(ckpt["config"])
        if differences:
            raise CnnarchError(
                f"{self.out} was trained with other settings ({'; '.join(differences)}); "
                "resume with the same ones, or start a new run with another --out"
            )
        check_same_data(ckpt["data"], self._data_record(), self.out)
        mismatch = state_dict_mismatch(self.model.state_dict(), ckpt["model"])
        if mismatch:
            raise CnnarchError(f"the checkpoint in {self.out} does not fit this model: {mismatch}")
        epoch, step = ckpt["epoch"], ckpt["step"]
        if step >= self.batches.steps:
            raise CnnarchError(
                f"{where}: step must be below the {self.batches.steps} steps of an epoch, got "
                f"{step}"
            )
        position = epoch * self.batches.steps + step
        if ckpt["scheduler"]["last_epoch"] != position:
            raise CnnarchError(
                f"{where}: scheduler.last_epoch must be the steps done ({position}), got "
                f"{ckpt['scheduler']['last_epoch']}"
            )
        if step and ckpt["partial"]["count"] != step * self.cfg.batch_size:
            raise CnnarchError(
                f"{where}: partial.count must be the images of the {step} steps done "
                f"({step * self.cfg.batch_size}), got {ckpt['partial']['count']}"
            )
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:
            raise CnnarchError(
                f"the checkpoint in {self.out} does not fit this run: {first_line(err)}"
            ) from None
        self.epoch, self.step = epoch, step
        self.history = list(ckpt["history"])
        self.resumed_threads = ckpt["threads"]
        self.resumed_compiled = ckpt["compiled"]
        if self.step and self.dist.is_main:
            self.partial = dict(ckpt["partial"])  # the global sums live on one process only
        states = ckpt["rng"]
        set_rng_state(states[self.dist.rank % len(states)])

    def _save(self) -> None:
        """Write a checkpoint of the current position (every process must call this)."""
        if self.out is None:
            return
        self._flush_steps(sync=True)
        states = self.dist.all_gather_object(rng_state())
        sums = self._global_sums()
        if not self.dist.is_main:
            return
        payload = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "partial": {**sums, "train_s": self.partial["train_s"], "wall_s": self.wall_s()},
            "history": self.history,
            "rng": states,
            "config": self.cfg.to_dict(),
            "world_size": self.dist.world_size,
            "threads": self.threads.threads,
            "compiled": self.compiled.compiled,
            "data": self._data_record(),
        }
        save_checkpoint(self.out, payload)
        self.last_save = time.monotonic()

    def _config_record(self) -> dict[str, Any]:
        return {
            **self.cfg.to_dict(),
            "world_size": self.dist.world_size,
            "device": str(self.device),
            "torch": torch.__version__,
            "train_images": len(self.data.train),
            "test_images": len(self.data.test),
            "steps_per_epoch": self.batches.steps,
            "data": self._data_record(),
        }

    # --- training ------------------------------------------------------------------------------

    def _global_sums(self) -> dict[str, Any]:
        total = self.dist.all_reduce(self.sums).cpu()
        return {"loss_sum": total[0].item(), "correct": int(total[1]), "count": int(total[2])}

    def _kept(self) -> str:
        """What survives a run stopped now: its last checkpoint, if any."""
        latest = self.out / LATEST if self.out else None
        if latest and latest.exists():
            return f"training stopped and the last good checkpoint {latest} is kept"
        return "training stopped and no checkpoint had been written"

    def _check_finite(self, loss_sum: float, which: str = "loss", where: str = "") -> None:
        if not math.isfinite(loss_sum):
            where = where or f"in epoch {self.epoch + 1}, step {self.step}"
            raise CnnarchError(
                f"the {which} became {loss_sum} {where} "
                f"(lr {self.optimizer.param_groups[0]['lr']:g}); {self._kept()}; "
                "try a lower --lr"
            )

    def wall_s(self) -> float:
        return self.partial["wall_s"] + time.perf_counter() - self.epoch_start

    def _epoch_keys(self) -> Iterator[tuple[BatchKey, int, slice]]:
        """The key of this process's share of each remaining batch of the epoch, with the
        global batch's size and the share."""
        for step in range(self.step, self.batches.steps):
            index, share = self.batches.batch(step)
            rows = self.data.train.rows[index[share]].tolist()
            positions = tuple(range(share.start, share.stop))
            yield BatchKey(self.epoch, step, positions, tuple(rows)), len(index), share

    def _batches(self) -> Iterator[Batch]:
        keys = list(self._epoch_keys())
        images = self.data.train.read([key for key, _, _ in keys])
        for (_key, size, share), (x, y) in zip(keys, images, strict=True):
            yield Batch(x, y, size, share)

    def _train_step(self, batch: Batch) -> None:
        cfg = self.cfg
        images = batch.images
        if cfg.augment:
            params = CropFlip.draw(batch.size, cfg.pad, True, self.batches.generator(self.step))
            images = pad_crop_flip(images, params[batch.share], cfg.pad)
        x = self._model_input(images)
        y = batch.labels
        with self._autocast():
            output = self.step_model(x)
        objective, loss_sum, main = training_loss(output, y, cfg.aux_weight, cfg.label_smoothing)
        # DDP averages gradients over processes: scaling by world/global makes that the mean
        # over the global batch, whatever each process's share.
        (objective * (self.dist.world_size / batch.size)).backward()
        self.optimizer.step()
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        with torch.no_grad():
            self.sums[0] += loss_sum.detach().double()
            self.sums[1] += (main.argmax(1) == y).sum()
            self.sums[2] += len(y)
        global_step = self.epoch * self.batches.steps + self.step + 1
        self.step_buffer.append((global_step, self.step + 1, lr, loss_sum.detach(), len(y)))

    def _guarded_step(self, batch: Batch) -> None:
        """A training step whose failures a user can fix end in one line (`_user_error`)."""
        try:
            self._train_step(batch)
        except CnnarchError:
            raise
        except Exception as err:
            if self._compile_failed(err):
                self._train_step(batch)  # eagerly, as the run now is
                self.steps_done_here += 1
                return
            where = f"in epoch {self.epoch + 1}, step {self.step + 1}"
            error = self._user_error(err, where, batch.images.shape, not self.steps_done_here)
            if error is None:
                raise
            raise error from err
        self.steps_done_here += 1

    def _user_error(
        self, err: Exception, where: str, shape: torch.Size, first: bool
    ) -> CnnarchError | None:
        """`err` of a training step (or of the timing probe, the first step of all) as one
        line when a user can fix it: a failed allocation, or a model that does not take these
        images (on the first step); None for any other error."""
        if is_out_of_memory(err):
            return CnnarchError(
                f"out of memory {where}, at {shape[0]} images a step ({first_line(err)}); "
                f"{self._kept()}; try a smaller --batch-size (`cnnarch plan` finds the "
                "largest that fits)"
            )
        if first and isinstance(err, (RuntimeError, ValueError, TypeError)):
            return CnnarchError(
                f"{self.cfg.model} failed on its first batch of {'x'.join(map(str, shape[1:]))} "
                f"images: {type(err).__name__}: {first_line(err)}"
            )
        return None

    def _compile_failed(self, err: Exception) -> bool:
        """Whether `err` is torch.compile failing on the first step (no C++ compiler, an op it
        cannot compile); under "auto" the run then trains eagerly, as it says."""
        from_compiler = type(err).__module__.startswith(("torch._dynamo", "torch._inductor"))
        if not (self.compiled.compiled and self.steps_done_here == 0 and from_compiler):
            return False
        if self.cfg.compile == "on":
            raise CnnarchError(
                f"torch.compile failed: {first_line(err)}; train eagerly with --no-compile"
            ) from err
        logger.warning(f"torch.compile failed ({first_line(err)}); training eagerly")
        self.compiled = CompileChoice(False, "auto: torch.compile failed here")
        self.step_model = self.ddp
        self.step_buffer.clear()
        return True

    def _autocast(self) -> AbstractContextManager:
        """bfloat16 autocast with `amp`, otherwise nothing."""
        if self.cfg.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _model_input(self, images: torch.Tensor) -> torch.Tensor:
        """A batch -> the float batch the model takes: uint8 images normalized (floating-point
        ones as they are), resized, laid out."""
        normalize = self.data.normalize
        x = normalize(images) if normalize is not None else images.to(torch.float32)
        side = self.cfg.image_size
        if side is not None and tuple(x.shape[-2:]) != (side, side):
            x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _control(self, stop: _StopSignals) -> tuple[bool, bool]:
        """(stop now, save now), agreed by all processes."""
        cfg = self.cfg
        save = cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0
        minutes = (time.monotonic() - self.last_save) / 60
        save = save or (self.dist.is_main and minutes >= cfg.checkpoint_minutes)
        halt = stop.signum is not None
        if self.dist.enabled:
            flags = torch.tensor([float(halt), float(save)], device=self.device)
            flags = self.dist.all_reduce(flags, op=torch.distributed.ReduceOp.MAX).cpu()
            halt, save = bool(flags[0]), bool(flags[1])
        return halt, save

    def _evaluate(self) -> tuple[float, float]:
        """(mean loss, error in %) on the test set, shared among the processes."""
        model, cfg = self.model, self.cfg
        n = len(self.data.test)
        lo, hi = (
            self.dist.rank * n // self.dist.world_size,
            (self.dist.rank + 1) * n // self.dist.world_size,
        )
        rows = self.data.test.rows
        keys = [
            BatchKey(
                EVALUATION,
                start,
                tuple(range(start, min(start + cfg.eval_batch_size, hi))),
                tuple(rows[start : min(start + cfg.eval_batch_size, hi)].tolist()),
            )
            for start in range(lo, hi, cfg.eval_batch_size)
        ]
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        was_training = model.training
        model.eval()
        with torch.inference_mode(), self._autocast():
            for images, y in self.data.test.read(keys):
                logits, _ = split_outputs(model(self._model_input(images)))
                sums[0] += F.cross_entropy(logits.float(), y, reduction="sum").double()
                sums[1] += (logits.argmax(1) == y).sum()
                sums[2] += len(y)
        model.train(was_training)
        total = self.dist.all_reduce(sums).cpu()
        count = max(total[2].item(), 1.0)
        return total[0].item() / count, 100.0 * (1.0 - total[1].item() / count)

    def _flush_steps(self, sync: bool = False) -> None:
        """Write the buffered steps' rows (global loss of each step, its lr, the images/s of
        the steps since the last flush) to steps.jsonl and TensorBoard."""
        buffer, self.step_buffer = self.step_buffer, []
        now = time.perf_counter()
        elapsed, self.buffer_start = now - self.buffer_start, now
        if not buffer:
            if sync and self.files:
                self.files.append_steps([], sync=True)
            return
        sums = torch.stack(
            [torch.stack([loss.double(), loss.new_tensor(n).double()]) for *_, loss, n in buffer]
        )
        sums = self.dist.all_reduce(sums).cpu()
        if self.files is None:
            return
        rate = float(sums[:, 1].sum()) / max(elapsed, 1e-9)
        rows = []
        for (global_step, step, lr, _loss, _n), (loss_sum, count) in zip(
            buffer, sums.tolist(), strict=True
        ):
            rows.append(
                {
                    "global_step": global_step,
                    "epoch": self.epoch + 1,
                    "step": step,
                    "loss": loss_sum / max(count, 1.0),
                    "lr": lr,
                    "images_per_s": rate,
                }
            )
            self.files.scalars({"train/loss": rows[-1]["loss"], "train/lr": lr}, global_step)
        self.files.scalars({"train/images_per_s": rate}, rows[-1]["global_step"])
        self.files.append_steps(rows, sync=sync)

    def _progress(self, bar: tqdm) -> None:
        sums = self._global_sums()
        self._check_finite(sums["loss_sum"])
        self._flush_steps()
        train_s = self.partial["train_s"] + time.perf_counter() - self.train_start
        count = max(sums["count"], 1)
        bar.set_postfix(
            loss=f"{sums['loss_sum'] / count:.4f}",
            err=f"{100 * (1 - sums['correct'] / count):.2f}%",
            img_s=f"{sums['count'] / max(train_s, 1e-9):.0f}",
            refresh=False,
        )

    def _finish_epoch(self) -> dict[str, Any]:
        sums = self._global_sums()
        self._check_finite(sums["loss_sum"])
        train_s = self.partial["train_s"]
        test_loss, test_error = self._evaluate()
        count = max(sums["count"], 1)
        row = {
            "epoch": self.epoch + 1,
            "train_loss": sums["loss_sum"] / count,
            "train_error": 100.0 * (1.0 - sums["correct"] / count),
            "test_loss": test_loss,
            "test_error": test_error,
            "lr": self.cfg.lr
            * lr_factor(
                self.epoch * self.batches.steps,
                self.total_steps,
                self.cfg.schedule,
                self.cfg.warmup_steps,
            ),
            "images_per_s": sums["count"] / max(train_s, 1e-9),
            "seconds": self.wall_s(),
            "global_step": (self.epoch + 1) * self.batches.steps,
            "threads": self.threads.threads,
            "compiled": self.compiled.compiled,
        }
        if self.cfg.progress and self.dist.is_main:
            logger.info(
                f"epoch {row['epoch']}/{self.cfg.epochs}  train loss {row['train_loss']:.4f} "
                f"err {row['train_error']:.2f}%  test loss {row['test_loss']:.4f} "
                f"err {row['test_error']:.2f}%  lr {row['lr']:.3g}  "
                f"{row['images_per_s']:.0f} img/s  {row['seconds']:.1f} s"
            )
        return row

    def _write_weights(self, row: dict[str, Any]) -> None:
        """model.pt after every epoch; best.pt when this epoch is the best so far."""
        if self.files is None:
            return
        state = self.model.state_dict()
        self.files.write_weights(MODEL_PT, state)
        metric = self.cfg.best_metric
        if all(row[metric] < earlier[metric] for earlier in self.history[:-1]):
            self.files.write_weights(BEST_PT, state)
        self.files.scalars(
            {
                f"epoch/{k}": row[k]
                for k in ("train_loss", "train_error", "test_loss", "test_error")
            },
            row["global_step"],
        )

    def _run_epoch(self, bar: tqdm, stop: _StopSignals) -> None:
        self.batches.set_epoch(self.epoch)
        self.model.train()
        self.epoch_start = time.perf_counter()
        # Running sums of this process (loss, correct, images); on resume, the saved global ones.
        self.sums = torch.tensor(
            [self.partial["loss_sum"], self.partial["correct"], self.partial["count"]],
            dtype=torch.float64,
            device=self.device,
        )
        self.train_start = time.perf_counter()
        bar.set_description(f"epoch {self.epoch + 1}/{self.cfg.epochs}")
        for batch in self._batches():
            self._guarded_step(batch)
            self.step += 1
            bar.update(1)
            if self.step % LOG_EVERY == 0 or self.step == self.batches.steps:
                self._progress(bar)
            if self.on_step is not None:
                self.on_step(
                    StepInfo(
                        self.epoch,
                        self.step,
                        self.epoch * self.batches.steps + self.step,
                        self.dist.rank,
                    )
                )
            if self.step == self.batches.steps:
                break  # the epoch-end checkpoint follows
            halt, save = self._control(stop)
            if halt or save:
                self._checkpoint_mid_epoch()
            if halt:
                raise self._interrupted(stop.signum)
        self.partial["train_s"] += time.perf_counter() - self.train_start
        try:
            row = self._finish_epoch()
        except Exception as err:
            if is_out_of_memory(err):
                raise CnnarchError(
                    f"out of memory evaluating after epoch {self.epoch + 1} "
                    f"({first_line(err)}); {self._kept()}; try a smaller --eval-batch-size"
                ) from err
            raise
        self.history.append(row)
        if self.files:
            self.files.append_metrics(row)
        # Checked after logging, so that metrics.jsonl shows the epoch (test_loss null).
        self._check_finite(row["test_loss"], "test loss", f"after epoch {row['epoch']}")
        self._write_weights(row)
        self.epoch, self.step = self.epoch + 1, 0
        self.partial = _empty_partial()
        self.epoch_start = time.perf_counter()
        self._save()
        halt, _ = self._control(stop)
        if halt:
            raise self._interrupted(stop.signum)

    def _checkpoint_mid_epoch(self) -> None:
        sums = self._global_sums()
        self._check_finite(sums["loss_sum"])
        now = time.perf_counter()
        self.partial["train_s"] += now - self.train_start
        self.train_start = now
        self._save()

    def _interrupted(self, signum: int | None) -> TrainingInterrupted:
        name = signal.Signals(signum).name if signum else "a signal"
        where = (
            f"checkpoint saved in {self.out}; continue with --resume"
            if self.out
            else "no checkpoint written (out=None)"
        )
        return TrainingInterrupted(
            f"stopped by {name} in epoch {self.epoch + 1}, step {self.step}; {where}",
            signum or signal.SIGINT,
        )

    def run(self) -> list[dict[str, Any]]:
        self._resume_or_start()
        self.threads = self._choose_threads()
        self.compiled = self._choose_compile()
        if self.cfg.progress and self.dist.is_main:
            if self.out is not None:
                done = "resuming the run in" if self.epoch or self.step else "run folder"
                logger.info(f"{done} {self.out}")
            if self.device.type == "cpu":
                logger.info(f"{self.threads.describe()}; {self.compiled.why}")
        self._start_files()
        done = self.epoch * self.batches.steps + self.step
        bar = tqdm(
            total=self.total_steps,
            initial=done,
            unit="step",
            # On a terminal only (None): no bar frames in a redirected log.
            disable=None if (self.cfg.progress and self.dist.is_main) else True,
            dynamic_ncols=True,
            mininterval=0.5,
            file=sys.stderr,
        )
        self.buffer_start = time.perf_counter()
        try:
            with _StopSignals() as stop:
                while self.epoch < self.cfg.epochs:
                    self._run_epoch(bar, stop)
        except WriteError as err:  # a full disk, a folder gone read-only: what is kept, and how on
            raise WriteError(
                f"{err}; {self._kept()}; make room or fix the folder, then continue with --resume",
                err.errno,
            ) from None
        finally:
            bar.close()
        return self.history

    def close(self) -> None:
        if self.files is not None:
            self.files.close()
        if self.lock is not None:
            self.lock.release()
        torch.set_num_threads(self.threads_before)
        if self.created_group:
            torch.distributed.destroy_process_group()


def fit(
    config: TrainConfig,
    model: ModelSource = None,
    *,
    on_step: Callable[[StepInfo], None] | None = None,
    data: tuple[DataSource, DataSource] | None = None,
    transform: Transform | None = None,
) -> list[dict[str, Any]]:
    """Train `model` (default: the model `config.model` names, sized to the data) as `config`
    says.

    Args:
        config: the run's settings.
        model: a module or a function returning one (called after seeding, so its initial
            weights follow `config.seed` too); None builds `config.model`: a zoo name (in
            `config.variant`) or "module.path:factory".
        on_step: called with a `StepInfo` after every optimizer step (on every process).
        data: (train, test), each an `ImageDataset`, a map-style `torch.utils.data.Dataset` of
            (image, label) items or a `DataLoader` over one (`cnnarch.train.sources`); it
            replaces the dataset `config.dataset` names (which then only labels the run).
        transform: called on each training image, a tensor (C, H, W), before cnnarch's own
            crop and flip; its random draws are seeded per image, so resuming stays exact.

    Returns one dict per epoch (`epoch`, `train_loss`, `train_error`, `test_loss`,
    `test_error`, `lr`, `images_per_s`, `seconds`, `global_step`, `threads`, `compiled`):
    errors in percent, `threads` the CPU thread count (`config.threads`, else the fastest
    measured), `compiled` whether the steps ran through `torch.compile`, losses the mean
    cross-entropy of the main output (train: during the epoch, on augmented images, with label
    smoothing), `lr` at the epoch's first step, `images_per_s` over the training steps alone,
    `seconds` the epoch's wall time with the evaluation. With `config.resume` the list also
    holds the epochs done before. Raises `TrainingInterrupted` after a SIGINT/SIGTERM checkpoint.
    """
    config.validate()
    run = _Run(config, model, on_step, data, transform)
    try:
        return run.run()
    finally:
        run.close()


def summary_line(config: TrainConfig, history: list[dict[str, Any]]) -> str:
    """One line on a finished run: final and best test error, time, where the files are."""
    if not history:
        return f"{config.model} on {config.dataset}: no epoch trained"
    last = history[-1]
    best = min(history, key=lambda row: row["test_error"])
    seconds = sum(row["seconds"] for row in history)
    threads = f" on {cpu_threads(last['threads'])}" if "threads" in last else ""
    where = f"; files in {config.out}" if config.out else ""
    return (
        f"{config.model} on {config.dataset}, {last['epoch']} epochs: test error "
        f"{last['test_error']:.2f}% (best {best['test_error']:.2f}% at epoch {best['epoch']}), "
        f"train error {last['train_error']:.2f}%, {seconds:.0f} s{threads}{where}"
    )


def run_summary(config: TrainConfig, history: list[dict[str, Any]]) -> dict[str, Any]:
    """What a finished run wrote and measured, as `cnnarch train --format json` prints it: the
    run folder and its files, the last epoch's metrics, the best epoch by `best_metric`, and
    the speed (images/s of the last epoch, threads, whether compiled).

    Args:
        config: the run's settings.
        history: what `fit` returned.
    """
    from cnnarch.files import written_files

    out = Path(config.out) if config.out else None
    metric = config.best_metric
    best = min(history, key=lambda row: row[metric]) if history else None
    last = history[-1] if history else None
    return {
        "model": config.model,
        "variant": config.variant,
        "dataset": config.dataset,
        "out": str(out) if out else None,
        "files": written_files(out) if out else [],
        "epochs": len(history),
        "last": last,
        "best": {"metric": metric, "epoch": best["epoch"], "value": best[metric]} if best else None,
        "images_per_s": last["images_per_s"] if last else None,
        "threads": last.get("threads") if last else None,
        "compiled": last.get("compiled") if last else None,
        "seconds": sum(row["seconds"] for row in history),
    }
