"""The rows of the "will it fit" table: each card's batch is the one `cnnarch.plan` names."""

from __future__ import annotations

import json

import pytest

import cnnarch
from cnnarch.planner import CARDS, Card, FitRow, fit_table_rows

TINY = Card("tiny", "A tiny card", "0.3 GB", 300 * 10**6, "ampere", "a test's")


@pytest.fixture(scope="module")
def rows() -> list[FitRow]:
    return fit_table_rows(["resnet18", "zfnet"], ["t4", "a100-80gb", TINY], precisions=["bf16"])


def test_rows_by_model_then_torchvision_first_then_card(rows: list[FitRow]) -> None:
    assert [(r.model, r.variant, r.card) for r in rows] == [
        ("resnet18", "torchvision", "t4"),
        ("resnet18", "torchvision", "a100-80gb"),
        ("resnet18", "torchvision", "tiny"),
        ("resnet18", "paper", "t4"),
        ("resnet18", "paper", "a100-80gb"),
        ("resnet18", "paper", "tiny"),
        ("zfnet", "paper", "t4"),  # zfnet has no torchvision variant
        ("zfnet", "paper", "a100-80gb"),
        ("zfnet", "paper", "tiny"),
    ]


def test_each_batch_is_the_planners_and_each_term_is_there(rows: list[FitRow]) -> None:
    for row in rows[:2]:
        result = cnnarch.plan(
            row.model, card=row.card, variant=row.variant, precision="bf16", optimizer="momentum"
        )
        assert row.batch == result.batch and result.checked
        assert (row.reserved, row.margin, row.total) == (
            result.reserved_bytes,
            result.margin_bytes,
            result.total_bytes,
        )
        assert row.memory == CARDS[row.card].total_memory >= row.total
        assert row.total == row.reserved + row.context + row.cudnn + row.margin


def test_a_card_too_small_for_any_batch_says_0(rows: list[FitRow]) -> None:
    tiny = [r for r in rows if r.card == "tiny"]
    assert tiny and all(r.batch == 0 and r.total is None for r in tiny)


def test_rows_are_plain_data(rows: list[FitRow]) -> None:
    data = json.loads(json.dumps([r.to_dict() for r in rows]))
    assert data[0]["model"] == "resnet18" and data[0]["batch"] == rows[0].batch


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_a_variant_answers_alone_as_beside_the_other(name: str) -> None:
    # resnet18's variants trace the same step, and the paper rows are copied from torchvision's;
    # resnet50's differ, and each is searched: either way a variant's rows are its own.
    cards = ["t4", "h100-80gb"]
    both = fit_table_rows([name], cards, precisions=["fp32"])
    alone = fit_table_rows([name], cards, variants=["paper"], precisions=["fp32"])
    assert [r for r in both if r.variant == "paper"] == alone


def test_a_step_whose_batch_of_one_differs_is_read_off_the_next_two_as_plan_traces_it() -> None:
    # The paper's GoogLeNet takes another path at batch 1 (its storages are freed at other
    # clocks than at batch 2 and 3): plan traces each batch its search looks at; the table reads
    # them off batches 2 and 3, and names the same batch with the same terms.
    (row,) = fit_table_rows(["googlenet"], ["rtx4090"], variants=["paper"], precisions=["fp32"])
    result = cnnarch.plan(
        "googlenet", card="rtx4090", variant="paper", precision="fp32", optimizer="momentum"
    )
    assert (row.batch, row.reserved, row.total) == (
        result.batch,
        result.reserved_bytes,
        result.total_bytes,
    )
    assert len(result.traced) > 4  # plan traced batches beyond the smallest three
