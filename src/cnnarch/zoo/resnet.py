"""ImageNet ResNets and their plain twins (He, Zhang, Ren & Sun 2015, Table 1).

A 7x7/2 conv with 64 filters, a 3x3/2 max pool, four stages (conv2_x..conv5_x) of basic blocks
(two 3x3 convs; 18 and 34 layers) or bottleneck blocks (1x1, 3x3, 1x1 with 4x wider output;
50, 101 and 152 layers) on 56, 28, 14 and 7 grids, global average pooling and one FC layer.
Batch norm follows every conv, before the ReLU. The first block of conv3_x, conv4_x and conv5_x
downsamples with stride 2.

Paper variant:
- the bottleneck's stride sits in its first 1x1 conv, as in the paper's released models
  (torchvision's "v1.5" moves it to the 3x3 conv; same parameters, different function);
- `shortcut` selects the paper's options (Section 3.3 and Table 3): "A" identity, with
  subsampling and zero-padded extra channels where the shape changes (no parameters);
  "B" (default) a 1x1 conv + BN projection only where the shape changes; "C" projections on
  every shortcut;
- `plain18` and `plain34` are the 18- and 34-layer nets without shortcuts (Figure 3, middle).
With shortcut "B" the paper variant has exactly torchvision's state_dict keys and shapes.

The torchvision variant is torchvision's ResNet: stride on the 3x3 conv, projection shortcuts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnarch.errors import CnnarchError
from cnnarch.zoo.common import ZooModel, initialize, pick_variant
from cnnarch.zoo.layers import ZeroPadShortcut, init_he_convs
from cnnarch.zoo.registry import Paper, published, register_model

RESNET_PAPER = Paper(
    "He, Zhang, Ren, Sun",
    2015,
    "Deep Residual Learning for Image Recognition",
    "CVPR 2016",
    arxiv="1512.03385",
)
# Section 4.1: A pads with zeros where the width grows, B projects there, C projects everywhere.
SHORTCUT_OPTIONS = ("A", "B", "C")
STAGE_WIDTHS = (64, 128, 256, 512)
# Table 1: blocks per stage.
BLOCKS = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}


def _shortcut(
    kind: str | None, in_channels: int, out_channels: int, stride: int
) -> nn.Module | None:
    """The shortcut of one block, or None for an identity (and for plain nets)."""
    changes_shape = stride != 1 or in_channels != out_channels
    if kind is None or (kind in ("A", "B") and not changes_shape):
        return None
    if kind == "A":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class BasicBlock(nn.Module):
    """3x3 conv -> BN -> ReLU -> 3x3 conv -> BN, plus the shortcut, -> ReLU."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int, shortcut: str | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.residual = shortcut is not None
        self.downsample = _shortcut(shortcut, in_channels, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 (reduce) -> 3x3 -> 1x1 (expand x4), each with BN, plus the shortcut, -> ReLU.

    `stride_in_1x1` puts the block's stride on the first 1x1 conv (the paper) instead of the
    3x3 conv (torchvision).
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int,
        shortcut: str | None,
        stride_in_1x1: bool = True,
    ) -> None:
        super().__init__()
        out_channels = width * self.expansion
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(in_channels, width, 1, stride_1x1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride_3x3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.residual = shortcut is not None
        self.downsample = _shortcut(shortcut, in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


@dataclass(frozen=True)
class ResNetDesign:
    """What a variant fixes in the structure of an ImageNet ResNet."""

    stride_in_1x1: bool  # a bottleneck's stride on its first 1x1 conv, not on its 3x3 conv
    projections_only: bool  # option B shortcuts only (A and C are the paper's alternatives)


VARIANTS = {
    "paper": ResNetDesign(stride_in_1x1=True, projections_only=False),
    "torchvision": ResNetDesign(stride_in_1x1=False, projections_only=True),
}


def init_resnet(model: nn.Module, zero_init_residual: bool = False) -> None:
    """He normal convs, batch norms as the identity; with `zero_init_residual`, each residual
    branch's last batch norm starts at zero, so that every block starts as its shortcut
    (Goyal et al. 2017)."""
    init_he_convs(model)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)


class ResNet(ZooModel):
    """An ImageNet ResNet of `depth` 18, 34, 50, 101 or 152; `shortcut=None` gives the plain net."""

    def __init__(
        self,
        depth: int,
        shortcut: str | None = "B",
        *,
        variant: str = "paper",
        num_classes: int = 1000,
        in_channels: int = 3,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        design = pick_variant(VARIANTS, variant)
        if depth not in BLOCKS:
            raise CnnarchError(f"ResNet depth must be one of {sorted(BLOCKS)}, got {depth}")
        if shortcut is not None and shortcut not in SHORTCUT_OPTIONS:
            raise CnnarchError(
                f"shortcut must be one of {', '.join(SHORTCUT_OPTIONS)}, got {shortcut!r}"
            )
        if design.projections_only and shortcut not in (None, "B"):
            raise CnnarchError(f"the {variant} variant has projection shortcuts (B) only")
        bottleneck = depth >= 50
        expansion = Bottleneck.expansion if bottleneck else BasicBlock.expansion
        make_block = (
            functools.partial(Bottleneck, stride_in_1x1=design.stride_in_1x1)
            if bottleneck
            else BasicBlock
        )
        self.in_channels = in_channels
        self.depth = depth
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        stages = []
        channels = 64
        for stage, (width, count) in enumerate(zip(STAGE_WIDTHS, BLOCKS[depth], strict=True)):
            blocks = []
            for i in range(count):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(make_block(channels, width, stride, shortcut))
                channels = width * expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)
        initialize(self, functools.partial(init_resnet, zero_init_residual=zero_init_residual))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _facts(depth: int, plain: bool = False) -> dict[str, Any]:
    paper = published()["resnet_paper"]
    name = f"{'plain' if plain else 'resnet'}{depth}"
    facts: dict[str, Any] = {"source": paper["source"]}
    if not plain:
        facts["table1_flops_multiply_adds_1e9"] = paper["table1_flops_multiply_adds_1e9"][name]
    errors = paper["table3_top1_top5_error"]
    if name in errors:
        facts["table3_top1_top5_error"] = errors[name]
    if f"resnet{depth}_A" in errors and not plain:
        facts["table3_top1_top5_error_by_shortcut"] = {
            kind: errors[f"resnet{depth}_{kind}"] for kind in SHORTCUT_OPTIONS
        }
    if name in paper["table2_top1_error_10crop"]:
        facts["table2_top1_error_10crop"] = paper["table2_top1_error_10crop"][name]
    return facts


_register_resnet = functools.partial(
    register_model,
    family="resnet",
    paper=RESNET_PAPER,
    input_size=(3, 224, 224),
    variants=tuple(VARIANTS),
    options=("zero_init_residual",),
)
_register_plain = functools.partial(
    register_model,
    family="resnet-plain",
    paper=RESNET_PAPER,
    input_size=(3, 224, 224),
    options=("zero_init_residual",),
)


@_register_resnet(published=functools.partial(_facts, 18))
def resnet18(*, variant: str = "paper", shortcut: str = "B", **kwargs: Any) -> ResNet:
    """ResNet-18 (basic blocks; shortcut A, B or C).

    Two 3x3 convs per block, 2-2-2-2 blocks in conv2_x..conv5_x (Table 1).
    """
    return ResNet(18, shortcut, variant=variant, **kwargs)


@_register_resnet(published=functools.partial(_facts, 34))
def resnet34(*, variant: str = "paper", shortcut: str = "B", **kwargs: Any) -> ResNet:
    """ResNet-34 (basic blocks; shortcut A, B or C).

    Two 3x3 convs per block, 3-4-6-3 blocks in conv2_x..conv5_x (Table 1).
    """
    return ResNet(34, shortcut, variant=variant, **kwargs)


@_register_resnet(published=functools.partial(_facts, 50))
def resnet50(*, variant: str = "paper", shortcut: str = "B", **kwargs: Any) -> ResNet:
    """ResNet-50 (bottleneck blocks; shortcut A, B or C).

    1x1, 3x3, 1x1 convs per block, 3-4-6-3 blocks in conv2_x..conv5_x (Table 1).
    """
    return ResNet(50, shortcut, variant=variant, **kwargs)


@_register_resnet(published=functools.partial(_facts, 101))
def resnet101(*, variant: str = "paper", shortcut: str = "B", **kwargs: Any) -> ResNet:
    """ResNet-101 (bottleneck blocks; shortcut A, B or C).

    1x1, 3x3, 1x1 convs per block, 3-4-23-3 blocks in conv2_x..conv5_x (Table 1).
    """
    return ResNet(101, shortcut, variant=variant, **kwargs)


@_register_resnet(published=functools.partial(_facts, 152))
def resnet152(*, variant: str = "paper", shortcut: str = "B", **kwargs: Any) -> ResNet:
    """ResNet-152 (bottleneck blocks; shortcut A, B or C).

    1x1, 3x3, 1x1 convs per block, 3-8-36-3 blocks in conv2_x..conv5_x (Table 1).
    """
    return ResNet(152, shortcut, variant=variant, **kwargs)


def _plain(depth: int, shortcut: None, variant: str, **kwargs: Any) -> ResNet:
    if shortcut is not None:
        raise CnnarchError(f"plain{depth} has no shortcuts; shortcut={shortcut!r} does not apply")
    return ResNet(depth, None, variant=variant, **kwargs)


@_register_plain(published=functools.partial(_facts, 18, plain=True))
def plain18(*, variant: str = "paper", shortcut: None = None, **kwargs: Any) -> ResNet:
    """Plain-18: ResNet-18 without shortcuts.

    The 18-layer plain net of Figure 3 (middle) and Table 2.
    """
    return _plain(18, shortcut, variant, **kwargs)


@_register_plain(published=functools.partial(_facts, 34, plain=True))
def plain34(*, variant: str = "paper", shortcut: None = None, **kwargs: Any) -> ResNet:
    """Plain-34: ResNet-34 without shortcuts.

    The 34-layer plain net of Figure 3 (middle) and Table 2.
    """
    return _plain(34, shortcut, variant, **kwargs)
