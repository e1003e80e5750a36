"""GoogLeNet / Inception v1 (Szegedy et al. 2015, "Going deeper with convolutions").

The paper variant follows Table 1 and Section 5: a 7x7/2 conv, 3x3/2 max pool, LRN, a 1x1 and a
3x3 conv, LRN, 3x3/2 max pool, nine Inception modules (real 5x5 convs in the 5x5 branch, a 3x3/1
max pool then 1x1 projection in the pool branch, ReLU everywhere, no batch norm), 7x7/1 average
pool, 40% dropout and a linear layer. Max pools round up (ceil), which is what gives the table's
56/28/14/7 grids. Two auxiliary classifiers sit on (4a) and (4d): 5x5/3 average pool, 1x1 conv
128 + ReLU, FC 1024 + ReLU, 70% dropout, FC over the classes. In training mode the model
returns `GoogLeNetOutput(logits, aux1, aux2)`; in eval mode (or with `aux_logits=False`, which
leaves the heads out) only the logits. Inputs larger than 224 are evaluated densely: the linear
layers apply at every position of the pooled maps and the logits are averaged.

Readings of the paper: it gives no LRN constants, so those of AlexNet are used (size 5,
alpha 1e-4, beta 0.75, k 2); it gives no initialization, so Glorot uniform with zero biases.

Table 1 disagrees with itself: its params column (weights only, K = 1024) follows from its own
filter counts for conv2, (3a), (3b), (4a), (4b), (4e) and the linear layer (within 1%), but not
for conv1 (2.7K printed, 7x7x3x64 = 9.2K), (4c) (463K vs 497.5K), (4d) (580K vs 590.5K),
(5a) (1072K vs 1018K) and (5b) (1388K vs 1409K). The tests derive every row from the filter
counts. The network without auxiliary heads has 6,998,552 parameters, 8.7x fewer than the
paper's AlexNet (60,965,224), not the "12x" of Section 1.

The torchvision variant reproduces torchvision's GoogLeNet: conv without bias + BatchNorm
(eps 0.001) everywhere, a 3x3 conv in the "5x5" branch (a long-standing quirk kept for its
checkpoints), a 2x2/2 max pool before (5a), no LRN, 20% dropout, adaptive pools (4x4 in the aux
heads, 1x1 at the end), and torchvision's output tuple `GoogLeNetOutputs(logits, aux_logits2,
aux_logits1)`; `transform_input` defaults to False as in torchvision without weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from cnnarch.errors import CnnarchError
from cnnarch.zoo.common import ZooModel, initialize, pick_variant
from cnnarch.zoo.layers import (
    BasicConv2d,
    ConvReLU,
    classify_densely,
    init_glorot,
    local_response_norm,
    renormalize_input,
)
from cnnarch.zoo.registry import Paper, published, register_model

GOOGLENET_PAPER = Paper(
    "Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke, Rabinovich",
    2014,
    "Going Deeper with Convolutions",
    "CVPR 2015",
    arxiv="1409.4842",
)

ConvUnit = Callable[..., nn.Module]

# Table 1: name -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
INCEPTION_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


class GoogLeNetOutput(NamedTuple):
    """Training-mode output of the paper variant: main logits, then the heads on (4a), (4d)."""

    logits: torch.Tensor
    aux1: torch.Tensor
    aux2: torch.Tensor


class GoogLeNetOutputs(NamedTuple):
    """Training-mode output of the torchvision variant, in torchvision's order and names."""

    logits: torch.Tensor
    aux_logits2: torch.Tensor | None
    aux_logits1: torch.Tensor | None


def out_channels(widths: tuple[int, int, int, int, int, int]) -> int:
    c1x1, _, c3x3, _, c5x5, pool_proj = widths
    return c1x1 + c3x3 + c5x5 + pool_proj


