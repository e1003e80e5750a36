"""Pieces shared by the zoo's families: the input check every model does, and the one way a
family turns a variant name ("paper", "torchvision") into the structural choices it stands for."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
from torch import nn

from cnnarch.analysis.smallest import bisect_smallest_side
from cnnarch.errors import CnnarchError

Design = TypeVar("Design")

# The variants of a family whose only network is its paper's: nothing to choose.
PAPER_ONLY: Mapping[str, None] = {"paper": None}


class ZooModel(nn.Module):
    """Base of every top-level zoo model: turns a bad input into one clear `CnnarchError`.

    The channel count is checked before the forward pass (cheap). The spatial size is only
    examined when the forward pass fails, so a good input costs nothing extra: the smallest
    accepted side is then found by shape inference on a meta copy of the model.
    """

    in_channels: int
    model_name: str = "model"  # `create_model` names the models it builds

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        x = args[0] if args else None
        if isinstance(x, torch.Tensor):
            self._check_channels(x)
        try:
            return super().__call__(*args, **kwargs)
        except RuntimeError as err:
            if isinstance(x, torch.Tensor) and x.dim() == 4:
                try:
                    smallest = self.min_input_side()
                except CnnarchError:  # no size works: the input's size is not the problem
                    raise err from None
                side = min(x.shape[-2:])
                if side < smallest:
                    raise CnnarchError(
                        f"{self.model_name}: input {tuple(x.shape[-2:])} is too small; "
                        f"the smallest input this model accepts is {smallest}x{smallest}"
                    ) from None
            raise err

    def _check_channels(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise CnnarchError(
                f"{self.model_name}: expected a batch of images (N, C, H, W), "
                f"got a tensor of shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise CnnarchError(
                f"{self.model_name}: expected {self.in_channels} input channels, "
                f"got {x.shape[1]} (input shape {tuple(x.shape)})"
            )

    def min_input_side(self) -> int:
        """Smallest accepted square side, found on a meta twin of this model (no memory)."""
        return smallest_input_side(self._meta_twin, self.in_channels, training=self.training)

    def _meta_twin(self) -> nn.Module:
        """A copy of this model whose parameters and buffers are empty meta tensors: the memo
        hands `deepcopy` a meta stand-in for each tensor, so no weight is copied."""
        memo: dict[int, Any] = {}
        for p in self.parameters():
            memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), p.requires_grad)
        for b in self.buffers():
            memo[id(b)] = torch.empty_like(b, device="meta")
        twin = copy.deepcopy(self, memo)
        for module in twin.modules():  # a user's hooks must not see the size search
            module._forward_hooks.clear()
            module._forward_pre_hooks.clear()
        return twin


def _accepts(model: nn.Module, in_channels: int, side: int) -> bool:
    # Two samples: batch norm in training mode needs more than one value per channel.
    x = torch.empty(2, in_channels, side, side, device="meta")
    try:
        # `forward`, not `__call__`: the top-level check must not recurse into this search.
        model.forward(x)
    except (RuntimeError, ValueError, CnnarchError):
        return False
    return True


def smallest_input_side(
    build: Callable[[], nn.Module], in_channels: int, limit: int = 4096, training: bool = False
) -> int:
    """Smallest square side accepted by the model `build()` returns, by bisection on meta.

    `training=True` checks the training-mode forward, which may need more (auxiliary heads).
    """
    with torch.device("meta"):
        model = build()
    model.train(training)
    smallest = bisect_smallest_side(lambda side: _accepts(model, in_channels, side), limit=limit)
    if smallest is None:
        raise CnnarchError(f"no input side up to {limit} is accepted")
    return smallest


def initialize(model: nn.Module, init: Callable[[nn.Module], None]) -> None:
    """`init(model)`, the family's weight initialization, unless the model lives on the meta
    device: meta tensors hold no values, and torch fills them through its Python reference
    kernels (two thirds of the time it takes to build a meta ResNet-152)."""
    first = next(model.parameters(), None)
    if first is None or not first.is_meta:
        init(model)


def pick_variant(designs: Mapping[str, Design], variant: str) -> Design:
    """The structural choices `designs[variant]` of one family, or a clear error."""
    try:
        return designs[variant]
    except KeyError:
        raise CnnarchError(
            f"no variant {variant!r}; the variants are: {', '.join(designs)}"
        ) from None
