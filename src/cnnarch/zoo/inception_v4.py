"""Inception-v4 (Szegedy, Ioffe, Vanhoucke & Alemi 2016, "Inception-v4, Inception-ResNet and the
Impact of Residual Connections on Learning"): a pure Inception network, no residual connection.

The paper variant follows Figures 3-9 at 299x299: the stem of Figure 3 (to 35x35x384), four
Inception-A (Figure 4), Reduction-A (Figure 7 with Table 1's k=192, l=224, m=256, n=384), seven
Inception-B (Figure 5), Reduction-B (Figure 8), three Inception-C (Figure 6), average pooling,
dropout (keep 0.8) and the classifier; no auxiliary head (the paper gives none). Every
convolution is conv -> batch norm -> ReLU; a convolution the figures mark "V" is unpadded, the
others keep their input's size.

Readings of the paper, each tested:
- The stem's last convolution, "3x3 Conv (192 V)" in Figure 3, has stride 2: without it the
  71x71 maps could not become the 35x35x384 the figure prints after it (the max pool beside it
  is marked stride 2).
- Factorized convolutions run in the figures' order: the stem's 7x1 before its 1x7 (Figure 3),
  Inception-B's five-conv branch from a 1x7 (Figure 5), Inception-C's 1x3 448 before its
  3x1 512 (Figure 6). The released TensorFlow model, and timm, run each of these pairs the
  other way round: same parameters and multiply-adds, transposed kernels.
- Batch norm: eps 0.001 (TensorFlow's); the paper gives none. Average pools in the blocks
  leave the padding out of their means, as TensorFlow's do.
- Branches are concatenated in the released model's order (the figures draw the pool branch
  first): the order changes no count.

The timm variant has the module tree and state_dict of timm's `inception_v4` (recorded from
timm 1.0.31 in `tests/zoo/data/timm_state_dicts.json`), so its checkpoints load strictly: the
same blocks, the released model's kernel orders, everything in one `features` sequence, then
`global_pool`, `head_drop` (no dropout unless asked, timm's default) and `last_linear`.

Parameters, derived in the tests: 42,679,816 in both variants. The paper prints no parameter
or operation count for Inception-v4, only that Inception-ResNet-v2 "matches the raw cost" of it.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

from cnnarch.zoo.common import ZooModel, initialize, pick_variant
from cnnarch.zoo.inception_v3 import init_inception
from cnnarch.zoo.layers import BasicConv2d
from cnnarch.zoo.registry import Paper, published, register_model

INCEPTION_V4_PAPER = Paper(
    "Szegedy, Ioffe, Vanhoucke, Alemi",
    2016,
    "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
    "AAAI 2017",
    arxiv="1602.07261",
)
Kernel = tuple[int, int]
# The first kernel of each factorized chain; the chain alternates between it and its transpose.
# Figures 3, 5 and 6 against the released model (and timm).
FIGURES = {"stem": (7, 1), "inception_b": (1, 7), "inception_c": (1, 3)}
RELEASED = {"stem": (1, 7), "inception_b": (7, 1), "inception_c": (3, 1)}
# Table 1: the filters (k, l, m, n) of Reduction-A in each network of the paper.
REDUCTION_A = {
    "inception_v4": (192, 224, 256, 384),
    "inception_resnet_v1": (192, 192, 256, 384),
    "inception_resnet_v2": (256, 256, 384, 384),
}


def conv(in_channels: int, out_channels: int, kernel: int | Kernel) -> nn.Module:
    """Conv -> BN -> ReLU, "same" padded (odd kernels, stride 1): the figures' unmarked convs."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return BasicConv2d(in_channels, out_channels, kernel_size=(kh, kw), padding=(kh // 2, kw // 2))


def valid_conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Module:
    """Conv -> BN -> ReLU without padding: the figures' "V"."""
    return BasicConv2d(in_channels, out_channels, kernel_size=kernel, stride=stride)


def factorized(widths: list[int], first: Kernel) -> list[nn.Module]:
    """A chain of 1xn and nx1 convolutions, `widths[0]` input channels, starting with `first`."""
    kernels = (first, first[::-1])
    return [
        conv(c_in, c_out, kernels[i % 2])
        for i, (c_in, c_out) in enumerate(itertools.pairwise(widths))
    ]


def pool_branch(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 average pool (stride 1, padding left out of the means) -> 1x1 conv."""
    return nn.Sequential(
        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        conv(in_channels, out_channels, 1),
    )


class Mixed3a(nn.Module):
    """The stem's first split (147x147x64 -> 73x73x160): 3x3/2 max pool | 3x3/2 conv 96."""

    def __init__(self) -> None:
        super().__init__()
        self.maxpool = nn.MaxPool2d(3, stride=2)
        self.conv = valid_conv(64, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.maxpool(x), self.conv(x)), 1)


