"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), ZFNet (Zeiler & Fergus 2013) and BN-AlexNet
(the batch-normalized one-tower AlexNet of Canziani, Paszke & Culurciello's comparison, 2016).

The paper's AlexNet is two towers, one per GPU: 48-128-192-192-128 kernels and 2048 units of
FC6 and FC7 each. Conv2, conv4 and conv5 see only their own tower; conv3 and the fully connected
layers see both, so activations cross between the towers only at those four points
(`devices=(dev0, dev1)` places each tower on its own device, as the paper did).

Readings of the paper, written down:
- Input 227x227. The paper says 224, but 224 does not give its own 55x55 conv1 maps with an
  11x11/4 unpadded conv; 227 does (the CS231n notes make the same argument).
- LRN (k=2, n=5, alpha=1e-4, beta=0.75) after the ReLUs of conv1 and conv2, over the adjacent
  kernel maps of the same tower (each GPU normalized its own maps), then 3x3/2 max pooling.
- Inputs larger than 227 are evaluated densely: the fully connected layers slide over the
  pool5 maps and the logits are averaged (the paper itself averaged ten 224 crops).

Parameter count, derived in the tests: 60,965,224. The paper says "60 million" (Section 1), a
round figure for this same count, about 1.6% below it.
The paper's Figure 2 lists 253,440 neurons for conv1 where 55x55x96 = 290,400 (with the other
layers it agrees: 186,624 / 64,896 / 64,896 / 43,264 / 4096 / 4096 / 1000).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cnnarch.errors import CnnarchError
from cnnarch.zoo.canziani import CANZIANI_PAPER, canziani_facts
from cnnarch.zoo.common import PAPER_ONLY, ZooModel, initialize, pick_variant
from cnnarch.zoo.layers import (
    BasicConv2d,
    classify_densely,
    fc_classifier,
    init_normal,
    local_response_norm,
    sliding_windows,
)
from cnnarch.zoo.registry import Paper, published, register_model

ALEXNET_PAPER = Paper(
    "Krizhevsky, Sutskever, Hinton",
    2012,
    "ImageNet Classification with Deep Convolutional Neural Networks",
    "NIPS 2012",
)
ZFNET_PAPER = Paper(
    "Zeiler, Fergus",
    2013,
    "Visualizing and Understanding Convolutional Networks",
    "ECCV 2014",
    arxiv="1311.2901",
)
POOL5_WINDOW = (6, 6)  # the maps FC6 was trained on


class AlexNetTower(nn.Module):
    """One GPU's half of the paper's AlexNet.

    `lower` is conv1-conv2 (own tower only), `upper` conv3-conv5 (conv3 takes both towers' conv2
    maps, 2 x 128 channels); fc6 and fc7 take both towers' outputs.
    """

    def __init__(self, in_channels: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 48, kernel_size=11, stride=4)
        self.relu1 = nn.ReLU(inplace=True)
        self.norm1 = local_response_norm()
        self.pool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.conv2 = nn.Conv2d(48, 128, kernel_size=5, padding=2)
        self.relu2 = nn.ReLU(inplace=True)
        self.norm2 = local_response_norm()
        self.pool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.conv3 = nn.Conv2d(2 * 128, 192, kernel_size=3, padding=1)
        self.relu3 = nn.ReLU(inplace=True)
        self.conv4 = nn.Conv2d(192, 192, kernel_size=3, padding=1)
        self.relu4 = nn.ReLU(inplace=True)
        self.conv5 = nn.Conv2d(192, 128, kernel_size=3, padding=1)
        self.relu5 = nn.ReLU(inplace=True)
        self.pool5 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.fc6 = nn.Sequential(
            nn.Linear(2 * 128 * 6 * 6, 2048), nn.ReLU(inplace=True), nn.Dropout(dropout)
        )
        self.fc7 = nn.Sequential(
            nn.Linear(2 * 2048, 2048), nn.ReLU(inplace=True), nn.Dropout(dropout)
        )

    def lower(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.norm1(self.relu1(self.conv1(x))))
        return self.pool2(self.norm2(self.relu2(self.conv2(x))))

    def upper(self, both: torch.Tensor) -> torch.Tensor:
        x = self.relu4(self.conv4(self.relu3(self.conv3(both))))
        return self.pool5(self.relu5(self.conv5(x)))


def _exchange(
    parts: Sequence[torch.Tensor], devices: Sequence[torch.device], dim: int
) -> list[torch.Tensor]:
    """For each device, all towers' `parts` concatenated there: where the towers talk."""
    return [torch.cat([part.to(device) for part in parts], dim) for device in devices]


