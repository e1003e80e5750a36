"""Pieces shared by the zoo's families: the input check every model does, and the one way a
family turns a variant name ("paper", "torchvision") into the structural choices it stands for."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
from torch import nn

from cnnarch.errors import CnnarchError
from cnnarch.meta import SEARCH_LIMIT, meta_copy, size_search_running, smallest_square_side

Design = TypeVar("Design")

# The variants of a family whose only network is its paper's: nothing to choose.
PAPER_ONLY: Mapping[str, None] = {"paper": None}


class ZooModel(nn.Module):
    """Base of every top-level zoo model: turns a bad input into one clear `CnnarchError`.

    Each subclass's `forward` is wrapped (once, when the class is defined) by `checked_forward`:
    the channel count is checked before the forward pass (cheap); the spatial size is only
    examined when the forward pass fails, so a good input costs nothing extra: the smallest
    accepted side is then found by shape inference on a meta copy of the model. The call
    itself is `nn.Module`'s own, hooks and all.
    """

    in_channels: int
    model_name: str = "model"  # `create_model` names the models it builds

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        forward = cls.__dict__.get("forward")
        if forward is not None:
            cls.forward = checked_forward(forward)

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
        """Smallest accepted square side, found on a meta copy of this model (no memory; the
        model's hooks do not see the search), in its current train/eval mode."""
        smallest = smallest_square_side(meta_copy(self, drop_hooks=True), self.in_channels)
        if smallest is None:
            raise CnnarchError(f"no input side up to {SEARCH_LIMIT} is accepted")
        return smallest


def checked_forward(forward: Callable[..., Any]) -> Callable[..., Any]:
    """`forward` of a `ZooModel`, with its input checked first and a failure on too small an
    image explained (chained to PyTorch's error, which stays the cause).

    Args:
        forward: a subclass's own `forward`.
    """

    @functools.wraps(forward)
    def checked(self: ZooModel, *args: Any, **kwargs: Any) -> Any:
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor):
            return forward(self, *args, **kwargs)
        self._check_channels(x)
        try:
            return forward(self, *args, **kwargs)
        except RuntimeError as err:
            if size_search_running():  # a probe of the size search: its answer is no
                raise
            side = min(x.shape[-2:])
            smallest = smallest_square_side(meta_copy(self, drop_hooks=True), self.in_channels)
            if smallest is not None and side < smallest:
                raise CnnarchError(
                    f"{self.model_name}: input {tuple(x.shape[-2:])} is too small; "
                    f"the smallest input this model accepts is {smallest}x{smallest}"
                ) from err
            raise

    return checked


def smallest_input_side(
    build: Callable[[], nn.Module],
    in_channels: int,
    limit: int = SEARCH_LIMIT,
    training: bool = False,
) -> int:
    """Smallest square side accepted by the model `build()` returns, by bisection on meta.

    Args:
        build: makes the model (called under `torch.device("meta")`).
        in_channels: the input's channels.
        limit: the largest side tried.
        training: check the training-mode forward, which may need more (auxiliary heads).
    """
    with torch.device("meta"):
        model = build()
    model.train(training)
    smallest = smallest_square_side(model, in_channels, limit=limit)
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
