"""Where a run's images come from, and in which order.

`fit(data=(train, test))` takes, for each split:

- an `ImageDataset` (the built-in data sets are loaded as one): the images stay a uint8 tensor
  on the training device and a batch is one gather, the fast path;
- a map-style `torch.utils.data.Dataset` whose items are `(image, label, ...)`: the image a
  tensor (C, H, W), a PIL image or a numpy array (H, W) or (H, W, C), uint8 or floating point,
  the label an integer; read item by item in this process;
- a `DataLoader` over such a dataset: read by its workers (its `num_workers`, `pin_memory`,
  `timeout`, `worker_init_fn` and `multiprocessing_context` are kept), while the run draws the
  batches itself (its sampler is not used, and its `batch_size` must be the config's).

uint8 images are scaled to [0, 1] and normalized with the training split's per-channel mean and
standard deviation (of every image for an `ImageDataset`, of `STATS_IMAGES` drawn with a fixed
seed for a `Dataset`); floating-point images are taken as the dataset gives them (normalized by
its own transform). A `transform` given to `fit` is called on each training image, a tensor
(C, H, W), before cnnarch's own crop and flip.

What keeps a resumed run bit-exact: the order of the batches is a function of (seed, epoch, step),
and before each training image is read and transformed, torch's CPU generator, `random` and
`numpy.random` are seeded from (seed, epoch, step, the image's place in the global batch), in
whichever process reads it. So a dataset or transform that draws its randomness from those
generators (torchvision's transforms do) gives every image the same draw in an interrupted and
resumed run as in an uninterrupted one, with any number of workers and processes. Outside the
rule: a dataset that keeps state of its own between items (its own generator object, a cache
that changes what it returns).
"""

from __future__ import annotations

import hashlib
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, default_collate

from cnnarch.data import ImageDataset, Normalize
from cnnarch.data.dataset import channel_stats, subset_indices
from cnnarch.errors import CnnarchError
from cnnarch.train.distributed import DistContext

Transform = Callable[[torch.Tensor], torch.Tensor]
DataSource = ImageDataset | Dataset | DataLoader
STATS_IMAGES = 1000  # images of a Dataset whose statistics normalize it
# Pseudo-epochs of the per-image seeds that are not training: evaluation and the statistics.
EVALUATION, STATISTICS = -1, -2
ACCEPTED = (
    "an ImageDataset, a map-style torch Dataset of (image, label) items, or a DataLoader over one"
)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part (for per-epoch, per-step, per-image draws)."""
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


@dataclass(frozen=True)
class Batch:
    """This process's share of one global batch: images (N, C, H, W), uint8 or floating point,
    and labels, on the training device."""

    images: torch.Tensor
    labels: torch.Tensor
    size: int  # images in the global batch
    share: slice  # this process's part of the global batch


@dataclass(frozen=True)
class BatchKey:
    """What to read: the images at `rows` of a split, which sit at `positions` of global batch
    `step` of `epoch` (their seeds derive from these)."""

    epoch: int
    step: int
    positions: tuple[int, ...]
    rows: tuple[int, ...]


@contextmanager
def _random_state_kept() -> Iterator[None]:
    """Restores torch's CPU generator, `random` and `numpy.random` after the block."""
    torch_state, python_state, numpy_state = (
        torch.get_rng_state(),
        random.getstate(),
        np.random.get_state(),
    )
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _seed_generators(seed: int) -> None:
    torch.default_generator.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def as_image(value: object, where: str) -> torch.Tensor:
    """An item's image as a tensor (C, H, W), uint8 or floating point.

    Args:
        value: a tensor (C, H, W) or (H, W), a PIL image, or a numpy array (H, W) or (H, W, C).
        where: the item, for the messages ("item 12 of the training set").
    """
    if isinstance(value, np.ndarray):
        if value.ndim not in (2, 3):
            raise CnnarchError(
                f"{where}: a numpy image must be (H, W) or (H, W, C), got {value.shape}"
            )
        value = torch.from_numpy(
            np.ascontiguousarray(value if value.ndim == 2 else value.transpose(2, 0, 1))
        )
    elif not isinstance(value, torch.Tensor):
        from PIL import Image

        from cnnarch.data.images import pixels

        if not isinstance(value, Image.Image):
            raise CnnarchError(
                f"{where}: the image is a {type(value).__name__}; expected a tensor (C, H, W), a "
                "PIL image or a numpy array"
            )
        array = pixels(value, where)
        value = torch.from_numpy(array if array.ndim == 2 else array.transpose(2, 0, 1).copy())
    if value.dim() == 2:
        value = value.unsqueeze(0)
    if value.dim() != 3 or not (value.dtype == torch.uint8 or value.dtype.is_floating_point):
        raise CnnarchError(
            f"{where}: the image must be a uint8 or floating-point tensor (C, H, W), got "
            f"{value.dtype} of shape {tuple(value.shape)}"
        )
    return value