class Inception(nn.Module):
    """Four parallel branches concatenated: 1x1; 1x1 -> 3x3; 1x1 -> kxk; 3x3 max pool -> 1x1."""

    def __init__(
        self,
        in_channels: int,
        widths: tuple[int, int, int, int, int, int],
        conv: ConvUnit,
        wide_kernel: int,
    ) -> None:
        super().__init__()
        c1x1, c3x3_reduce, c3x3, c5x5_reduce, c5x5, pool_proj = widths
        self.branch1 = conv(in_channels, c1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            conv(in_channels, c3x3_reduce, kernel_size=1),
            conv(c3x3_reduce, c3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            conv(in_channels, c5x5_reduce, kernel_size=1),
            conv(c5x5_reduce, c5x5, kernel_size=wide_kernel, padding=wide_kernel // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            conv(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([branch(x) for branch in branches], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: pool to 4x4 (at 224 input), 1x1 conv 128, FC 1024, dropout, FC.

    `fixed_pool`: the paper's 5x5/3 average pool (14x14 -> 4x4), with the FC layers applied
    densely on larger maps; otherwise torchvision's adaptive pool to 4x4.
    """

    def __init__(
        self, in_channels: int, num_classes: int, conv: ConvUnit, dropout: float, fixed_pool: bool
    ) -> None:
        super().__init__()
        self.fixed_pool = fixed_pool
        self.pool = nn.AvgPool2d(5, stride=3) if fixed_pool else nn.AdaptiveAvgPool2d((4, 4))
        self.conv = conv(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def _classifier(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.relu(self.fc1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pool(x))
        if self.fixed_pool:
            return classify_densely(self._classifier, x, (4, 4))
        return self._classifier(torch.flatten(x, 1))


def init_torchvision(model: nn.Module) -> None:
    """torchvision's GoogLeNet initialization: truncated N(0, 0.01) weights, BN scale 1."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def torchvision_outputs(
    logits: torch.Tensor, aux1: torch.Tensor | None, aux2: torch.Tensor | None
) -> GoogLeNetOutputs:
    return GoogLeNetOutputs(logits, aux2, aux1)


@dataclass(frozen=True)
class GoogLeNetDesign:
    """What a variant fixes in GoogLeNet's structure."""

    conv: ConvUnit  # conv -> ReLU (the paper) or conv -> BN -> ReLU
    wide_kernel: int  # the kernel of the "5x5" branch
    lrn: bool  # LRN after the first max pool and after conv3
    pool4_kernel: int  # the max pool before (5a): 3x3/2 (Table 1) or 2x2/2
    fixed_pools: bool  # 7x7 and 5x5/3 average pools, dense beyond 224; else adaptive pools
    dropout: float  # before the last linear layer, unless given
    init: Callable[[nn.Module], None]
    outputs: Callable[..., tuple[torch.Tensor | None, ...]]  # (logits, aux1, aux2) -> output
    transform_input: bool  # whether torchvision's input transform is available


VARIANTS = {
    "paper": GoogLeNetDesign(
        conv=ConvReLU,
        wide_kernel=5,
        lrn=True,
        pool4_kernel=3,
        fixed_pools=True,
        dropout=0.4,
        init=init_glorot,
        outputs=GoogLeNetOutput,
        transform_input=False,
    ),
    "torchvision": GoogLeNetDesign(
        conv=BasicConv2d,
        wide_kernel=3,
        lrn=False,
        pool4_kernel=2,
        fixed_pools=False,
        dropout=0.2,
        init=init_torchvision,
        outputs=torchvision_outputs,
        transform_input=True,
    ),
}


class GoogLeNet(ZooModel):
    """GoogLeNet, the paper's or (`variant="torchvision"`) torchvision's; see the module doc."""

    def __init__(
        self,
        *,
        variant: str = "paper",
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = True,
        transform_input: bool = False,
        dropout: float | None = None,
        dropout_aux: float = 0.7,
    ) -> None:
        super().__init__()
        design = pick_variant(VARIANTS, variant)
        if transform_input and (not design.transform_input or in_channels != 3):
            raise CnnarchError("transform_input needs the torchvision variant and 3 channels")
        self.in_channels = in_channels
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.outputs = design.outputs
        conv = design.conv

        self.conv1 = conv(in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.norm1 = local_response_norm() if design.lrn else None
        self.conv2 = conv(64, 64, kernel_size=1)
        self.conv3 = conv(64, 192, kernel_size=3, padding=1)
        self.norm2 = local_response_norm() if design.lrn else None
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        def inception(name: str, in_ch: int) -> Inception:
            return Inception(in_ch, INCEPTION_WIDTHS[name], conv, design.wide_kernel)

        self.inception3a = inception("3a", 192)
        self.inception3b = inception("3b", 256)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = inception("4a", 480)
        self.inception4b = inception("4b", 512)
        self.inception4c = inception("4c", 512)
        self.inception4d = inception("4d", 512)
        self.inception4e = inception("4e", 528)
        self.maxpool4 = nn.MaxPool2d(design.pool4_kernel, stride=2, ceil_mode=True)
        self.inception5a = inception("5a", 832)
        self.inception5b = inception("5b", 832)

        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, conv, dropout_aux, design.fixed_pools)
            self.aux2 = InceptionAux(528, num_classes, conv, dropout_aux, design.fixed_pools)

        self.fixed_pools = design.fixed_pools
        self.avgpool = (
            nn.AvgPool2d(7, stride=1) if design.fixed_pools else nn.AdaptiveAvgPool2d((1, 1))
        )
        self.dropout = nn.Dropout(design.dropout if dropout is None else dropout)
        self.fc = nn.Linear(1024, num_classes)
        initialize(self, design.init)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(x)
        if self.fixed_pools:
            return classify_densely(lambda v: self.fc(self.dropout(v)), x, (1, 1))
        return self.fc(self.dropout(torch.flatten(x, 1)))

    def forward(self, x: torch.Tensor) -> Any:
        if self.transform_input:
            x = renormalize_input(x)
        x = self.maxpool1(self.conv1(x))
        if self.norm1 is not None:
            x = self.norm1(x)
        x = self.conv3(self.conv2(x))
        if self.norm2 is not None:
            x = self.norm2(x)
        x = self.maxpool2(x)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        logits = self._head(x)
        if not (self.training and self.aux_logits):
            return logits
        return self.outputs(logits, aux1, aux2)


def _facts() -> dict[str, Any]:
    paper = published()["googlenet_paper"]
    return {
        "table1_rows": paper["rows"],
        "table1_columns": paper["columns"],
        "text": paper["text"],
        "ilsvrc2014_top5_error": paper["ilsvrc2014_top5_error"],
        "source": paper["source"],
    }


@register_model(
    family="googlenet",
    paper=GOOGLENET_PAPER,
    input_size=(3, 224, 224),
    variants=tuple(VARIANTS),
    options=("aux_logits", "transform_input", "dropout", "dropout_aux"),
    published=_facts,
)
def googlenet(*, variant: str = "paper", **kwargs: Any) -> GoogLeNet:
    """GoogLeNet (Inception v1) with both auxiliary classifiers.

    Options: `aux_logits`, `transform_input` (torchvision variant), `dropout` (default 0.4 in
    the paper, 0.2 in torchvision) and `dropout_aux` (0.7).
    """
    return GoogLeNet(variant=variant, **kwargs)
