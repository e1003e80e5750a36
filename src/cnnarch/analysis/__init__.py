"""The analyzer: exact per-layer shapes, parameters, MACs and memory of any `nn.Module`, from
one traced pass on meta tensors (nothing computed, no activation allocated), or on real CPU
tensors where the model's ops need data. Of the rest of cnnarch it imports only its errors, its
number formatter (`cnnarch.units`), its table model (`cnnarch.tables`) and the meta-device
helpers below the zoo and it (`cnnarch.meta`); it knows no model by name.

The names below are imported on first use, so that importing one module of the package (the
door to PyTorch's private names, `torch_internals`, which `cnnarch.meta` uses) does not import
the analyzer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnarch.analysis.analyzer import analyze
    from cnnarch.analysis.memory import TrainingMemory
    from cnnarch.analysis.rules import RULES, CountingRule, register_rule
    from cnnarch.analysis.summary import LayerRow, Summary

__all__ = [
    "RULES",
    "CountingRule",
    "LayerRow",
    "Summary",
    "TrainingMemory",
    "analyze",
    "register_rule",
]

_HOMES = {
    "analyze": "cnnarch.analysis.analyzer",
    "TrainingMemory": "cnnarch.analysis.memory",
    "RULES": "cnnarch.analysis.rules",
    "CountingRule": "cnnarch.analysis.rules",
    "register_rule": "cnnarch.analysis.rules",
    "LayerRow": "cnnarch.analysis.summary",
    "Summary": "cnnarch.analysis.summary",
}


def __getattr__(name: str) -> object:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'cnnarch.analysis' has no attribute {name!r}")