def as_label(value: object, where: str) -> int:
    """An item's label as an int (a Python or numpy integer, or a one-element integer tensor)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.dtype.is_floating_point:
        value = value.item()
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CnnarchError(f"{where}: the label must be an integer class index, got {value!r}")
    return value


def stack_images(images: Sequence[torch.Tensor], where: Callable[[int], str]) -> torch.Tensor:
    """One batch of images of one shape and kind."""
    first = images[0]
    for i, image in enumerate(images):
        if image.shape != first.shape or (image.dtype == torch.uint8) != (
            first.dtype == torch.uint8
        ):
            raise CnnarchError(
                f"{where(i)} is a {image.dtype} image of shape {tuple(image.shape)}, but "
                f"{where(0)} a {first.dtype} one of shape {tuple(first.shape)}; the images of a "
                "batch must have one size and kind (resize them in the dataset's transform)"
            )
    return torch.stack(list(images))


class ItemReader(Dataset):
    """Reads whole batches of a split, item by item, each with its seeds (`BatchKey` -> images,
    labels): what a DataLoader's workers run, or this process.

    Args:
        dataset: the split, map-style.
        name: what the messages call it ("the training set").
        seed: the run's seed.
        transform: called on each image (C, H, W) after it is read, or None.
    """

    def __init__(self, dataset: Dataset, name: str, seed: int, transform: Transform | None) -> None:
        self.dataset, self.name, self.seed, self.transform = dataset, name, seed, transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def item(self, row: int) -> tuple[torch.Tensor, int]:
        where = f"item {row} of {self.name}"
        item = self.dataset[row]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise CnnarchError(f"{where} is a {type(item).__name__}; expected (image, label, ...)")
        image = as_image(item[0], where)
        if self.transform is not None:
            kind = image.dtype == torch.uint8
            image = as_image(self.transform(image), f"the transform of {where}")
            if (image.dtype == torch.uint8) != kind:
                raise CnnarchError(
                    f"the transform turned {where} from {'uint8' if kind else 'floating point'} "
                    f"into {image.dtype}; it must keep the kind of the images (uint8 images are "
                    "normalized by cnnarch, in training and test alike)"
                )
        return image, as_label(item[1], where)

    def __getitem__(self, key: BatchKey) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = [], []
        with _random_state_kept():
            for position, row in zip(key.positions, key.rows, strict=True):
                _seed_generators(derived_seed(self.seed, key.epoch, key.step, position))
                image, label = self.item(row)
                images.append(image)
                labels.append(label)
        stacked = stack_images(images, lambda i: f"item {key.rows[i]} of {self.name}")
        return stacked, torch.tensor(labels, dtype=torch.int64)


class Split(ABC):
    """One split of a run's data, `n` images at `rows` of its source."""

    name: str
    classes: list[str] | None
    num_classes: int | None
    num_classes_limit: int | None = None  # the training set's number of classes
    rows: torch.Tensor

    def __len__(self) -> int:
        return len(self.rows)

    @property
    @abstractmethod
    def sample(self) -> torch.Tensor:
        """The first image (C, H, W): its shape and kind stand for all."""

    @property
    def in_channels(self) -> int:
        return self.sample.shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.sample.shape[1], self.sample.shape[2])

    @abstractmethod
    def read(self, keys: Sequence[BatchKey]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images, labels) of each key, on the training device."""

    @abstractmethod
    def record(self) -> dict[str, Any]:
        """What the run records of this split: its source, its size and, when the images are
        in memory, the SHA-256 of its images and labels."""

    def check_labels(self, labels: torch.Tensor) -> None:
        """Labels (on the CPU) must index the training set's classes, when it says how many."""
        limit = self.num_classes_limit
        if limit is not None and len(labels) and (labels.min() < 0 or labels.max() >= limit):
            raise CnnarchError(
                f"{self.name}: labels must lie in [0, {limit - 1}] (the classes of the training "
                f"set), found {labels.min().item()}..{labels.max().item()}"
            )


