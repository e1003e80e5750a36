"""A user's residual network whose modules have names no library uses: the data flow must find
its shortcuts (`a`, `b` on the main path; `proj` projects where the shape changes)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class UserBlock(nn.Module):
    """3x3 conv `a` (stride s) -> BN -> ReLU -> 3x3 conv `b` -> BN, plus the input or `proj` (a
    1x1 conv, stride s, where the shape changes), -> ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.a = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.a_bn = nn.BatchNorm2d(c_out)
        self.b = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.b_bn = nn.BatchNorm2d(c_out)
        changes = stride != 1 or c_in != c_out
        self.proj = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if changes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.a_bn(self.a(x)))
        y = self.b_bn(self.b(y))
        return F.relu(y + (x if self.proj is None else self.proj(x)))


class UserNet(nn.Module):
    """A 3x3 stem to 8 maps, then `body`: a block 8 -> 16 at stride 2 (projection) and one
    16 -> 16 (identity), then global average pooling and a linear layer to 10 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.body = nn.Sequential(UserBlock(8, 16, 2), UserBlock(16, 16))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.flatten(self.pool(self.body(self.stem(x))), 1))
