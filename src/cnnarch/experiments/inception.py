"""The cost of an Inception module, naive or with 1x1 bottlenecks (Szegedy et al. 2015).

The lecture's example takes a 28x28x256 input and four parallel branches: 1x1 conv (128),
3x3 conv (192), 5x5 conv (96) and 3x3 max pooling. Concatenated, the output is 672 deep and the
convolutions cost 854M multiply-adds. Putting 1x1 "bottleneck" convs (64 filters) before the 3x3
and 5x5 convs, and a 1x1 projection (64) after the pooling, cuts this to 271M for a 480-deep
output (the slide prints 358M: its own products sum to 271M, with the 3x3 conv's 86.7M counted
twice). `inception_cost` builds the module from `nn.Conv2d` and `nn.MaxPool2d` and counts it with
the analyzer, so these numbers follow the same counting rule as every model in the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnarch.errors import CnnarchError

BRANCHES = ("branch1x1", "branch3x3", "branch5x5", "branch_pool")


@dataclass(frozen=True)
class InceptionConfig:
    """An Inception module in the columns of GoogLeNet's Table 1; a reduce of None = no 1x1."""

    in_channels: int
    size: int  # height = width of the input feature map
    n1x1: int
    n3x3: int
    n5x5: int
    n3x3_reduce: int | None = None
    n5x5_reduce: int | None = None
    pool_proj: int | None = None

    def validate(self) -> None:
        widths = {
            "in_channels": self.in_channels,
            "size": self.size,
            "n1x1": self.n1x1,
            "n3x3": self.n3x3,
            "n5x5": self.n5x5,
            "n3x3_reduce": self.n3x3_reduce,
            "n5x5_reduce": self.n5x5_reduce,
            "pool_proj": self.pool_proj,
        }
        bad = [f"{k}={v}" for k, v in widths.items() if v is not None and v < 1]
        if bad:
            raise CnnarchError(
                f"inception_cost: sizes must be positive integers (got {', '.join(bad)}); "
                "use None for a branch without its 1x1 convolution"
            )
        if self.n1x1 + self.n3x3 + self.n5x5 == 0:
            raise CnnarchError("inception_cost: the module needs at least one conv branch")

    @property
    def naive(self) -> bool:
        return self.n3x3_reduce is None and self.n5x5_reduce is None and self.pool_proj is None


def _conv(in_channels: int, out_channels: int, kernel: int, bias: bool) -> list[nn.Module]:
    # "Same" padding keeps every branch at the input's height and width, so they concatenate.
    return [nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=bias), nn.ReLU()]


