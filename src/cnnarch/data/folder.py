"""Image folders: `root/train/<class>/*.png` and `root/test/<class>/*.png` (or `val`).

Class names are the sub-folders of `train/` in sorted order, and both splits use that one
list, so a label means the same class in each; a test class that `train/` lacks, or a class
folder without images, is an error. All images of a split must have the same size; they are
read with Pillow (PNG, JPEG, BMP, ...), as grayscale when every image is grayscale and as RGB
otherwise, at 8 bits a channel (`cnnarch.data.images` says how each mode is converted, and
which are refused). An image of more than `MAX_IMAGE_PIXELS` pixels is refused from its header,
before it is decoded. A file with an image's suffix must be a regular file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from cnnarch.data.dataset import ImageDataset
from cnnarch.data.images import pixels
from cnnarch.errors import CnnarchError
from cnnarch.files import open_regular, printable

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}
MAX_IMAGE_PIXELS = 50_000_000  # 50 megapixels (e.g. 8660x5773), far above any training image


def _split_dir(root: Path, train: bool) -> Path:
    names = ("train",) if train else ("test", "val")
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise CnnarchError(
        f"image folder {root}: no {' or '.join(names)}/ sub-folder; expected "
        f"{root}/train/<class>/*.png and {root}/test/<class>/*.png"
    )


def _too_large(path: Path, size: str) -> CnnarchError:
    return CnnarchError(
        f"{path} is too large to be a training image ({size}; the limit is "
        f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels): a corrupt or malicious file, or a picture to "
        "scale down first; it was not decoded"
    )


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings(), open_regular(path, "image") as handle:
            # Pillow warns above its own limit (89 Mpx), which is above ours: checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(handle) as img:  # reads the header only
                width, height = img.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise _too_large(path, f"{width}x{height} pixels")
                return pixels(img, str(path))
    except Image.DecompressionBombError:  # Pillow's own limit, checked when it opens a file
        raise _too_large(path, "over Pillow's limit") from None
    except (OSError, UnidentifiedImageError) as err:
        raise CnnarchError(f"cannot read image {path}: {err}") from None


def _class_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def load_image_folder(root: str | Path | None, train: bool = True) -> ImageDataset:
    """All images under the split folder of `root`, labeled by their class folder; the
    labels index the classes of `train/`, in either split."""
    if root is None:
        raise CnnarchError("an image folder dataset needs --data-dir (a folder with train/, test/)")
    train_dir = _split_dir(Path(root), train=True)
    folder = train_dir if train else _split_dir(Path(root), train=False)
    classes = _class_dirs(train_dir)
    if not classes:
        raise CnnarchError(f"{train_dir}: no class sub-folders")
    unknown = sorted(set(_class_dirs(folder)) - set(classes))
    if unknown:
        raise CnnarchError(
            f"{folder} has classes that {train_dir} lacks ({printable(', '.join(unknown))}); "
            "the labels "
            "come from the training classes, so add them there or remove them here"
        )
    arrays, labels, files = [], [], []
    for label, name in enumerate(classes):
        if not (folder / name).is_dir():
            continue  # a class the test split does not hold: its label is simply unused
        images = _image_files(folder / name)
        if not images:
            raise CnnarchError(
                f"class folder {folder / name} holds no images (looked for "
                f"{', '.join(sorted(IMAGE_SUFFIXES))}); add images or remove the folder"
            )
        for path in images:
            arrays.append(_read_image(path))
            labels.append(label)
            files.append(path)
    if not arrays:
        raise CnnarchError(f"{folder} holds none of the classes of {train_dir}")
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
