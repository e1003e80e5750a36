"""The smallest input a model accepts, by bisection (used by the analyzer's error messages and
by the zoo's input check)."""

from __future__ import annotations

from collections.abc import Callable


def bisect_smallest_side(
    accepts: Callable[[int], bool], start: int = 8, limit: int = 4096
) -> int | None:
    """Smallest side for which `accepts(side)` holds, assuming every larger side is accepted too;
    None if no side up to `limit` is."""
    hi = start
    while not accepts(hi):
        hi *= 2
        if hi > limit:
            return None
    lo = 0  # largest side known (or assumed) to fail
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if accepts(mid):
            hi = mid
        else:
            lo = mid
    return hi
