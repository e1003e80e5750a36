"""The report's "will it fit" table: each cell is the batch `cnnarch.plan --card` names, at the
memory the card's runtime reports, for both variants, and the next batch does not fit."""

from __future__ import annotations

import json

import pytest

import cnnarch
from cnnarch.lecture.defaults import DEFAULT_MODELS
from cnnarch.lecture.planner import PRECISIONS, SHOWN_CARDS, STEP, fit_rows
from cnnarch.planner import CARDS

# A ResNet whose torchvision network is the paper's (ResNet-18) and one whose is not (ResNet-50,
# "v1.5"), and Inception-v3, whose training refuses a batch of 1.
SAMPLE = ("resnet18", "resnet50", "inception_v3")
BY_LABEL = {label: precision for precision, label in PRECISIONS.items()}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return fit_rows(SAMPLE)


def test_torchvision_in_both_precisions_then_the_paper_as_it_trained(rows: list[dict]) -> None:
    assert [(r["model"], r["variant"], r["precision"]) for r in rows] == [
        (name, variant, label)
        for name in SAMPLE
        for variant, label in [
            ("torchvision", "float32"),
            ("torchvision", "bfloat16 autocast"),
            ("paper", "float32"),
        ]
    ]
    # a model without torchvision's network: its paper variant in both precisions
    assert [(r["variant"], r["precision"]) for r in fit_rows(["zfnet"])] == [
        ("paper", "float32"),
        ("paper", "bfloat16 autocast"),
    ]


@pytest.mark.parametrize("card", [SHOWN_CARDS[0], SHOWN_CARDS[-1]])
def test_each_batch_is_the_planners_and_the_next_does_not_fit(rows: list[dict], card: str) -> None:
    for row in rows:
        if row["model"] == "inception_v3" and row["precision"] != "float32":
            continue  # one precision of the largest model is enough here
        result = cnnarch.plan(
            row["model"],
            card=card,
            variant=row["variant"],
            precision=BY_LABEL[row["precision"]],
            **STEP,
        )
        assert row[f"batch_{card}"] == result.batch, (row, card)
        assert row[f"total_{card}"] == result.total_bytes <= CARDS[card].total_memory
        # plan traced the batch it names and the next one: that one does not fit
        assert result.checked and result.next_peak_bytes is not None


def test_the_next_batch_is_over_the_card(rows: list[dict]) -> None:
    row = rows[0]  # resnet18, torchvision, float32
    card = SHOWN_CARDS[1]
    over = cnnarch.plan(
        "resnet18", card=card, variant="torchvision", batch_size=row[f"batch_{card}"] + 1, **STEP
    )
    assert not over.fits  # the allocator's replay runs out of the card's memory


def test_bfloat16_fits_at_least_the_float32_batch_and_bigger_cards_more(rows: list[dict]) -> None:
    for name in SAMPLE:
        fp32, bf16 = (r for r in rows if r["model"] == name and r["variant"] == "torchvision")
        for row in (fp32, bf16):
            batches = [row[f"batch_{key}"] for key in SHOWN_CARDS]
            assert batches == sorted(batches) and batches[0] >= 1
        for key in SHOWN_CARDS:
            assert bf16[f"batch_{key}"] >= fp32[f"batch_{key}"]


def test_the_variants_differ_where_the_networks_do(rows: list[dict]) -> None:
    def batches(name: str, variant: str) -> list[int]:
        return [
            r[f"batch_{key}"]
            for r in rows
            if r["model"] == name and r["variant"] == variant and r["precision"] == "float32"
            for key in SHOWN_CARDS
        ]

    assert batches("resnet18", "torchvision") == batches("resnet18", "paper")
    # torchvision's ResNet-50 strides in the 3x3 conv: larger maps in each stage's first block
    assert batches("resnet50", "torchvision") != batches("resnet50", "paper")


def test_the_report_shows_every_lecture_model(report) -> None:
    table = json.loads((report.out / "tables" / "planner_cards.json").read_text())
    models = [r["model"] for r in table["rows"]]
    assert list(dict.fromkeys(models)) == list(DEFAULT_MODELS)
    vgg16 = [r for r in table["rows"] if r["model"] == "vgg16"]
    assert vgg16 == fit_rows(["vgg16"])
    labels = [c["label"] for c in table["columns"]]
    assert f"{CARDS['rtx4090'].name}: held (GB)" in labels or any(
        label.startswith(f"{CARDS['rtx4090'].name}: held") for label in labels
    )
    html = report.html.read_text()
    assert "SGD with momentum" in html
    cards = json.loads((report.out / "tables" / "planner_card_memory.json").read_text())
    reported = {r["card"]: r["memory"] for r in cards["rows"]}
    assert reported[CARDS["rtx4090"].name] == 25_249_038_992  # as its runtime reports it
    assert list(reported) == [CARDS[key].name for key in SHOWN_CARDS]
