"""Malformed and malicious data: image folders whose splits disagree, and files that declare
more than they hold (CIFAR pickles, IDX headers, gzip bombs, huge PNG headers)."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnarch.data import load_dataset, read_idx
from cnnarch.data.cifar import TEST_BATCHES, read_batch
from cnnarch.data.folder import MAX_IMAGE_PIXELS
from cnnarch.data.idx import MAX_DATA_BYTES
from cnnarch.errors import CnnarchError


def image_folder(root: Path, splits: dict[str, dict[str, int]]) -> Path:
    """root/split/class/i.png with the given number of 4x4 images per class; each image's
    pixels hold the index of its class in sorted order of all classes named."""
    names = sorted({c for classes in splits.values() for c in classes})
    for split, classes in splits.items():
        for name, count in classes.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.full((4, 4), names.index(name), np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def test_test_labels_index_the_training_classes(tmp_path: Path) -> None:
    # test/ lacks class "a": its "b" images must still get label 1, as in train/.
    root = image_folder(tmp_path, {"train": {"a": 2, "b": 2, "c": 2}, "test": {"b": 1, "c": 1}})
    train, test = load_dataset("folder", root), load_dataset("folder", root, train=False)
    assert train.classes == test.classes == ["a", "b", "c"]
    assert test.labels.tolist() == [1, 2]
    assert test.images[:, 0, 0, 0].tolist() == [1, 2]  # the b image, then the c image


def test_a_test_class_that_train_lacks_is_an_error(tmp_path: Path) -> None:
    root = image_folder(tmp_path, {"train": {"a": 2, "b": 2}, "test": {"b": 1, "d": 1}})
    with pytest.raises(CnnarchError, match=r"has classes that .*train lacks \(d\)"):
        load_dataset("folder", root, train=False)


@pytest.mark.parametrize("split", ["train", "test"])
def test_an_empty_class_folder_is_an_error_naming_it(tmp_path: Path, split: str) -> None:
    root = image_folder(tmp_path, {"train": {"a": 2, "b": 2}, "test": {"a": 1, "b": 1}})
    (root / split / "zz").mkdir()
    if split == "test":
        (root / "train" / "zz").mkdir()
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "train" / "zz" / "0.png")
    with pytest.raises(CnnarchError, match=rf"class folder .*{split}/zz holds no images"):
        load_dataset("folder", root, train=split == "train")


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height 8-bit grayscale pixels and holds no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return (
        signature + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [15000, 9000])  # over Pillow's own limit; over ours only
def test_a_huge_image_header_is_refused_before_decoding(tmp_path: Path, side: int) -> None:
    assert side * side > MAX_IMAGE_PIXELS
    root = image_folder(tmp_path, {"train": {"a": 1}, "test": {"a": 1}})
    (root / "train" / "a" / "huge.png").write_bytes(png_header(side, side))
    with pytest.raises(CnnarchError, match=r"huge\.png is too large .* 50 megapixels"):
        load_dataset("folder", root)


class _Reconstruct:
    """Pickles as numpy's array constructor called with a forged shape."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def __reduce__(self) -> tuple:
        reconstruct = np.zeros(1).__reduce__()[0]
        return (reconstruct, (np.ndarray, self.shape, b"b"))


@pytest.mark.parametrize("shape", [(9 * 2**40,), (2**62, 2**62)])
def test_a_cifar_batch_declaring_a_huge_array_is_refused_before_allocating(
    tmp_path: Path, shape: tuple[int, ...]
) -> None:
    path = tmp_path / TEST_BATCHES[0]
    path.write_bytes(pickle.dumps({b"data": _Reconstruct(shape), b"labels": [0]}, protocol=2))
    with pytest.raises(CnnarchError, match=r"not a CIFAR-10 python batch .*declares an array"):
        read_batch(path)


def test_a_real_cifar_layout_still_loads(tmp_path: Path) -> None:
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": data, b"labels": [3, 4]}, protocol=2))
    images, labels = read_batch(path)
    assert images.shape == (2, 3, 32, 32) and labels.tolist() == [3, 4]
    assert images.flatten().tolist() == data.flatten().tolist()


def idx_header(shape: tuple[int, ...]) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


def test_an_idx_gzip_bomb_is_not_decompressed_past_its_header(tmp_path: Path) -> None:
    # 30 MB of zeros behind a header that declares 28x28 bytes: gzip shrinks it to ~30 kB.
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header((1, 28, 28)) + bytes(30_000_000), 1))
    tracemalloc.start()
    try:
        with pytest.raises(CnnarchError, match="unexpected bytes after the data"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # nowhere near the 30 MB the file expands to


def test_an_idx_header_declaring_more_than_the_limit_is_refused(tmp_path: Path) -> None:
    shape = (60000, 28000, 28000)  # 47 TB
    assert np.prod(shape, dtype=np.float64) > MAX_DATA_BYTES
    path = tmp_path / "forged-idx3-ubyte"
    path.write_bytes(idx_header(shape) + bytes(100))
    with pytest.raises(CnnarchError, match=r"declares shape \(60000, 28000, 28000\), 47040\.0 GB"):
        read_idx(path)


@pytest.mark.parametrize("dataset", ["fashion-mnist", "cifar10"])
def test_a_data_file_that_is_a_pipe_is_refused_without_waiting(
    tmp_path: Path, dataset: str
) -> None:
    name = "train-images-idx3-ubyte" if dataset == "fashion-mnist" else "data_batch_1"
    if dataset == "fashion-mnist":
        (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"")
    else:
        for batch in ("data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"):
            (tmp_path / batch).write_bytes(b"")
    os.mkfifo(tmp_path / name)  # reading it the usual way would wait for a writer forever
    with pytest.raises(CnnarchError, match=rf"{name} is a named pipe, not a regular file"):
        load_dataset(dataset, tmp_path)
