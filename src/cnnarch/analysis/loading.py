"""What the command line hands the analyzer: a model named by the zoo or by `module.path:factory`,
and sizes written like `3x224x224`."""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable

import torch
from torch import nn

from cnnarch.errors import CnnarchError

DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


def parse_size(text: str) -> tuple[int, ...]:
    """'3x224x224' -> (3, 224, 224); every size must be a positive integer."""
    parts = text.strip().lower().split("x")
    if not all(re.fullmatch(r"-?\d+", p.strip()) for p in parts):
        raise CnnarchError(
            f"malformed input size {text!r}: write it as CxHxW with integers, e.g. 3x224x224"
        )
    size = tuple(int(p) for p in parts)
    if any(d <= 0 for d in size):
        raise CnnarchError(f"input size {text!r} has a zero or negative size; all must be >= 1")
    return size


def parse_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise CnnarchError(f"unknown dtype {name!r}; choose one of {', '.join(DTYPES)}") from None


def load_model(spec: str, variant: str = "paper") -> nn.Module | str:
    """A zoo name is returned as is (the analyzer builds it on meta); `module.path:factory`
    imports the module and calls the factory with no arguments (or takes the module object)."""
    if ":" not in spec:
        return spec
    factory = resolve_factory(spec)
    if isinstance(factory, nn.Module):
        return factory
    try:
        with torch.device("meta"):  # build without allocating weights
            model = factory()
    except Exception as err:
        raise CnnarchError(f"{spec!r} raised {type(err).__name__}: {err}") from None
    if not isinstance(model, nn.Module):
        raise CnnarchError(f"{spec!r} returned a {type(model).__name__}, not an nn.Module")
    return model


def resolve_factory(spec: str) -> nn.Module | Callable[..., nn.Module]:
    """What `module.path:factory` names: an `nn.Module`, or a function (or class) to call for
    one. The module is imported; nothing is built."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CnnarchError(f"malformed model {spec!r}: write NAME or module.path:factory")
    # Like `python -m`, find modules in the current folder (the `cnnarch` script does not).
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # ImportError, or any error raised while importing it
        raise CnnarchError(
            f"cannot import {module_name!r} (from {spec!r}): {type(err).__name__}: {err}"
        ) from None
    try:
        factory = getattr(module, attribute)
    except AttributeError:
        raise CnnarchError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(factory, nn.Module) and not callable(factory):
        raise CnnarchError(f"{spec!r} is neither an nn.Module nor a function that returns one")
    return factory
