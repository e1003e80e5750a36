"""torch.distributed support: the process group `torchrun` describes, and collective helpers.

`torchrun` sets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT;
without them, everything here acts as a world of one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistContext:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(
            rank=int(os.environ["RANK"]),
            world_size=world,
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
        )

    def init(self, device: torch.device) -> bool:
        """Join the process group (gloo on CPU, nccl on GPU); True if this call created it."""
        if not self.enabled or dist.is_initialized():
            return False
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)  # nccl uses the device set by the caller
        return True

    def all_reduce(self, values: torch.Tensor, op: Any = None) -> torch.Tensor:
        """Sum (or `op`) of `values` over all processes; `values` itself in a world of one."""
        if not self.enabled:
            return values
        values = values.clone()
        dist.all_reduce(values, op=op or dist.ReduceOp.SUM)
        return values

    def all_gather_object(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered


def cpu_threads_per_process(local_world_size: int) -> int:
    """This machine's usable cores split evenly among the processes started on it."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, local_world_size))
