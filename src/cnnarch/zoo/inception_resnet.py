"""Inception-ResNet-v1 and -v2 (Szegedy, Ioffe, Vanhoucke & Alemi 2016, "Inception-v4,
Inception-ResNet and the Impact of Residual Connections on Learning"): Inception blocks whose
output is added to their input, the residual hybrids of the paper.

Both follow Figure 15 at 299x299: a stem, five Inception-ResNet-A blocks on 35x35, Reduction-A,
ten Inception-ResNet-B on 17x17, Reduction-B, five Inception-ResNet-C on 8x8, average pooling,
dropout (keep 0.8) and the classifier; no auxiliary head. Each residual block concatenates its
branches, projects them back to the block's input width with a linear 1x1 convolution (with a
bias, no batch norm: "batch-normalization only on top of the traditional layers, but not on top
of the summations"), scales the result, adds it to the input and applies a ReLU (Figure 20). All
other convolutions are conv -> batch norm (eps 0.001) -> ReLU.

- v1: the stem of Figure 14 (to 35x35x256), blocks of Figures 10, 11 and 13, Reduction-A with
  Table 1's (192, 192, 256, 384), Reduction-B of Figure 12: 256 -> 896 -> 1792 channels.
- v2: the stem of Figure 3 (Inception-v4's, to 35x35x384), blocks of Figures 16, 17 and 19,
  Reduction-A with (256, 256, 384, 384), Reduction-B of Figure 18: 384 -> 1152 -> 2144.

Readings of the paper, each tested:
- v2's filter expansions: Figure 17 prints 1154 output channels and Figure 19 prints 2048, on
  inputs of 1152 and 2144 channels (what Reduction-A and Reduction-B give with Table 1 and
  Figure 18). A residual sum needs equal widths, and the text says the expansion is there "to
  match the depth of the input", so both expand to their input: 1152 and 2144.
- Scaling: Section 3.3 scales the residuals by "factors between 0.1 and 0.3"; the values are
  those of the authors' released Inception-ResNet-v2, 0.17 (A), 0.10 (B) and 0.20 (C), for both
  networks. Scaling costs no parameter and no multiply-add counted here.
- Branches are concatenated in the released model's order, as in `inception_v4`.

The timm variant of v2 is timm's `inception_resnet_v2`, the authors' released TensorFlow network
(keys and shapes recorded from timm 1.0.31 in `tests/zoo/data/timm_state_dicts.json`). It is
another network than Figure 15: a stem of plain convolutions and an Inception-v3-style module to
35x35x320 (`mixed_5b`), then 10 x A, 20 x B and 10 x C blocks on 320, 1088 and 2080 channels,
the last C block without its ReLU, and a 1x1 conv to 1536 channels before the pooling.

Residual additions, counted in the tests: one per block, 20 in both paper networks and 40 in
the released v2 (Inception-v3 and Inception-v4 have none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnarch.zoo.common import PAPER_ONLY, ZooModel, initialize, pick_variant
from cnnarch.zoo.inception_v3 import init_inception
from cnnarch.zoo.inception_v4 import (
    INCEPTION_V4_PAPER,
    REDUCTION_A,
    InceptionV4Stem,
    ReductionA,
    conv,
    factorized,
    inception_v4_facts,
    pool_branch,
    valid_conv,
)
from cnnarch.zoo.registry import register_model

# The residual scales of the released Inception-ResNet-v2 (inside Section 3.3's 0.1 to 0.3).
SCALES = {"a": 0.17, "b": 0.10, "c": 0.20}


class ResidualBlock(nn.Module):
    """An Inception-ResNet block (Figure 20): its branches concatenated, a linear 1x1 conv back
    to the input's width (`conv2d`), scaled by `scale`, added to the input, then ReLU (unless
    `relu` is False). Subclasses build the branches and list them in `branches`."""

    conv2d: nn.Conv2d
    scale: float
    relu: nn.ReLU | None

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def _expand(self, branch_channels: int, channels: int, scale: float, relu: bool) -> None:
        # Registered after the branches: timm's state_dict lists them first.
        self.conv2d = nn.Conv2d(branch_channels, channels, kernel_size=1)
        self.scale = scale
        self.relu = nn.ReLU() if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2d(torch.cat(self.branches(x), 1)) * self.scale + x
        return out if self.relu is None else self.relu(out)


class InceptionResNetA(ResidualBlock):
    """35x35 block (Figures 10, 16): 1x1 32 | 1x1 32 -> 3x3 32 | 1x1 a -> 3x3 b -> 3x3 c."""

    def __init__(self, channels: int, double: tuple[int, int, int], scale: float) -> None:
        super().__init__()
        a, b, c = double
        self.branch0 = conv(channels, 32, 1)
        self.branch1 = nn.Sequential(conv(channels, 32, 1), conv(32, 32, 3))
        self.branch2 = nn.Sequential(conv(channels, a, 1), conv(a, b, 3), conv(b, c, 3))
        self._expand(32 + 32 + c, channels, scale, relu=True)

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.branch0(x), self.branch1(x), self.branch2(x)]


class InceptionResNetBC(ResidualBlock):
    """17x17 block B (Figures 11, 17; n = 7) or 8x8 block C (Figures 13, 19; n = 3):
    1x1 `single` | 1x1 -> 1xn -> nx1 with the `factorized` widths."""

    def __init__(
        self,
        channels: int,
        single: int,
        factorized_widths: tuple[int, int, int],
        n: int,
        scale: float,
        relu: bool = True,
    ) -> None:
        super().__init__()
        first, *rest = factorized_widths
        self.branch0 = conv(channels, single, 1)
        self.branch1 = nn.Sequential(conv(channels, first, 1), *factorized([first, *rest], (1, n)))
        self._expand(single + rest[-1], channels, scale, relu)

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.branch0(x), self.branch1(x)]


class ReductionB(nn.Module):
    """Figures 12 and 18, 17x17 -> 8x8: 1x1 256 -> 3x3/2 384 | 1x1 256 -> 3x3/2 p |
    1x1 256 -> 3x3 q -> 3x3/2 r | 3x3/2 max pool, with `widths` = (p, q, r)."""

    def __init__(self, channels: int, widths: tuple[int, int, int]) -> None:
        super().__init__()
        p, q, r = widths
        self.branch0 = nn.Sequential(conv(channels, 256, 1), valid_conv(256, 384, 3, stride=2))
        self.branch1 = nn.Sequential(conv(channels, 256, 1), valid_conv(256, p, 3, stride=2))
        self.branch2 = nn.Sequential(
            conv(channels, 256, 1), conv(256, q, 3), valid_conv(q, r, 3, stride=2)
        )
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch0, self.branch1, self.branch2, self.branch3)
        return torch.cat([branch(x) for branch in branches], 1)


class InceptionResNetV1Stem(nn.Module):
    """Figure 14: 3x3/2 32 V, 3x3 32 V, 3x3 64, 3x3/2 max pool V, 1x1 80, 3x3 192 V,
    3x3/2 256 V: 299x299x3 -> 35x35x256."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv1 = valid_conv(in_channels, 32, 3, stride=2)  # 149x149x32
        self.conv2 = valid_conv(32, 32, 3)  # 147x147x32
        self.conv3 = conv(32, 64, 3)  # 147x147x64
        self.maxpool = nn.MaxPool2d(3, stride=2)  # 73x73x64
        self.conv4 = conv(64, 80, 1)  # 73x73x80
        self.conv5 = valid_conv(80, 192, 3)  # 71x71x192
        self.conv6 = valid_conv(192, 256, 3, stride=2)  # 35x35x256

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv3(self.conv2(self.conv1(x))))
        return self.conv6(self.conv5(self.conv4(x)))


