"""Network in Network (Lin, Chen & Yan 2013, "Network In Network") and BN-NIN, the batch-normalized
NIN of Canziani, Paszke & Culurciello's comparison (2016).

An mlpconv layer (Section 3.1) slides a small multilayer perceptron over its input: a kxk
convolution followed by two 1x1 convolutions, each with a ReLU, the 1x1 convolutions being the
perceptron's hidden layers shared across positions (the "cascaded cross channel parametric
pooling" that GoogLeNet's 1x1 bottlenecks come from). The classifier is global average pooling
(Section 3.2), no fully connected layer: the last mlpconv has one map per class.

`nin` is the ImageNet network the authors released with the paper (the Caffe Model Zoo's
"NIN-Imagenet", which the paper's experiments on CIFAR, SVHN and MNIST do not describe): four
mlpconv layers of 96, 256, 384 and 1024 maps (11x11/4, 5x5, 3x3, 3x3 kernels) at 224x224,
3x3/2 max pools between them rounding up as Caffe's do (54 -> 27 -> 13 -> 6), 50% dropout
before the last mlpconv, whose last 1x1 convolution gives the 1000 class maps, averaged.

`bn_nin` is the network Canziani et al. measured as BN-NIN. Their paper names it but prints no
layers; their measurements are of the Torch7 models of `soumith/imagenet-multiGPU.torch`, whose
`models/ninbn.lua` (commit 7027327, "62.6% top1 ... at 35 epochs") is followed here: the same
mlpconv widths with batch norm (eps 0.001) after every convolution, conv1 padded by 5, 3x3/2
max pools padded by 1 (floor: 56 -> 28 -> 14 -> 7), the last mlpconv all 1024 wide, a 7x7
average pool and a linear layer 1024 -> 1000; no dropout. Its parameters, 8,655,336, agree with
Canziani's accuracy-per-parameter figure (63% top-1 at 7.2 %/M: 8.75 M, as read off the figure).

Both pool globally, so larger inputs give the same classifier. Convolutions start He-normal
(how the releases initialized theirs is no part of the architecture).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from cnnarch.zoo.canziani import CANZIANI_PAPER, canziani_facts
from cnnarch.zoo.common import PAPER_ONLY, ZooModel, initialize, pick_variant
from cnnarch.zoo.layers import BasicConv2d, ConvReLU, init_he_convs
from cnnarch.zoo.registry import Paper, published, register_model

NIN_PAPER = Paper("Lin, Chen, Yan", 2013, "Network In Network", "ICLR 2014", arxiv="1312.4400")


class MlpConv(nn.Module):
    """An mlpconv layer: a kxk conv to `width` maps, then 1x1 convs to `width` and `out` maps
    (the micro network's two hidden layers), each unit a conv with bias -> [BN ->] ReLU."""

    def __init__(
        self,
        in_channels: int,
        width: int,
        out_channels: int,
        batch_norm: bool,
        **conv_kwargs: Any,
    ) -> None:
        super().__init__()

        def unit(c_in: int, c_out: int, **kwargs: Any) -> nn.Module:
            if batch_norm:
                return BasicConv2d(c_in, c_out, bias=True, **kwargs)
            return ConvReLU(c_in, c_out, **kwargs)

        self.conv = unit(in_channels, width, **conv_kwargs)
        self.mlp1 = unit(width, width, kernel_size=1)
        self.mlp2 = unit(width, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp2(self.mlp1(self.conv(x)))


class NIN(ZooModel):
    """NIN for ImageNet: four mlpconv layers, the last giving the class maps, averaged."""

    def __init__(
        self, *, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.mlpconv1 = MlpConv(in_channels, 96, 96, False, kernel_size=11, stride=4)  # 54x54
        self.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 27x27
        self.mlpconv2 = MlpConv(96, 256, 256, False, kernel_size=5, padding=2)
        self.pool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 13x13
        self.mlpconv3 = MlpConv(256, 384, 384, False, kernel_size=3, padding=1)
        self.pool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 6x6
        self.dropout = nn.Dropout(dropout)
        self.mlpconv4 = MlpConv(384, 1024, num_classes, False, kernel_size=3, padding=1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # global average pooling: the classifier
        initialize(self, init_he_convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.mlpconv1(x))
        x = self.pool2(self.mlpconv2(x))
        x = self.dropout(self.pool3(self.mlpconv3(x)))
        return torch.flatten(self.avgpool(self.mlpconv4(x)), 1)


class BNNIN(ZooModel):
    """BN-NIN as the Torch7 model defines it (see the module doc)."""

    def __init__(self, *, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.mlpconv1 = MlpConv(
            in_channels, 96, 96, True, kernel_size=11, stride=4, padding=5
        )  # 56x56
        self.pool1 = nn.MaxPool2d(3, stride=2, padding=1)  # 28x28
        self.mlpconv2 = MlpConv(96, 256, 256, True, kernel_size=5, padding=2)
        self.pool2 = nn.MaxPool2d(3, stride=2, padding=1)  # 14x14
        self.mlpconv3 = MlpConv(256, 384, 384, True, kernel_size=3, padding=1)
        self.pool3 = nn.MaxPool2d(3, stride=2, padding=1)  # 7x7
        self.mlpconv4 = MlpConv(384, 1024, 1024, True, kernel_size=3, padding=1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1024, num_classes)
        initialize(self, init_he_convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.mlpconv1(x))
        x = self.pool2(self.mlpconv2(x))
        x = self.mlpconv4(self.pool3(self.mlpconv3(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def nin_facts() -> dict[str, Any]:
    paper = published()["nin_paper"]
    return {key: paper[key] for key in ("text", "imagenet_model", "test_error_percent", "source")}


@register_model(family="nin", paper=NIN_PAPER, input_size=(3, 224, 224), published=nin_facts)
def nin(
    *, variant: str = "paper", num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5
) -> NIN:
    """Network in Network: mlpconv layers (1x1 convolutions) and global average pooling.

    The authors' ImageNet model (see the module doc). Options: `dropout` (0.5).
    """
    pick_variant(PAPER_ONLY, variant)
    return NIN(num_classes=num_classes, in_channels=in_channels, dropout=dropout)


@register_model(
    family="nin",
    paper=CANZIANI_PAPER,
    input_size=(3, 224, 224),
    published=functools.partial(canziani_facts, "bn_nin"),
)
def bn_nin(*, variant: str = "paper", num_classes: int = 1000, in_channels: int = 3) -> BNNIN:
    """BN-NIN: Network in Network with batch norm, as Canziani et al. measured it."""
    pick_variant(PAPER_ONLY, variant)
    return BNNIN(num_classes=num_classes, in_channels=in_channels)