def init_alexnet(model: nn.Module) -> None:
    """Section 5: weights from N(0, 0.01); biases 1 in conv2, conv4, conv5 and the hidden FC
    layers (to give the ReLUs positive inputs early), 0 elsewhere."""
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(module.weight, 0.0, 0.01)
            ones = name.endswith(("conv2", "conv4", "conv5", "fc6.0", "fc7.0"))
            nn.init.constant_(module.bias, 1.0 if ones else 0.0)


class AlexNet(ZooModel):
    """The paper's two-tower AlexNet; `devices=(dev0, dev1)` puts one tower on each device.

    The towers' devices are read from their parameters at every call, so `.to(device)` on the
    whole model also works (both towers then share that device).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.5,
        devices: Sequence[str | torch.device] | None = None,
    ) -> None:
        super().__init__()
        placement = None if devices is None else _parse_devices(devices)
        self.in_channels = in_channels
        self.towers = nn.ModuleList(AlexNetTower(in_channels, dropout) for _ in range(2))
        self.fc8 = nn.Linear(2 * 2048, num_classes)
        initialize(self, init_alexnet)
        if placement is not None:
            first, second = placement
            self.towers[0].to(first)
            self.towers[1].to(second)
            self.fc8.to(first)

    def tower_devices(self) -> list[torch.device]:
        return [next(tower.parameters()).device for tower in self.towers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        devices = self.tower_devices()
        lower = [tower.lower(x.to(d)) for tower, d in zip(self.towers, devices, strict=True)]
        both = _exchange(lower, devices, dim=1)  # conv3 sees both towers
        upper = [tower.upper(b) for tower, b in zip(self.towers, both, strict=True)]
        windows = [sliding_windows(u, POOL5_WINDOW) for u in upper]  # (N, positions, features)
        both = _exchange(windows, devices, dim=-1)  # fc6 sees both towers
        hidden = [tower.fc6(b) for tower, b in zip(self.towers, both, strict=True)]
        both = _exchange(hidden, devices, dim=-1)  # fc7 sees both towers
        hidden = [tower.fc7(b) for tower, b in zip(self.towers, both, strict=True)]
        logits = self.fc8(_exchange(hidden, devices[:1], dim=-1)[0])  # fc8 on the first device
        return logits.mean(dim=1)


def _parse_devices(devices: Sequence[str | torch.device]) -> tuple[torch.device, torch.device]:
    if isinstance(devices, (str, torch.device)) or len(devices) != 2:
        raise CnnarchError(f"devices must be a pair (one per tower), got {devices!r}")
    try:
        first, second = (torch.device(d) for d in devices)
    except (RuntimeError, TypeError) as err:
        raise CnnarchError(f"bad device in {devices!r}: {err}") from None
    return first, second


# The features of "One weird trick" AlexNet (Krizhevsky 2014): (maps, kernel, stride, padding)
# of each conv, "M" a 3x3/2 max pool.
OWT_FEATURES: list[tuple[int, int, int, int] | str] = [
    *[(64, 11, 4, 2), "M", (192, 5, 1, 2), "M"],
    *[(384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1), "M"],
]


def owt_features(in_channels: int, batch_norm: bool) -> nn.Sequential:
    """The one-tower AlexNet's convs and pools; each conv (with bias) followed by a ReLU or,
    with `batch_norm`, by batch norm (eps 0.001) and a ReLU in one `BasicConv2d`."""
    layers: list[nn.Module] = []
    for spec in OWT_FEATURES:
        if isinstance(spec, str):
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
            continue
        out, kernel, stride, padding = spec
        conv = {"kernel_size": kernel, "stride": stride, "padding": padding}
        if batch_norm:
            layers.append(BasicConv2d(in_channels, out, bias=True, **conv))
        else:
            layers += [nn.Conv2d(in_channels, out, **conv), nn.ReLU(inplace=True)]
        in_channels = out
    return nn.Sequential(*layers)


class TorchvisionAlexNet(ZooModel):
    """torchvision's AlexNet, from "One weird trick" (Krizhevsky 2014): one tower of
    64-192-384-256-256 kernels, conv1 padded by 2 for 224 inputs, no LRN, a 6x6 adaptive
    average pool, and dropout before FC6 and FC7 rather than after."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.features = owt_features(in_channels, batch_norm=False)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


