"""Shared layers: the dense (sliding) application of fully connected heads, the input transform
of torchvision's Inception nets."""

import pytest
import torch
from torch import nn

import cnnarch
from cnnarch.zoo.layers import classify_densely, renormalize_input, sliding_windows


def test_one_window_is_the_plain_classifier() -> None:
    torch.manual_seed(0)
    fc = nn.Linear(4 * 3 * 3, 5)
    x = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(classify_densely(fc, x, (3, 3)), fc(torch.flatten(x, 1)))


def test_larger_maps_average_the_classifier_over_every_window() -> None:
    torch.manual_seed(0)
    fc = nn.Linear(4 * 3 * 3, 5)
    x = torch.randn(2, 4, 5, 6)
    crops = [
        fc(torch.flatten(x[:, :, i : i + 3, j : j + 3], 1)) for i in range(3) for j in range(4)
    ]
    assert sliding_windows(x, (3, 3)).shape == (2, 12, 36)
    torch.testing.assert_close(classify_densely(fc, x, (3, 3)), torch.stack(crops).mean(0))


def test_a_map_smaller_than_the_window_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="smaller than the 7x7 window"):
        sliding_windows(torch.zeros(1, 2, 6, 9), (7, 7))


def test_renormalize_input_turns_imagenet_normalization_into_minus_one_to_one() -> None:
    # An image u in [0, 1], normalized with ImageNet's mean/std, must come out as (u - 0.5) / 0.5.
    torch.manual_seed(0)
    u = torch.rand(2, 3, 4, 4)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(renormalize_input((u - mean) / std), (u - 0.5) / 0.5)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "side"), [("googlenet", 224), ("inception_v3", 299)])
def test_transform_input_feeds_the_renormalized_image_to_the_net(name: str, side: int) -> None:
    torch.manual_seed(0)
    plain = cnnarch.create_model(name, variant="torchvision").eval()
    transformed = cnnarch.create_model(name, variant="torchvision", transform_input=True).eval()
    transformed.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, side, side)
    with torch.no_grad():
        torch.testing.assert_close(transformed(x), plain(renormalize_input(x)))
