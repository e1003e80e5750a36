"""Image modes other than 8-bit gray and RGB: converted to 8 bits with their meaning kept, or
refused by name; and files with an image's suffix that are not regular files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnarch.data import load_dataset
from cnnarch.errors import CnnarchError


def folder_of(root: Path, *images: Image.Image) -> Path:
    """root/train/a/<i>.<ext> and one test image, each saved in the format that keeps its mode."""
    for split in ("train", "test"):
        (root / split / "a").mkdir(parents=True)
    for i, image in enumerate(images):
        ext = "tiff" if image.mode in ("F", "CMYK", "I") else "png"
        image.save(root / "train" / "a" / f"{i}.{ext}")
    images[0].save(
        root / "test" / "a" / ("0.tiff" if images[0].mode in ("F", "CMYK", "I") else "0.png")
    )
    return root


def test_sixteen_bit_gray_is_scaled_to_eight_bits(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32767, 32896], [65535, 128, 129, 65278]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    ds = load_dataset("folder", folder_of(tmp_path, image))
    # round(v * 255 / 65535) = round(v / 257): 0, 1, 127.5 -> 127, 128, 255, 0.498 -> 0, ...
    assert ds.images[0, 0].tolist() == [[0, 1, 127, 128], [255, 0, 1, 254]]
    assert ds.images.shape == (1, 1, 2, 4)  # one channel: still gray


def test_eight_bit_gray_beside_sixteen_bit_gray_stays_gray(tmp_path: Path) -> None:
    eight = Image.fromarray(np.full((2, 2), 200, np.uint8))
    sixteen = Image.fromarray(np.full((2, 2), 200 * 257, np.uint16))
    ds = load_dataset("folder", folder_of(tmp_path, eight, sixteen))
    assert ds.images.shape == (2, 1, 2, 2) and (ds.images == 200).all()


def test_palette_cmyk_and_gray_with_alpha_are_converted(tmp_path: Path) -> None:
    palette = Image.new("P", (2, 2))
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0, 0, 0] * 254)
    palette.putpixel((1, 0), 1)
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 0, 0))  # full magenta ink
    gray_alpha = Image.new("LA", (2, 2), (90, 17))
    ds = load_dataset("folder", folder_of(tmp_path, palette, cmyk, gray_alpha))
    assert ds.images.shape == (3, 3, 2, 2)  # color images make an RGB set
    assert ds.images[0, :, 0, 1].tolist() == [10, 20, 30]  # the palette's color, not its index
    assert ds.images[0, :, 0, 0].tolist() == [0, 0, 0]
    assert ds.images[1, :, 0, 0].tolist() == [255, 0, 255]  # magenta
    assert ds.images[2, :, 1, 1].tolist() == [90, 90, 90]  # alpha dropped, gray repeated


@pytest.mark.parametrize(
    ("image", "mode"),
    [
        (Image.fromarray(np.full((2, 2), 0.5, np.float32)), "'F' (32-bit floating-point"),
        (Image.fromarray(np.full((2, 2), 70000, np.int32)), "'I' (32-bit integer"),
    ],
)
def test_modes_without_a_known_range_are_refused_by_name(
    tmp_path: Path, image: Image.Image, mode: str
) -> None:
    with pytest.raises(CnnarchError, match=rf"0\.tiff: image mode {re.escape(mode)}") as caught:
        load_dataset("folder", folder_of(tmp_path, image))
    assert "\n" not in str(caught.value)


def test_a_file_with_an_image_suffix_must_be_a_regular_file(tmp_path: Path) -> None:
    root = folder_of(tmp_path, Image.fromarray(np.zeros((2, 2), np.uint8)))
    os.mkfifo(root / "train" / "a" / "pipe.png")  # reading it would wait for a writer forever
    with pytest.raises(CnnarchError, match=r"pipe\.png is a named pipe, not a regular file"):
        load_dataset("folder", root)
    os.unlink(root / "train" / "a" / "pipe.png")
    (root / "train" / "a" / "folder.png").mkdir()
    with pytest.raises(CnnarchError, match=r"folder\.png is a folder, not a regular file"):
        load_dataset("folder", root)
