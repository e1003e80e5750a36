"""Image folders (one sub-folder per class), written here as PNG files with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnarch.data import load_dataset
from cnnarch.errors import CnnarchError


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_grayscale_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cat = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    dog = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    save(tmp_path / "train" / "dog" / "a.png", dog)
    save(tmp_path / "train" / "cat" / "b.png", cat)
    save(tmp_path / "val" / "cat" / "c.png", cat)
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    ds = load_dataset("folder", tmp_path)
    assert ds.classes == ["cat", "dog"]  # sorted folder names
    assert ds.images.shape == (2, 1, 6, 5)
    assert ds.labels.tolist() == [0, 1]
    assert (ds.images[0, 0].numpy() == cat).all() and (ds.images[1, 0].numpy() == dog).all()
    assert len(load_dataset("folder", tmp_path, train=False)) == 1  # val/ when no test/


def test_color_images_make_an_rgb_set(tmp_path: Path) -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, 50
    save(tmp_path / "train" / "a" / "x.png", rgb)
    save(tmp_path / "train" / "b" / "y.png", np.full((4, 4), 7, np.uint8))
    ds = load_dataset("folder", tmp_path)
    assert ds.images.shape == (2, 3, 4, 4)
    assert ds.images[0, :, 0, 0].tolist() == [200, 0, 50]
    assert ds.images[1, :, 2, 2].tolist() == [7, 7, 7]  # gray repeated in each channel


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(CnnarchError, match="no train/ sub-folder"):
        load_dataset("folder", tmp_path)
    save(tmp_path / "train" / "a" / "x.png", np.zeros((4, 4), np.uint8))
    save(tmp_path / "train" / "b" / "y.png", np.zeros((5, 4), np.uint8))
    with pytest.raises(CnnarchError, match="all images of a split must have the same size"):
        load_dataset("folder", tmp_path)
    (tmp_path / "train" / "b" / "y.png").write_bytes(b"broken")
    with pytest.raises(CnnarchError, match="cannot read image"):
        load_dataset("folder", tmp_path)
    with pytest.raises(CnnarchError, match="needs --data-dir"):
        load_dataset("folder")
