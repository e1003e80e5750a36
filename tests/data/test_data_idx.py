"""IDX parsing and the Fashion-MNIST loader, on files written here from the format's spec."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnarch.data import load_dataset, parse_idx, read_idx
from cnnarch.data.fashion_mnist import CLASSES, DEFAULT_DIR
from cnnarch.errors import CnnarchError


def idx_bytes(type_code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    return (
        struct.pack(">BBBB", 0, 0, type_code, len(shape))
        + struct.pack(f">{len(shape)}I", *shape)
        + payload
    )


def write_fashion(folder: Path, images: np.ndarray, labels: np.ndarray, prefix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    img = idx_bytes(0x08, images.shape, images.astype(np.uint8).tobytes())
    lab = idx_bytes(0x08, labels.shape, labels.astype(np.uint8).tobytes())
    (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(img))
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(lab)  # one gzipped, one not


def test_unsigned_bytes_keep_their_row_major_layout() -> None:
    payload = bytes(range(24))
    array = parse_idx(idx_bytes(0x08, (2, 3, 4), payload))
    assert array.shape == (2, 3, 4) and array.dtype == np.uint8
    assert array[1, 2, 3] == 23 and array[1, 0, 0] == 12


def test_multi_byte_values_and_sizes_are_big_endian() -> None:
    # 0x0102 = 258 and 0xFFFE = -2 as big-endian int16; size 300 needs two bytes of its uint32.
    shorts = parse_idx(idx_bytes(0x0B, (2,), b"\x01\x02\xff\xfe"))
    assert shorts.tolist() == [258, -2]
    floats = parse_idx(idx_bytes(0x0D, (1,), struct.pack(">f", 1.5)))
    assert floats.tolist() == [1.5]
    long = parse_idx(idx_bytes(0x08, (300,), bytes(300)))
    assert long.shape == (300,)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "only 2 bytes"),
        (b"\x1f\x00\x08\x01" + bytes(8), "not an IDX file"),
        (b"\x00\x00\x07\x01" + bytes(8), "not an IDX file"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (idx_bytes(0x08, (10, 28, 28), bytes(7839)), r"truncated: shape \(10, 28, 28\)"),
        (idx_bytes(0x08, (2,), bytes(3)), "1 unexpected bytes"),
    ],
)
def test_wrong_or_truncated_data_is_rejected(data: bytes, message: str) -> None:
    with pytest.raises(CnnarchError, match=message):
        parse_idx(data, "x.idx")


def test_gzip_is_detected_by_content_and_broken_gzip_is_named(tmp_path: Path) -> None:
    raw = idx_bytes(0x08, (3,), b"\x01\x02\x03")
    (tmp_path / "a").write_bytes(gzip.compress(raw))
    assert read_idx(tmp_path / "a").tolist() == [1, 2, 3]
    (tmp_path / "b.gz").write_bytes(gzip.compress(raw)[:-6])
    with pytest.raises(CnnarchError, match="broken gzip"):
        read_idx(tmp_path / "b.gz")
    with pytest.raises(CnnarchError, match="expected an IDX file with 3 dimensions"):
        read_idx(tmp_path / "a", ndim=3)


def test_fashion_mnist_loader_reads_both_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    test = rng.integers(0, 256, (3, 5, 4), dtype=np.uint8)
    write_fashion(tmp_path, train, np.array([0, 1, 2, 3, 9, 9]), "train")
    write_fashion(tmp_path, test, np.array([5, 6, 7]), "t10k")
    ds = load_dataset("fashion-mnist", tmp_path)
    assert ds.images.shape == (6, 1, 5, 4) and ds.images.dtype == torch.uint8
    assert torch.equal(ds.images[:, 0], torch.from_numpy(train))
    assert ds.labels.tolist() == [0, 1, 2, 3, 9, 9]
    assert ds.classes == CLASSES and ds.classes[9] == "Ankle boot"
    assert ds.mean[0] == pytest.approx(train.mean() / 255)
    assert ds.std[0] == pytest.approx(train.std() / 255)
    assert load_dataset("fashion-mnist", tmp_path, train=False).labels.tolist() == [5, 6, 7]


def test_fashion_mnist_mismatch_and_bad_labels(tmp_path: Path) -> None:
    write_fashion(tmp_path, np.zeros((3, 2, 2)), np.array([0, 1]), "train")
    with pytest.raises(CnnarchError, match=r"holds 3 images but .* 2 labels"):
        load_dataset("fashion-mnist", tmp_path)
    write_fashion(tmp_path, np.zeros((2, 2, 2)), np.array([0, 10]), "train")
    with pytest.raises(CnnarchError, match=r"labels must lie in \[0, 9\]"):
        load_dataset("fashion-mnist", tmp_path)


def test_missing_fashion_mnist_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(CnnarchError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", tmp_path / "nowhere")
    with pytest.raises(CnnarchError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")


@pytest.mark.slow
@pytest.mark.skipif(not DEFAULT_DIR.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_installed_fashion_mnist_has_the_published_sizes() -> None:
    # Xiao et al. 2017: 60,000 training and 10,000 test images of 28x28, 6,000 / 1,000 per class.
    train = load_dataset("fashion-mnist")
    assert train.images.shape == (60000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    test = load_dataset("fashion-mnist", train=False)
    assert torch.bincount(test.labels).tolist() == [1000] * 10
