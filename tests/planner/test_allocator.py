"""The caching allocator model on sequences worked out by hand from the rules of PyTorch's
c10/cuda/CUDACachingAllocator.cpp (cited in `cnnarch.planner.allocator`)."""

from __future__ import annotations

import pytest

import cnnarch
from cnnarch.analysis.training_modes import TrainingStep
from cnnarch.planner.allocator import (
    AllocatorConfig,
    AllocatorOutOfMemory,
    CachingAllocator,
    replay,
    round_size,
    segment_size,
    step_order,
)

KiB, MiB = 2**10, 2**20


def test_sizes_round_to_512_bytes() -> None:
    assert [round_size(n) for n in (1, 511, 512, 513, 1024, 1025)] == [
        512,
        512,
        512,
        1024,
        1024,
        1536,
    ]


def test_segment_sizes_by_pool_and_request() -> None:
    assert segment_size(512) == 2 * MiB  # small pool: 2 MiB segments
    assert segment_size(1 * MiB) == 2 * MiB  # 1 MiB is still small
    assert segment_size(1 * MiB + 512) == 20 * MiB  # large, under 10 MiB: 20 MiB
    assert segment_size(10 * MiB - 512) == 20 * MiB
    assert segment_size(10 * MiB) == 10 * MiB  # from 10 MiB: its own, rounded to 2 MiB
    assert segment_size(10 * MiB + 512) == 12 * MiB
    assert segment_size(25 * MiB) == 26 * MiB


def test_small_requests_pack_into_2_mib_segments() -> None:
    allocator = CachingAllocator()
    for _ in range(4):
        allocator.malloc(512 * KiB)
    assert (allocator.allocated, allocator.reserved) == (2 * MiB, 2 * MiB)  # one segment, full
    allocator.malloc(512 * KiB)
    assert (allocator.allocated, allocator.reserved) == (2560 * KiB, 4 * MiB)


def test_requests_under_10_mib_share_20_mib_segments() -> None:
    allocator = CachingAllocator()
    for _ in range(6):
        allocator.malloc(3 * MiB)
    assert allocator.reserved == 20 * MiB  # 18 MiB used, 2 MiB left
    allocator.malloc(3 * MiB)  # 2 MiB left is too small
    assert (allocator.allocated, allocator.reserved) == (21 * MiB, 40 * MiB)


def test_a_block_is_split_only_when_more_than_1_mib_would_remain() -> None:
    allocator = CachingAllocator()
    allocator.malloc(int(19.5 * MiB))  # its own 20 MiB segment; 0.5 MiB would remain
    assert (allocator.allocated, allocator.reserved) == (20 * MiB, 20 * MiB)
    other = CachingAllocator()
    other.malloc(int(9.5 * MiB))  # a 20 MiB segment; 10.5 MiB remain: split
    assert (other.allocated, other.reserved) == (int(9.5 * MiB), 20 * MiB)


def test_the_smallest_cached_block_that_fits_is_reused() -> None:
    allocator = CachingAllocator()
    a, b = allocator.malloc(12 * MiB), allocator.malloc(16 * MiB)
    allocator.free(a)
    allocator.free(b)
    block = allocator.malloc(11 * MiB)  # A's 12 MiB block; 1 MiB would remain: not split
    assert block.size == 12 * MiB and block.address == a.address
    assert (allocator.allocated, allocator.reserved) == (12 * MiB, 28 * MiB)


def test_freed_blocks_merge_with_free_neighbors_and_ties_go_to_the_lowest_address() -> None:
    allocator = CachingAllocator()
    a, b, c = (allocator.malloc(4 * MiB) for _ in range(3))  # 8 MiB left at the end
    start = a.address
    allocator.free(b)
    allocator.free(a)  # merges with b: 8 MiB free at the start
    block = allocator.malloc(7 * MiB)  # two 8 MiB blocks: the lower one; 1 MiB left: whole
    assert (block.address, block.size) == (start, 8 * MiB)
    assert allocator.reserved == 20 * MiB and c.allocated


def test_cached_blocks_keep_memory_reserved() -> None:
    allocator = CachingAllocator()
    allocator.free(allocator.malloc(100 * MiB))
    assert (allocator.allocated, allocator.reserved) == (0, 100 * MiB)
    allocator.malloc(50 * MiB)  # served by splitting the cached block
    assert (allocator.allocated, allocator.reserved) == (50 * MiB, 100 * MiB)


def test_max_split_size_keeps_oversize_blocks_whole() -> None:
    config = AllocatorConfig(max_split_size=64 * MiB)
    allocator = CachingAllocator(config)
    allocator.free(allocator.malloc(100 * MiB))
    allocator.malloc(50 * MiB)  # under 64 MiB: never from the 100 MiB block
    assert allocator.reserved == 150 * MiB
    allocator.malloc(70 * MiB)  # 100 >= 70 + 20: too much larger, a new segment
    assert allocator.reserved == 220 * MiB
    allocator.free(allocator.malloc(72 * MiB))  # its own 72 MiB segment, freed
    block = allocator.malloc(90 * MiB)  # the 100 MiB block, less than 20 MiB larger: whole
    assert block.size == 100 * MiB and allocator.reserved == 292 * MiB


