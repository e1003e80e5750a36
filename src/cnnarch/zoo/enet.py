"""ENet (Paszke, Chaurasia, Kim & Culurciello 2016, "ENet: A Deep Neural Network Architecture for
Real-Time Semantic Segmentation") as an ImageNet classifier: the ENet of Canziani, Paszke &
Culurciello's comparison, which the lecture's chart shows.

The ENet paper builds a segmentation network; the chart's ENet is an ImageNet classifier made of
ENet's blocks by the same authors' lab, defined in `e-lab/imagenet-multiGPU.torch`,
`models/enet-ImageNet.lua` ("ENet version 14 == for ImageNet", commit 68bb4d0), which this
follows:
- the initial block of the paper's Figure 2a: a 3x3/2 conv to 13 maps beside a 2x2/2 max pool
  of the input, concatenated (16 maps at 112x112), batch norm, PReLU;
- four stages of three bottlenecks (Figure 2b) to 64, 128; 256; 512; 1024 maps, the first of
  each stage downsampling (56, 28, 14 and 7 maps a side). A bottleneck's main branch is a
  1x1 projection (2x2/2 when it downsamples; no bias) to a quarter of its output width (the
  whole width in the very first), a 3x3 conv, a 1x1 expansion (no bias), each with batch norm
  (eps 0.001) and the first two with PReLU, and spatial dropout (0.01 in the first five
  bottlenecks, 0.1 after); the other branch is the input, max-pooled 2x2/2 when the block
  downsamples and padded with zero maps when it widens. Their sum goes through a PReLU;
- global average pooling and a linear layer to the classes.

Parameters, derived in the tests: 5,861,508 (Canziani's accuracy-per-parameter figure puts
ENet's 68% top-1 at 11.6 %/M, 5.86 M as read off the figure). Residual additions: one per
bottleneck, 12.

Convolutions start He-normal (the definition leaves them to Torch7's defaults). With other
than 3 input channels the initial conv gives 16 minus that many maps, so the block still
outputs 16 (up to 15 input channels).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from cnnarch.errors import CnnarchError
from cnnarch.zoo.canziani import canziani_facts
from cnnarch.zoo.common import PAPER_ONLY, ZooModel, initialize, pick_variant
from cnnarch.zoo.layers import init_he_convs
from cnnarch.zoo.registry import Paper, register_model

ENET_PAPER = Paper(
    "Paszke, Chaurasia, Kim, Culurciello",
    2016,
    "ENet: A Deep Neural Network Architecture for Real-Time Semantic Segmentation",
    arxiv="1606.02147",
)
INITIAL_MAPS = 16
# The output maps of the three bottlenecks of each stage; the first of a stage downsamples.
STAGES = ((64, 128, 128), (256, 256, 256), (512, 512, 512), (1024, 1024, 1024))
LOW_DROPOUT_BLOCKS = 5  # the first five bottlenecks drop 1% of the maps, the others 10%


def norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3)


class InitialBlock(nn.Module):
    """Figure 2a: 3x3/2 conv beside a 2x2/2 max pool of the input, concatenated, BN, PReLU."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        if not 0 < in_channels < INITIAL_MAPS:
            raise CnnarchError(f"enet takes 1 to {INITIAL_MAPS - 1} input channels")
        self.conv = nn.Conv2d(in_channels, INITIAL_MAPS - in_channels, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = norm(INITIAL_MAPS)
        self.prelu = nn.PReLU(INITIAL_MAPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.bn(torch.cat((self.conv(x), self.pool(x)), 1)))


class Bottleneck(nn.Module):
    """Figure 2b: projection -> 3x3 conv -> expansion -> spatial dropout, plus the input
    (max-pooled and zero-padded when the block downsamples or widens), -> PReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, width: int, downsample: bool, dropout: float
    ) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.reduce = nn.Conv2d(in_channels, width, stride, stride=stride, bias=False)
        self.bn1 = norm(width)
        self.prelu1 = nn.PReLU(width)
        self.conv = nn.Conv2d(width, width, 3, padding=1)
        self.bn2 = norm(width)
        self.prelu2 = nn.PReLU(width)
        self.expand = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = norm(out_channels)
        self.dropout = nn.Dropout2d(dropout)
        self.pool = nn.MaxPool2d(2, stride=2) if downsample else None
        self.extra_channels = out_channels - in_channels
        self.prelu = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = self.prelu1(self.bn1(self.reduce(x)))
        main = self.prelu2(self.bn2(self.conv(main)))
        main = self.dropout(self.bn3(self.expand(main)))
        shortcut = x if self.pool is None else self.pool(x)
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return self.prelu(main + shortcut)


def _stages() -> list[nn.Sequential]:
    """The four stages of bottlenecks; the main branch of the first bottleneck is as wide as its
    output, every other one a quarter of it."""
    stages, in_channels, count = [], INITIAL_MAPS, 0
    for outputs in STAGES:
        blocks = []
        for i, out_channels in enumerate(outputs):
            width = out_channels if count == 0 else out_channels // 4
            dropout = 0.01 if count < LOW_DROPOUT_BLOCKS else 0.1
            blocks.append(Bottleneck(in_channels, out_channels, width, i == 0, dropout))
            in_channels, count = out_channels, count + 1
        stages.append(nn.Sequential(*blocks))
    return stages


class ENet(ZooModel):
    """ENet for ImageNet classification (see the module doc)."""

    def __init__(self, *, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.initial = InitialBlock(in_channels)  # 112x112x16
        self.stage1, self.stage2, self.stage3, self.stage4 = _stages()  # 56, 28, 14, 7
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(STAGES[-1][-1], num_classes)
        initialize(self, init_he_convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage2(self.stage1(self.initial(x)))
        x = self.stage4(self.stage3(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@register_model(
    family="enet",
    paper=ENET_PAPER,
    input_size=(3, 224, 224),
    published=functools.partial(canziani_facts, "enet"),
)
def enet(*, variant: str = "paper", num_classes: int = 1000, in_channels: int = 3) -> ENet:
    """ENet's blocks as an ImageNet classifier, the ENet of the lecture's comparison chart."""
    pick_variant(PAPER_ONLY, variant)
    return ENet(num_classes=num_classes, in_channels=in_channels)
