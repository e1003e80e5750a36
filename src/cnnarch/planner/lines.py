"""`PeakLines`: the peak of a training step at every batch, from the traces of two batches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cnnarch.errors import CnnarchError

# Micro-batches per device the planner looks at, at most: far beyond any card's memory for a
# network that does anything per example.
SEARCH_LIMIT = 1 << 24


@dataclass(frozen=True)
class PeakLines:
    """The peak of a training step at every batch, from two traces: at each moment the step
    allocates, the bytes alive are affine in the batch (every storage is a fixed size or so
    many bytes per example), so the traces at two batches give each moment's line, and the
    peak at batch B is the largest line's value there. The lines below another at every
    batch are dropped."""

    lines: tuple[tuple[int, int], ...]  # (bytes at batch 0, bytes per example), slope ascending
    smallest: int  # the smallest batch that runs

    @classmethod
    def through(cls, first: int, at_first: Iterable[int], at_next: Iterable[int]) -> PeakLines:
        """The lines through each moment's bytes at batches `first` and `first + 1`."""
        best: dict[int, int] = {}  # slope -> the largest intercept with it
        for low, high in zip(at_first, at_next, strict=True):
            slope = high - low
            start = low - slope * first
            best[slope] = max(best.get(slope, start), start)
        hull: list[tuple[int, int]] = []  # the upper envelope, slopes ascending
        for slope, start in sorted(best.items()):
            # a line of smaller slope that is not above this one at `first` never is after it
            while hull and hull[-1][0] + hull[-1][1] * first <= start + slope * first:
                hull.pop()
            hull.append((start, slope))
        return cls(tuple(hull), first)

    def peak(self, batch: int) -> int:
        return max(start + slope * batch for start, slope in self.lines)

    def largest_batch(self, usable: int, limit: int = SEARCH_LIMIT) -> int:
        """The largest batch whose peak is at most `usable`, at most `limit`; 0 if not even
        the smallest batch's is."""
        if self.peak(self.smallest) > usable:
            return 0
        growing = [(usable - start) // slope for start, slope in self.lines if slope > 0]
        return min([*growing, limit])

    def to_dict(self) -> dict[str, object]:
        """Plain data (JSON-able) for a page's script: `peak(B)` is the largest
        `start + per_example * B` over `lines`, for B from `smallest` on."""
        return {
            "smallest": self.smallest,
            "lines": [{"start": start, "per_example": slope} for start, slope in self.lines],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> PeakLines:
        """The lines `to_dict` wrote."""
        lines, smallest = data.get("lines"), data.get("smallest")
        problem = "expected 'smallest' (a batch) and a list of 'lines' {'start', 'per_example'}"
        if not isinstance(smallest, int) or not isinstance(lines, list) or not lines:
            raise CnnarchError(f"not the lines PeakLines.to_dict writes: {problem}")
        try:
            pairs = tuple((int(line["start"]), int(line["per_example"])) for line in lines)
        except (KeyError, TypeError, ValueError) as err:
            raise CnnarchError(f"not the lines PeakLines.to_dict writes: {problem}") from err
        return cls(pairs, smallest)
