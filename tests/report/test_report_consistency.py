"""The report agrees with itself and with the analyzer: every model-level number is the
analyzer's for the variant named beside it, listed parts add up to their totals, and verdicts,
counts and differences follow one convention."""

from __future__ import annotations

import html
import json
import re

import pytest

import cnnarch
from cnnarch.lecture.analyses import Analyses
from cnnarch.lecture.claims import CANNOT_BE_COMPUTED, VERDICTS
from cnnarch.lecture.defaults import DEFAULT_BATCH, DEFAULT_MODELS


def table(report_dir, name: str) -> dict:
    return json.loads((report_dir / "tables" / f"{name}.json").read_text())


def html_rows(report_dir, name: str) -> list[list[float | str]]:
    """Each body row of the HTML table `name`: exact numbers (data-sort) or the cell's text."""
    page = (report_dir / "index.html").read_text()
    found = re.search(rf'<table[^>]* id="table-{name}"[^>]*>(.*?)</table>', page, re.S)
    assert found is not None, name
    body = found.group(1).split("<tbody>")[1]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = []
        for attrs, text in re.findall(r"<td([^>]*)>(.*?)</td>", row, re.S):
            value = re.search(r'class="num" data-sort="([^"]+)"', attrs)
            cells.append(float(value.group(1)) if value else html.unescape(text))
        rows.append(cells)
    return rows


def analyses(name: str, variant: str):
    size = Analyses((), DEFAULT_BATCH).input_size(name, variant)
    forward = cnnarch.analyze(name, size, variant=variant)
    training = cnnarch.analyze(
        name, size, batch_size=DEFAULT_BATCH, train=True, optimizer="momentum", variant=variant
    )
    return forward, training


@pytest.fixture(scope="module")
def analyzed(report_dir) -> dict:
    """The analyzer's summaries of every (model, variant) pair the report names."""
    pairs = {(r["name"], r["variant"]) for r in table(report_dir, "model_totals")["rows"]}
    pairs |= {(r["name"], r["variant"]) for r in table(report_dir, "comparison")["rows"]}
    return {pair: analyses(*pair) for pair in sorted(pairs)}


def test_model_totals_are_the_analyzers_for_the_variant_named(report_dir, analyzed) -> None:
    rows = table(report_dir, "model_totals")["rows"]
    assert [r["name"] for r in rows] == list(DEFAULT_MODELS)
    for row in rows:
        forward, training = analyzed[row["name"], row["variant"]]
        t = training.training
        assert row["params"] == training.total_params, row["name"]
        assert row["inference_params"] == forward.rows[0].params, row["name"]
        assert row["macs"] == forward.total_macs, row["name"]
        assert row["activations"] == forward.activation_bytes, row["name"]
        assert row["inference_peak"] == forward.inference_peak_bytes, row["name"]
        assert row["train_peak"] == t.peak_bytes, row["name"]
        # The parts listed add up to the peak they explain.
        throughout = t.params_bytes + t.optimizer_state_bytes + t.buffer_bytes + t.input_bytes
        assert row["train_throughout"] == throughout, row["name"]
        assert row["train_throughout"] + row["train_at_peak"] == row["train_peak"], row["name"]
    googlenet = next(r for r in rows if r["name"] == "googlenet")
    assert googlenet["params"] > googlenet["inference_params"]  # both shown where they differ


def test_comparison_is_the_analyzers_for_the_variant_named(report_dir, analyzed) -> None:
    for row in table(report_dir, "comparison")["rows"]:
        forward, training = analyzed[row["name"], row["variant"]]
        assert row["params"] == forward.total_params, row["name"]
        assert row["inference_params"] == forward.rows[0].params, row["name"]
        assert row["macs"] == forward.total_macs, row["name"]
        assert row["activations"] == forward.activation_bytes, row["name"]
        assert row["inference_peak"] == forward.inference_peak_bytes, row["name"]
        assert row["train"] == training.training.peak_bytes, row["name"]


