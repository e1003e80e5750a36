"""A model of PyTorch's CUDA caching allocator: the bytes a training step leaves *reserved*.

`torch.cuda.max_memory_allocated()` counts the blocks handed to tensors; what runs out on a card
is `max_memory_reserved()`, the segments the allocator took from the driver with `cudaMalloc`
and keeps cached. This module replays a step's allocations and frees, in the order the trace
recorded them, through the allocator's rules, as PyTorch's source states them
(c10/cuda/CUDACachingAllocator.cpp, read at pytorch/pytorch commit 001074d2; the constants
and functions named below are that file's):

- sizes are rounded up to a multiple of 512 bytes, at least 512 (`kMinBlockSize`,
  `round_size`; `roundup_power2_divisions` is off by default and not modeled);
- blocks of at most 1 MiB come from the small pool, larger ones from the large pool
  (`kSmallSize`, `get_pool`);
- a request is served by the smallest cached free block of its pool that is large enough, the
  lowest address among equal sizes (`get_free_block`, `BlockComparatorSize`);
- without one, a new segment is allocated: 2 MiB for a small request (`kSmallBuffer`), 20 MiB
  for one under 10 MiB (`kLargeBuffer`, `kMinLargeAlloc`), else the size rounded up to 2 MiB
  (`kRoundLarge`, `get_allocation_size`);
- the block found is split when what would remain is at least 512 bytes (small pool) or more
  than 1 MiB (large pool, and only for requests under `max_split_size`) (`should_split`); the
  request takes the front, the rest stays cached;
- `max_split_size` (default unlimited): a request under it is never served by a cached block at
  or above it, and a request at or above it only by a block less than 20 MiB larger
  (`get_free_block`);
- a freed block merges with its free neighbors of the same segment and stays cached
  (`free_block`, `try_merge_blocks`): reserved bytes never shrink on their own;
- when a new segment does not fit under the card's limit, the allocator frees cached
  oversize blocks (with `max_split_size` set), then every cached segment that is wholly free,
  and tries once more before raising out of memory (`malloc`, `release_cached_blocks`);
- with `expandable_segments:True` each pool has one segment that grows at its end in pages of
  2 MiB (small pool) or 20 MiB (large pool), every block is split down to 512 bytes, a request
  prefers a free block that is not the segment's growing end, and freeing the cache unmaps the
  wholly free pages (`ExpandableSegment`, `find_expandable_block`, `map_block`,
  `try_allocate_expandable_block`, `release_blocks`).

What it leaves out: streams other than the one the step runs on (every block here is on one
stream), CUDA graphs' private pools, the garbage-collection threshold (off by default),
`cudaMalloc`'s own addresses (segments here are laid out one after another, which only decides
ties between free blocks of equal size).

`allocated` here is PyTorch's `allocated_bytes`: the sizes of the blocks handed out (rounded,
and a whole cached block when it is not split), as `max_memory_allocated` reports them.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MIN_BLOCK = 512  # kMinBlockSize: every size is rounded up to a multiple of it
SMALL_SIZE = 1 << 20  # kSmallSize: the largest request of the small pool, 1 MiB
SMALL_BUFFER = 2 << 20  # kSmallBuffer: a small pool's segment, 2 MiB
LARGE_BUFFER = 20 << 20  # kLargeBuffer: a large segment for requests under 10 MiB, 20 MiB
MIN_LARGE_ALLOC = 10 << 20  # kMinLargeAlloc: requests from 10 MiB get a segment of their own
ROUND_LARGE = 2 << 20  # kRoundLarge: such segments are rounded up to 2 MiB
NO_MAX_SPLIT = 1 << 64  # max_split_size's default: no limit
# An expandable segment reserves address space it maps page by page; its size only has to be
# larger than anything mapped (PyTorch reserves 1 1/8 of the card).
EXPANDABLE_SPACE = 1 << 50


def round_size(nbytes: int) -> int:
    """A request's size as the allocator serves it: a multiple of 512 bytes, at least 512."""
    return max(MIN_BLOCK, -(-nbytes // MIN_BLOCK) * MIN_BLOCK)


def segment_size(size: int) -> int:
    """Bytes of the segment `cudaMalloc` gets for a (rounded) request no cached block serves."""
    if size <= SMALL_SIZE:
        return SMALL_BUFFER
    if size < MIN_LARGE_ALLOC:
        return LARGE_BUFFER
    return -(-size // ROUND_LARGE) * ROUND_LARGE


@dataclass(frozen=True)
class AllocatorConfig:
    """The settings of `PYTORCH_CUDA_ALLOC_CONF` the model follows.

    expandable_segments: `expandable_segments:True`; max_split_size: `max_split_size_mb`, in
    bytes (None: unlimited, the default).
    """

    expandable_segments: bool = False
    max_split_size: int | None = None

    @property
    def split_limit(self) -> int:
        return NO_MAX_SPLIT if self.max_split_size is None else self.max_split_size


class AllocatorOutOfMemory(Exception):
    """The allocator could not serve a request under its limit, even with its cache freed."""


class _Block:
    """A range of one segment, free or handed out; `prev`/`next` are its neighbors in the
    segment. Blocks of an expandable segment that are not backed by memory are `mapped=False`."""

    __slots__ = ("address", "allocated", "mapped", "next", "pool", "prev", "size")

    def __init__(self, address: int, size: int, pool: _Pool, mapped: bool = True) -> None:
        self.address = address
        self.size = size
        self.pool = pool
        self.mapped = mapped
        self.allocated = False
        self.prev: _Block | None = None
        self.next: _Block | None = None

    @property
    def is_split(self) -> bool:
        return self.prev is not None or self.next is not None


class _Pool:
    """The cached free blocks of one pool, by (size, address); for expandable segments also the
    unmapped ranges, by address."""

    def __init__(self, small: bool, page: int) -> None:
        self.small = small
        self.page = page  # an expandable segment's page
        self.free: list[tuple[int, int, _Block]] = []
        self.unmapped: list[tuple[int, _Block]] = []

    def insert(self, block: _Block) -> None:
        bisect.insort(self.free, (block.size, block.address, block))

    def remove(self, block: _Block) -> None:
        index = bisect.bisect_left(self.free, (block.size, block.address))
        del self.free[index]

    def add_unmapped(self, block: _Block) -> None:
        bisect.insort(self.unmapped, (block.address, block))

    def remove_unmapped(self, block: _Block) -> None:
        del self.unmapped[bisect.bisect_left(self.unmapped, (block.address,))]


class CachingAllocator:
    """One device's caching allocator, as PyTorch's (see the module's docstring).

    Args:
        config: the allocator's settings.
        limit: bytes the allocator may reserve (the card's memory less what others hold);
            None for no limit.
    """

    def __init__(self, config: AllocatorConfig | None = None, limit: int | None = None) -> None:
        self.config = config or AllocatorConfig()
        self.limit = limit
        self.small = _Pool(small=True, page=SMALL_BUFFER)
        self.large = _Pool(small=False, page=LARGE_BUFFER)
        self.allocated = 0
        self.reserved = 0
        self.max_allocated = 0
        self.max_reserved = 0
        self.retries = 0  # times the cache was freed to make room
        self._next_address = itertools.count(1).__next__  # segment numbers, for addresses
        if self.config.expandable_segments:
            for pool in (self.small, self.large):
                tail = _Block(self._next_address() * EXPANDABLE_SPACE, EXPANDABLE_SPACE, pool)
                tail.mapped = False
                pool.add_unmapped(tail)

    # -- the two calls ---------------------------------------------------------------------------
    def malloc(self, nbytes: int) -> _Block:
        """The block serving a request of `nbytes`; raises `AllocatorOutOfMemory` when even
        freeing the cache leaves no room under the limit."""
        size = round_size(nbytes)
        pool = self.small if size <= SMALL_SIZE else self.large
        block = self._free_block(pool, size)
        if block is None:
            block = (
                self._new_block(pool, size)
                or (self._release_oversize(pool, size) and self._new_block(pool, size))
                or (self._release_cache() and self._new_block(pool, size))
            )
            if block is None:
                raise AllocatorOutOfMemory(
                    f"{size} bytes with {self.allocated} allocated, {self.reserved} reserved"
                )
        if self._should_split(block, size):
            front = _Block(block.address, size, pool)
            front.prev, front.next = block.prev, block
            if block.prev is not None:
                block.prev.next = front
            block.prev = front
            block.address += size
            block.size -= size
            pool.insert(block)
            block = front
        block.allocated = True
        self.allocated += block.size
        self.max_allocated = max(self.max_allocated, self.allocated)
        return block

    def free(self, block: _Block) -> None:
        """Return `block` to its pool's cache, merged with its free neighbors."""
        block.allocated = False
        self.allocated -= block.size
        for neighbor in (block.prev, block.next):
            self._merge(block, neighbor)
        block.pool.insert(block)

    # -- finding and making blocks ---------------------------------------------------------------
    def _free_block(self, pool: _Pool, size: int) -> _Block | None:
        free = pool.free
        index = bisect.bisect_left(free, (size,))
        if index == len(free):
            return None
        if self.config.expandable_segments:
            # Best fit by the size a block could grow to: the segment's growing end is taken
            # only when no other block fits.
            while index + 1 < len(free) and _expandable_size(free[index + 1][2]) < _expandable_size(
                free[index][2]
            ):
                index += 1
        block = free[index][2]
        limit = self.config.split_limit
        if size < limit <= block.size:
            return None  # an oversize block is not split for a smaller request
        if size >= limit and block.size >= size + LARGE_BUFFER:
            return None  # nor given whole to a request much smaller than itself
        del free[index]
        return block

    def _should_split(self, block: _Block, size: int) -> bool:
        remaining = block.size - size
        if block.pool.small or self.config.expandable_segments:
            return remaining >= MIN_BLOCK
        return size < self.config.split_limit and remaining > SMALL_SIZE

    def _new_block(self, pool: _Pool, size: int) -> _Block | None:
        if self.config.expandable_segments:
            return self._grow(pool, size)
        allocation = segment_size(size)
        if not self._reserve(allocation):
            return None
        return _Block(self._next_address() * EXPANDABLE_SPACE, allocation, pool)

    def _reserve(self, nbytes: int) -> bool:
        if self.limit is not None and self.reserved + nbytes > self.limit:
            return False
        self.reserved += nbytes
        self.max_reserved = max(self.max_reserved, self.reserved)
        return True

    # -- expandable segments ---------------------------------------------------------------------
    def _grow(self, pool: _Pool, size: int) -> _Block | None:
        """`try_allocate_expandable_block`: map pages at the lowest address where the free
        blocks and unmapped pages that follow each other reach `size`."""
        candidate = None
        for _, unmapped in pool.unmapped:
            start = unmapped.prev if _is_free(unmapped.prev) else unmapped
            if _room(start, size):
                candidate = start
                break
        assert candidate is not None  # the segment's address space is far larger than a card
        if not candidate.mapped:
            candidate = self._map(candidate, min(candidate.size, size))
        while candidate is not None and candidate.size < size:
            following = candidate.next
            assert following is not None and not following.mapped
            candidate = self._map(following, min(size - candidate.size, following.size))
        if candidate is None:
            return None
        pool.remove(candidate)
        return candidate

    def _map(self, block: _Block, size: int) -> _Block | None:
        """`map_block`: back the first `size` bytes of the unmapped `block` with whole pages;
        the mapped part takes in its free neighbors and is returned (None: over the limit)."""
        pool = block.pool
        mapped = -(-size // pool.page) * pool.page
        if not self._reserve(mapped):
            return None
        pool.remove_unmapped(block)
        block.mapped = True
        if mapped < block.size:
            rest = _Block(block.address + mapped, block.size - mapped, pool, mapped=False)
            rest.prev, rest.next = block, block.next
            if block.next is not None:
                block.next.prev = rest
            block.next = rest
            block.size = mapped
            pool.add_unmapped(rest)
        for neighbor in (block.prev, block.next):
            if neighbor is not None and neighbor.mapped and not neighbor.allocated:
                pool.remove(neighbor)
                self._absorb(block, neighbor)
        pool.insert(block)
        return block

    def _unmap(self, block: _Block) -> None:
        """`unmap_block`: give back the whole pages inside the free `block`."""
        pool = block.pool
        first = -(-block.address // pool.page) * pool.page
        end = (block.address + block.size) // pool.page * pool.page
        if first >= end:
            return
        pool.remove(block)
        if first > block.address:
            before = _Block(block.address, first - block.address, pool)
            before.prev, before.next = block.prev, block
            if block.prev is not None:
                block.prev.next = before
            block.prev = before
            pool.insert(before)
        if end < block.address + block.size:
            after = _Block(end, block.address + block.size - end, pool)
            after.prev, after.next = block, block.next
            if block.next is not None:
                block.next.prev = after
            block.next = after
            pool.insert(after)
        block.address, block.size, block.mapped = first, end - first, False
        self.reserved -= block.size
        for neighbor in (block.prev, block.next):
            if neighbor is not None and not neighbor.mapped:
                pool.remove_unmapped(neighbor)
                self._absorb(block, neighbor)
        pool.add_unmapped(block)

    # -- freeing the cache -----------------------------------------------------------------------
    def _release_oversize(self, pool: _Pool, size: int) -> bool:
        """`release_available_cached_blocks`: with `max_split_size` set, free cached blocks at
        or above it (one large enough, else the largest first) to make room for `size`."""
        limit = self.config.split_limit
        if limit == NO_MAX_SPLIT or self.config.expandable_segments:
            return False
        target = max(size, limit)
        oversize = [b for _, _, b in pool.free if b.size >= limit and not b.is_split]
        enough = [b for b in oversize if b.size >= target]
        if enough:
            self._release_segment(enough[0])
            return True
        released = 0
        for block in reversed(oversize):
            if released >= target:
                break
            released += block.size
            self._release_segment(block)
        return released >= target

    def _release_cache(self) -> bool:
        """`release_cached_blocks`: free every cached segment that is wholly free (unmap every
        wholly free page of an expandable segment)."""
        self.retries += 1
        for pool in (self.large, self.small):
            for _, _, block in list(pool.free):
                if self.config.expandable_segments:
                    self._unmap(block)
                elif not block.is_split:
                    self._release_segment(block)
        return True

    def _release_segment(self, block: _Block) -> None:
        block.pool.remove(block)
        self.reserved -= block.size

    # -- neighbors ----------------------------------------------------------------------------
    def _merge(self, block: _Block, neighbor: _Block | None) -> None:
        """`try_merge_blocks`: `block` takes in a free neighbor of the same mapping."""
        if neighbor is None or neighbor.allocated or neighbor.mapped != block.mapped:
            return
        if neighbor.mapped:
            neighbor.pool.remove(neighbor)
        else:
            neighbor.pool.remove_unmapped(neighbor)
        self._absorb(block, neighbor)

    @staticmethod
    def _absorb(block: _Block, neighbor: _Block) -> None:
        if neighbor is block.prev:
            block.address = neighbor.address
            block.prev = neighbor.prev
            if block.prev is not None:
                block.prev.next = block
        else:
            block.next = neighbor.next
            if block.next is not None:
                block.next.prev = block
        block.size += neighbor.size


def _is_free(block: _Block | None) -> bool:
    return block is not None and not block.allocated


def _room(block: _Block | None, size: int) -> bool:
    """Do the free (mapped or not) blocks from `block` on reach `size` bytes?"""
    total = 0
    while total < size and _is_free(block):
        assert block is not None
        total += block.size
        block = block.next
    return total >= size


def _expandable_size(block: _Block) -> int:
    following = block.next
    return block.size + (following.size if following is not None and not following.mapped else 0)


# -- replaying a step ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Replay:
    """What the allocator held while a step ran (bytes): the peaks `torch.cuda` would report as
    `max_memory_allocated()` and `max_memory_reserved()`; `out_of_memory` when a request failed
    even after the cache was freed (the peaks are then those up to that request)."""

    max_allocated: int
    max_reserved: int
    out_of_memory: bool
    retries: int  # times the cache was freed to make room (`num_alloc_retries`)


def replay(
    persistent: Iterable[int],
    step: Sequence[tuple[int, int, int]],
    *,
    steps: int = 2,
    config: AllocatorConfig | None = None,
    limit: int | None = None,
) -> Replay:
    """Replay a training loop through the allocator: the `persistent` storages (bytes, in the
    order they are allocated: parameters, buffers, the batch, optimizer state, workspaces) once,
    then `steps` times the step's own storages, each `(bytes, clock allocated, clock freed)`,
    in clock order (at one clock, frees before allocations; allocations in the order given),
    what is still alive at a step's end freed there (`zero_grad(set_to_none=True)`).

    Args:
        persistent: sizes of the storages alive throughout.
        step: the step's storages, as `(nbytes, start, stop)`.
        steps: steps replayed; the second starts from the cache the first left (the steady
            state the peak is measured in).
        config: the allocator's settings.
        limit: bytes the allocator may reserve; None for none.
    """
    allocator = CachingAllocator(config, limit)
    try:
        for nbytes in persistent:
            allocator.malloc(nbytes)
        order = step_order(step)
        for _ in range(steps):
            blocks: list[_Block | None] = [None] * len(step)
            for index, allocate in order:
                if allocate:
                    nbytes = step[index][0]
                    # PyTorch hands an empty tensor no block
                    blocks[index] = allocator.malloc(nbytes) if nbytes else None
                elif (block := blocks[index]) is not None:
                    allocator.free(block)
    except AllocatorOutOfMemory:
        return Replay(allocator.max_allocated, allocator.max_reserved, True, allocator.retries)
    return Replay(allocator.max_allocated, allocator.max_reserved, False, allocator.retries)


def step_order(step: Sequence[tuple[int, int, int]]) -> list[tuple[int, bool]]:
    """(index into `step`, True to allocate / False to free) in the order they happen: by clock,
    frees first at each clock, then allocations in the order given; a storage never freed in
    the step (stop `NEVER_FREED`) is freed at its end."""
    events = [(start, 1, index) for index, (_, start, _) in enumerate(step)]
    events += [(stop, 0, index) for index, (_, _, stop) in enumerate(step)]
    events.sort()
    return [(index, bool(kind)) for _, kind, index in events]
