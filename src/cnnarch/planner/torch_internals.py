"""Every private PyTorch interface the planner's measurements rely on, in one place.

The planner predicts without them; its checks against real steps (`cnnarch.planner.measure`,
`benchmarks/bench_memory.py`) read PyTorch's own trackers from `torch.distributed._tools` and
the profiler's raw events. Each name is tested in
``tests/planner/test_planner_private_names.py``, so a PyTorch release that changes one fails
there, by name, rather than inside a measurement.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from cnnarch.errors import CnnarchError

# (module, attribute) of each private name used.
MEM_TRACKER = ("torch.distributed._tools.mem_tracker", "MemTracker")
FSDP_MEM_TRACKER = ("torch.distributed._tools.fsdp2_mem_tracker", "FSDPMemTracker")


def private(name: tuple[str, str]) -> Any:
    """The private PyTorch object `name` (module, attribute); one clear error if this PyTorch
    has moved or removed it."""
    module_name, attribute = name
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as err:
        import torch

        raise CnnarchError(
            f"PyTorch {torch.__version__} has no {module_name}.{attribute}, a private name the "
            "planner's measurements use: pin the PyTorch version cnnarch was tested with"
        ) from err


def mem_tracker() -> type:
    """`torch.distributed._tools.mem_tracker.MemTracker`: PyTorch's tracker of a step's
    memory by module (used as a peer in the memory benchmark)."""
    return private(MEM_TRACKER)


def fsdp_mem_tracker() -> type:
    """`torch.distributed._tools.fsdp2_mem_tracker.FSDPMemTracker`: MemTracker for FSDP."""
    return private(FSDP_MEM_TRACKER)


@dataclass(frozen=True)
class MemoryEvent:
    """One allocation (+bytes) or free (-bytes) the profiler saw, at `time_ns`."""

    time_ns: int
    nbytes: int


def profiler_events(prof: Any) -> tuple[list[MemoryEvent], dict[str, int]]:
    """The allocation events of a `torch.profiler.profile(profile_memory=True)` run, and the
    start (ns) of each named range, from the profiler's raw results
    (`prof.profiler.kineto_results.events()`: the public `prof.events()` folds the
    allocations made inside an op into that op's totals, losing their order)."""
    events = list(prof.profiler.kineto_results.events())
    starts: dict[str, int] = {}
    memory = []
    for event in events:
        name = event.name()
        if name == "[memory]":
            memory.append(MemoryEvent(event.start_ns(), event.nbytes()))
        else:
            starts[name] = min(starts.get(name, event.start_ns()), event.start_ns())
    memory.sort(key=lambda e: e.time_ns)
    return memory, starts
