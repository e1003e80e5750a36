"""The degradation results shipped in the package: real runs, internally consistent."""

from __future__ import annotations

import json

import pytest

from cnnarch.experiments.degradation import (
    KINDS,
    assess_effect,
    gap_estimate,
    load_results,
    mean_curves,
    summary_table,
)
from cnnarch.lecture.degradation import SHIPPED, effect_checks


@pytest.fixture(scope="module", params=sorted(SHIPPED))
def preset(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def shipped(preset: str) -> dict:
    return load_results(SHIPPED[preset])


def test_it_is_a_complete_run_of_its_preset_with_its_record(preset: str, shipped) -> None:
    assert shipped["complete"] is True
    settings = shipped["settings"]
    assert settings["preset"] == preset
    assert shipped["environment"]["torch"] and shipped["environment"]["started_utc"]
    assert shipped["wall_seconds"] > 0
    seeds = {"plain": settings.get("plain_seeds", settings["seeds"]), "residual": settings["seeds"]}
    expected = {(k, d, s) for k in KINDS for d in settings["depths"] for s in seeds[k]}
    assert {(r["kind"], r["depth"], r["seed"]) for r in shipped["runs"]} == expected
    for run in shipped["runs"]:
        assert [e["epoch"] for e in run["history"]] == list(range(1, settings["epochs"] + 1))
        assert all(0 <= e["train_error"] <= 100 for e in run["history"])


def test_the_table_follows_from_the_curves(shipped) -> None:
    assert shipped["table"] == summary_table(shipped["runs"])
    for row in shipped["table"]:
        _, train, test = mean_curves(shipped["runs"], row["kind"], row["depth"])
        assert row["train_error_mean"] == pytest.approx(train[-1])
        assert row["test_error_mean"] == pytest.approx(test[-1])


def test_the_verdict_follows_from_the_table(shipped) -> None:
    effect = shipped["effect"]
    assert effect == assess_effect(shipped["runs"])
    final = {(r["kind"], r["depth"]): r["train_error_mean"] for r in shipped["table"]}
    deep, shallow = effect["deep"], effect["shallow"]
    # With every seed at both depths, the mean gap is the gap of the means.
    assert effect["plain_gap_mean"] == pytest.approx(final["plain", deep] - final["plain", shallow])
    assert effect["residual_gap_mean"] == pytest.approx(
        final["residual", deep] - final["residual", shallow]
    )
    plain, residual = effect_checks(shipped)
    # Each half's verdict follows from its gap and its noise: twice the larger of the seed
    # spread's and the sampling error's standard error.
    for check, kind, sign in ((plain, "plain", 1), (residual, "residual", -1)):
        gap = gap_estimate(shipped, kind)
        assert gap.mean == pytest.approx(effect[f"{kind}_gap_mean"])
        if abs(gap.mean) <= 2 * gap.uncertainty:
            assert check.verdict == "within noise"
        else:
            assert check.verdict == ("holds" if sign * gap.mean > 0 else "does not hold")


def test_the_file_is_the_experiments_output_unchanged(preset: str, shipped) -> None:
    # Written by `write_outputs`: indent 1, a final newline; nothing re-serialized by hand.
    text = SHIPPED[preset].read_text("utf-8")
    assert text == json.dumps(shipped, indent=1, allow_nan=False) + "\n"
