"""Shared by the trainer tests and by `tiny_run.py`: a tiny dataset on disk and tiny models."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnarch.train import TrainConfig

TIMING = ("images_per_s", "seconds")


def write_idx(path: Path, array: torch.Tensor, type_code: int = 0x08) -> None:
    """An IDX file written from the format's description (big-endian sizes)."""
    header = struct.pack(">BBBB", 0, 0, type_code, array.dim())
    header += struct.pack(f">{array.dim()}I", *array.shape)
    path.write_bytes(header + array.numpy().astype(">u1").tobytes())


def write_tiny_fashion(folder: Path, n_train: int = 96, n_test: int = 40, side: int = 8) -> Path:
    """Fashion-MNIST-format files of `side`x`side` images: one fixed random binary template per
    class (10 classes) plus noise; learnable in a few steps without augmentation."""
    gen = torch.Generator().manual_seed(1234)
    templates = (torch.rand(10, side, side, generator=gen) < 0.5).to(torch.int64) * 160
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = torch.arange(n) % 10
        images = templates[labels] + torch.randint(0, 90, (n, side, side), generator=gen)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images.to(torch.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels.to(torch.uint8))
    return folder


class TinyNet(nn.Module):
    """conv 3x3 (8) [-> BN] -> ReLU -> [dropout] -> 4x4 average pool -> linear; optionally an
    auxiliary head in training mode, as GoogLeNet has."""

    def __init__(self, bn: bool = True, dropout: float = 0.0, aux: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1, bias=not bn)
        self.bn = nn.BatchNorm2d(8) if bn else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(8 * 16, 10)
        self.aux = nn.Linear(8 * 16, 10) if aux else None

    def forward(self, x: torch.Tensor) -> Any:
        h = self.pool(self.drop(torch.relu(self.bn(self.conv(x))))).flatten(1)
        if self.aux is not None and self.training:
            return self.fc(h), self.aux(h)
        return self.fc(h)


def tiny_config(data_dir: Path, out: Path | None = None, **changes: Any) -> TrainConfig:
    values: dict[str, Any] = {
        "model": "tiny",
        "dataset": "fashion-mnist",
        "data_dir": str(data_dir),
        "epochs": 3,
        "batch_size": 16,
        "lr": 0.05,
        "schedule": "step",
        "out": str(out) if out else None,
        "progress": False,
        "threads": 1,  # the same in every process, so that runs can be compared bit for bit
    }
    values.update(changes)
    return TrainConfig(**values)


def without_timing(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]
