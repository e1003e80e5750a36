"""Layers several families share: LRN as the AlexNet paper writes it, the conv-BN-ReLU unit of
torchvision's GoogLeNet and Inception-v3 (and their input transform), Glorot initialization, the
FC-4096-4096 classifier, fully connected heads that slide over feature maps larger than the
one they were trained on, and the ResNet paper's parameter-free shortcut (option A).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def local_response_norm(
    size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0
) -> nn.LocalResponseNorm:
    """LRN with the constants of Krizhevsky et al. 2012, Section 3.3, as that paper defines it.

    The paper divides a_i by (k + alpha * sum_j a_j^2)^beta over `size` adjacent maps;
    `nn.LocalResponseNorm` divides alpha by `size` first (the Caffe convention), so the paper's
    alpha is scaled by `size` here to compute the paper's formula.
    """
    return nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)


class BasicConv2d(nn.Module):
    """Conv -> BatchNorm (eps 0.001) -> ReLU: without a conv bias, the unit of the Inception nets
    (torchvision's, timm's); with one (`bias=True`), of the Torch7 BN-NIN and BN-AlexNet."""

    def __init__(
        self, in_channels: int, out_channels: int, bias: bool = False, **conv_kwargs: Any
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=bias, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class ConvReLU(nn.Module):
    """Conv (with bias) -> ReLU: the unit of the pre-batch-norm papers (GoogLeNet)."""

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, **conv_kwargs)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


def renormalize_input(x: torch.Tensor) -> torch.Tensor:
    """torchvision's `transform_input` of GoogLeNet and Inception-v3: maps inputs normalized with
    the ImageNet mean/std to the (x - 0.5) / 0.5 normalization their ported weights expect."""
    x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
    x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
    x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
    return torch.cat((x_ch0, x_ch1, x_ch2), 1)


def init_normal(model: nn.Module) -> None:
    """N(0, 0.01) weights and zero biases for every conv and linear layer of `model`."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def init_he_convs(model: nn.Module) -> None:
    """He normal weights (fan-out, for ReLU) for every conv of `model` (He et al. 2015)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def init_glorot(model: nn.Module) -> None:
    """Glorot uniform weights and zero biases for every conv and linear layer of `model`."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def fc_classifier(in_features: int, num_classes: int, dropout: float) -> nn.Sequential:
    """FC-4096, FC-4096, FC-classes, each hidden layer followed by ReLU and dropout: the
    classifier of ZFNet and VGG (indices as in torchvision's VGG, so its weights load)."""
    return nn.Sequential(
        nn.Linear(in_features, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(4096, num_classes),
    )


def sliding_windows(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """Every `window`-sized patch of the maps `x` (N, C, H, W), flattened: (N, patches, C*kh*kw).

    Each patch is flattened in `torch.flatten` order, so a fully connected layer trained on
    kh x kw maps applies unchanged to every patch: the fully connected layers become the
    convolutions of the "dense evaluation" of Simonyan & Zisserman 2015, Section 3.2 (and of
    OverFeat). A map of exactly the window's size gives one patch, i.e. the plain classifier.
    """
    kh, kw = window
    h, w = x.shape[-2:]
    if h < kh or w < kw:
        # A RuntimeError, like torch's own shape errors, so `ZooModel` reports the minimum input.
        raise RuntimeError(
            f"feature map {h}x{w} is smaller than the {kh}x{kw} window "
            "of the first fully connected layer"
        )
    if (h, w) == (kh, kw):
        return torch.flatten(x, 1).unsqueeze(1)
    return F.unfold(x, window).transpose(1, 2)


def classify_densely(
    classifier: nn.Module, x: torch.Tensor, window: tuple[int, int]
) -> torch.Tensor:
    """Apply a fully connected `classifier` at every `window` of `x` and average the logits.

    At the training input size there is exactly one window and this is the ordinary classifier.
    """
    return classifier(sliding_windows(x, window)).mean(dim=1)


class ZeroPadShortcut(nn.Module):
    """Option A shortcut of He et al. 2015: stride-2 subsampling and zero channels appended
    (no parameters)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