@dataclass(frozen=True)
class InceptionResNetDesign:
    """The widths of one Inception-ResNet of the paper (Figure 15, Table 1 and the blocks'
    figures); the rest of the network is the same in both."""

    stem: type[InceptionResNetV1Stem | InceptionV4Stem]
    stem_channels: int  # 256 (Figure 14) or 384 (Figure 3)
    a_double: tuple[int, int, int]  # Inception-ResNet-A's three-conv branch
    reduction_a: tuple[int, int, int, int]  # Table 1's (k, l, m, n)
    b: tuple[int, tuple[int, int, int]]  # Inception-ResNet-B: 1x1 width, 1x1 -> 1x7 -> 7x1 widths
    reduction_b: tuple[int, int, int]
    c: tuple[int, tuple[int, int, int]]  # Inception-ResNet-C: 1x1 width, 1x1 -> 1x3 -> 3x1 widths


DESIGNS = {
    "inception_resnet_v1": InceptionResNetDesign(
        stem=InceptionResNetV1Stem,
        stem_channels=256,
        a_double=(32, 32, 32),
        reduction_a=REDUCTION_A["inception_resnet_v1"],
        b=(128, (128, 128, 128)),
        reduction_b=(256, 256, 256),
        c=(192, (192, 192, 192)),
    ),
    "inception_resnet_v2": InceptionResNetDesign(
        stem=InceptionV4Stem,
        stem_channels=384,
        a_double=(32, 48, 64),
        reduction_a=REDUCTION_A["inception_resnet_v2"],
        b=(192, (128, 160, 192)),
        reduction_b=(288, 288, 320),
        c=(192, (192, 224, 256)),
    ),
}


