"""The analyzer: exact per-layer shapes, parameters, MACs and memory of any `nn.Module`, from
one pass on meta tensors (nothing is computed, no activation is allocated)."""

from cnnarch.analysis.analyzer import analyze
from cnnarch.analysis.memory import TrainingMemory
from cnnarch.analysis.rules import RULES, CountingRule
from cnnarch.analysis.summary import LayerRow, Summary

__all__ = ["RULES", "CountingRule", "LayerRow", "Summary", "TrainingMemory", "analyze"]