@pytest.mark.parametrize("name", ["model_totals", "comparison", "layers_googlenet"])
def test_html_tables_show_the_json_tables_values(report_dir, name) -> None:
    data = table(report_dir, name)
    keys = [c["key"] for c in data["columns"]]
    shown = html_rows(report_dir, name)
    assert len(shown) == len(data["rows"])
    numeric = {
        key
        for key in keys
        if any(
            isinstance(r[key], int | float) and not isinstance(r[key], bool) for r in data["rows"]
        )
    }
    assert numeric
    for cells, row in zip(shown, data["rows"], strict=True):
        for key, cell in zip(keys, cells, strict=True):
            if key in numeric and row[key] is not None:  # every number shown, exactly
                assert isinstance(cell, float), (name, key)
                assert cell == pytest.approx(row[key], rel=1e-12), (name, key)


def test_layer_tables_add_up_to_the_model_totals(report_dir) -> None:
    totals = {r["name"]: r for r in table(report_dir, "model_totals")["rows"]}
    for name in DEFAULT_MODELS:
        rows = table(report_dir, f"layers_{name}")["rows"]
        inference = [r for r in rows if not r["layer"].endswith("*")]
        assert sum(r["params"] for r in inference) == totals[name]["inference_params"], name
        assert sum(r["params"] for r in rows) == totals[name]["params"], name
        assert sum(r["macs"] for r in inference) == totals[name]["macs"], name
    googlenet = table(report_dir, "layers_googlenet")["rows"]
    assert [r["layer"] for r in googlenet if r["layer"].endswith("*")] == [
        "aux. classifier 1 (training only) *",
        "aux. classifier 2 (training only) *",
    ]


def test_the_largest_layers_are_shares_of_the_total_that_contains_them(report_dir) -> None:
    markdown = (report_dir / "report.md").read_text()
    card = markdown.split("### googlenet")[1].split("### inception_v3")[0]
    # The heads are the two largest layers; the share is of all parameters, heads included.
    line = re.search(r"the three layers with the most parameters \((.*?)\) hold (\d+)%", card)
    assert line is not None and line.group(1).startswith(
        "aux. classifier 2 (training only), aux. classifier 1"
    )
    rows = table(report_dir, "layers_googlenet")["rows"]
    top = sorted((r["params"] for r in rows), reverse=True)[:3]
    total = table(report_dir, "model_totals")["rows"][DEFAULT_MODELS.index("googlenet")]["params"]
    assert int(line.group(2)) == round(100 * sum(top) / total)


def test_verdicts_use_one_vocabulary_and_the_count_adds_up(report_dir) -> None:
    page = (report_dir / "index.html").read_text()
    verdicts = re.findall(r'<span class="verdict">([a-z ]+):</span>', page)
    assert verdicts and set(verdicts) <= set(VERDICTS)
    claims = table(report_dir, "claims")["rows"]
    markdown = (report_dir / "report.md").read_text()
    lead = markdown.split("\n\n")[1]
    counted = re.search(r"(\d+) claims checked: (.*?) \(", lead)
    assert counted is not None
    assert int(counted.group(1)) == len(claims)
    words = {
        "hold": "holds",
        "do not hold": "does not hold",
        "depend on the measure": "depends on the measure",
    }
    for part in counted.group(2).split(", "):
        n, verdict = part.split(" ", 1)
        verdict = words.get(verdict, verdict)
        assert int(n) == sum(r["verdict"] == verdict for r in claims), part
    # A claim the page cannot compute is never marked as holding.
    for verdict, evidence in re.findall(r"\*\*([a-z ]+)\*\*: “[^”]*”[^\n]*?\. (.*)", markdown):
        if "cannot be computed here" in evidence:
            assert verdict == CANNOT_BE_COMPUTED
    ideas = table(report_dir, "key_ideas")["rows"]
    assert len(ideas) == 9 and {r["verdict"] for r in ideas} <= set(VERDICTS)
    assert all(re.fullmatch(r"\[[^\]]+\]\(#[\w-]+\)", r["idea"]) for r in ideas)
    for row in ideas:  # each links to a section of the page
        anchor = row["idea"].split("(#")[1].rstrip(")")
        assert f'<a href="#{anchor}">' in page and f'<section id="{anchor}">' in page