class InceptionResNet(ZooModel):
    """An Inception-ResNet of Figure 15 with the widths of `design`, modules named as the paper
    names its blocks."""

    def __init__(
        self,
        design: InceptionResNetDesign,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        width_a = design.stem_channels
        *_, m, n = design.reduction_a
        width_b = width_a + m + n  # Reduction-A passes its input on through its max pool
        p, _, r = design.reduction_b
        width_c = width_b + 384 + p + r  # and so does Reduction-B
        self.stem = design.stem(in_channels)
        self.inception_resnet_a = nn.Sequential(
            *(InceptionResNetA(width_a, design.a_double, SCALES["a"]) for _ in range(5))
        )
        self.reduction_a = ReductionA(width_a, design.reduction_a)
        single, chain = design.b
        self.inception_resnet_b = nn.Sequential(
            *(InceptionResNetBC(width_b, single, chain, 7, SCALES["b"]) for _ in range(10))
        )
        self.reduction_b = ReductionB(width_b, design.reduction_b)
        single, chain = design.c
        self.inception_resnet_c = nn.Sequential(
            *(InceptionResNetBC(width_c, single, chain, 3, SCALES["c"]) for _ in range(5))
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(width_c, num_classes)
        initialize(self, init_inception)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduction_a(self.inception_resnet_a(self.stem(x)))
        x = self.reduction_b(self.inception_resnet_b(x))
        x = self.inception_resnet_c(x)
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


class Mixed5b(nn.Module):
    """The released model's last stem module (35x35x192 -> 320), Inception-v3's 35x35 module:
    1x1 96 | 1x1 48 -> 5x5 64 | 1x1 64 -> 3x3 96 -> 3x3 96 | avg pool -> 1x1 64."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = conv(192, 96, 1)
        self.branch1 = nn.Sequential(conv(192, 48, 1), conv(48, 64, 5))
        self.branch2 = nn.Sequential(conv(192, 64, 1), conv(64, 96, 3), conv(96, 96, 3))
        self.branch3 = pool_branch(192, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch0, self.branch1, self.branch2, self.branch3)
        return torch.cat([branch(x) for branch in branches], 1)


class TimmInceptionResNetV2(ZooModel):
    """timm's `inception_resnet_v2`, the authors' released network (see the module doc)."""

    def __init__(
        self, *, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.conv2d_1a = valid_conv(in_channels, 32, 3, stride=2)
        self.conv2d_2a = valid_conv(32, 32, 3)
        self.conv2d_2b = conv(32, 64, 3)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = conv(64, 80, 1)
        self.conv2d_4a = valid_conv(80, 192, 3)
        self.maxpool_5a = nn.MaxPool2d(3, stride=2)
        self.mixed_5b = Mixed5b()  # 35x35x320
        design = DESIGNS["inception_resnet_v2"]
        self.repeat = nn.Sequential(
            *(InceptionResNetA(320, design.a_double, SCALES["a"]) for _ in range(10))
        )
        self.mixed_6a = ReductionA(320, design.reduction_a)  # 17x17x1088
        single, chain = design.b
        self.repeat_1 = nn.Sequential(
            *(InceptionResNetBC(1088, single, chain, 7, SCALES["b"]) for _ in range(20))
        )
        self.mixed_7a = ReductionB(1088, design.reduction_b)  # 8x8x2080
        single, chain = design.c
        self.repeat_2 = nn.Sequential(
            *(InceptionResNetBC(2080, single, chain, 3, SCALES["c"]) for _ in range(9))
        )
        self.block8 = InceptionResNetBC(2080, single, chain, 3, scale=1.0, relu=False)
        self.conv2d_7b = conv(2080, 1536, 1)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(dropout)
        self.classif = nn.Linear(1536, num_classes)
        initialize(self, init_inception)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2d_2b(self.conv2d_2a(self.conv2d_1a(x)))
        x = self.conv2d_4a(self.conv2d_3b(self.maxpool_3a(x)))
        x = self.mixed_5b(self.maxpool_5a(x))
        x = self.mixed_7a(self.repeat_1(self.mixed_6a(self.repeat(x))))
        x = self.conv2d_7b(self.block8(self.repeat_2(x)))
        return self.classif(self.head_drop(torch.flatten(self.global_pool(x), 1)))


def _paper_v2(**kwargs: Any) -> InceptionResNet:
    return InceptionResNet(DESIGNS["inception_resnet_v2"], **kwargs)


# Figure 15's v2, or the released one (another network: see the module doc).
VARIANTS: dict[str, Callable[..., InceptionResNet | TimmInceptionResNetV2]] = {
    "paper": _paper_v2,
    "timm": TimmInceptionResNetV2,
}


@register_model(
    family="inception-resnet",
    paper=INCEPTION_V4_PAPER,
    input_size=(3, 299, 299),
    published=inception_v4_facts,
)
def inception_resnet_v1(
    *,
    variant: str = "paper",
    num_classes: int = 1000,
    in_channels: int = 3,
    dropout: float = 0.2,
) -> InceptionResNet:
    """Inception-ResNet-v1: residual Inception blocks at about Inception-v3's cost (Figure 15).

    Options: `dropout` before the classifier (0.2: the paper keeps 0.8).
    """
    pick_variant(PAPER_ONLY, variant)
    design = DESIGNS["inception_resnet_v1"]
    return InceptionResNet(
        design, num_classes=num_classes, in_channels=in_channels, dropout=dropout
    )


@register_model(
    family="inception-resnet",
    paper=INCEPTION_V4_PAPER,
    input_size=(3, 299, 299),
    variants=tuple(VARIANTS),
    published=inception_v4_facts,
)
def inception_resnet_v2(
    *,
    variant: str = "paper",
    num_classes: int = 1000,
    in_channels: int = 3,
    dropout: float | None = None,
) -> InceptionResNet | TimmInceptionResNetV2:
    """Inception-ResNet-v2: residual Inception blocks at about Inception-v4's cost (Figure 15).

    Options: `dropout` before the classifier (0.2 in the paper, 0 in timm).
    """
    network = pick_variant(VARIANTS, variant)
    rate = {} if dropout is None else {"dropout": dropout}  # else the variant's own default
    return network(num_classes=num_classes, in_channels=in_channels, **rate)
