"""Datasets held in memory as tensors: Fashion-MNIST (IDX), CIFAR-10 (python batches), folders.

```python
from cnnarch.data import load_dataset
train = load_dataset("fashion-mnist", train=True)   # ImageDataset: uint8 (N, C, H, W) + labels
train.images, train.labels, train.classes, train.mean, train.std
```
"""

from __future__ import annotations

from pathlib import Path

from cnnarch.data.augment import CropFlip, Normalize, pad_crop_flip
from cnnarch.data.cifar import load_cifar10
from cnnarch.data.dataset import ImageDataset
from cnnarch.data.fashion_mnist import load_fashion_mnist
from cnnarch.data.folder import load_image_folder
from cnnarch.data.idx import parse_idx, read_idx
from cnnarch.errors import CnnarchError

_LOADERS = {
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "folder": load_image_folder,
}
DATASETS = tuple(_LOADERS)


def load_dataset(name: str, data_dir: str | Path | None = None, train: bool = True) -> ImageDataset:
    """The training (or test) split of dataset `name`, one of `DATASETS`, read from `data_dir`.

    Args:
        name: "fashion-mnist", "cifar10" or "folder" (an image folder); case and "_" or "-"
            do not matter.
        data_dir: where the local copy is; None looks where the dataset's loader looks by
            default (Fashion-MNIST: Debian's /usr/share/datasets/fashion-mnist).
        train: the training split (True) or the test split (False).

    Raises:
        CnnarchError: an unknown name, or files missing or malformed.
    """
    key = name.lower().replace("_", "-")
    key = {"fashion_mnist": "fashion-mnist", "fmnist": "fashion-mnist", "cifar-10": "cifar10"}.get(
        key, key
    )
    if key not in _LOADERS:
        raise CnnarchError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return _LOADERS[key](data_dir, train=train)


__all__ = [
    "DATASETS",
    "CropFlip",
    "ImageDataset",
    "Normalize",
    "load_cifar10",
    "load_dataset",
    "load_fashion_mnist",
    "load_image_folder",
    "pad_crop_flip",
    "parse_idx",
    "read_idx",
]
