"""The training-memory planner: will a model train on a card, and at what batch."""

from cnnarch.planner.allocator import AllocatorConfig, CachingAllocator, Replay, replay
from cnnarch.planner.budget import parse_bytes
from cnnarch.planner.cards import CARDS, Card, find_card
from cnnarch.planner.lines import PeakLines
from cnnarch.planner.search import (
    DEFAULT_RESERVE,
    Budget,
    NothingFits,
    Plan,
    make_budget,
    peak_lines,
    plan,
)
from cnnarch.planner.table import FitRow, fit_table_rows

__all__ = [
    "CARDS",
    "DEFAULT_RESERVE",
    "AllocatorConfig",
    "Budget",
    "CachingAllocator",
    "Card",
    "FitRow",
    "NothingFits",
    "PeakLines",
    "Plan",
    "Replay",
    "find_card",
    "fit_table_rows",
    "make_budget",
    "parse_bytes",
    "peak_lines",
    "plan",
    "replay",
]
