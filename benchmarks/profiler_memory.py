"""Peak CPU memory from the torch profiler's memory events (`profile(..., profile_memory=True)`)."""

from __future__ import annotations

from torch.profiler import profile


def allocation_peak(prof: profile) -> int:
    """Most bytes allocated and held at once during the profiled code: every allocation and free,
    summed in time order (what was alive before the profiler started is not counted)."""
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    running = peak = 0
    for event in events:
        running += event.nbytes()
        peak = max(peak, running)
    return peak
