"""The 6n+2 CIFAR nets, with parameter counts derived by hand from He et al. 2015, Sec. 4.2."""

import pytest
import torch

import cnnarch
from cnnarch import CnnarchError


def cifar_params(depth: int, in_channels: int = 3, num_classes: int = 10) -> int:
    """Weights + BN affine of a 6n+2 net with option-A (parameter-free) shortcuts."""
    n = (depth - 2) // 6
    total = 9 * in_channels * 16 + 2 * 16  # first conv + its BN
    width_in = 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += 9 * width_in * width + 2 * width  # conv1 + bn1 of the block
            total += 9 * width * width + 2 * width  # conv2 + bn2
            width_in = width
    return total + 64 * num_classes + num_classes


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_plain_and_residual_twins_have_the_derived_parameter_count(depth: int) -> None:
    for kind in ("resnet", "plain"):
        with torch.device("meta"):
            model = cnnarch.create_model(f"{kind}{depth}")
        assert sum(p.numel() for p in model.parameters()) == cifar_params(depth)


def test_published_table6_params_round_to_the_derived_count() -> None:
    # Table 6 prints 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M.
    for depth, printed in [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85), (110, 1.7)]:
        digits = 2 if printed < 1 else 1
        assert round(cifar_params(depth) / 1e6, digits) == printed
    assert round(cifar_params(1202) / 1e6, 1) == 19.4


def test_fashion_mnist_shape_trains() -> None:
    model = cnnarch.create_model("resnet20", in_channels=1, num_classes=10)
    out = model(torch.randn(4, 1, 28, 28))
    assert out.shape == (4, 10)
    out.sum().backward()


def test_wrong_channels_and_unknown_name_are_clear_errors() -> None:
    model = cnnarch.create_model("plain20")
    with pytest.raises(CnnarchError, match="expected 3 input channels, got 1"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(CnnarchError, match="did you mean"):
        cnnarch.create_model("resnet21")
