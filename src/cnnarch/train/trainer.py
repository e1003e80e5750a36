"""The training loop: `fit(config)` trains, evaluates, logs and checkpoints one run.

Exact resumption comes from two choices. The data order and the augmentation of every batch are
functions of (seed, epoch, step) alone, not of a generator's running state, so any step can be
replayed. Everything else that changes (weights, optimizer, scheduler, every RNG, the epoch's
running sums) is in the checkpoint. A run killed mid-epoch resumes from its last checkpoint
(epoch end, every `checkpoint_every` steps, every `checkpoint_minutes`, or on SIGINT/SIGTERM)
and recomputes the lost steps bit for bit.

Under `torchrun`, each global batch is the one a single process would use; every process takes
its contiguous share, and the loss is scaled so that DDP's gradient average equals the mean over
the global batch.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
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

from cnnarch.data import CropFlip, ImageDataset, Normalize, load_dataset, pad_crop_flip
from cnnarch.errors import CnnarchError
from cnnarch.files import FolderLock, WriteError
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
from cnnarch.train.runfiles import RunFiles
from cnnarch.train.threads import ThreadChoice, cpu_threads, measure_choice
from cnnarch.zoo.common import ZooModel

ModelSource = nn.Module | Callable[[], nn.Module] | None
LOG_EVERY = 10  # steps between progress-bar updates (each one synchronizes the device)


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


def derived_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part (for per-epoch and per-step generators)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def steps_per_epoch(n: int, batch_size: int, world_size: int) -> int:
    """Global batches per epoch; a last partial batch is kept if every process gets an image."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= world_size else 0)