def test_out_of_room_the_allocator_frees_its_cache_and_tries_again() -> None:
    allocator = CachingAllocator(limit=30 * MiB)
    allocator.free(allocator.malloc(12 * MiB))
    allocator.malloc(20 * MiB)  # 12 + 20 > 30: the cached 12 MiB segment is freed first
    assert (allocator.reserved, allocator.max_reserved, allocator.retries) == (
        20 * MiB,
        20 * MiB,
        1,
    )
    full = CachingAllocator(limit=30 * MiB)
    full.malloc(12 * MiB)  # still in use: nothing to free
    with pytest.raises(AllocatorOutOfMemory):
        full.malloc(20 * MiB)


def test_a_segment_partly_in_use_is_not_freed() -> None:
    allocator = CachingAllocator(limit=40 * MiB)
    a = allocator.malloc(3 * MiB)
    allocator.malloc(3 * MiB)  # same 20 MiB segment
    allocator.free(a)  # free, but its segment is split
    with pytest.raises(AllocatorOutOfMemory):
        allocator.malloc(25 * MiB)  # a 26 MiB segment: 46 MiB > 40 MiB


def test_expandable_segments_grow_by_pages() -> None:
    allocator = CachingAllocator(AllocatorConfig(expandable_segments=True))
    for _ in range(3):
        allocator.malloc(3 * MiB)
    assert allocator.reserved == 20 * MiB  # one 20 MiB page of the large pool
    block = allocator.malloc(15 * MiB)  # 11 MiB free at the end: one more page joins it
    assert allocator.reserved == 40 * MiB and block.size == 15 * MiB
    assert allocator.allocated == 24 * MiB  # split down to the request
    allocator.malloc(16 * MiB)  # exactly what is left
    assert allocator.reserved == 40 * MiB


def test_expandable_segments_prefer_a_block_that_is_not_the_growing_end() -> None:
    allocator = CachingAllocator(AllocatorConfig(expandable_segments=True))
    a = allocator.malloc(8 * MiB)
    start = a.address
    allocator.malloc(6 * MiB)
    allocator.free(a)  # 8 MiB free inside the page, 6 MiB free at its growing end
    # The 6 MiB block is the best fit by size, but it could grow: the 8 MiB one is taken.
    assert allocator.malloc(4 * MiB).address == start


def test_expandable_segments_give_back_whole_free_pages_when_out_of_room() -> None:
    allocator = CachingAllocator(AllocatorConfig(expandable_segments=True), limit=30 * MiB)
    blocks = [allocator.malloc(1 * MiB) for _ in range(16)]
    assert allocator.reserved == 16 * MiB  # eight 2 MiB pages of the small pool
    for block in blocks:
        allocator.free(block)
    allocator.malloc(12 * MiB)  # a 20 MiB page of the large pool: 36 > 30, so the small
    assert (allocator.reserved, allocator.retries) == (20 * MiB, 1)  # pool's pages go back


def test_frees_come_before_allocations_at_the_same_clock() -> None:
    # b is allocated by the op that last reads a: a is freed first and b reuses its block
    result = replay([], [(3 * MiB, 0, 1), (3 * MiB, 1, 2)])
    assert (result.max_allocated, result.max_reserved) == (3 * MiB, 20 * MiB)
    assert step_order([(1, 0, 1), (1, 1, 2)]) == [(0, True), (0, False), (1, True), (1, False)]


def test_the_second_step_reuses_the_first_steps_cache() -> None:
    step = [(12 * MiB, 0, 2), (16 * MiB, 1, 3), (12 * MiB, 3, 4)]
    one, two = replay([], step, steps=1), replay([], step, steps=2)
    assert one.max_reserved == two.max_reserved == 28 * MiB
    assert replay([4096], [(0, 0, 1)]).max_allocated == 4096  # an empty tensor takes no block


@pytest.mark.parametrize(
    "step",
    [
        TrainingStep("momentum", foreach=True),
        TrainingStep("adam", precision="bf16", checkpoint="stages"),
        TrainingStep("sgd", accumulate=2),
    ],
)
def test_the_steps_storages_sweep_to_its_traced_peak(step: TrainingStep) -> None:
    # Every storage alive at once, by the clocks the trace gives them, is the step's peak.
    training = cnnarch.analyze("resnet20", batch_size=4, train=True, step=step).training
    alive = sum(life.nbytes for life in training.lifetimes if life.start < 0)
    events = sorted(
        [(life.start, life.nbytes) for life in training.lifetimes if life.start >= 0]
        + [(life.stop, -life.nbytes) for life in training.lifetimes if life.start >= 0]
    )
    peak = alive
    for _, delta in events:
        alive += delta
        peak = max(peak, alive)
    assert peak == training.peak_bytes


def test_a_traced_step_replays_at_or_above_its_peak_rounded() -> None:
    summary = cnnarch.analyze(
        "resnet20", batch_size=16, train=True, step=TrainingStep("momentum", foreach=True)
    )
    training = summary.training
    persistent = [life.nbytes for life in training.lifetimes if life.start < 0]
    step = [tuple(life) for life in training.lifetimes if life.start >= 0]
    result = replay(persistent, step)
    assert not result.out_of_memory
    # The trace's peak with every storage rounded up to 512 bytes, swept like the trace's.
    events = sorted(
        [(start, round_size(n)) for n, start, _ in step if n]
        + [(stop, -round_size(n)) for n, _, stop in step if n]
    )
    alive = rounded = sum(round_size(n) for n in persistent)
    for _, delta in events:
        alive += delta
        rounded = max(rounded, alive)
    assert training.peak_bytes <= rounded <= result.max_allocated <= result.max_reserved
    # Below the allocated peak no freeing of the cache makes room.
    assert replay(persistent, step, limit=result.max_allocated - 1).out_of_memory
    assert not replay(persistent, step, limit=result.max_reserved).out_of_memory
