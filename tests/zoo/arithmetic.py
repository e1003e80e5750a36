"""Hand arithmetic for the zoo's tests: parameters and multiply-accumulates of convolutions
written out from the architectures' tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch

import cnnarch

if TYPE_CHECKING:
    from cnnarch.analysis import Summary

Conv = tuple[int, int, int, int]  # (in, out, kh, kw)


def bn_conv_params(convs: Iterable[Conv]) -> int:
    """Convolutions without bias, each followed by batch norm (a scale and a shift per map)."""
    return sum(c_in * c_out * kh * kw + 2 * c_out for c_in, c_out, kh, kw in convs)


def conv_params(convs: Iterable[Conv], bias: bool = True) -> int:
    """Plain convolutions, with a bias per map unless `bias` is False."""
    return sum(c_in * c_out * kh * kw + bias * c_out for c_in, c_out, kh, kw in convs)


def linear_params(in_features: int, out_features: int) -> int:
    return in_features * out_features + out_features


def conv_macs(convs: Iterable[Conv], side: int) -> int:
    """Multiply-accumulates of convolutions whose outputs are all side x side."""
    return sum(c_in * c_out * kh * kw * side * side for c_in, c_out, kh, kw in convs)


def pytorch_params(name: str, **kwargs: object) -> int:
    """PyTorch's own count of the model built on meta (no memory)."""
    with torch.device("meta"):
        model = cnnarch.create_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters())


def module_macs(summary: Summary, path: str) -> int:
    """The MACs the analyzer counts for the module at `path` (its whole subtree)."""
    (row,) = [row for row in summary.rows if row.path == path]
    return row.macs
