"""Cards by name at the memory their runtime reports, and the terms of each generation."""

from __future__ import annotations

import pytest

from cnnarch.errors import CnnarchError
from cnnarch.planner import CARDS, find_card, make_budget
from cnnarch.planner.cards import GIB, low_end_of_gib
from cnnarch.planner.device import (
    CUBLAS_WORKSPACE,
    CUBLAS_WORKSPACE_SM90,
    GENERATIONS,
    UNKNOWN_GENERATION,
    cublas_workspaces,
    margin_bytes,
)


def test_the_cards_of_the_table() -> None:
    assert list(CARDS) == [
        "t4",
        "l4",
        "a10g",
        "rtx3090",
        "rtx4090",
        "a100-40gb",
        "a100-80gb",
        "h100-80gb",
        "h200",
    ]
    for card in CARDS.values():
        assert card.generation in GENERATIONS
        assert card.source and ("derived" in card.source) == card.derived
        sold = float(card.sold_as.split()[0])
        # less than the GiB it is sold as, by the driver's share (and ECC's, on the T4 and
        # L4): within 10%
        assert 0.9 * sold * GIB < card.total_memory < sold * GIB


def test_reported_figures_as_printed() -> None:
    # deviceQuery's exact bytes; an OOM message's GiB at the low end of its rounding
    assert CARDS["a100-40gb"].total_memory == 42_298_834_944
    assert f"{CARDS['h100-80gb'].total_memory / GIB:.2f}" == "79.11"
    assert f"{(CARDS['h100-80gb'].total_memory - 1) / GIB:.2f}" == "79.10"
    assert low_end_of_gib(14.75) == CARDS["t4"].total_memory
    # derived: the H200 at the H100's share of its 80 GiB
    assert CARDS["h200"].total_memory == 141 * CARDS["h100-80gb"].total_memory // 80


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("RTX 4090", "rtx4090"),
        ("rtx_4090", "rtx4090"),
        ("H100", "h100-80gb"),
        ("A100-80GB", "a100-80gb"),
    ],
)
def test_cards_are_found_by_any_spelling(name: str, key: str) -> None:
    assert find_card(name).key == key


def test_an_unknown_or_ambiguous_card_is_one_clear_error() -> None:
    with pytest.raises(CnnarchError, match="unknown card 'v100': choose one of t4"):
        find_card("v100")
    with pytest.raises(CnnarchError, match="ambiguous"):
        find_card("a100")


def test_each_generations_cublas_workspaces() -> None:
    # PyTorch's default: 4096 KiB x 2 + 16 KiB x 8; Hopper 4096 KiB x 8. Two handles a step.
    assert CUBLAS_WORKSPACE == 8_519_680 and CUBLAS_WORKSPACE_SM90 == 32 * 2**20
    assert cublas_workspaces(GENERATIONS["hopper"]) == [32 * 2**20] * 2
    assert cublas_workspaces(GENERATIONS["ampere"]) == [8_519_680] * 2


def test_a_budget_takes_the_cards_memory_and_generation() -> None:
    budget = make_budget(None, "h100")
    assert budget.memory == CARDS["h100-80gb"].total_memory
    assert budget.context == GENERATIONS["hopper"].context_bytes
    assert budget.cublas == (32 * 2**20, 32 * 2**20)
    assert make_budget(None, "h100", train=False).cublas == (32 * 2**20,)
    given = make_budget("80GB", "h100", context="1GB")  # a card's memory replaced
    assert (given.memory, given.context) == (80 * 10**9, 10**9)
    bare = make_budget("80GB", None)  # no card: the largest context and workspace known
    assert bare.generation == UNKNOWN_GENERATION
    assert bare.context == max(g.context_bytes for g in GENERATIONS.values())


def test_budget_errors() -> None:
    with pytest.raises(CnnarchError, match="give the card"):
        make_budget(None, None)
    with pytest.raises(CnnarchError, match=r"margin must be a fraction .* got 5"):
        make_budget("80GB", None, margin=5)
    with pytest.raises(CnnarchError, match="leave nothing"):
        make_budget("100MB", None)


def test_the_margin_is_the_error_of_the_peak_rounded_up() -> None:
    assert margin_bytes(1000, 0.047) == 47
    assert margin_bytes(1001, 0.047) == 48
    assert margin_bytes(10**9, 0.0) == 0
