"""`ImageDataset`: a whole labeled image set held in memory as two tensors."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from cnnarch.errors import CnnarchError


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images (N, C, H, W) on the [0, 1] scale."""
    n, c = images.shape[:2]
    if n == 0:
        return (0.0,) * c, (1.0,) * c
    # Exact integer sums of x and x^2, a few thousand images at a time (no float copy of the set).
    s1 = torch.zeros(c, dtype=torch.int64)
    s2 = torch.zeros(c, dtype=torch.int64)
    for chunk in images.split(4096):
        x = chunk.to(torch.int32)
        s1 += x.sum((0, 2, 3), dtype=torch.int64).cpu()
        s2 += (x * x).sum((0, 2, 3), dtype=torch.int64).cpu()
    count = n * images.shape[2] * images.shape[3]
    mean = s1.double() / (count * 255.0)
    var = s2.double() / (count * 255.0**2) - mean**2
    std = var.clamp_min(1e-12).sqrt().clamp_min(1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())


def subset_indices(total: int, n: int | None, name: str, seed: int = 0) -> torch.Tensor:
    """The sorted indices of `n` of `total` items drawn without replacement by a fixed seed (the
    same for every run); all of them for None. More than `total` is an error, not a silent
    full-size run.

    Args:
        total: the number of items.
        n: how many to draw, or None for all.
        name: what the items are, for the message.
        seed: the seed of the draw.
    """
    if n is None or n == total:
        return torch.arange(total)
    if n < 1:
        raise CnnarchError(f"subset size must be positive, got {n}")
    if n > total:
        raise CnnarchError(
            f"a subset of {n} images was asked for, but {name} holds only {total}; ask for at "
            f"most {total} (--subset / --test-subset), or leave the option out to use every image"
        )
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=gen)[:n].sort().values


@dataclass
class ImageDataset:
    """Images as a uint8 tensor (N, C, H, W), labels as an int64 tensor (N,), and class names.

    `mean` and `std` are this set's own per-channel statistics on the [0, 1] scale; a trainer
    normalizes the test split with the *training* split's statistics.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str = "images"
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise CnnarchError(
                f"{self.name}: images must be a uint8 tensor (N, C, H, W), got "
                f"{self.images.dtype} of shape {tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise CnnarchError(
                f"{self.name}: {self.images.shape[0]} images but labels of shape "
                f"{tuple(self.labels.shape)}"
            )
        self.labels = self.labels.to(torch.int64)
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise CnnarchError(
                f"{self.name}: labels must lie in [0, {len(self.classes) - 1}], found "
                f"{self.labels.min().item()}..{self.labels.max().item()}"
            )
        if not self.mean or not self.std:
            self.mean, self.std = channel_stats(self.images)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.images.shape[2], self.images.shape[3])

    def subset(self, n: int | None, seed: int = 0) -> ImageDataset:
        """`n` images drawn without replacement by a fixed seed (the same for every run).

        Statistics are kept from the full set, so a subset is normalized like its parent.
        Asking for more images than the set holds is an error, not a silent full-size run.
        """
        if n is None or n == len(self):
            return self
        index = subset_indices(len(self), n, self.name, seed)
        return ImageDataset(
            self.images[index],
            self.labels[index],
            list(self.classes),
            name=f"{self.name}[{n}]",
            mean=self.mean,
            std=self.std,
        )

    def __repr__(self) -> str:
        c, h, w = self.images.shape[1:]
        return (
            f"ImageDataset({self.name!r}, {len(self)} images {c}x{h}x{w}, "
            f"{self.num_classes} classes)"
        )
