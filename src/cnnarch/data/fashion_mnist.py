"""Fashion-MNIST (Xiao, Rasul, Vollgraf 2017) from its four IDX files."""

from __future__ import annotations

from pathlib import Path

from cnnarch.data.dataset import ImageDataset
from cnnarch.data.idx import read_idx
from cnnarch.errors import CnnarchError

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(data_dir: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (data_dir / name).exists():  # read only if regular (`read_idx` checks)
            return data_dir / name
    hint = (
        "install it with `sudo apt-get install dataset-fashion-mnist`"
        if data_dir == DEFAULT_DIR
        else "check --data-dir, or install the default copy with "
        "`sudo apt-get install dataset-fashion-mnist`"
    )
    raise CnnarchError(f"Fashion-MNIST not found: no {stem}[.gz] in {data_dir}; {hint}")


def load_fashion_mnist(data_dir: str | Path | None = None, train: bool = True) -> ImageDataset:
    """The 60,000 training or 10,000 test images, 1x28x28, with their labels."""
    data_dir = DEFAULT_DIR if data_dir is None else Path(data_dir)
    images_file, labels_file = (_find(data_dir, stem) for stem in _FILES[train])
    images = read_idx(images_file, ndim=3)
    labels = read_idx(labels_file, ndim=1)
    if images.dtype != labels.dtype or images.dtype.is_floating_point:
        raise CnnarchError(f"{images_file}, {labels_file}: expected unsigned byte IDX files")
    if len(images) != len(labels):
        raise CnnarchError(
            f"{images_file} holds {len(images)} images but {labels_file} {len(labels)} labels"
        )
    split = "train" if train else "test"
    return ImageDataset(
        images.unsqueeze(1).contiguous(), labels, list(CLASSES), name=f"fashion-mnist/{split}"
    )
