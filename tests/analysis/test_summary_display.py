"""How a `Summary` shows itself: a short `repr`, and in notebooks HTML and Markdown with the
totals on top and the table to a depth."""

from __future__ import annotations

import html
import re

import cnnarch


def test_repr_is_one_short_line() -> None:
    summary = cnnarch.analyze("resnet50")
    text = repr(summary)
    assert text == (
        "Summary(model='resnet50', input=1x3x224x224, params=25,557,032, MACs=3.86G, "
        f"mode='meta', {len(summary.rows)} rows)"
    )
    assert "\n" not in text and len(text) < 120
    no_pass = cnnarch.analysis.analyze(cnnarch.create_model("resnet20"))
    assert (
        repr(no_pass)
        == f"Summary(model='resnet20', params=269,722, mode='parameters', {len(no_pass.rows)} rows)"
    )


def test_markdown_has_the_totals_then_the_table_to_depth_two() -> None:
    summary = cnnarch.analyze("resnet18")
    text = summary._repr_markdown_()
    totals, table = text.split("\n\n")[1:3]
    assert totals.splitlines()[0].startswith("- Input: 1x3x224x224")
    assert "- MACs: 1,814,073,344" in totals
    rows = table.splitlines()[2:]
    assert len(rows) == len([r for r in summary.rows if r.depth <= 2])
    assert any("layer1.0" in row for row in rows) and not any("layer1.0.conv1" in r for r in rows)


def test_html_escapes_and_holds_the_same_rows() -> None:
    summary = cnnarch.analyze("resnet18", name="<b>net</b>")
    page = summary._repr_html_()
    assert "<b>net</b>" not in page and html.escape("<b>net</b>") in page
    assert page.index("<ul>") < page.index("<table>")  # totals on top
    assert len(re.findall("<tr>", page)) == 1 + len([r for r in summary.rows if r.depth <= 2])
    assert "1,814,073,344" in page


def test_a_torchinfo_style_summary_shows_its_own_depth() -> None:
    summary = cnnarch.summary(
        cnnarch.create_model("resnet18"), (1, 3, 224, 224), depth=1, verbose=0
    )
    rows = summary._repr_markdown_().split("\n\n")[2].splitlines()[2:]
    assert len(rows) == len([r for r in summary.rows if r.depth <= 1])
