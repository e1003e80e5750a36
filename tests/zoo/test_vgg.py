"""VGG configurations against Tables 1 and 2 of Simonyan & Zisserman (as transcribed in
published.json), and the paper's dense evaluation."""

import pytest
import torch
from torch import nn

import cnnarch
from cnnarch.zoo.registry import published

TABLE1 = published()["vgg_paper"]["configs"]
TABLE2 = published()["vgg_paper"]["table2_params_millions"]
NAMES = {
    "A": "vgg11",
    "A-LRN": "vgg11_lrn",
    "B": "vgg13",
    "C": "vgg16_c",
    "D": "vgg16",
    "E": "vgg19",
}


def derived_params(config: str, batch_norm: bool = False) -> int:
    """Weights and biases of a Table 1 column, plus FC-4096, FC-4096, FC-1000 on 7x7x512."""
    total, width_in = 0, 3
    for layer in TABLE1[config]:
        if layer.startswith("conv"):
            kernel, width = layer.removeprefix("conv").split("-")
            k, width = int(kernel), int(width)
            total += k * k * width_in * width + width + (2 * width if batch_norm else 0)
            width_in = width
    fc = [(7 * 7 * 512, 4096), (4096, 4096), (4096, 1000)]
    return total + sum(n_in * n_out + n_out for n_in, n_out in fc)


def meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return cnnarch.create_model(name, **kwargs)


@pytest.mark.parametrize("config", list(NAMES))
def test_parameters_derived_from_table1_round_to_table2(config: str) -> None:
    expected = derived_params(config)
    assert sum(p.numel() for p in meta(NAMES[config]).parameters()) == expected
    assert round(expected / 1e6) == TABLE2[config]


def test_derived_counts() -> None:
    # A, B, C, D, E with biases; A-LRN adds no parameters.
    assert [derived_params(c) for c in ("A", "A-LRN", "B", "C", "D", "E")] == [
        132_863_336,
        132_863_336,
        133_047_848,
        133_638_952,
        138_357_544,
        143_667_240,
    ]


@pytest.mark.parametrize("config", ["A", "B", "D", "E"])
def test_batch_norm_adds_two_parameters_per_conv_channel(config: str) -> None:
    model = meta(NAMES[config] + "_bn")
    assert sum(p.numel() for p in model.parameters()) == derived_params(config, batch_norm=True)


@pytest.mark.parametrize("config", list(NAMES))
def test_layers_follow_the_table1_column(config: str) -> None:
    layers = []
    for module in meta(NAMES[config]).features:
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0]
            layers.append(f"conv{k}-{module.out_channels}")
            assert module.padding == (k // 2, k // 2) and module.stride == (1, 1)
        elif isinstance(module, nn.MaxPool2d):
            assert (module.kernel_size, module.stride) == (2, 2)
            layers.append("M")
        elif isinstance(module, nn.LocalResponseNorm):
            layers.append("LRN")
    assert layers == TABLE1[config]


def test_output_shapes_and_dense_evaluation_of_larger_inputs() -> None:
    model = meta("vgg16").eval()
    for side in (224, 256, 384):
        assert model(torch.empty(2, 3, side, side, device="meta")).shape == (2, 1000)
    torchvision_style = meta("vgg16", variant="torchvision").eval()
    assert torchvision_style(torch.empty(2, 3, 32, 32, device="meta")).shape == (2, 1000)


def test_minimum_inputs() -> None:
    # Five 2x2/2 pools: 7x7 maps for the paper's FC layers need 7 * 32 = 224; torchvision's
    # adaptive pool needs one pixel after the five pools, 32.
    assert cnnarch.model_card("vgg11").min_input_size == 224
    assert cnnarch.zoo.registry.min_input_size("vgg11", "torchvision") == 32
