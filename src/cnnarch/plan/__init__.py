"""The training-memory planner: will a model train within a memory budget, and at what batch."""

from cnnarch.plan.budget import format_bytes, parse_bytes
from cnnarch.plan.planner import DEFAULT_RESERVE, Plan, plan

__all__ = ["DEFAULT_RESERVE", "Plan", "format_bytes", "parse_bytes", "plan"]
