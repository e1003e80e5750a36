"""The traces the planner reads: one `cnnarch.analyze` per batch it looks at, each made once, and
what two of them say about every other batch.

A training step's storages are each a fixed size or so many bytes per example, and its moments
sum them, so the traces at the two smallest batches give every storage's size and every
moment's bytes at any batch (when both traces made the same storages at the same clocks; where
a batch of one takes another path, the two batches after it do): the search replays the
allocator at batches it never traced, and traces only the batch it names and the next to check
the answer.

A model whose forward pass needs real values (`.item()`, a data-dependent shape) is traced on
real CPU tensors, which computes the pass and holds its memory: without `allow_run` that only
happens at the smallest batches (`REAL_RUN_BATCHES`), and every larger batch is read off them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from cnnarch.analysis.memory import (
    BREAKDOWN_ORDER,
    GATHERED_PARAMETERS,
    GRADIENT_BUCKETS,
    INPUTS,
    OPTIMIZER_STATE,
    PARAMETERS,
)
from cnnarch.analysis.summary import Summary
from cnnarch.analysis.training_modes import GRAD_SCALER_BYTES, TrainingStep
from cnnarch.errors import CnnarchError
from cnnarch.planner.lines import PeakLines
from cnnarch.zoo_models import analyze

# Without `allow_run`, a model that needs real data runs for real at these batches at most (its
# two smallest, 1 and 2, or 2 and 3 for a model that refuses a batch of 1).
REAL_RUN_BATCHES = 3
# DDP's gradient buckets: 25 MiB each (`bucket_cap_mb`), replayed as blocks of that size.
DDP_BUCKET_BYTES = 25 * 2**20
ACTIVATIONS = "activations"  # what an inference pass holds beyond parameters and inputs


@dataclass(frozen=True)
class Storages:
    """A step's storages at one batch, as the allocator sees them: `persistent` (bytes, in the
    order allocated) alive throughout, `step` the step's own as (bytes, clock allocated, clock
    freed)."""

    persistent: tuple[int, ...]
    step: tuple[tuple[int, int, int], ...]


class NeedsRealRun(CnnarchError):
    """Planning this batch needs a real CPU pass above `REAL_RUN_BATCHES` (the model needs data)
    and `allow_run` was not given."""


class StepTraces:
    """Each batch's trace, made once; what the two smallest say about the others.

    Args:
        model: a zoo name or any `nn.Module`.
        input_size: one example's size; the zoo card's by default.
        step: the training step, or None for an inference pass.
        variant: the zoo variant.
        allow_run: let a model that needs real data run on the CPU at any batch.
    """

    def __init__(
        self,
        model: nn.Module | str,
        input_size: Sequence[int] | None,
        step: TrainingStep | None,
        variant: str,
        allow_run: bool = False,
    ) -> None:
        self.model = model
        self.input_size = input_size
        self.step = step
        self.variant = variant
        self.allow_run = allow_run
        self.peaks: dict[int, int] = {}
        self.fixed = 0  # bytes needed whatever the batch (the same in every trace)
        self.name = ""
        self.needs_data = ""  # why the passes ran on real CPU tensors; "" when on meta
        self._details: dict[int, tuple[str, dict[str, int]]] = {}
        self._moments: dict[int, tuple[tuple[str, tuple[int, ...]], ...]] = {}
        self._storages: dict[int, Storages] = {}
        self._storage_lines: StorageLines | None = None
        self._smallest: int | None = None

    # -- tracing --------------------------------------------------------------------------------
    @property
    def smallest(self) -> int:
        """The smallest batch that runs: 1, or 2 for a model whose training forward pass
        refuses a single example (batch norm over a 1x1 map: Inception-v3's auxiliary head);
        batch 1's error is raised if batch 2 fails too."""
        if self._smallest is None:
            try:
                self.peak(1)
                self._smallest = 1
            except NeedsRealRun:
                raise
            except CnnarchError:
                if self.step is None:
                    raise
                try:
                    self.peak(2)
                except CnnarchError:
                    self.peak(1)  # raises batch 1's error
                self._smallest = 2
        return self._smallest

    def traced(self, batch: int) -> bool:
        return batch in self.peaks

    def peak(self, batch: int) -> int:
        """The traced peak at `batch` (allocated bytes, exact), tracing it if need be."""
        if batch not in self.peaks:
            self._trace(batch)
        return self.peaks[batch]

    def _trace(self, batch: int) -> None:
        real_run = self.allow_run or batch <= REAL_RUN_BATCHES
        if self.needs_data and not real_run:
            raise NeedsRealRun(self._run_needed(batch))
        try:
            summary = analyze(
                self.model,
                self.input_size,
                batch_size=batch,
                train=self.step is not None,
                step=self.step,
                variant=self.variant,
                device="auto" if real_run else "meta",
            )
        except CnnarchError as err:
            if real_run or "needs real data" not in str(err):
                raise
            self.needs_data = str(err)
            raise NeedsRealRun(self._run_needed(batch)) from err
        if summary.mode == "cpu":
            self.needs_data = summary.mode_reason
        self.name = summary.model_name
        self._record(batch, summary)

    def _run_needed(self, batch: int) -> str:
        return (
            f"{self.name or 'the model'} needs real data ({self.needs_data}): planning batch "
            f"{batch} means running it for real on the CPU; add --allow-run "
            f"(allow_run=True) to let it"
        )

    def _record(self, batch: int, summary: Summary) -> None:
        t = summary.training
        if t is None:
            activations = summary.inference_peak_bytes - summary.param_bytes
            activations -= summary.buffer_bytes + summary.input_bytes
            breakdown = {
                PARAMETERS: summary.param_bytes + summary.buffer_bytes,
                INPUTS: summary.input_bytes,
                ACTIVATIONS: activations,
            }
            self.peaks[batch] = summary.inference_peak_bytes
            self._details[batch] = ("forward", breakdown)
            self.fixed = summary.param_bytes + summary.buffer_bytes
            return
        self.peaks[batch] = t.peak_bytes
        self._details[batch] = (t.peak_phase, dict(t.at_peak))
        self._moments[batch] = t.moments
        self.fixed = fixed_bytes(summary, self.step)
        storages = step_storages(summary)
        if storages is not None:
            self._storages[batch] = storages

    # -- reading other batches off two traces ---------------------------------------------------
    def lines(self) -> PeakLines | None:
        """The peak at every batch from the traces of the two smallest batches (or of the two
        after the smallest, where its step takes another path); None for inference, ZeRO-2/3
        (their peak is arithmetic on the trace), or where the steps allocate a different number
        of times."""
        pair = self._moment_pair()
        if pair is None:
            return None
        first, one, two = pair
        return PeakLines.through(first, (sum(m) for _, m in one), (sum(m) for _, m in two))

    def peak_at(self, batch: int) -> int:
        """The peak at `batch`: traced if it was, else read off the lines (which equal the
        traces wherever both exist)."""
        if batch in self.peaks:
            return self.peaks[batch]
        lines = self.lines()
        if lines is None:
            return self.peak(batch)
        return lines.peak(batch)

    def details_at(self, batch: int) -> tuple[str, dict[str, int]]:
        """(phase of the peak, bytes by category there) at `batch`."""
        if batch in self._details:
            return self._details[batch]
        pair = self._moment_pair()
        if pair is None:
            self.peak(batch)
            return self._details[batch]
        first, one, two = pair
        offset = batch - first
        moments = [
            (phase, tuple(a + offset * (b - a) for a, b in zip(low, high, strict=True)))
            for (phase, low), (_, high) in zip(one, two, strict=True)
        ]
        phase, parts = max(moments, key=lambda moment: sum(moment[1]))  # the first largest
        return phase, dict(zip(BREAKDOWN_ORDER, parts, strict=True))

    def storages(self, batch: int) -> Storages | None:
        """The step's storages at `batch`: traced, or read off `storage_lines`; None where the
        trace has none to replay (inference, ZeRO-2/3) or they cannot be read off (the steps
        differ)."""
        if batch in self._storages:
            return self._storages[batch]
        if batch in self.peaks or self.step is None:
            return None
        lines = self.storage_lines()
        if lines is None or batch < lines.start:
            return None
        return lines.at(batch)

    def storage_lines(self) -> StorageLines | None:
        """Every storage of the step as a line in the batch (`StorageLines.read_off`); None for
        inference, ZeRO-2/3 or where the batches' storages do not match."""
        if self._storage_lines is None and self.replayable():

            def traced(batch: int) -> Storages | None:
                self.peak(batch)
                return self._storages.get(batch)

            self._storage_lines = StorageLines.read_off(traced, self.smallest)
        return self._storage_lines

    def replayable(self) -> bool:
        """Whether the step's storages can be replayed at all (training, not ZeRO-2/3)."""
        return self.smallest in self._storages

    def _moment_pair(
        self,
    ) -> (
        tuple[int, tuple[tuple[str, tuple[int, ...]], ...], tuple[tuple[str, tuple[int, ...]], ...]]
        | None
    ):
        """(batch, its moments, the next batch's moments): the two smallest batches, or the two
        after the smallest where the smallest's step has other moments; None where there are
        none to read off (inference, ZeRO-2/3) or neither pair agrees."""
        first = self.smallest
        for start in (first, first + 1):
            self.peak(start + 1)
            one, two = self._moments.get(start), self._moments.get(start + 1)
            if not one or not two:
                return None
            if len(one) == len(two):
                return start, one, two
        return None


@dataclass(frozen=True)
class StorageLines:
    """A step's storages at every batch from `start` on, read off the traces of `start` and
    the next batch: each storage is a fixed size plus so many bytes per example, allocated and
    freed at the same clocks.

    persistent: (bytes at `start`, bytes per example) of each storage alive throughout, in the
    order allocated; step: (bytes at `start`, bytes per example, clock allocated, clock freed)
    of each of the step's own.
    """

    start: int
    persistent: tuple[tuple[int, int], ...]
    step: tuple[tuple[int, int, int, int], ...]

    @classmethod
    def through(cls, start: int, one: Storages, two: Storages) -> StorageLines | None:
        """The lines through the storages at `start` (`one`) and `start + 1` (`two`); None
        where the two steps differ in anything but sizes."""
        if not _same_clocks(one, two):
            return None
        persistent = tuple((a, b - a) for a, b in zip(one.persistent, two.persistent, strict=True))
        step = tuple(
            (a, b - a, begin, end)
            for (a, begin, end), (b, _, _) in zip(one.step, two.step, strict=True)
        )
        return cls(start, persistent, step)

    @classmethod
    def read_off(
        cls, traced: Callable[[int], Storages | None], smallest: int
    ) -> StorageLines | None:
        """The lines through the storages of the two smallest batches where they match clock
        for clock, else through the two after the smallest (a batch of one can take another
        path in the backward pass: the paper variants of AlexNet, ZFNet, VGG and GoogLeNet);
        None where neither pair does. `traced(batch)`: the step's storages at `batch`, traced
        (None where there are none to replay)."""
        for start in (smallest, smallest + 1):
            one, two = traced(start), traced(start + 1)
            found = cls.through(start, one, two) if one and two else None
            if found is not None:
                return found
        return None

    def at(self, batch: int) -> Storages:
        """The storages at `batch` (from `start` on)."""
        offset = batch - self.start
        return Storages(
            tuple(a + offset * d for a, d in self.persistent),
            tuple((a + offset * d, begin, end) for a, d, begin, end in self.step),
        )

    def with_optimizer(self, other: Storages) -> StorageLines | None:
        """Another optimizer's storages at every batch, from its trace at `start` alone, these
        being SGD's: its forward and backward passes are SGD's (checked: SGD's storages, clock
        for clock, are all among its own, the persistent ones with the other's inserted in one
        place, the step's as the first of its own), and what it adds, its state and the
        temporaries of its step, has the parameters' sizes at every batch. None where the
        check fails (trace the other optimizer at a second batch instead)."""
        mine = self.at(self.start)
        ours, theirs = mine.persistent, other.persistent
        extra = len(theirs) - len(ours)
        # where the other's persistent storages go among SGD's: after the storages both start
        # with and before those both end with
        low = len(ours) - _common_prefix(ours[::-1], theirs[::-1])
        high = _common_prefix(ours, theirs)
        if extra < 0 or max(low, 0) > high:
            return None

        def inserted(at: int) -> tuple[tuple[int, int], ...]:
            added = tuple((nbytes, 0) for nbytes in theirs[at : at + extra])
            return self.persistent[:at] + added + self.persistent[at:]

        persistent = inserted(max(low, 0))
        if inserted(min(high, len(ours))) != persistent:
            return None  # sizes alike where they could go, but not all bytes per example
        steps = len(mine.step)
        if other.step[:steps] != mine.step:
            return None
        last = max((begin for _, begin, _ in mine.step), default=-1)
        if any(begin <= last for _, begin, _ in other.step[steps:]):
            return None  # the optimizer's own storages come after SGD's, in its step
        step = self.step + tuple(
            (nbytes, 0, begin, end) for nbytes, begin, end in other.step[steps:]
        )
        return StorageLines(self.start, persistent, step)


def _common_prefix(one: Sequence[int], two: Sequence[int]) -> int:
    count = 0
    for a, b in zip(one, two, strict=False):
        if a != b:
            break
        count += 1
    return count


def _same_clocks(one: Storages, two: Storages) -> bool:
    return (
        len(one.persistent) == len(two.persistent)
        and len(one.step) == len(two.step)
        and all(a[1:] == b[1:] for a, b in zip(one.step, two.step, strict=True))
    )


def fixed_bytes(summary: Summary, step: TrainingStep | None) -> int:
    """Bytes a traced training step needs whatever the batch: parameters, buffers, gradients,
    optimizer state, weight copies and gradient buckets (per rank: ZeRO-2/3's shards and
    gathered units)."""
    t = summary.training
    assert t is not None
    if step is not None and step.fully_sharded:
        # each rank's shards and the gathered units, not the whole model
        sharded = (PARAMETERS, GATHERED_PARAMETERS, OPTIMIZER_STATE)
        fixed = sum(t.at_peak.get(k, 0) for k in sharded)
        return fixed + -(-t.grads_bytes // step.world_size) + t.weight_copies_bytes
    fixed = t.params_bytes + t.buffer_bytes + t.grads_bytes
    fixed += t.optimizer_state_bytes + t.weight_copies_bytes
    return fixed + t.at_peak.get(GRADIENT_BUCKETS, 0)


def step_storages(summary: Summary) -> Storages | None:
    """A training step's storages as the allocator sees them, from its trace; None where the
    trace has none to replay (inference, ZeRO-2/3)."""
    t = summary.training
    if t is None or not t.lifetimes:
        return None
    persistent = [life.nbytes for life in t.lifetimes if life.start < 0]
    persistent += _untraced_blocks(t.at_peak.get(GRADIENT_BUCKETS, 0), t.precision)
    own = tuple((life.nbytes, life.start, life.stop) for life in t.lifetimes)
    return Storages(tuple(persistent), tuple(s for s in own if s[1] >= 0))


def _untraced_blocks(buckets: int, precision: str) -> list[int]:
    """Storages the step holds that the trace counts only as bytes: DDP's gradient buckets (as
    blocks of `DDP_BUCKET_BYTES`) and float16's GradScaler state (three scalars)."""
    blocks = [DDP_BUCKET_BYTES] * (buckets // DDP_BUCKET_BYTES)
    blocks += [buckets % DDP_BUCKET_BYTES] if buckets % DDP_BUCKET_BYTES else []
    if precision == "fp16":
        blocks += [GRAD_SCALER_BYTES // 3] * 3
    return blocks