class BNAlexNet(ZooModel):
    """BN-AlexNet as Canziani et al. measured it: the Torch7 model
    `models/alexnetowtbn_cudnn.lua` of `soumith/imagenet-multiGPU.torch` (commit 4180ea0),
    "One weird trick" AlexNet with batch norm (eps 0.001) after every conv and hidden linear
    layer, before its ReLU, and dropout before FC6 and FC7. Canziani et al. name the network
    and print no layers; their measurements are of that repository's Torch7 models.

    The classifier takes pool5's 6x6 maps (224x224 inputs); larger inputs are evaluated
    densely, the classifier applied at every 6x6 window and the logits averaged.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.features = owt_features(in_channels, batch_norm=True)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.BatchNorm1d(4096, eps=1e-3),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.BatchNorm1d(4096, eps=1e-3),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        windows = sliding_windows(self.features(x), POOL5_WINDOW)  # (N, windows, 9216)
        batch, count, features = windows.shape
        # Batch norm takes (samples, features): every window is a sample.
        logits = self.classifier(windows.reshape(batch * count, features))
        return logits.view(batch, count, -1).mean(dim=1)


class ZFNet(ZooModel):
    """ZFNet as CS231n Lecture 9 states it: AlexNet with a 7x7/2 conv1 and 512/1024/512 kernels
    in conv3-conv5, on one GPU (no towers).

    The rest follows Zeiler & Fergus's Figure 3: 224x224 input, conv1 padded by 1 (110x110),
    conv2 5x5 with stride 2, 3x3/2 max pools with ceil rounding (55, 13 and 6 as in the figure)
    each followed by local contrast normalization (AlexNet's LRN here) after pool1 and pool2,
    dropout 0.5 in FC6 and FC7. Inputs larger than 224 are evaluated densely as for AlexNet.
    """

    def __init__(
        self,
        *,
        variant: str = "paper",
        num_classes: int = 1000,
        in_channels: int = 3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        pick_variant(PAPER_ONLY, variant)
        self.in_channels = in_channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, kernel_size=7, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            local_response_norm(),
            nn.Conv2d(96, 256, kernel_size=5, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            local_response_norm(),
            nn.Conv2d(256, 512, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(512, 1024, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(1024, 512, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        )
        self.classifier = fc_classifier(512 * 6 * 6, num_classes, dropout)
        initialize(self, init_normal)  # Section 3: weights from N(0, 0.01), biases 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return classify_densely(self.classifier, self.features(x), POOL5_WINDOW)


# The paper's network, or torchvision's, which is another network (one tower, other widths).
VARIANTS: dict[str, type[AlexNet | TorchvisionAlexNet]] = {
    "paper": AlexNet,
    "torchvision": TorchvisionAlexNet,
}


def _alexnet_facts() -> dict[str, Any]:
    paper = published()["alexnet_paper"]
    keys = ("params", "neurons", "ilsvrc2010_test_top1_top5_error", "ilsvrc2012_top5_error")
    facts: dict[str, Any] = {key: paper[key] for key in keys}
    facts["source"] = paper["source"]
    return facts


@register_model(
    family="alexnet",
    paper=ALEXNET_PAPER,
    input_size=(3, 227, 227),
    variants=tuple(VARIANTS),
    published=_alexnet_facts,
)
def alexnet(
    *,
    variant: str = "paper",
    num_classes: int = 1000,
    in_channels: int = 3,
    dropout: float = 0.5,
    devices: Sequence[str | torch.device] | None = None,
) -> AlexNet | TorchvisionAlexNet:
    """AlexNet: two towers with LRN (paper) or torchvision's one-tower version.

    `devices=(dev0, dev1)` puts the paper's two towers on two devices, as the paper did.
    """
    network = pick_variant(VARIANTS, variant)
    if devices is None:
        return network(num_classes, in_channels, dropout)
    if network is not AlexNet:
        raise CnnarchError("devices=... needs the two-tower paper variant of alexnet")
    return AlexNet(num_classes, in_channels, dropout, devices)


@register_model(
    family="alexnet",
    paper=CANZIANI_PAPER,
    input_size=(3, 224, 224),
    published=functools.partial(canziani_facts, "bn_alexnet"),
)
def bn_alexnet(
    *, variant: str = "paper", num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5
) -> BNAlexNet:
    """BN-AlexNet: one-tower AlexNet with batch norm, as Canziani et al. measured it.

    Options: `dropout` (0.5).
    """
    pick_variant(PAPER_ONLY, variant)
    return BNAlexNet(num_classes, in_channels, dropout)


def _zfnet_facts() -> dict[str, Any]:
    lecture = published()["cs231n_lecture9_2017"]
    return {"lecture": lecture["zfnet"], "source": lecture["source"]}


@register_model(
    family="alexnet",
    paper=ZFNET_PAPER,
    input_size=(3, 224, 224),
    options=("dropout",),
    published=_zfnet_facts,
)
def zfnet(*, variant: str = "paper", **kwargs: Any) -> ZFNet:
    """ZFNet: AlexNet with a 7x7/2 conv1 and 512/1024/512 kernels in conv3-5.

    As CS231n Lecture 9 states it, on Zeiler & Fergus's Figure 3 (see `ZFNet`).
    """
    return ZFNet(variant=variant, **kwargs)
