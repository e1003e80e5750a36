"""CIFAR-10 (Krizhevsky 2009) from a local copy of its python batches.

The batches are pickled dicts (`data`: uint8 array N x 3072, channel-major 32x32 planes;
`labels`: list of ints). A pickle can run arbitrary code, so it is read with an unpickler that
only resolves the handful of numpy names an array needs and refuses every other global. A
pickle can also declare an array of any size; one larger than the file itself (which holds
the array's bytes) is refused before it is allocated.
"""

from __future__ import annotations

import codecs
import math
import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from cnnarch.data.dataset import ImageDataset
from cnnarch.errors import CnnarchError
from cnnarch.files import open_regular

CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
SUBDIR = "cifar-10-batches-py"


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The globals a pickled numpy array refers to, under the module names numpy 1 and 2 use."""
    reconstruct = np.zeros(1).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # how Python 3 writes bytes at protocol 2
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


class _ArrayOnlyUnpickler(pickle.Unpickler):
    allowed = _allowed_globals()

    def __init__(self, file: BinaryIO, max_bytes: int) -> None:
        super().__init__(file, encoding="bytes")
        self.max_bytes = max_bytes

    def find_class(self, module: str, name: str) -> Any:
        try:
            found = self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}") from None
        if name == "_reconstruct":
            return self._checked_reconstruct
        return found

    def _checked_reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> Any:
        """numpy's `_reconstruct`, which allocates `shape` at once, for arrays the file can
        hold (numpy's own pickles pass shape (0,) and fill the array from the file later)."""
        try:
            count = math.prod(int(d) for d in shape)
            size = count * np.dtype(dtype).itemsize
        except (TypeError, ValueError, OverflowError) as err:
            raise pickle.UnpicklingError(f"malformed array shape {shape!r}: {err}") from None
        if count < 0 or size > self.max_bytes:
            raise pickle.UnpicklingError(
                f"it declares an array of {size} bytes, more than the {self.max_bytes} bytes "
                "of the whole file"
            )
        return self.allowed[("numpy.core.multiarray", "_reconstruct")](subtype, shape, dtype)


def _key(batch: dict, name: str) -> Any:
    for key in (name, name.encode()):
        if key in batch:
            return batch[key]
    raise KeyError(name)


def read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one CIFAR-10 python batch."""
    try:
        with open_regular(path, "CIFAR-10 batch") as f:
            batch = _ArrayOnlyUnpickler(f, max_bytes=os.fstat(f.fileno()).st_size).load()
        data, labels = _key(batch, "data"), _key(batch, "labels")
    except OSError as err:
        raise CnnarchError(f"cannot read {path}: {err.strerror or err}") from None
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as err:
        raise CnnarchError(f"{path} is not a CIFAR-10 python batch ({err})") from None
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CnnarchError(
            f"{path}: 'data' must be uint8 of shape (N, 3072), got {data.dtype} {data.shape}"
        )
    labels_t = torch.as_tensor(list(labels), dtype=torch.int64)
    if labels_t.shape != (data.shape[0],):
        raise CnnarchError(f"{path}: {data.shape[0]} images but {len(labels_t)} labels")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, labels_t


def _batch_dir(data_dir: Path | None) -> Path:
    if data_dir is None:
        raise CnnarchError(
            f"CIFAR-10 needs --data-dir: the folder {SUBDIR} (data_batch_1..5, test_batch) "
            "from https://www.cs.toronto.edu/~kriz/cifar.html, unpacked"
        )
    if not (data_dir / TEST_BATCHES[0]).exists() and (data_dir / SUBDIR).is_dir():
        return data_dir / SUBDIR
    return data_dir


def load_cifar10(data_dir: str | Path | None, train: bool = True) -> ImageDataset:
    """The 50,000 training images (batches 1-5) or the 10,000 test images, 3x32x32."""
    folder = _batch_dir(None if data_dir is None else Path(data_dir))
    names = TRAIN_BATCHES if train else TEST_BATCHES
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise CnnarchError(
            f"CIFAR-10 not found: {', '.join(missing)} missing in {folder} (expected the "
            f"unpacked {SUBDIR} folder of the python version)"
        )
    parts = [read_batch(folder / n) for n in names]
    images = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    split = "train" if train else "test"
    return ImageDataset(images, labels, list(CLASSES), name=f"cifar10/{split}")
