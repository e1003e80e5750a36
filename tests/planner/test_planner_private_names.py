"""Each private PyTorch name the planner's measurements use, by name: a PyTorch release that
moves one fails here."""

from __future__ import annotations

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from cnnarch.errors import CnnarchError
from cnnarch.planner.torch_internals import (
    FSDP_MEM_TRACKER,
    MEM_TRACKER,
    fsdp_mem_tracker,
    mem_tracker,
    private,
    profiler_events,
)


def test_mem_tracker_is_where_the_planner_reads_it() -> None:
    tracker = mem_tracker()
    assert tracker.__name__ == MEM_TRACKER[1]
    for method in ("track_external", "reset_mod_stats", "get_tracker_snapshot"):
        assert callable(getattr(tracker, method)), method


def test_fsdp_mem_tracker_is_where_the_planner_reads_it() -> None:
    tracker = fsdp_mem_tracker()
    assert tracker.__name__ == FSDP_MEM_TRACKER[1]
    assert issubclass(tracker, mem_tracker())


def test_the_profilers_raw_events_carry_each_allocation() -> None:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        with torch.profiler.record_function("made"):
            a = torch.empty(1000, dtype=torch.float32)
        del a
    memory, starts = profiler_events(prof)
    sizes = [event.nbytes for event in memory]
    assert 4000 in sizes and -4000 in sizes
    assert sizes.index(4000) < sizes.index(-4000)  # in time order
    assert "made" in starts


def test_a_missing_private_name_is_one_clear_error() -> None:
    with pytest.raises(CnnarchError, match=r"has no torch\.distributed\._tools\.nothing\.Nope"):
        private(("torch.distributed._tools.nothing", "Nope"))