def test_differences_have_one_sign_and_agree_with_their_reasons(report_dir) -> None:
    rows = table(report_dir, "published_vs_computed")["rows"]
    for row in rows:
        expected = 100 * (row["computed"] - row["published"]) / row["published"]
        assert row["difference"] == pytest.approx(expected), row["quantity"]
        if row["agreement"] == "equal":
            assert row["computed"] == row["published"], row["quantity"]
    budget = next(r for r in rows if r["quantity"].startswith("multiply-adds at inference"))
    assert budget["difference"] > 0 and budget["agreement"] == "over the bound"  # 1.58 > 1.5 G
    markdown = (report_dir / "report.md").read_text()
    assert "+5.5% relative to the 1.5 G budget" in markdown and "-5.2%" not in markdown


def test_variants_are_named_where_they_change_the_numbers(report_dir) -> None:
    markdown = (report_dir / "report.md").read_text()
    comparison = markdown.split("## Comparing the architectures")[1]
    paper = cnnarch.analyze("resnet50")
    assert "'v1.5'" in comparison
    assert f"(paper variant: {paper.total_macs / 1e9:.2f} G" in comparison


def test_the_published_count_follows_from_the_rows(report_dir) -> None:
    from cnnarch.lecture.figures import AGREEMENTS, CUT_OFF_LIMIT

    rows = table(report_dir, "published_vs_computed")["rows"]
    markdown = (report_dir / "report.md").read_text()
    counts = {a.name: sum(r["agreement"] == a.name for r in rows) for a in AGREEMENTS}
    listed = ", ".join(f"{name} {n}" for name, n in counts.items() if n)
    expected = f"{len(rows)} published figures are compared with the computed values, by class"
    assert f"{expected} of agreement: {listed}" in markdown
    holding = {a.name for a in AGREEMENTS if a.holds}
    for row in rows:
        # A figure that agrees is never more than the tolerance of its class away: no "equal"
        # beside a difference, no cut-off of more than CUT_OFF_LIMIT, no near-miss as printed.
        assert (row["verdict"] == "holds") == (row["agreement"] in holding), row["quantity"]
        if row["agreement"] == "equal":
            assert row["difference"] == 0
        if row["agreement"] == "cut off":
            assert 0 < row["difference"] <= 100 * CUT_OFF_LIMIT, row["quantity"]
    inception = next(
        r for r in rows if (r["topic"], r["quantity"]) == ("inception_v3", "multiply-adds")
    )
    assert inception["agreement"] == "differs"  # 5.71 G against "5 billion": +14.3%


def test_the_report_prints_no_negative_zero(report_dir) -> None:
    for name in ("index.html", "report.md"):
        text = (report_dir / name).read_text(encoding="utf-8")
        assert not re.findall(r"(?<![\d.,])[-−]0(?:\.0+)?(?!\.?\d|,\d)", text), name


def test_the_report_names_no_absolute_path_of_the_build(report_dir) -> None:
    # The build's own folder (a temporary one here) means nothing to the page's reader; on a
    # machine where pytest never ran it is named `pytest-0`, whose "-0" once failed the test above.
    build_root = str(report_dir.parent)
    for name in ("index.html", "report.md"):
        text = (report_dir / name).read_text(encoding="utf-8")
        assert build_root not in text, name
        # The missing default file is named as the user would type it.
        assert "No results at `runs/degradation/results.json`" in text.replace(
            "<code>", "`"
        ).replace("</code>", "`"), name
