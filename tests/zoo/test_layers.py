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


# -- weight initialization ------------------------------------------------------------------------
def test_initialization_runs_on_real_tensors_and_is_skipped_on_meta() -> None:
    from cnnarch.zoo.common import initialize

    calls: list[str] = []
    initialize(nn.Linear(2, 2), lambda m: calls.append("cpu"))
    with torch.device("meta"):
        initialize(nn.Linear(2, 2), lambda m: calls.append("meta"))
    initialize(nn.ReLU(), lambda m: calls.append("no parameters"))
    assert calls == ["cpu", "no parameters"]


def test_each_family_initializes_as_its_paper_says() -> None:
    torch.manual_seed(0)
    alexnet = cnnarch.create_model("alexnet", num_classes=10)
    conv1, conv2 = alexnet.towers[0].conv1, alexnet.towers[0].conv2
    assert conv1.bias.eq(0).all() and conv2.bias.eq(1).all()  # Section 5: 1 in conv2
    assert conv2.weight.std().item() == pytest.approx(0.01, rel=0.02)

    resnet = cnnarch.create_model("resnet18", num_classes=10, zero_init_residual=True)
    conv = resnet.layer3[0].conv1  # He normal, fan-out: std sqrt(2 / (256 * 3 * 3))
    assert conv.weight.std().item() == pytest.approx((2 / (256 * 9)) ** 0.5, rel=0.02)
    block = resnet.layer1[0]
    assert block.bn1.weight.eq(1).all() and block.bn2.weight.eq(0).all()

    with torch.device("meta"):
        on_meta = cnnarch.create_model("resnet18", num_classes=10)
    assert all(p.is_meta for p in on_meta.parameters())
