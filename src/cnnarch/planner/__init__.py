"""The training-memory planner: will a model train within a memory budget, and at what batch."""

from cnnarch.planner.budget import parse_bytes
from cnnarch.planner.search import DEFAULT_RESERVE, PeakLines, Plan, peak_lines, plan

__all__ = ["DEFAULT_RESERVE", "PeakLines", "Plan", "parse_bytes", "peak_lines", "plan"]
