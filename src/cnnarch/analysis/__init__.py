"""The analyzer: exact per-layer shapes, parameters, MACs and memory of any `nn.Module`, from
one traced pass on meta tensors (nothing computed, no activation allocated), or on real CPU
tensors where the model's ops need data. Of the rest of cnnarch it imports only its errors, its
number formatter (`cnnarch.units`) and its table model (`cnnarch.tables`)."""

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
