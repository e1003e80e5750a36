"""Shared layers: the dense (sliding) application of fully connected heads."""

import pytest
import torch
from torch import nn

from cnnarch.zoo.layers import classify_densely, sliding_windows


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
