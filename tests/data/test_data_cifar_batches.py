"""CIFAR-10 python batches, written here as pickled dicts like the original files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnarch.data import load_dataset
from cnnarch.data.cifar import CLASSES, SUBDIR
from cnnarch.errors import CnnarchError


def write_batch(path: Path, data: np.ndarray, labels: list[int], protocol: int = 2) -> None:
    # The original files are Python 2 pickles: byte-string keys, labels as a list.
    batch = {b"batch_label": b"test", b"data": data, b"labels": labels, b"filenames": []}
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


def make_cifar(folder: Path, per_batch: int = 2) -> tuple[np.ndarray, list[int]]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    all_data, all_labels = [], []
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [(i + j) % 10 for j in range(per_batch)]
        write_batch(folder / name, data, labels, protocol=2 if i % 2 else 5)
        if name != "test_batch":
            all_data.append(data)
            all_labels += labels
    return np.concatenate(all_data), all_labels


def test_batches_load_as_channel_major_images(tmp_path: Path) -> None:
    data, labels = make_cifar(tmp_path / SUBDIR)
    ds = load_dataset("cifar10", tmp_path)  # the parent folder is found too
    assert ds.images.shape == (10, 3, 32, 32)
    assert ds.labels.tolist() == labels
    # Row i of `data`: 1024 red, then 1024 green, then 1024 blue values, each row-major.
    i, c, h, w = 3, 2, 5, 7
    assert ds.images[i, c, h, w].item() == data[i, c * 1024 + h * 32 + w]
    assert ds.classes == CLASSES
    test = load_dataset("cifar10", tmp_path / SUBDIR, train=False)
    assert len(test) == 2


def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Exploit()}))
    with pytest.raises(CnnarchError, match="refusing to load the global"):
        load_dataset("cifar10", tmp_path, train=False)
    assert not marker.exists()


def test_wrong_contents_are_named(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    write_batch(tmp_path / "test_batch", np.zeros((2, 100), np.uint8), [0, 1])
    with pytest.raises(CnnarchError, match=r"shape \(N, 3072\)"):
        load_dataset("cifar10", tmp_path, train=False)
    write_batch(tmp_path / "test_batch", np.zeros((2, 3072), np.uint8), [0])
    with pytest.raises(CnnarchError, match="2 images but 1 labels"):
        load_dataset("cifar10", tmp_path, train=False)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({"data": 1})[:-3])
    with pytest.raises(CnnarchError, match="not a CIFAR-10 python batch"):
        load_dataset("cifar10", tmp_path, train=False)


def test_missing_batches_or_folder(tmp_path: Path) -> None:
    with pytest.raises(CnnarchError, match="needs --data-dir"):
        load_dataset("cifar10")
    make_cifar(tmp_path)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(CnnarchError, match="data_batch_4 missing"):
        load_dataset("cifar10", tmp_path)
    assert torch.is_tensor(load_dataset("cifar10", tmp_path, train=False).images)
