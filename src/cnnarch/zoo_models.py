"""The front door's `analyze`: a zoo name is built on meta (nothing allocated) and analyzed at
its card's input size; any other module goes to the analyzer as it is.

The analyzer (`cnnarch.analysis`) knows no model by name; this module, above both the zoo and
the analyzer, is where names are resolved.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cnnarch.analysis import analyzer
from cnnarch.errors import CnnarchError, CnnarchValueError
from cnnarch.zoo import create_model, model_card
from cnnarch.zoo.common import ZooModel

if TYPE_CHECKING:
    from cnnarch.analysis.analyzer import InputSize
    from cnnarch.analysis.summary import Summary
    from cnnarch.analysis.training_modes import TrainingStep


def analyze(
    model_or_name: nn.Module | str,
    input_size: InputSize | None = None,
    *,
    inputs: Any = None,
    batch_size: int = 1,
    dtype: torch.dtype | None = None,
    train: bool = False,
    optimizer: str | None = None,
    variant: str = "paper",
    device: str = "auto",
    timeout: float | None = None,
    name: str | None = None,
    step: TrainingStep | None = None,
) -> Summary:
    """Analyze a zoo model by name, or any module: `cnnarch.analysis.analyze`, with zoo names
    resolved and a zoo model's card input size as the default input.

    Args:
        model_or_name: a zoo model's name (built on meta, in `variant`) or any `nn.Module`.
        input_size: one example's size, without the batch dimension, or a list of them (see
            `cnnarch.analysis.analyze`). Default: a zoo model's card size, with the channels
            it was built for.
        inputs: instead of `input_size`: the inputs themselves (tensor, tuple, dict).
        batch_size: prepended to each `input_size`.
        dtype: analyze as if the model were converted to this floating dtype.
        train: trace in train mode and add the memory of a training step.
        optimizer: with `train`, the optimizer's name (default "sgd").
        variant: the zoo variant when `model_or_name` is a name.
        device: "auto" (meta, CPU where an op needs data), "meta" or "cpu".
        timeout: seconds the model's code may run (None or `math.inf`: no limit).
        name: the model's name in the summary (default: the zoo name or the class name).
        step: with `train`, how the training step runs (see `TrainingStep`).
    """
    model, default_size = resolve(model_or_name, variant)
    return analyzer.analyze(
        model,
        input_size,
        inputs=inputs,
        batch_size=batch_size,
        dtype=dtype,
        train=train,
        optimizer=optimizer,
        device=device,
        timeout=timeout,
        name=name,
        step=step,
        default_input_size=default_size,
    )


def resolve(
    model_or_name: nn.Module | str, variant: str
) -> tuple[nn.Module, tuple[int, ...] | None]:
    """(model, default input size or None) for a zoo name or any module.

    Args:
        model_or_name: a zoo model's name, or any module (returned as it is).
        variant: the zoo variant a name is built in.
    """
    if isinstance(model_or_name, str):
        card = model_card(model_or_name)
        return _built_on_meta(model_or_name, variant), tuple(card.input_size)
    if not isinstance(model_or_name, nn.Module):
        raise CnnarchValueError(
            f"expected an nn.Module or a model name, got {type(model_or_name).__name__}"
        )
    return model_or_name, _card_input_size(model_or_name)


@functools.lru_cache(maxsize=32)
def _built_on_meta(name: str, variant: str) -> nn.Module:
    """A zoo model built on meta, once per process for each name and variant: the analyzer
    leaves a module as it found it (its attributes, children, flags and hooks are put back
    after every pass), so one build serves every analysis, and building costs as much as a
    forward pass's trace for the deep networks."""
    with torch.device("meta"):
        return create_model(name, variant=variant)


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
