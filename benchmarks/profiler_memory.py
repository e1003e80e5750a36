"""Peak CPU memory from the torch profiler's memory events (`profile(..., profile_memory=True)`).

The one implementation lives in `cnnarch.planner.measure`; this name is kept for the benchmarks."""

from __future__ import annotations

from cnnarch.planner.measure import allocation_peak

__all__ = ["allocation_peak"]