class EpochBatches:
    """The global batches of an epoch (a seeded permutation) and this process's share of each.

    Plays the part of `DistributedSampler`: `set_epoch` reshuffles, and the union of the shares
    of all processes is exactly the batch a single process would draw.
    """

    def __init__(self, n: int, batch_size: int, seed: int, dist: DistContext) -> None:
        self.n, self.batch_size, self.seed, self.dist = n, batch_size, seed, dist
        self.steps = steps_per_epoch(n, batch_size, dist.world_size)
        if self.steps == 0:
            raise CnnarchError(f"{n} training images are too few for {dist.world_size} processes")
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        gen = torch.Generator().manual_seed(derived_seed(self.seed, epoch, 0))
        self.order = torch.randperm(self.n, generator=gen)

    def batch(self, step: int) -> tuple[torch.Tensor, slice]:
        """The global batch's image indices and the slice of it that this process trains on."""
        index = self.order[step * self.batch_size : (step + 1) * self.batch_size]
        size, world = len(index), self.dist.world_size
        start = self.dist.rank * size // world
        stop = (self.dist.rank + 1) * size // world
        return index, slice(start, stop)

    def generator(self, step: int) -> torch.Generator:
        """The generator for the augmentation of global batch `step` of the current epoch."""
        return torch.Generator().manual_seed(derived_seed(self.seed, self.epoch, step + 1))


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
    output: Any, labels: torch.Tensor, aux_weight: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(objective, main loss, main logits); losses are sums over the batch, not means.

    The objective adds `aux_weight` times the loss of each auxiliary head (GoogLeNet: 0.3,
    Szegedy et al. 2014, "Going deeper with convolutions"), when the model returns them.
    """
    main, aux = split_outputs(output)
    loss_sum = F.cross_entropy(main.float(), labels, reduction="sum")
    objective = loss_sum
    for logits in aux:
        objective = objective + aux_weight * F.cross_entropy(
            logits.float(), labels, reduction="sum"
        )
    return objective, loss_sum, main


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


class _Run:
    """One call of `fit`: the state that lives from setup to the last epoch."""

    def __init__(
        self,
        cfg: TrainConfig,
        model: ModelSource,
        on_step: Callable[[StepInfo], None] | None,
        data: tuple[ImageDataset, ImageDataset] | None = None,
    ) -> None:
        self.cfg = cfg
        self.on_step = on_step
        self.threads_before = torch.get_num_threads()
        self.created_group = False
        self.lock: FolderLock | None = None
        if model is None:
            from cnnarch.zoo import model_card

            model_card(cfg.model)  # an unknown name fails before the data is read
        self.dist = DistContext.from_env()
        self.device = pick_device(cfg.device, self.dist)
        self.created_group = self.dist.init(self.device)
        try:
            self._setup(model, data)
        except BaseException:
            self.close()
            raise

    def _setup(self, model: ModelSource, data: tuple[ImageDataset, ImageDataset] | None) -> None:
        cfg = self.cfg
        if cfg.out and self.dist.is_main:
            # One run per folder, checked before anything is loaded: a second run fails at once.
            self.lock = FolderLock(Path(cfg.out), purpose="training run")
            self.lock.acquire()
            if self.lock.stale_note:
                print(f"cnnarch: warning: {self.lock.stale_note}", file=sys.stderr)
        self._configure_backend()
        self._seed_everything()
        self.train_set, self.test_set = self._load_data(data)
        self.model = self._build_model(model)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            nesterov=cfg.nesterov,
        )
        self.batches = EpochBatches(len(self.train_set), cfg.batch_size, cfg.seed, self.dist)
        self.total_steps = cfg.epochs * self.batches.steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: lr_factor(step, self.total_steps, cfg.schedule, cfg.warmup_steps),
        )
        self.ddp = self._wrap_ddp()
        self.normalize = Normalize(self.train_set.mean, self.train_set.std)
        self.out = Path(cfg.out) if cfg.out else None
        self.files = RunFiles(self.out) if self.out and self.dist.is_main else None
        self.history: list[dict[str, Any]] = []
        self.resumed_threads: int | None = None  # the thread count the checkpoint was made with
        self.threads = ThreadChoice(torch.get_num_threads(), "default")
        self.epoch, self.step = 0, 0
        self.partial = _empty_partial()
        self.last_save = time.monotonic()

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
                print(
                    f"cnnarch: note: {self.out} was trained with {self.resumed_threads} threads; "
                    f"continuing with {choice.threads} changes the numbers slightly",
                    file=sys.stderr,
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

    def _probe_step(self) -> Callable[[], None]:
        """One training step on the first batch, on a copy of the model and optimizer, with the
        random state restored afterwards: timing it leaves the run exactly as it was."""
        model = copy.deepcopy(self.model)
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=self.cfg.lr,
            momentum=self.cfg.momentum,
            weight_decay=self.cfg.weight_decay,
            nesterov=self.cfg.nesterov,
        )
        count = min(self.cfg.batch_size, len(self.train_set))
        images, labels = self.train_set.images[:count], self.train_set.labels[:count]

        def step() -> None:
            with torch.random.fork_rng(devices=[]):
                x = images
                if self.cfg.augment:
                    params = CropFlip.draw(count, self.cfg.pad, True, torch.Generator())
                    x = pad_crop_flip(x, params, self.cfg.pad)
                with self._autocast():
                    output = model(self._model_input(x))
                objective, _, _ = training_loss(output, labels, self.cfg.aux_weight)
                objective.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

        return step

    def _seed_everything(self) -> None:
        seed = self.cfg.seed
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)

    def _load_data(
        self, data: tuple[ImageDataset, ImageDataset] | None
    ) -> tuple[ImageDataset, ImageDataset]:
        cfg = self.cfg
        if data is None:
            data = (
                load_dataset(cfg.dataset, cfg.data_dir, train=True),
                load_dataset(cfg.dataset, cfg.data_dir, train=False),
            )
        train, test = data[0].subset(cfg.subset), data[1].subset(cfg.test_subset)
        if train.images.shape[1:] != test.images.shape[1:]:
            raise CnnarchError(
                f"training images are {tuple(train.images.shape[1:])} but test images "
                f"{tuple(test.images.shape[1:])}"
            )
        moved = [
            dataclasses.replace(s, images=s.images.to(self.device), labels=s.labels.to(self.device))
            for s in (train, test)
        ]
        return moved[0], moved[1]

    def _build_model(self, model: ModelSource) -> nn.Module:
        if model is not None and not isinstance(model, nn.Module):
            model = model()  # a builder: called after seeding, so the same seed, same weights
        if model is None:
            from cnnarch.zoo import create_model

            model = create_model(
                self.cfg.model,
                num_classes=self.train_set.num_classes,
                in_channels=self.train_set.in_channels,
                **self.cfg.model_kwargs,
            )
            self._check_image_size(model)
        if self.dist.rank:
            # Different dropout masks per process; the weights come from rank 0 (DDP broadcast).
            torch.manual_seed(derived_seed(self.cfg.seed, self.dist.rank))
        fmt = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        return model.to(self.device, memory_format=fmt)

    def _check_image_size(self, model: nn.Module) -> None:
        """Fail before training, with the fix, when the images are too small for the model."""
        side = self.cfg.image_size or min(self.train_set.images.shape[-2:])
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
                print(f"cnnarch: warning: {warning}", file=sys.stderr)
        if ckpt is None:
            if self.dist.is_main:
                print(f"cnnarch: no checkpoint in {self.out}; starting afresh", file=sys.stderr)
            return
        self._restore(ckpt)

    def _start_files(self, history: list[dict[str, Any]]) -> None:
        """Write the run's config and make its metrics files hold exactly `history`."""
        if self.files:
            self.files.write_config(self._config_record())
            self.files.reset_metrics(history)

    def _restore(self, ckpt: dict[str, Any]) -> None:
        differences = self.cfg.result_differences(ckpt["config"])
        if differences:
            raise CnnarchError(
                f"{self.out} was trained with other settings ({'; '.join(differences)}); "
                "resume with the same ones, or start a new run with another --out"
            )
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise CnnarchError(
                f"the checkpoint in {self.out} does not fit this model: {err}"
            ) from None
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])
        self.history = list(ckpt.get("history", []))
        self.resumed_threads = ckpt.get("threads")
        if self.step and self.dist.is_main:
            self.partial = dict(ckpt["partial"])  # the global sums live on one process only
        states = ckpt["rng"]
        set_rng_state(states[self.dist.rank % len(states)])

    def _save(self) -> None:
        """Write a checkpoint of the current position (every process must call this)."""
        if self.out is None:
            return
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
        }
        try:
            save_checkpoint(self.out, payload)
        except WriteError as err:
            raise WriteError(
                f"{err}; {self._kept()}; make room or fix the folder, then continue with --resume",
                err.errno,
            ) from None
        self.last_save = time.monotonic()

    def _config_record(self) -> dict[str, Any]:
        return {
            **self.cfg.to_dict(),
            "world_size": self.dist.world_size,
            "device": str(self.device),
            "torch": torch.__version__,
            "train_images": len(self.train_set),
            "test_images": len(self.test_set),
            "steps_per_epoch": self.batches.steps,
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

    def _train_step(self) -> None:
        cfg = self.cfg
        index, share = self.batches.batch(self.step)
        local = index[share].to(self.device)
        images = self.train_set.images[local]
        if cfg.augment:
            params = CropFlip.draw(len(index), cfg.pad, True, self.batches.generator(self.step))
            images = pad_crop_flip(images, params[share], cfg.pad)
        x = self._model_input(images)
        y = self.train_set.labels[local]
        with self._autocast():
            output = self.ddp(x)
        objective, loss_sum, main = training_loss(output, y, cfg.aux_weight)
        # DDP averages gradients over processes: scaling by world/global makes that the mean
        # over the global batch, whatever each process's share.
        (objective * (self.dist.world_size / len(index))).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        with torch.no_grad():
            self.sums[0] += loss_sum.detach().double()
            self.sums[1] += (main.argmax(1) == y).sum()
            self.sums[2] += len(y)

    def _autocast(self) -> AbstractContextManager:
        """bfloat16 autocast with `amp`, otherwise nothing."""
        if self.cfg.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _model_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> the normalized float batch the model takes (resized, laid out)."""
        x = self.normalize(images)
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
        n = len(self.test_set)
        lo, hi = (
            self.dist.rank * n // self.dist.world_size,
            (self.dist.rank + 1) * n // self.dist.world_size,
        )
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        was_training = model.training
        model.eval()
        with torch.inference_mode(), self._autocast():
            for start in range(lo, hi, cfg.eval_batch_size):
                stop = min(start + cfg.eval_batch_size, hi)
                x = self._model_input(self.test_set.images[start:stop])
                y = self.test_set.labels[start:stop]
                logits, _ = split_outputs(model(x))
                sums[0] += F.cross_entropy(logits.float(), y, reduction="sum").double()
                sums[1] += (logits.argmax(1) == y).sum()
                sums[2] += stop - start
        model.train(was_training)
        total = self.dist.all_reduce(sums).cpu()
        count = max(total[2].item(), 1.0)
        return total[0].item() / count, 100.0 * (1.0 - total[1].item() / count)

    def _progress(self, bar: tqdm) -> None:
        sums = self._global_sums()
        self._check_finite(sums["loss_sum"])
        train_s = self.partial["train_s"] + time.perf_counter() - self.train_start
        count = max(sums["count"], 1)
        bar.set_postfix(
            loss=f"{sums['loss_sum'] / count:.4f}",
            err=f"{100 * (1 - sums['correct'] / count):.2f}%",
            img_s=f"{sums['count'] / max(train_s, 1e-9):.0f}",
            refresh=False,
        )

    def _finish_epoch(self, bar: tqdm) -> dict[str, Any]:
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
        }
        if self.cfg.progress and self.dist.is_main:
            bar.write(
                f"epoch {row['epoch']}/{self.cfg.epochs}  train loss {row['train_loss']:.4f} "
                f"err {row['train_error']:.2f}%  test loss {row['test_loss']:.4f} "
                f"err {row['test_error']:.2f}%  lr {row['lr']:.3g}  "
                f"{row['images_per_s']:.0f} img/s  {row['seconds']:.1f} s"
            )
        return row

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
        while self.step < self.batches.steps:
            self._train_step()
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
        row = self._finish_epoch(bar)
        self.history.append(row)
        if self.files:
            self.files.append_metrics(row)
        # Checked after logging, so that metrics.jsonl shows the epoch (test_loss null).
        self._check_finite(row["test_loss"], "test loss", f"after epoch {row['epoch']}")
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
        if self.cfg.progress and self.dist.is_main and self.device.type == "cpu":
            print(f"cnnarch: {self.threads.describe()}", file=sys.stderr)
        self._start_files(self.history)
        done = self.epoch * self.batches.steps + self.step
        bar = tqdm(
            total=self.total_steps,
            initial=done,
            unit="step",
            disable=not (self.cfg.progress and self.dist.is_main),
            dynamic_ncols=True,
            mininterval=0.5,
            file=sys.stderr,
        )
        try:
            with _StopSignals() as stop:
                while self.epoch < self.cfg.epochs:
                    self._run_epoch(bar, stop)
        finally:
            bar.close()
        return self.history

    def close(self) -> None:
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
    data: tuple[ImageDataset, ImageDataset] | None = None,
) -> list[dict[str, Any]]:
    """Train `model` (default: `create_model(config.model)` sized to the data) as `config` says.

    `model` may be a module or a function returning one; a function is called after seeding,
    so its initial weights follow `config.seed` too. `data` (train, test) replaces the dataset
    that `config.dataset` names (which then only labels the run). `on_step` is called after
    every optimizer step (on every process).

    Returns one dict per epoch (`epoch`, `train_loss`, `train_error`, `test_loss`,
    `test_error`, `lr`, `images_per_s`, `seconds`, `global_step`, `threads`): errors in percent,
    `threads` the CPU thread count (`config.threads`, else the fastest measured), losses
    the mean cross-entropy of the main output (train: during the epoch, on augmented images),
    `lr` at the epoch's first step, `images_per_s` over the training steps alone, `seconds`
    the epoch's wall time with the evaluation. With `config.resume` the list also
    holds the epochs done before. Raises `TrainingInterrupted` after a SIGINT/SIGTERM checkpoint.
    """
    config.validate()
    run = _Run(config, model, on_step, data)
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
