"""The 6n+2 CIFAR-10 nets of He et al. 2015, Section 4.2: ResNets and their plain twins.

A 3x3 conv with 16 filters, then three stages of 2n 3x3 conv layers on 32x32, 16x16 and 8x8
maps with 16, 32 and 64 filters (the first conv of stages 2 and 3 has stride 2), global average
pooling and a fully connected layer: 6n+2 weighted layers. Each conv is followed by batch norm.
Shortcuts are option A (identity; where the shape changes, subsample by 2 and pad the new
channels with zeros), so they hold no parameters and every plain net has exactly the
parameters of its residual twin.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from cnnarch.errors import CnnarchError
from cnnarch.zoo.common import PAPER_ONLY, ZooModel, initialize, pick_variant
from cnnarch.zoo.layers import ZeroPadShortcut, init_he_convs
from cnnarch.zoo.registry import published, register_model
from cnnarch.zoo.resnet import RESNET_PAPER  # registers the ImageNet ResNets, listed first

WIDTHS = (16, 32, 64)


class CifarBlock(nn.Module):
    """Two 3x3 conv-BN layers; with `residual`, the input is added back before the last ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module | None = None
        if residual:
            changes_shape = stride != 1 or in_channels != out_channels
            self.shortcut = (
                ZeroPadShortcut(in_channels, out_channels, stride)
                if changes_shape
                else nn.Identity()
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)


def check_depth(depth: object) -> int:
    """`depth` if it is 6n+2 with n >= 1 (the family of He et al. 2015, Section 4.2)."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise CnnarchError(
            f"unknown depth {depth!r}: the CIFAR nets have 6n+2 layers (8, 14, 20, 32, 44, 56, "
            "110, ...)"
        )
    return depth


class CifarNet(ZooModel):
    """A 6n+2 layer net for 32x32 inputs; `residual=False` gives the plain net."""

    def __init__(
        self,
        depth: int,
        residual: bool,
        *,
        variant: str = "paper",
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        pick_variant(PAPER_ONLY, variant)
        n = (check_depth(depth) - 2) // 6
        self.in_channels = in_channels
        self.depth = depth
        self.residual = residual
        self.conv1 = nn.Conv2d(in_channels, WIDTHS[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(WIDTHS[0])
        self.relu = nn.ReLU(inplace=True)
        stages = []
        width_in = WIDTHS[0]
        for stage, width in enumerate(WIDTHS):
            blocks = []
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(CifarBlock(width_in, width, stride, residual))
                width_in = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(WIDTHS[-1], num_classes)
        initialize(self, init_he_convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def _table6(depth: int) -> dict[str, Any]:
    params, error = published()["resnet_paper"]["cifar10"]["table6"][f"resnet{depth}"]
    return {
        "params": params,
        "cifar10_test_error_percent": error,
        "source": "He et al. 2015, Table 6 (CIFAR-10)",
    }


_register_cifar = functools.partial(
    register_model, paper=RESNET_PAPER, input_size=(3, 32, 32), num_classes=10
)


@_register_cifar(family="cifar-resnet", published=functools.partial(_table6, 20))
def resnet20(*, variant: str = "paper", **kwargs: Any) -> CifarNet:
    """ResNet-20 for CIFAR-10 (option-A shortcuts)."""
    return CifarNet(20, residual=True, variant=variant, **kwargs)


@_register_cifar(family="cifar-resnet", published=functools.partial(_table6, 32))
def resnet32(*, variant: str = "paper", **kwargs: Any) -> CifarNet:
    """ResNet-32 for CIFAR-10 (option-A shortcuts)."""
    return CifarNet(32, residual=True, variant=variant, **kwargs)


@_register_cifar(family="cifar-resnet", published=functools.partial(_table6, 44))
def resnet44(*, variant: str = "paper", **kwargs: Any) -> CifarNet:
    """ResNet-44 for CIFAR-10 (option-A shortcuts)."""
    return CifarNet(44, residual=True, variant=variant, **kwargs)


@_register_cifar(family="cifar-resnet", published=functools.partial(_table6, 56))
def resnet56(*, variant: str = "paper", **kwargs: Any) -> CifarNet:
    """ResNet-56 for CIFAR-10 (option-A shortcuts)."""
    return CifarNet(56, residual=True, variant=variant, **kwargs)


@_register_cifar(family="cifar-resnet", published=functools.partial(_table6, 110))
def resnet110(*, variant: str = "paper", **kwargs: Any) -> CifarNet:
    """ResNet-110 for CIFAR-10 (option-A shortcuts)."""
    return CifarNet(110, residual=True, variant=variant, **kwargs)


@_register_cifar(family="cifar-resnet", published=functools.partial(_table6, 1202))
def resnet1202(*, variant: str = "paper", **kwargs: Any) -> CifarNet:
    """ResNet-1202 for CIFAR-10 (option-A shortcuts)."""
    return CifarNet(1202, residual=True, variant=variant, **kwargs)


@_register_cifar(family="cifar-plain")
def plain20(*, variant: str = "paper", **kwargs: Any) -> CifarNet:
    """Plain net-20 for CIFAR-10 (no shortcuts)."""
    return CifarNet(20, residual=False, variant=variant, **kwargs)


@_register_cifar(family="cifar-plain")
def plain32(*, variant: str = "paper", **kwargs: Any) -> CifarNet:
    """Plain net-32 for CIFAR-10 (no shortcuts)."""
    return CifarNet(32, residual=False, variant=variant, **kwargs)


@_register_cifar(family="cifar-plain")
def plain44(*, variant: str = "paper", **kwargs: Any) -> CifarNet:
    """Plain net-44 for CIFAR-10 (no shortcuts)."""
    return CifarNet(44, residual=False, variant=variant, **kwargs)


@_register_cifar(family="cifar-plain")
def plain56(*, variant: str = "paper", **kwargs: Any) -> CifarNet:
    """Plain net-56 for CIFAR-10 (no shortcuts)."""
    return CifarNet(56, residual=False, variant=variant, **kwargs)


@_register_cifar(family="cifar-plain")
def plain110(*, variant: str = "paper", **kwargs: Any) -> CifarNet:
    """Plain net-110 for CIFAR-10 (no shortcuts)."""
    return CifarNet(110, residual=False, variant=variant, **kwargs)
