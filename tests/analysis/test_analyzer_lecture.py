"""The lecture's numbers, derived by hand from each architecture, against the analyzer."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import cnnarch
from cnnarch.zoo.registry import published


def conv_out(size: int, kernel: int, stride: int = 1, pad: int = 0) -> int:
    return (size + 2 * pad - kernel) // stride + 1


# -- AlexNet as on the CS231n slide: 227x227x3 input, one stream -----------------------------
# (name, kind, channels, kernel, stride, pad); kinds: conv, pool, norm, fc
ALEXNET_SLIDE = [
    ("conv1", "conv", 96, 11, 4, 0),
    ("pool1", "pool", None, 3, 2, 0),
    ("norm1", "norm", None, None, None, None),
    ("conv2", "conv", 256, 5, 1, 2),
    ("pool2", "pool", None, 3, 2, 0),
    ("norm2", "norm", None, None, None, None),
    ("conv3", "conv", 384, 3, 1, 1),
    ("conv4", "conv", 384, 3, 1, 1),
    ("conv5", "conv", 256, 3, 1, 1),
    ("pool3", "pool", None, 3, 2, 0),
    ("fc6", "fc", 4096, None, None, None),
    ("fc7", "fc", 4096, None, None, None),
    ("fc8", "fc", 1000, None, None, None),
]


class SlideAlexNet(nn.Module):
    """AlexNet built from the slide's layer list (ReLUs in place, as usual)."""

    def __init__(self) -> None:
        super().__init__()
        channels, side = 3, 227
        for name, kind, width, k, s, p in ALEXNET_SLIDE:
            if kind == "conv":
                layer = nn.Sequential(nn.Conv2d(channels, width, k, s, p), nn.ReLU(inplace=True))
                channels, side = width, conv_out(side, k, s, p)
            elif kind == "pool":
                layer = nn.MaxPool2d(k, s)
                side = conv_out(side, k, s)
            elif kind == "norm":
                layer = nn.LocalResponseNorm(5)
            else:
                layer = nn.Linear(channels * side * side if name == "fc6" else channels, width)
                channels, side = width, 1
            setattr(self, name, layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, *_ in ALEXNET_SLIDE:
            if name == "fc6":
                x = torch.flatten(x, 1)
            x = getattr(self, name)(x)
        return x


def expected_alexnet() -> dict[str, dict[str, object]]:
    """Output shape, params, MACs per layer, by the formulas of the lecture."""
    channels, side = 3, 227
    expected = {}
    for name, kind, width, k, s, p in ALEXNET_SLIDE:
        if kind == "conv":
            out_side = conv_out(side, k, s, p)
            params = k * k * channels * width + width
            macs = out_side * out_side * width * k * k * channels
            channels, side = width, out_side
        elif kind == "pool":
            side, params, macs = conv_out(side, k, s), 0, 0
        elif kind == "norm":
            params = macs = 0
        else:
            fan_in = channels * side * side
            params, macs = fan_in * width + width, fan_in * width
            channels, side = width, 1
        shape = (1, channels, side, side) if kind != "fc" else (1, channels)
        expected[name] = {"shape": shape, "params": params, "macs": macs}
    return expected


def test_alexnet_slide_shapes_params_and_macs_per_layer():
    summary = cnnarch.analyze(SlideAlexNet(), (3, 227, 227))
    rows = {row.path: row for row in summary.rows if row.depth == 1}
    expected = expected_alexnet()
    # Anchors printed on the slide: 55x55x96 after conv1, 6x6x256 before fc6, 35K conv1 weights.
    assert expected["conv1"]["shape"] == (1, 96, 55, 55)
    assert expected["pool3"]["shape"] == (1, 256, 6, 6)
    assert published()["cs231n_lecture9_2017"]["alexnet"]["layers"][0][2] == [55, 55, 96]
    for name, want in expected.items():
        row = rows[name]
        assert row.output_shapes == (want["shape"],), name
        assert row.params == want["params"], name
        assert row.macs == want["macs"], name
        # every layer's output is a new tensor (the ReLUs inside conv rows work in place)
        assert row.activation_elements == math.prod(want["shape"]), name
    assert summary.total_params == sum(w["params"] for w in expected.values())
    assert summary.total_macs == sum(w["macs"] for w in expected.values())
    assert summary.activation_elements == sum(math.prod(w["shape"]) for w in expected.values())
    assert summary.input_elements == 227 * 227 * 3


def test_zoo_alexnet_two_towers_as_in_the_paper():
    """The paper's AlexNet: each GPU holds half the filters; conv2, conv4 and conv5 see only
    their own tower, conv3 and the FC layers see both."""
    summary = cnnarch.analyze("alexnet")
    rows = {r.path: r for r in summary.rows}
    # (name, input channels seen, filters per tower, kernel, output side)
    convs = [
        ("conv1", 3, 48, 11, 55),
        ("conv2", 48, 128, 5, 27),
        ("conv3", 256, 192, 3, 13),
        ("conv4", 192, 192, 3, 13),
        ("conv5", 192, 128, 3, 13),
    ]
    per_tower = 0
    for name, c_in, width, k, side in convs:
        row = rows[f"towers.1.{name}"]
        assert row.output_shapes == ((1, width, side, side),)
        assert row.params == k * k * c_in * width + width
        assert row.macs == side * side * width * k * k * c_in
        per_tower += row.params
    fcs = [(6 * 6 * 256, 2048), (4096, 2048)]  # fc6 and fc7 of one tower see both towers
    per_tower += sum(i * o + o for i, o in fcs)
    assert summary.total_params == 2 * per_tower + (4096 * 1000 + 1000) == 60_965_224


# -- VGG16 (configuration D), from the zoo --------------------------------------------------
VGG16_D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def test_vgg16_per_layer_numbers_from_configuration_d():
    summary = cnnarch.analyze("vgg16")
    leaves = [r for r in summary.rows if r.is_leaf and r.type in ("Conv2d", "MaxPool2d")]
    channels, side = 3, 224
    total_macs = total_params = 0
    for layer, row in zip(VGG16_D, leaves, strict=True):
        if layer == "M":
            side //= 2
            assert row.type == "MaxPool2d"
            assert row.params == row.macs == 0
        else:
            macs = side * side * layer * 9 * channels  # 3x3 conv, pad 1: the side is kept
            params = 9 * channels * layer + layer
            assert (row.type, row.params, row.macs) == ("Conv2d", params, macs)
            channels = layer
            total_macs, total_params = total_macs + macs, total_params + params
        assert row.output_shapes == ((1, channels, side, side),)
        assert row.activation_elements == channels * side * side
    fcs = [(7 * 7 * 512, 4096), (4096, 4096), (4096, 1000)]
    total_params += sum(i * o + o for i, o in fcs)
    total_macs += sum(i * o for i, o in fcs)
    assert summary.total_params == total_params == 138_357_544
    assert summary.total_macs == total_macs


# -- a CIFAR ResNet -------------------------------------------------------------------------
def test_resnet20_by_stage():
    summary = cnnarch.analyze("resnet20")
    rows = {r.path: r for r in summary.rows}
    assert summary.input_shape == (1, 3, 32, 32)  # from the model card
    # stage 1: three blocks of two 3x3 16->16 convs on 32x32 (+ two BNs of 2x16 params each)
    assert rows["layer1"].params == 3 * (2 * (9 * 16 * 16) + 2 * 32)
    assert rows["layer1"].macs == 6 * (32 * 32 * 16 * 9 * 16)
    # stage 2 opens with a stride-2 16->32 conv on 16x16 maps, then five 32->32 convs
    assert rows["layer2"].macs == 16 * 16 * 32 * 9 * (16 + 5 * 32)
    assert rows["layer3"].macs == 8 * 8 * 64 * 9 * (32 + 5 * 64)
    conv1_macs = 32 * 32 * 16 * 27
    assert summary.total_macs == conv1_macs + rows["layer1"].macs + 2 * rows["layer2"].macs + 640
    assert summary.total_params == 269_722  # He et al., Table 6: 0.27M
    # Activations of one identity block: conv1, bn1, conv2, bn2 and the add make new tensors;
    # the in-place ReLUs and the identity shortcut do not.
    assert rows["layer1.1"].activation_elements == 5 * 16 * 32 * 32
    # The first block of stage 2 also builds its zero-padded option-A shortcut.
    assert rows["layer2.0"].activation_elements == 6 * 32 * 16 * 16
    adds = [r for r in summary.rows if r.kind == "op" and r.path.startswith("layer2.0.")]
    assert [(r.type, r.output_shapes) for r in adds] == [("add", ((1, 32, 16, 16),))]


# -- the Inception modules of the lecture (input 28x28x256) ---------------------------------
class NaiveInception(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(256, 128, 1)
        self.b3 = nn.Conv2d(256, 192, 3, padding=1)
        self.b5 = nn.Conv2d(256, 96, 5, padding=2)
        self.pool = nn.MaxPool2d(3, 1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(x)], 1)


class BottleneckInception(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(256, 128, 1)
        self.b3 = nn.Sequential(nn.Conv2d(256, 64, 1), nn.Conv2d(64, 192, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(256, 64, 1), nn.Conv2d(64, 96, 5, padding=2))
        self.pool = nn.Sequential(nn.MaxPool2d(3, 1, padding=1), nn.Conv2d(256, 64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(x)], 1)


def test_inception_modules_of_the_lecture():
    example = published()["cs231n_lecture9_2017"]["inception_module_example"]
    hw = 28 * 28
    naive = cnnarch.analyze(NaiveInception(), (256, 28, 28))
    naive_macs = hw * 128 * 256 + hw * 192 * 9 * 256 + hw * 96 * 25 * 256
    assert naive.total_macs == naive_macs == 854_196_224  # the slide: "854M ops"
    assert example["naive"]["conv_ops_as_printed"] == "854M"
    assert naive.rows[0].output_shapes == ((1, example["naive"]["output_depth"], 28, 28),)

    bottleneck = cnnarch.analyze(BottleneckInception(), (256, 28, 28))
    # The slide's own terms: 1x1 64, 1x1 64, 1x1 128, 3x3 192 on 64, 5x5 96 on 64, 1x1 64.
    terms = [hw * 64 * 256, hw * 64 * 256, hw * 128 * 256, hw * 192 * 9 * 64, hw * 96 * 25 * 64]
    terms.append(hw * 64 * 256)
    assert bottleneck.total_macs == sum(terms) == 271_351_808
    # ... which is not the "358M" printed under them.
    assert example["bottleneck"]["conv_ops_as_printed"] == "358M"
    assert bottleneck.rows[0].output_shapes == ((1, example["bottleneck"]["output_depth"], 28, 28),)
    cat = [r for r in bottleneck.rows if r.kind == "op"]
    assert [(r.path, r.activation_elements) for r in cat] == [("cat()", 480 * hw)]


@pytest.mark.parametrize("name", ["alexnet", "resnet18", "googlenet"])
def test_zoo_models_default_to_their_card_input(name):
    with torch.device("meta"):
        model = cnnarch.create_model(name)
    summary = cnnarch.analyze(model)
    assert summary.input_shape == (1, *cnnarch.model_card(name).input_size)
    assert summary.total_params == sum(p.numel() for p in model.parameters())
