"""The training-memory planner: will a model train within a memory budget, and at what batch."""

from cnnarch.planner.budget import parse_bytes
from cnnarch.planner.search import DEFAULT_RESERVE, Plan, plan

__all__ = ["DEFAULT_RESERVE", "Plan", "parse_bytes", "plan"]
