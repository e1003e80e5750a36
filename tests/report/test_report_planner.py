"""The report's "will it fit" table: each card's batch is the one `cnnarch.plan` names, from the
planner's one table function."""

from __future__ import annotations

import json

import pytest

import cnnarch
from cnnarch.lecture.defaults import DEFAULT_MODELS
from cnnarch.lecture.planner import PRECISIONS, SHOWN_CARDS, STEP, fit_rows
from cnnarch.planner import CARDS

# A plain net, a ResNet, and Inception-v3, whose training refuses a batch of 1.
SAMPLE = ("vgg16", "resnet18", "inception_v3")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return fit_rows(SAMPLE)


def test_the_table_has_a_row_per_model_variant_and_precision(rows: list[dict]) -> None:
    assert [(r["model"], r["variant"], r["precision"]) for r in rows] == [
        (name, variant, label)
        for name in SAMPLE
        for variant in ("torchvision", "paper")
        for label in PRECISIONS.values()
    ]


@pytest.mark.parametrize("card", [SHOWN_CARDS[0], SHOWN_CARDS[-1]])
def test_each_batch_is_the_planners_and_the_next_does_not_fit(rows: list[dict], card: str) -> None:
    by_label = {label: precision for precision, label in PRECISIONS.items()}
    for row in rows:
        result = cnnarch.plan(
            row["model"],
            card=card,
            variant=row["variant"],
            precision=by_label[row["precision"]],
            **STEP,
        )
        assert row[f"batch_{card}"] == result.batch, (row, card)
        assert row[f"total_{card}"] == result.total_bytes <= CARDS[card].total_memory
        assert result.next_peak_bytes is not None  # plan checked that batch + 1 does not fit


def test_bfloat16_fits_at_least_the_float32_batch_and_bigger_cards_more(rows: list[dict]) -> None:
    for name in SAMPLE:
        for variant in ("torchvision", "paper"):
            fp32, bf16 = (r for r in rows if r["model"] == name and r["variant"] == variant)
            batches = [fp32[f"batch_{key}"] for key in SHOWN_CARDS]
            assert batches == sorted(batches) and batches[0] >= 1
            for key in SHOWN_CARDS:
                assert bf16[f"batch_{key}"] >= fp32[f"batch_{key}"]


def test_the_report_shows_every_lecture_model(report) -> None:
    table = json.loads((report.out / "tables" / "planner_cards.json").read_text())
    models = [r["model"] for r in table["rows"]]
    assert list(dict.fromkeys(models)) == list(DEFAULT_MODELS)
    vgg16 = [r for r in table["rows"] if r["model"] == "vgg16"]
    assert vgg16 == fit_rows(["vgg16"])
    html = report.html.read_text()
    assert "SGD with momentum" in html and CARDS["rtx4090"].name in html
