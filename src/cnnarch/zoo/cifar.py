"""The 6n+2 CIFAR-10 nets of He et al. 2015, Section 4.2: ResNets and their plain twins.

A 3x3 conv with 16 filters, then three stages of 2n 3x3 conv layers on 32x32, 16x16 and 8x8
maps with 16, 32 and 64 filters (the first conv of stages 2 and 3 has stride 2), global average
pooling and a fully connected layer: 6n+2 weighted layers. Each conv is followed by batch norm.
Shortcuts are option A (identity; where the shape changes, subsample by 2 and pad the new
channels with zeros), so they hold no parameters and every plain net has exactly the
parameters of its residual twin.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnarch.errors import CnnarchError
from cnnarch.zoo.common import ZooModel
from cnnarch.zoo.registry import Paper, published, register_model

RESNET_PAPER = Paper(
    "He, Zhang, Ren, Sun", 2015, "Deep Residual Learning for Image Recognition", "CVPR 2016"
)
WIDTHS = (16, 32, 64)


class ZeroPadShortcut(nn.Module):
    """Option A shortcut: stride-2 subsampling and zero channels appended (no parameters)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


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


class CifarNet(ZooModel):
    """A 6n+2 layer net for 32x32 inputs; `residual=False` gives the plain net."""

    def __init__(
        self, depth: int, *, residual: bool, num_classes: int = 10, in_channels: int = 3
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise CnnarchError(f"depth must be 6n+2 with n >= 1, got {depth}")
        n = (depth - 2) // 6
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
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def _register(depth: int, residual: bool) -> None:
    kind = "resnet" if residual else "plain"
    name = f"{kind}{depth}"
    facts: dict[str, Any] = {}
    if residual:
        params, error = published()["resnet_paper"]["cifar10"]["table6"][name]
        facts = {
            "params": params,
            "cifar10_test_error_percent": error,
            "source": "He et al. 2015, Table 6 (CIFAR-10)",
        }

    def build(*, variant: str, num_classes: int, in_channels: int, **kwargs: Any) -> CifarNet:
        return CifarNet(
            depth, residual=residual, num_classes=num_classes, in_channels=in_channels, **kwargs
        )

    build.__doc__ = (
        f"{'ResNet' if residual else 'Plain net'}-{depth} for CIFAR-10 "
        f"({'option-A shortcuts' if residual else 'no shortcuts'})."
    )
    register_model(
        name,
        family="cifar-resnet" if residual else "cifar-plain",
        paper=RESNET_PAPER,
        input_size=(3, 32, 32),
        num_classes=10,
        published=facts,
    )(build)


for _depth in (20, 32, 44, 56, 110, 1202):
    _register(_depth, residual=True)
for _depth in (20, 32, 44, 56, 110):
    _register(_depth, residual=False)
