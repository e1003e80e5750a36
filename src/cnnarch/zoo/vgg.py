"""VGG (Simonyan & Zisserman 2015): configurations A, A-LRN, B, C, D and E of Table 1.

Every conv has stride 1 and "same" padding (3x3 pad 1; config C's 1x1 convs pad 0), followed by
a ReLU (and, in the `_bn` models, a BatchNorm between conv and ReLU, as torchvision does; the
paper has no BN). Five 2x2/2 max pools bring 224x224 to 7x7x512, then FC-4096, FC-4096 and
FC-classes, with dropout 0.5 after the first two (Section 3.1).

The paper variant has no adaptive pooling: at 224x224 the classifier sees exactly the 7x7 maps
it was built for; larger inputs are evaluated as the paper tests (Section 3.2): the FC layers
slide over the maps as 7x7 and 1x1 convolutions and the class scores are averaged. Its
state_dict keys and shapes equal torchvision's for A, B, D and E (with or without BN), so
torchvision weights load into it; at 224x224 both give the same output.
The paper variant is initialized with Glorot's uniform rule (the paper's footnote on training
without pre-training), torchvision's with He normal convs and N(0, 0.01) FC layers.

Table 2's parameter counts (133, 133, 133, 134, 138, 144 million) agree with the counts derived
from Table 1 in the tests (132.9, 132.9, 133.0, 133.6, 138.4, 143.7 million, biases included).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnarch.zoo.common import ZooModel, initialize, pick_variant
from cnnarch.zoo.layers import (
    classify_densely,
    fc_classifier,
    init_glorot,
    init_he_convs,
    local_response_norm,
)
from cnnarch.zoo.registry import Facts, Paper, published, register_model

VGG_PAPER = Paper(
    "Simonyan, Zisserman",
    2014,
    "Very Deep Convolutional Networks for Large-Scale Image Recognition",
    "ICLR 2015",
    arxiv="1409.1556",
)

# Table 1, one column per configuration: an int is a 3x3 conv of that width, ("1x1", width) a
# 1x1 conv, "M" a 2x2/2 max pool, "LRN" local response normalization.
Layer = int | str | tuple[str, int]
CONFIGS: dict[str, list[Layer]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [
        *(64, 64, "M", 128, 128, "M"),
        *(256, 256, ("1x1", 256), "M"),
        *(512, 512, ("1x1", 512), "M"),
        *(512, 512, ("1x1", 512), "M"),
    ],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [
        *(64, 64, "M", 128, 128, "M"),
        *(256, 256, 256, 256, "M"),
        *(512, 512, 512, 512, "M"),
        *(512, 512, 512, 512, "M"),
    ],
}
FC_WINDOW = (7, 7)  # 224 / 2**5: the maps the first FC layer was trained on


def make_features(config: Sequence[Layer], in_channels: int, batch_norm: bool) -> nn.Sequential:
    """The conv part of a configuration, in torchvision's layer order (so its indices match)."""
    layers: list[nn.Module] = []
    width_in = in_channels
    for layer in config:
        if layer == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif layer == "LRN":
            layers.append(local_response_norm())
        else:
            kernel, width = (1, layer[1]) if isinstance(layer, tuple) else (3, layer)
            assert isinstance(width, int)
            layers.append(nn.Conv2d(width_in, width, kernel_size=kernel, padding=kernel // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            width_in = width
    return nn.Sequential(*layers)


def init_torchvision(model: nn.Module) -> None:
    """torchvision's VGG initialization: He normal convs, N(0, 0.01) linear layers."""
    init_he_convs(model)  # all convs come before the linear layers: the same draws in order
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


@dataclass(frozen=True)
class VGGDesign:
    """What a variant fixes in a VGG configuration."""

    # torchvision's 7x7 adaptive average pool before the classifier (any input of at least
    # 32x32), instead of the paper's dense evaluation (at least 224x224)
    adaptive_pool: bool
    init: Callable[[nn.Module], None]


VARIANTS = {
    "paper": VGGDesign(adaptive_pool=False, init=init_glorot),
    "torchvision": VGGDesign(adaptive_pool=True, init=init_torchvision),
}


class VGG(ZooModel):
    """A VGG configuration of Table 1 ("A" to "E"), with BatchNorm if `batch_norm`."""

    def __init__(
        self,
        config: str,
        batch_norm: bool = False,
        *,
        variant: str = "paper",
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        design = pick_variant(VARIANTS, variant)
        self.in_channels = in_channels
        self.config = config
        self.features = make_features(CONFIGS[config], in_channels, batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d(FC_WINDOW) if design.adaptive_pool else None
        self.classifier = fc_classifier(512 * 7 * 7, num_classes, dropout)
        initialize(self, design.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        if self.avgpool is None:
            return classify_densely(self.classifier, x, FC_WINDOW)
        return self.classifier(torch.flatten(self.avgpool(x), 1))


def _table2_facts(config: str) -> dict[str, Any]:
    paper = published()["vgg_paper"]
    return {
        "config": config,
        "table2_params_millions": paper["table2_params_millions"][config],
        "source": paper["source"],
    }


def _table2(config: str) -> Facts:
    """The card facts of `config`, read when the card is first asked for."""
    return functools.partial(_table2_facts, config)


# Configurations A, B, D and E are torchvision's vgg11, vgg13, vgg16 and vgg19 too.
_register_vgg = functools.partial(
    register_model, family="vgg", paper=VGG_PAPER, input_size=(3, 224, 224), options=("dropout",)
)
_WITH_TORCHVISION = tuple(VARIANTS)


@_register_vgg(variants=_WITH_TORCHVISION, published=_table2("A"))
def vgg11(*, variant: str = "paper", **kwargs: Any) -> VGG:
    """VGG config A.

    Configuration A of Table 1: 11 weight layers.
    """
    return VGG("A", variant=variant, **kwargs)


@_register_vgg(published=_table2("A-LRN"))
def vgg11_lrn(*, variant: str = "paper", **kwargs: Any) -> VGG:
    """VGG config A-LRN.

    Configuration A-LRN of Table 1: A with local response normalization after the first conv.
    """
    return VGG("A-LRN", variant=variant, **kwargs)


@_register_vgg(variants=_WITH_TORCHVISION, published=_table2("B"))
def vgg13(*, variant: str = "paper", **kwargs: Any) -> VGG:
    """VGG config B.

    Configuration B of Table 1: 13 weight layers.
    """
    return VGG("B", variant=variant, **kwargs)


@_register_vgg(published=_table2("C"))
def vgg16_c(*, variant: str = "paper", **kwargs: Any) -> VGG:
    """VGG config C.

    Configuration C of Table 1: 16 weight layers, three of them 1x1 convs.
    """
    return VGG("C", variant=variant, **kwargs)


@_register_vgg(variants=_WITH_TORCHVISION, published=_table2("D"))
def vgg16(*, variant: str = "paper", **kwargs: Any) -> VGG:
    """VGG config D.

    Configuration D of Table 1: 16 weight layers.
    """
    return VGG("D", variant=variant, **kwargs)


@_register_vgg(variants=_WITH_TORCHVISION, published=_table2("E"))
def vgg19(*, variant: str = "paper", **kwargs: Any) -> VGG:
    """VGG config E.

    Configuration E of Table 1: 19 weight layers.
    """
    return VGG("E", variant=variant, **kwargs)


@_register_vgg(variants=_WITH_TORCHVISION, published=_table2("A"))
def vgg11_bn(*, variant: str = "paper", **kwargs: Any) -> VGG:
    """VGG config A with BatchNorm.

    Configuration A of Table 1 with a BatchNorm after every conv (torchvision's vgg11_bn).
    """
    return VGG("A", batch_norm=True, variant=variant, **kwargs)


@_register_vgg(variants=_WITH_TORCHVISION, published=_table2("B"))
def vgg13_bn(*, variant: str = "paper", **kwargs: Any) -> VGG:
    """VGG config B with BatchNorm.

    Configuration B of Table 1 with a BatchNorm after every conv (torchvision's vgg13_bn).
    """
    return VGG("B", batch_norm=True, variant=variant, **kwargs)


@_register_vgg(variants=_WITH_TORCHVISION, published=_table2("D"))
def vgg16_bn(*, variant: str = "paper", **kwargs: Any) -> VGG:
    """VGG config D with BatchNorm.

    Configuration D of Table 1 with a BatchNorm after every conv (torchvision's vgg16_bn).
    """
    return VGG("D", batch_norm=True, variant=variant, **kwargs)


@_register_vgg(variants=_WITH_TORCHVISION, published=_table2("E"))
def vgg19_bn(*, variant: str = "paper", **kwargs: Any) -> VGG:
    """VGG config E with BatchNorm.

    Configuration E of Table 1 with a BatchNorm after every conv (torchvision's vgg19_bn).
    """
    return VGG("E", batch_norm=True, variant=variant, **kwargs)
