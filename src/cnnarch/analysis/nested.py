"""Tensors inside nested inputs and outputs: the one walk, over every container PyTorch itself
walks when it moves a module's inputs and outputs (DistributedDataParallel's
`torch.distributed.utils._apply_to_tensors`): tuples (named ones included), lists, sets,
dictionaries (any `Mapping`), dataclasses; and `collections.deque`, which `torch.utils._pytree`
walks too. Anything else is a leaf that holds no tensor.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import deque
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import torch

_SEQUENCES = (tuple, list, set, frozenset, deque)


def iter_tensors(value: Any) -> list[torch.Tensor]:
    """The tensors in `value`, depth first, in the containers' order.

    Args:
        value: a tensor, or a container of tensors and other values, nested at will.
    """
    if isinstance(value, torch.Tensor):  # most calls: one op's output
        return [value]
    found: list[torch.Tensor] = []
    _collect(value, found)
    return found


def _collect(value: Any, found: list[torch.Tensor]) -> None:
    if isinstance(value, torch.Tensor):
        found.append(value)
    elif isinstance(value, _SEQUENCES):
        for item in value:
            if isinstance(item, torch.Tensor):  # inline: a list of tensors is the common case
                found.append(item)
            elif not isinstance(item, (int, float, bool, str, type(None))):
                _collect(item, found)
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, found)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _collect(getattr(value, f.name), found)


def map_tensors(value: Any, convert: Callable[[torch.Tensor], Any]) -> Any:
    """`value` with every tensor replaced by `convert(tensor)`, in containers of the same
    types (a named tuple stays that named tuple, an `OrderedDict` an `OrderedDict`).

    Args:
        value: a tensor, or a container of tensors and other values, nested at will.
        convert: what each tensor becomes.
    """
    if isinstance(value, torch.Tensor):
        return convert(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*(map_tensors(v, convert) for v in value))
    if isinstance(value, deque):
        return deque((map_tensors(v, convert) for v in value), maxlen=value.maxlen)
    if isinstance(value, _SEQUENCES):
        return type(value)(map_tensors(v, convert) for v in value)
    if isinstance(value, Mapping):
        mapped = {k: map_tensors(v, convert) for k, v in value.items()}
        if type(value) is dict or not isinstance(value, MutableMapping):
            return mapped
        out = copy.copy(value)  # keeps the type and what it carries (a defaultdict's factory)
        out.update(mapped)
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: map_tensors(getattr(value, f.name), convert)
            for f in dataclasses.fields(value)
            if f.init
        }
        return dataclasses.replace(value, **changes)
    return value
