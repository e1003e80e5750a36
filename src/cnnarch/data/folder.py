"""Image folders: `root/train/<class>/*.png` and `root/test/<class>/*.png` (or `val`).

Class names are the sub-folder names in sorted order. All images of a split must have the same
size; they are read with Pillow (PNG, JPEG, BMP, ...), as grayscale when every image is
grayscale and as RGB otherwise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnarch.data.dataset import ImageDataset
from cnnarch.errors import CnnarchError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}
_GRAY_MODES = {"1", "L", "I", "I;16", "F"}


def _split_dir(root: Path, train: bool) -> Path:
    names = ("train",) if train else ("test", "val")
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise CnnarchError(
        f"image folder {root}: no {' or '.join(names)}/ sub-folder; expected "
        f"{root}/train/<class>/*.png and {root}/test/<class>/*.png"
    )


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            gray = img.mode in _GRAY_MODES
            return np.asarray(img.convert("L" if gray else "RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise CnnarchError(f"cannot read image {path}: {err}") from None


def load_image_folder(root: str | Path | None, train: bool = True) -> ImageDataset:
    """All images under the split folder of `root`, labelled by their class folder."""
    if root is None:
        raise CnnarchError("an image folder dataset needs --data-dir (a folder with train/, test/)")
    folder = _split_dir(Path(root), train)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise CnnarchError(f"{folder}: no class sub-folders")
    arrays, labels, files = [], [], []
    for label, name in enumerate(classes):
        for path in sorted((folder / name).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                arrays.append(_read_image(path))
                labels.append(label)
                files.append(path)
    if not arrays:
        raise CnnarchError(f"{folder}: no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    size = arrays[0].shape[:2]
    for path, a in zip(files, arrays, strict=True):
        if a.shape[:2] != size:
            raise CnnarchError(
                f"{path} is {a.shape[1]}x{a.shape[0]} but {files[0]} is {size[1]}x{size[0]}; "
                "all images of a split must have the same size"
            )
    if all(a.ndim == 2 for a in arrays):
        images = np.stack(arrays)[:, None]
    else:
        rgb = [a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2) for a in arrays]
        images = np.stack(rgb).transpose(0, 3, 1, 2)
    split = "train" if train else "test"
    return ImageDataset(
        torch.from_numpy(np.ascontiguousarray(images)),
        torch.tensor(labels, dtype=torch.int64),
        classes,
        name=f"{Path(root).name}/{split}",
    )
