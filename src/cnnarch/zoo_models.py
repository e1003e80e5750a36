"""How `cnnarch.analyze` finds the zoo's models: by name (built on meta, nothing allocated),
and the input size on a zoo model's card, which is its default input size.

The analyzer (`cnnarch.analysis`) knows no model by name; `cnnarch` installs `resolve` into it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnarch.errors import CnnarchError
from cnnarch.zoo import create_model, model_card
from cnnarch.zoo.common import ZooModel


def resolve(model_or_name: Any, variant: str) -> tuple[nn.Module, str, tuple[int, ...] | None]:
    """(model, name, default input size or None) for a zoo name or any module."""
    if isinstance(model_or_name, str):
        card = model_card(model_or_name)
        with torch.device("meta"):
            model = create_model(model_or_name, variant=variant)
        return model, model_or_name, tuple(card.input_size)
    if not isinstance(model_or_name, nn.Module):
        raise CnnarchError(
            f"expected an nn.Module or a model name, got {type(model_or_name).__name__}"
        )
    name = getattr(model_or_name, "model_name", None) or type(model_or_name).__name__
    return model_or_name, name, _card_input_size(model_or_name)


def _card_input_size(model: nn.Module) -> tuple[int, ...] | None:
    """The default input of a zoo model built by `create_model` (which names it): its card's
    size, with the channels the model was built for (`in_channels=1` for grayscale)."""
    name = getattr(model, "model_name", None)
    if not isinstance(model, ZooModel) or name is None:
        return None
    try:
        size = model_card(name).input_size
    except CnnarchError:  # a name of the user's own
        return None
    return (model.in_channels, *size[1:])