class InceptionModule(nn.Module):
    """Four parallel branches concatenated along channels, each conv followed by ReLU."""

    def __init__(self, config: InceptionConfig, bias: bool = True) -> None:
        super().__init__()
        c = config
        self.branch1x1 = nn.Sequential(*_conv(c.in_channels, c.n1x1, 1, bias))
        self.branch3x3 = nn.Sequential(
            *_bottlenecked(c.in_channels, c.n3x3_reduce, c.n3x3, 3, bias)
        )
        self.branch5x5 = nn.Sequential(
            *_bottlenecked(c.in_channels, c.n5x5_reduce, c.n5x5, 5, bias)
        )
        pool: list[nn.Module] = [nn.MaxPool2d(3, stride=1, padding=1)]
        if c.pool_proj is not None:
            pool += _conv(c.in_channels, c.pool_proj, 1, bias)
        self.branch_pool = nn.Sequential(*pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([getattr(self, name)(x) for name in BRANCHES], dim=1)


def _bottlenecked(
    in_channels: int, reduce: int | None, out_channels: int, kernel: int, bias: bool
) -> list[nn.Module]:
    if reduce is None:
        return _conv(in_channels, out_channels, kernel, bias)
    return _conv(in_channels, reduce, 1, bias) + _conv(reduce, out_channels, kernel, bias)


@dataclass(frozen=True)
class BranchCost:
    name: str
    layers: str  # e.g. "1x1 conv 64 -> 3x3 conv 192"
    out_channels: int
    params: int
    macs: int


@dataclass(frozen=True)
class InceptionCost:
    config: InceptionConfig
    branches: tuple[BranchCost, ...]
    bias: bool

    @property
    def total_macs(self) -> int:
        return sum(b.macs for b in self.branches)

    @property
    def total_params(self) -> int:
        return sum(b.params for b in self.branches)

    @property
    def output_depth(self) -> int:
        return sum(b.out_channels for b in self.branches)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return (self.output_depth, self.config.size, self.config.size)


def _describe(config: InceptionConfig) -> dict[str, str]:
    def conv(kernel: int, width: int) -> str:
        return f"{kernel}x{kernel} conv {width}"

    def chain(reduce: int | None, kernel: int, width: int) -> str:
        return (
            conv(kernel, width) if reduce is None else f"{conv(1, reduce)} -> {conv(kernel, width)}"
        )

    pool = "3x3 max pool"
    return {
        "branch1x1": conv(1, config.n1x1),
        "branch3x3": chain(config.n3x3_reduce, 3, config.n3x3),
        "branch5x5": chain(config.n5x5_reduce, 5, config.n5x5),
        "branch_pool": pool
        if config.pool_proj is None
        else f"{pool} -> {conv(1, config.pool_proj)}",
    }


def inception_cost(
    in_channels: int = 256,
    size: int = 28,
    n1x1: int = 128,
    n3x3: int = 192,
    n5x5: int = 96,
    *,
    n3x3_reduce: int | None = None,
    n5x5_reduce: int | None = None,
    pool_proj: int | None = None,
    bias: bool = True,
) -> InceptionCost:
    """Params, multiply-adds and output depth of each branch of an Inception module.

    The defaults are the lecture's naive module on a 28x28x256 input; give `n3x3_reduce`,
    `n5x5_reduce` and `pool_proj` for the bottleneck version (the lecture uses 64 for each).
    `bias=False` counts weights only, as the slides and GoogLeNet's Table 1 do.

    Args:
        in_channels: depth of the module's input.
        size: height and width of the (square) input.
        n1x1: filters of the 1x1 branch.
        n3x3: filters of the 3x3 branch's 3x3 conv.
        n5x5: filters of the 5x5 branch's 5x5 conv.
        n3x3_reduce: filters of the 1x1 conv before the 3x3 conv (None: no bottleneck).
        n5x5_reduce: filters of the 1x1 conv before the 5x5 conv (None: no bottleneck).
        pool_proj: filters of the 1x1 conv after the pooling (None: the pooling alone).
        bias: count the convs' biases too.

    Raises:
        CnnarchError: a size or width below 1.
    """
    from cnnarch.analysis import analyze

    config = InceptionConfig(
        in_channels, size, n1x1, n3x3, n5x5, n3x3_reduce, n5x5_reduce, pool_proj
    )
    config.validate()
    with torch.device("meta"):
        module = InceptionModule(config, bias=bias)
    summary = analyze(module, (in_channels, size, size))
    per_branch = {row.path: row for row in summary.collapse(1).rows}
    described = _describe(config)
    branches = tuple(
        BranchCost(
            name=name,
            layers=described[name],
            out_channels=int(per_branch[name].output_shapes[0][1]),
            params=int(per_branch[name].params),
            macs=int(per_branch[name].macs),
        )
        for name in BRANCHES
    )
    return InceptionCost(config, branches, bias)


def lecture_example(bias: bool = False) -> tuple[InceptionCost, InceptionCost]:
    """The lecture's module on 28x28x256, naive and with 64-wide 1x1 bottlenecks."""
    naive = inception_cost(bias=bias)
    bottleneck = inception_cost(n3x3_reduce=64, n5x5_reduce=64, pool_proj=64, bias=bias)
    return naive, bottleneck
