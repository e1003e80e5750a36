"""`image_size`: small images resized for models that need large ones, or a clear error."""

from pathlib import Path

import pytest
import torch
from train_helpers import TinyNet, tiny_config, write_tiny_fashion

from cnnarch import CnnarchError
from cnnarch.train import fit


class ShapeRecorder(TinyNet):
    """TinyNet that records the spatial size of every batch it sees."""

    def __init__(self) -> None:
        super().__init__(bn=False)
        self.sides: set[tuple[int, int]] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sides.add(tuple(x.shape[-2:]))
        return super().forward(x)


def test_batches_are_resized_for_training_and_testing(tmp_path: Path) -> None:
    data = write_tiny_fashion(tmp_path / "data", side=8)
    model = ShapeRecorder()
    fit(tiny_config(data, epochs=1, image_size=20), model=model)
    assert model.sides == {(20, 20)}


def test_without_image_size_the_images_keep_their_size(tmp_path: Path) -> None:
    data = write_tiny_fashion(tmp_path / "data", side=8)
    model = ShapeRecorder()
    fit(tiny_config(data, epochs=1), model=model)
    assert model.sides == {(8, 8)}


def test_too_small_images_for_a_zoo_model_name_the_fix(tmp_path: Path) -> None:
    # The paper AlexNet needs 227x227 (conv1 11x11/4, three 3x3/2 pools, 6x6 maps into FC6).
    data = write_tiny_fashion(tmp_path / "data", side=8)
    with pytest.raises(CnnarchError, match=r"at least 227x227.*--image-size 227"):
        fit(tiny_config(data, model="alexnet", epochs=1))


def test_image_size_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(CnnarchError, match="image_size must be at least 1"):
        tiny_config(tmp_path, image_size=0)
