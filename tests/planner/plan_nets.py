"""Small nets for checking predictions against real steps on the CPU, and running ranks."""

from __future__ import annotations

import socket
from collections.abc import Callable

import torch
import torch.multiprocessing as mp
from torch import nn

BATCH = 8


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Sequential(
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
        ),
        nn.Flatten(),
        nn.Linear(32 * 16 * 16, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def pooled_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


WIDE = 512


def wide_net() -> nn.Module:
    """Four equal fully connected units: its training memory is mostly parameters, gradients
    and optimizer state, what sharding divides."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Flatten()]
    for _ in range(4):
        layers += [nn.Linear(WIDE, WIDE), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def run_ranks(rank: Callable[[int, int, dict], None], world_size: int = 2) -> dict:
    """Run `rank(rank_index, port, results)` in `world_size` spawned processes (each joins a
    gloo group on `port` and fills `results`); what they filled in."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(rank, args=(port, results), nprocs=world_size)
        return dict(results)