class MemorySplit(Split):
    """An `ImageDataset` on the training device."""

    def __init__(
        self,
        data: ImageDataset,
        name: str,
        device: torch.device,
        seed: int,
        transform: Transform | None,
    ) -> None:
        self.data = data
        self.images, self.labels = data.images.to(device), data.labels.to(device)
        self.name, self.classes, self.num_classes = name, list(data.classes), data.num_classes
        self.rows = torch.arange(len(data))
        self.reader = ItemReader(_TensorPairs(data), name, seed, transform) if transform else None
        self.device = device

    @property
    def sample(self) -> torch.Tensor:
        return self.data.images[0]

    def read(self, keys: Sequence[BatchKey]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for key in keys:
            if self.reader is not None:
                images, labels = self.reader[key]
                yield images.to(self.device), labels.to(self.device)
            else:
                rows = torch.tensor(key.rows, device=self.device)
                yield self.images[rows], self.labels[rows]

    def record(self) -> dict[str, Any]:
        digest = hashlib.sha256()
        for tensor in (self.data.images, self.data.labels):
            digest.update(tensor.contiguous().numpy())
        return {"source": self.data.name, "images": len(self), "sha256": digest.hexdigest()}


class _TensorPairs(Dataset):
    """An ImageDataset as (image, label) items, for a transform applied image by image."""

    def __init__(self, data: ImageDataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, row: int) -> tuple[torch.Tensor, int]:
        return self.data.images[row], int(self.data.labels[row])


class StreamSplit(Split):
    """A map-style Dataset, read item by item here or by the workers of a DataLoader."""

    def __init__(
        self,
        source: Dataset | DataLoader,
        name: str,
        subset: int | None,
        device: torch.device,
        seed: int,
        transform: Transform | None,
    ) -> None:
        loader = source if isinstance(source, DataLoader) else None
        dataset = loader.dataset if loader is not None else source
        if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__getitem__"):
            raise CnnarchError(
                f"{name} is an iterable-style {type(dataset).__name__}; the trainer reads items "
                "by index (to draw and resume its batches), so it needs a map-style Dataset "
                "with __getitem__ and __len__"
            )
        if loader is not None and loader.collate_fn is not default_collate:
            raise CnnarchError(
                f"the DataLoader of {name} has a collate_fn of its own; cnnarch reads "
                "(image, label) items and batches them itself, so leave collate_fn out"
            )
        try:
            total = len(dataset)  # type: ignore[arg-type]
        except TypeError:
            raise CnnarchError(f"{name} ({type(dataset).__name__}) has no len()") from None
        self.dataset, self.loader, self.name, self.device = dataset, loader, name, device
        self.rows = subset_indices(total, subset, name)
        self.reader = ItemReader(dataset, name, seed, transform)
        self.plain = ItemReader(dataset, name, seed, None)  # evaluation, statistics: as read
        self.classes, self.num_classes = _classes(dataset, name)
        self._sample: torch.Tensor | None = None

    @property
    def sample(self) -> torch.Tensor:
        if self._sample is None:
            key = BatchKey(STATISTICS, 0, (0,), (int(self.rows[0]),))
            self._sample = self.plain[key][0][0]
        return self._sample

    def statistics(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of up to `STATS_IMAGES` images drawn with a fixed seed."""
        picked = self.rows[subset_indices(len(self.rows), min(STATS_IMAGES, len(self.rows)), "")]
        key = BatchKey(STATISTICS, 0, tuple(range(len(picked))), tuple(picked.tolist()))
        return channel_stats(self.plain[key][0])

    def read(self, keys: Sequence[BatchKey]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        reader, loader = self.reader, self.loader
        if loader is None or loader.num_workers == 0:
            batches: Iterator[tuple[torch.Tensor, torch.Tensor]] = (reader[k] for k in keys)
        else:
            batches = iter(
                DataLoader(
                    reader,  # type: ignore[arg-type]
                    batch_size=None,
                    sampler=list(keys),  # type: ignore[arg-type]
                    num_workers=loader.num_workers,
                    pin_memory=loader.pin_memory,
                    timeout=loader.timeout,
                    worker_init_fn=loader.worker_init_fn,
                    multiprocessing_context=loader.multiprocessing_context,
                    prefetch_factor=loader.prefetch_factor,
                    # Its own generator for the workers' base seed: drawing it from torch's
                    # global one would shift the run's dropout masks.
                    generator=torch.Generator(),
                )
            )
        for images, labels in batches:
            self.check_labels(labels)
            yield images.to(self.device, non_blocking=True), labels.to(self.device)

    def record(self) -> dict[str, Any]:
        source = type(self.dataset).__name__
        root = getattr(self.dataset, "root", None)
        if isinstance(root, str) or hasattr(root, "__fspath__"):
            source += f" at {root}"
        return {"source": source, "images": len(self), "sha256": None}


def _classes(dataset: Dataset, name: str) -> tuple[list[str] | None, int | None]:
    """(class names or None, number of classes or None) from the dataset's `classes`,
    `num_classes` or `targets` attribute."""
    classes = getattr(dataset, "classes", None)
    if isinstance(classes, (list, tuple)) and classes:
        return [str(c) for c in classes], len(classes)
    count = getattr(dataset, "num_classes", None)
    if isinstance(count, int) and not isinstance(count, bool) and count > 0:
        return None, count
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        try:
            return None, int(torch.as_tensor(targets).max()) + 1
        except (TypeError, ValueError, RuntimeError):
            pass
    return None, None


@dataclass
class RunData:
    """The two splits of a run, how uint8 images are normalized, and what the run records."""

    train: Split
    test: Split
    normalize: Normalize | None  # None: floating-point images, taken as given

    @property
    def classes(self) -> list[str] | None:
        return self.train.classes

    @property
    def num_classes(self) -> int | None:
        return self.train.num_classes

    def record(self, dataset: str, data_dir: str | None) -> dict[str, Any]:
        """The data as the run records it, and `check_same_data` compares on resume."""
        return {
            "dataset": dataset,
            "data_dir": data_dir,
            "classes": self.classes,
            "num_classes": self.num_classes,
            "train": self.train.record(),
            "test": self.test.record(),
        }


def open_data(
    data: tuple[DataSource, DataSource],
    subsets: tuple[int | None, int | None],
    device: torch.device,
    seed: int,
    transform: Transform | None,
    batch_size: int,
) -> RunData:
    """The run's splits from `data` (train, test), each subset to the size asked for.

    Args:
        data: (train, test), each an ImageDataset, a map-style Dataset or a DataLoader.
        subsets: images of each split to use (a fixed draw), None for all.
        device: where the training runs.
        seed: the run's seed.
        transform: called on each training image, or None.
        batch_size: the run's batch size, which a training DataLoader must not contradict.
    """
    train_loader = data[0] if isinstance(data, (tuple, list)) and data else None
    if isinstance(train_loader, DataLoader) and train_loader.batch_size not in (None, batch_size):
        raise CnnarchError(
            f"the training DataLoader has batch_size {train_loader.batch_size}, the config "
            f"{batch_size}; cnnarch draws the batches itself: set the config's batch_size"
        )
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise CnnarchError(
            f"data must be a pair (train, test), each {ACCEPTED}; got {type(data).__name__}"
        )
    splits: list[Split] = []
    for source, subset, name, hook in zip(
        data, subsets, ("the training set", "the test set"), (transform, None), strict=True
    ):
        if isinstance(source, ImageDataset):
            splits.append(MemorySplit(source.subset(subset), name, device, seed, hook))
        elif isinstance(source, (Dataset, DataLoader)):
            splits.append(StreamSplit(source, name, subset, device, seed, hook))
        else:
            raise CnnarchError(f"{name} must be {ACCEPTED}; got {type(source).__name__}")
    train, test = splits
    if train.sample.shape != test.sample.shape or (
        (train.sample.dtype == torch.uint8) != (test.sample.dtype == torch.uint8)
    ):
        raise CnnarchError(
            f"training images are {train.sample.dtype} {tuple(train.sample.shape)} but test "
            f"images {test.sample.dtype} {tuple(test.sample.shape)}"
        )
    for split in splits:
        split.num_classes_limit = train.num_classes
    normalize = None
    if train.sample.dtype == torch.uint8:
        stats = (
            (train.data.mean, train.data.std)
            if isinstance(train, MemorySplit)
            else train.statistics()  # type: ignore[attr-defined]
        )
        normalize = Normalize(*stats)
    return RunData(train, test, normalize)


def check_same_data(saved: dict[str, Any], now: dict[str, Any], folder: object) -> None:
    """Refuse to resume a run on other data than it was trained on: other classes, another
    number of images, or (for in-memory data) other images or labels.

    Args:
        saved: the data record of the checkpoint.
        now: the data record of this run.
        folder: the run folder, for the message.
    """
    trained_on = saved.get("data_dir") or saved.get("dataset")
    hint = (
        f"resume with the data it was trained on ({trained_on})"
        if trained_on
        else "resume with the data it was trained on"
    )
    for key, label in (("classes", "classes"), ("num_classes", "number of classes")):
        if saved.get(key) != now.get(key):
            raise CnnarchError(
                f"{folder} was trained on other data: its {label} were {saved.get(key)!r}, "
                f"these are {now.get(key)!r}; {hint}, or start a new run with another --out"
            )
    for split in ("train", "test"):
        before, after = saved[split], now[split]
        if before["images"] != after["images"]:
            raise CnnarchError(
                f"{folder} was trained on {before['images']} {split} images, these data give "
                f"{after['images']}; {hint}, or start a new run with another --out"
            )
        if before["sha256"] and after["sha256"] and before["sha256"] != after["sha256"]:
            raise CnnarchError(
                f"{folder} was trained on other {split} images (their SHA-256 differs); "
                f"{hint}, or start a new run with another --out"
            )
