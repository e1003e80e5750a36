"""Augmentation and normalization of whole batches, as tensor operations.

Per-image Python transforms would spend two CPU cores on the data; here a batch of uint8
images is padded once, cropped with one gather and flipped with one `where`. The random draws
come from a `torch.Generator` the caller seeds, on the CPU, so the same seed gives the same
batch on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CropFlip:
    """Random crops with offsets in [0, 2*pad] of each padded image and flips (probability 1/2)."""

    dx: torch.Tensor  # (N,) int64 column offsets into the padded image
    dy: torch.Tensor  # (N,) int64 row offsets
    flip: torch.Tensor  # (N,) bool

    @classmethod
    def draw(cls, n: int, pad: int, flip: bool, generator: torch.Generator) -> CropFlip:
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5
        if not flip:
            flips = torch.zeros(n, dtype=torch.bool)
        return cls(dx, dy, flips)

    def __getitem__(self, index: slice | torch.Tensor) -> CropFlip:
        return CropFlip(self.dx[index], self.dy[index], self.flip[index])


def pad_crop_flip(images: torch.Tensor, params: CropFlip, pad: int) -> torch.Tensor:
    """Zero-pad each image by `pad`, crop it back to its size at the drawn offset, maybe flip."""
    n, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (pad, pad, pad, pad)) if pad else images
    rows = params.dy.to(device)[:, None] + torch.arange(h, device=device)  # (N, H)
    cols = params.dx.to(device)[:, None] + torch.arange(w, device=device)  # (N, W)
    flip = params.flip.to(device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=device)[:, None, None, None]
    chan = torch.arange(c, device=device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


class Normalize:
    """uint8 images -> float32 `(x / 255 - mean) / std`, in one multiply-add per element."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        std_t = torch.tensor(std, dtype=torch.float64)
        mean_t = torch.tensor(mean, dtype=torch.float64)
        self.scale = (1.0 / (255.0 * std_t)).to(torch.float32).view(1, -1, 1, 1)
        self.shift = (-mean_t / std_t).to(torch.float32).view(1, -1, 1, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.scale.device != images.device:  # move once, not at every batch
            self.scale, self.shift = self.scale.to(images.device), self.shift.to(images.device)
        return torch.addcmul(self.shift, images.to(torch.float32), self.scale)
