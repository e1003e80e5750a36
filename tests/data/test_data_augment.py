"""Batch augmentation against a per-image reference written with plain slicing."""

from __future__ import annotations

import pytest
import torch

from cnnarch.data import CropFlip, ImageDataset, Normalize, pad_crop_flip
from cnnarch.errors import CnnarchError


def reference_crop_flip(image: torch.Tensor, dx: int, dy: int, flip: bool, pad: int):
    c, h, w = image.shape
    padded = torch.zeros(c, h + 2 * pad, w + 2 * pad, dtype=image.dtype)
    padded[:, pad : pad + h, pad : pad + w] = image
    crop = padded[:, dy : dy + h, dx : dx + w]
    return crop.flip(-1) if flip else crop


def test_batch_crop_and_flip_equal_the_per_image_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (9, 3, 6, 5), dtype=torch.uint8, generator=gen)
    params = CropFlip.draw(9, pad=2, flip=True, generator=gen)
    # Include the extreme offsets explicitly.
    params = CropFlip(
        torch.cat([torch.tensor([0, 4]), params.dx[2:]]),
        torch.cat([torch.tensor([4, 0]), params.dy[2:]]),
        torch.cat([torch.tensor([True, False]), params.flip[2:]]),
    )
    out = pad_crop_flip(images, params, pad=2)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    for i in range(9):
        want = reference_crop_flip(
            images[i], int(params.dx[i]), int(params.dy[i]), bool(params.flip[i]), 2
        )
        assert torch.equal(out[i], want), i


def test_center_offset_without_flip_is_the_identity() -> None:
    images = torch.randint(0, 256, (4, 1, 7, 7), dtype=torch.uint8)
    center = CropFlip(torch.full((4,), 3), torch.full((4,), 3), torch.zeros(4, dtype=torch.bool))
    assert torch.equal(pad_crop_flip(images, center, pad=3), images)


def test_draws_follow_the_generator_and_cover_the_range() -> None:
    a = CropFlip.draw(1000, 4, True, torch.Generator().manual_seed(5))
    b = CropFlip.draw(1000, 4, True, torch.Generator().manual_seed(5))
    assert torch.equal(a.dx, b.dx) and torch.equal(a.flip, b.flip)
    assert set(a.dx.tolist()) == set(range(9)) and set(a.dy.tolist()) == set(range(9))
    assert 400 < int(a.flip.sum()) < 600
    assert not CropFlip.draw(50, 4, False, torch.Generator()).flip.any()


def test_normalize_is_x_over_255_minus_mean_over_std() -> None:
    x = torch.tensor([[[[0, 255]], [[51, 102]]]], dtype=torch.uint8)  # (1, 2, 1, 2)
    out = Normalize((0.5, 0.2), (0.25, 0.1))(x)
    want = torch.tensor([[[[-2.0, 2.0]], [[0.0, 2.0]]]])
    assert torch.allclose(out, want, atol=1e-6)


def test_subset_is_fixed_and_keeps_the_parent_statistics() -> None:
    images = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1)
    ds = ImageDataset(images, torch.arange(20) % 2, ["a", "b"])
    a, b = ds.subset(5), ds.subset(5)
    assert torch.equal(a.images, b.images) and len(a) == 5
    assert a.mean == ds.mean and a.std == ds.std
    assert ds.subset(None) is ds and ds.subset(20) is ds
    # More than the set holds is an error naming both numbers, not a silent full-size run.
    with pytest.raises(CnnarchError, match=r"subset of 50 images .* holds only 20"):
        ds.subset(50)
    with pytest.raises(CnnarchError, match="labels must lie"):
        ImageDataset(images, torch.arange(20), ["a", "b"])
    with pytest.raises(CnnarchError, match="uint8"):
        ImageDataset(images.float(), torch.zeros(20), ["a"])
