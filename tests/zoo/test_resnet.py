"""ImageNet ResNets (Table 1 of He et al. 2015): parameters by hand, shortcut options, strides."""

import pytest
import torch
from torch import nn

import cnnarch
from cnnarch import CnnarchError
from cnnarch.zoo.resnet import Bottleneck

BLOCKS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}
BLOCKS[152] = [3, 8, 36, 3]
WIDTHS = [64, 128, 256, 512]


def conv_bn(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + 2 * c_out  # no conv bias; BN scale and shift


def resnet_params(depth: int, shortcut: str | None = "B") -> int:
    """Table 1 by hand: stem, blocks (with their shortcuts), FC-1000."""
    bottleneck = depth >= 50
    total = conv_bn(3, 64, 7)
    channels = 64
    for stage, (width, count) in enumerate(zip(WIDTHS, BLOCKS[depth], strict=True)):
        for i in range(count):
            out = width * 4 if bottleneck else width
            if bottleneck:
                total += conv_bn(channels, width, 1) + conv_bn(width, width, 3)
                total += conv_bn(width, out, 1)
            else:
                total += conv_bn(channels, width, 3) + conv_bn(width, width, 3)
            changes_shape = (stage > 0 and i == 0) or channels != out
            if shortcut == "C" or (shortcut == "B" and changes_shape):
                total += conv_bn(channels, out, 1)  # projection (A and plain: none)
            channels = out
    return total + channels * 1000 + 1000


def meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return cnnarch.create_model(name, **kwargs)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# 101 and 152 take seconds on meta (four builds each) and repeat resnet50's blocks.
@pytest.mark.parametrize(
    "depth", [18, 34, 50, *(pytest.param(d, marks=pytest.mark.slow) for d in (101, 152))]
)
def test_parameters_derived_from_table1(depth: int) -> None:
    name = f"resnet{depth}"
    for shortcut in ("A", "B", "C"):
        assert count(meta(name, shortcut=shortcut)) == resnet_params(depth, shortcut), shortcut
    assert count(meta(name, variant="torchvision")) == resnet_params(depth, "B")
    published = cnnarch.model_card(name).published["torchvision"]["params"]
    assert published == resnet_params(depth, "B")


def test_derived_totals() -> None:
    assert [resnet_params(d) for d in (18, 34, 50, 101, 152)] == [
        11_689_512,
        21_797_672,
        25_557_032,
        44_549_160,
        60_192_808,
    ]


@pytest.mark.parametrize("depth", [18, 34])
def test_plain_nets_are_resnets_without_shortcuts(depth: int) -> None:
    plain = meta(f"plain{depth}")
    assert (
        count(plain)
        == resnet_params(depth, shortcut=None)
        == count(meta(f"resnet{depth}", shortcut="A"))
    )
    assert all(not block.residual for stage in (plain.layer1, plain.layer4) for block in stage)


def test_bottleneck_stride_sits_where_each_variant_puts_it() -> None:
    paper = meta("resnet50").layer2[0]
    torchvision_style = meta("resnet50", variant="torchvision").layer2[0]
    assert isinstance(paper, Bottleneck)
    assert (paper.conv1.stride, paper.conv2.stride) == ((2, 2), (1, 1))
    assert (torchvision_style.conv1.stride, torchvision_style.conv2.stride) == ((1, 1), (2, 2))


def test_shortcut_options_and_grid_sizes() -> None:
    x = torch.empty(2, 3, 224, 224, device="meta")
    for shortcut in ("A", "B", "C"):
        model = meta("resnet50", shortcut=shortcut, num_classes=7).eval()
        sizes: list[tuple[int, ...]] = []

        def record(_module, _inputs, out, sizes=sizes) -> None:
            sizes.append(tuple(out.shape[1:]))

        for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
            stage.register_forward_hook(record)
        assert model(x).shape == (2, 7)
        assert sizes == [(256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)]
    a = meta("resnet34", shortcut="A").layer2[0].downsample
    assert sum(p.numel() for p in a.parameters()) == 0  # zero padding, no parameters


def test_shortcut_option_a_pads_zeros_and_subsamples() -> None:
    torch.manual_seed(0)
    block = cnnarch.create_model("resnet18", shortcut="A").layer2[0]
    x = torch.randn(1, 64, 8, 8)
    shortcut = block.downsample(x)
    assert shortcut.shape == (1, 128, 4, 4)
    torch.testing.assert_close(shortcut[:, :64], x[:, :, ::2, ::2])
    assert not shortcut[:, 64:].any()


def test_bad_options_are_clear_errors() -> None:
    with pytest.raises(CnnarchError, match="shortcut must be one of A, B, C"):
        meta("resnet18", shortcut="D")
    with pytest.raises(CnnarchError, match="projection shortcuts"):
        meta("resnet18", variant="torchvision", shortcut="A")
    with pytest.raises(CnnarchError, match="has no shortcuts"):
        meta("plain18", shortcut="B")
    with pytest.raises(CnnarchError, match="has no option 'shortcutt'"):
        meta("resnet18", shortcutt="A")
