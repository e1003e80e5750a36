"""The report's "will it fit" table: each card's batch is read off the planner's peak lines."""

from __future__ import annotations

import json

import pytest

from cnnarch.lecture.defaults import DEFAULT_MODELS
from cnnarch.lecture.planner import CARDS_GIB, PRECISIONS, STEP, card_bytes, fit_rows
from cnnarch.planner import DEFAULT_RESERVE, parse_bytes, peak_lines

# A plain net, a ResNet, and Inception-v3, whose training refuses a batch of 1.
SAMPLE = ("vgg16", "resnet18", "inception_v3")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return fit_rows(SAMPLE)


def test_the_table_has_a_row_per_model_and_precision(rows: list[dict]) -> None:
    assert [(r["model"], r["precision"]) for r in rows] == [
        (name, label) for name in SAMPLE for label in PRECISIONS.values()
    ]


@pytest.mark.parametrize("gib", [CARDS_GIB[0], CARDS_GIB[-1]])
def test_each_batch_is_read_off_the_peak_lines_and_the_next_does_not_fit(
    rows: list[dict], gib: int
) -> None:
    usable = card_bytes(gib) - parse_bytes(DEFAULT_RESERVE)
    by_label = {label: precision for precision, label in PRECISIONS.items()}
    for row in rows:
        lines = peak_lines(row["model"], precision=by_label[row["precision"]], **STEP)
        batch = row[f"batch_{gib}"]
        assert batch == lines.largest_batch(usable)
        assert row[f"peak_{gib}"] == lines.peak(batch) <= usable
        assert lines.peak(batch + 1) > usable  # the next batch does not fit


def test_bfloat16_fits_at_least_the_float32_batch_and_bigger_cards_more(rows: list[dict]) -> None:
    for name in SAMPLE:
        fp32, bf16 = (r for r in rows if r["model"] == name)
        batches = [fp32[f"batch_{gib}"] for gib in CARDS_GIB]
        assert batches == sorted(batches) and batches[0] >= 1
        for gib in CARDS_GIB:
            assert bf16[f"batch_{gib}"] >= fp32[f"batch_{gib}"]


def test_cards_are_binary_gigabytes() -> None:
    assert card_bytes(24) == 25_769_803_776  # a 24 GB RTX 4090
    assert card_bytes(40) == 40 * 2**30


def test_the_report_shows_every_lecture_model(report) -> None:
    table = json.loads((report.out / "tables" / "planner_cards.json").read_text())
    assert [r["model"] for r in table["rows"]] == [m for m in DEFAULT_MODELS for _ in PRECISIONS]
    vgg16 = [r for r in table["rows"] if r["model"] == "vgg16"]
    assert vgg16 == fit_rows(["vgg16"])
    html = report.html.read_text()
    assert "SGD with momentum" in html and f"less {DEFAULT_RESERVE} (" in html