class Mixed4a(nn.Module):
    """The stem's second split (-> 71x71x192): 1x1 64 -> 3x3 96 V | 1x1 64 -> 7x1 64 -> 1x7 64
    -> 3x3 96 V (the 7x7 pair in `first`'s order)."""

    def __init__(self, first: Kernel) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(conv(160, 64, 1), valid_conv(64, 96, 3))
        self.branch1 = nn.Sequential(
            conv(160, 64, 1), *factorized([64, 64, 64], first), valid_conv(64, 96, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x)), 1)


class Mixed5a(nn.Module):
    """The stem's last split (-> 35x35x384): 3x3/2 conv 192 | 3x3/2 max pool."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = valid_conv(192, 192, 3, stride=2)
        self.maxpool = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.conv(x), self.maxpool(x)), 1)


def stem_layers(in_channels: int, first: Kernel) -> list[nn.Module]:
    """Figure 3, the stem of Inception-v4 and Inception-ResNet-v2: 299x299x3 -> 35x35x384."""
    return [
        valid_conv(in_channels, 32, 3, stride=2),  # 149x149x32
        valid_conv(32, 32, 3),  # 147x147x32
        conv(32, 64, 3),  # 147x147x64
        Mixed3a(),  # 73x73x160
        Mixed4a(first),  # 71x71x192
        Mixed5a(),  # 35x35x384
    ]


class InceptionV4Stem(nn.Module):
    """Figure 3 with the paper's names: three convs, then the three filter concatenations."""

    def __init__(self, in_channels: int, first: Kernel = FIGURES["stem"]) -> None:
        super().__init__()
        (
            self.conv1,
            self.conv2,
            self.conv3,
            self.mixed_3a,
            self.mixed_4a,
            self.mixed_5a,
        ) = stem_layers(in_channels, first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3(self.conv2(self.conv1(x)))
        return self.mixed_5a(self.mixed_4a(self.mixed_3a(x)))


class InceptionA(nn.Module):
    """Figure 4, 35x35x384: 1x1 96 | 1x1 64 -> 3x3 96 | 1x1 64 -> 3x3 96 -> 3x3 96 |
    avg pool -> 1x1 96."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = conv(384, 96, 1)
        self.branch1 = nn.Sequential(conv(384, 64, 1), conv(64, 96, 3))
        self.branch2 = nn.Sequential(conv(384, 64, 1), conv(64, 96, 3), conv(96, 96, 3))
        self.branch3 = pool_branch(384, 96)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch0, self.branch1, self.branch2, self.branch3)
        return torch.cat([branch(x) for branch in branches], 1)


class ReductionA(nn.Module):
    """Figure 7, 35x35 -> 17x17: 3x3/2 conv n | 1x1 k -> 3x3 l -> 3x3/2 m | 3x3/2 max pool,
    with Table 1's (k, l, m, n) of each network."""

    def __init__(self, in_channels: int, filters: tuple[int, int, int, int]) -> None:
        super().__init__()
        k, l, m, n = filters  # noqa: E741 (Table 1's names)
        self.branch0 = valid_conv(in_channels, n, 3, stride=2)
        self.branch1 = nn.Sequential(
            conv(in_channels, k, 1), conv(k, l, 3), valid_conv(l, m, 3, stride=2)
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class InceptionB(nn.Module):
    """Figure 5, 17x17x1024: 1x1 384 | 1x1 192 -> 1x7 224 -> 7x1 256 | 1x1 192 -> four
    alternating 1x7/7x1 convs (192, 224, 224, 256) | avg -> 1x1 128."""

    def __init__(self, first: Kernel) -> None:
        super().__init__()
        self.branch0 = conv(1024, 384, 1)
        self.branch1 = nn.Sequential(conv(1024, 192, 1), *factorized([192, 224, 256], (1, 7)))
        self.branch2 = nn.Sequential(
            conv(1024, 192, 1), *factorized([192, 192, 224, 224, 256], first)
        )
        self.branch3 = pool_branch(1024, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch0, self.branch1, self.branch2, self.branch3)
        return torch.cat([branch(x) for branch in branches], 1)


class ReductionB(nn.Module):
    """Figure 8, 17x17x1024 -> 8x8x1536: 1x1 192 -> 3x3/2 192 | 1x1 256 -> 1x7 256 -> 7x1 320
    -> 3x3/2 320 | 3x3/2 max pool."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(conv(1024, 192, 1), valid_conv(192, 192, 3, stride=2))
        self.branch1 = nn.Sequential(
            conv(1024, 256, 1),
            *factorized([256, 256, 320], (1, 7)),
            valid_conv(320, 320, 3, stride=2),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class InceptionC(nn.Module):
    """Figure 6, 8x8x1536: 1x1 256 | 1x1 384 -> (1x3 256, 3x1 256) | 1x1 384 -> 1x3 448 ->
    3x1 512 -> (1x3 256, 3x1 256) | avg -> 1x1 256 (the 448/512 pair in `first`'s order)."""

    def __init__(self, first: Kernel) -> None:
        super().__init__()
        self.branch0 = conv(1536, 256, 1)
        self.branch1_0 = conv(1536, 384, 1)
        self.branch1_1a = conv(384, 256, (1, 3))
        self.branch1_1b = conv(384, 256, (3, 1))
        self.branch2_0 = conv(1536, 384, 1)
        self.branch2_1, self.branch2_2 = factorized([384, 448, 512], first)
        self.branch2_3a = conv(512, 256, (1, 3))
        self.branch2_3b = conv(512, 256, (3, 1))
        self.branch3 = pool_branch(1536, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.branch1_0(x)
        x2 = self.branch2_2(self.branch2_1(self.branch2_0(x)))
        return torch.cat(
            (
                self.branch0(x),
                self.branch1_1a(x1),
                self.branch1_1b(x1),
                self.branch2_3a(x2),
                self.branch2_3b(x2),
                self.branch3(x),
            ),
            1,
        )


def blocks(order: dict[str, Kernel]) -> dict[str, nn.Sequential | nn.Module]:
    """Figure 9 after the stem: 4 x A, Reduction-A, 7 x B, Reduction-B, 3 x C."""
    return {
        "inception_a": nn.Sequential(*(InceptionA() for _ in range(4))),
        "reduction_a": ReductionA(384, REDUCTION_A["inception_v4"]),
        "inception_b": nn.Sequential(*(InceptionB(order["inception_b"]) for _ in range(7))),
        "reduction_b": ReductionB(),
        "inception_c": nn.Sequential(*(InceptionC(order["inception_c"]) for _ in range(3))),
    }


class InceptionV4(ZooModel):
    """Inception-v4 of the paper's figures, modules named as the paper names its blocks."""

    def __init__(
        self, *, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.stem = InceptionV4Stem(in_channels, FIGURES["stem"])  # 35x35x384
        body = blocks(FIGURES)
        self.inception_a = body["inception_a"]
        self.reduction_a = body["reduction_a"]  # 17x17x1024
        self.inception_b = body["inception_b"]
        self.reduction_b = body["reduction_b"]  # 8x8x1536
        self.inception_c = body["inception_c"]
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1536, num_classes)
        initialize(self, init_inception)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduction_a(self.inception_a(self.stem(x)))
        x = self.inception_c(self.reduction_b(self.inception_b(x)))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


class TimmInceptionV4(ZooModel):
    """timm's `inception_v4`: the same network with the released model's kernel orders, as one
    `features` sequence (stem convs, the stem's three splits, then every block)."""

    def __init__(
        self, *, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        body = blocks(RELEASED)
        self.features = nn.Sequential(
            *stem_layers(in_channels, RELEASED["stem"]),
            *body["inception_a"],
            body["reduction_a"],
            *body["inception_b"],
            body["reduction_b"],
            *body["inception_c"],
        )
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(dropout)
        self.last_linear = nn.Linear(1536, num_classes)
        initialize(self, init_inception)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.global_pool(self.features(x)), 1)
        return self.last_linear(self.head_drop(x))


VARIANTS: dict[str, type[InceptionV4 | TimmInceptionV4]] = {
    "paper": InceptionV4,
    "timm": TimmInceptionV4,
}


def inception_v4_facts() -> dict[str, Any]:
    """The paper's published results, cost statements and figures as printed (the card facts of
    its three networks)."""
    return dict(published()["inception_v4_paper"])


@register_model(
    family="inception",
    paper=INCEPTION_V4_PAPER,
    input_size=(3, 299, 299),
    variants=tuple(VARIANTS),
    published=inception_v4_facts,
)
def inception_v4(
    *,
    variant: str = "paper",
    num_classes: int = 1000,
    in_channels: int = 3,
    dropout: float | None = None,
) -> InceptionV4 | TimmInceptionV4:
    """Inception-v4: a pure Inception network (no residual connection), Figures 3-9.

    Options: `dropout` before the classifier (0.2 in the paper, 0 in timm).
    """
    network = pick_variant(VARIANTS, variant)
    rate = {} if dropout is None else {"dropout": dropout}  # else the variant's own default
    return network(num_classes=num_classes, in_channels=in_channels, **rate)
