"""The renderer knows no CNN and escapes by construction: importing `cnnarch.report` loads none
of the model code, its text is escaped for HTML and Markdown, and its assets are package files."""

from __future__ import annotations

import subprocess
import sys

import pytest
from markupsafe import Markup

from cnnarch.report.document import Document, Paragraph, Section, Verdict, Verdicts, Widget
from cnnarch.report.html import LEGIBLE_PX, asset, figure_fit, inline_svg, render_html
from cnnarch.report.markdown import render_markdown
from cnnarch.report.markup import element, foreign, inline_html, inline_markdown

# Every module of cnnarch.report imported in a fresh interpreter whose `cnnarch` package is a
# bare namespace (cnnarch/__init__.py, the front door, imports the zoo and the analyzer itself),
# then the modules loaded are listed.
LOADED = """
import importlib, importlib.util, pkgutil, sys, types
spec = importlib.util.find_spec("cnnarch")
bare = types.ModuleType("cnnarch")
bare.__path__ = list(spec.submodule_search_locations)
sys.modules["cnnarch"] = bare
import cnnarch.report
for found in pkgutil.walk_packages(cnnarch.report.__path__, "cnnarch.report."):
    importlib.import_module(found.name)
print("\\n".join(sorted(sys.modules)))
"""


@pytest.mark.slow
def test_importing_the_renderer_loads_no_cnn_code() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOADED], capture_output=True, text=True, timeout=300, check=True
    )
    loaded = done.stdout.split()
    assert "cnnarch.report.html" in loaded and "cnnarch.report.markdown" in loaded
    forbidden = ("cnnarch.zoo", "cnnarch.analysis", "cnnarch.lecture", "cnnarch.planner", "torch")
    assert [m for m in loaded if m.startswith(forbidden)] == []


def test_text_is_escaped_for_html_and_markdown() -> None:
    text = "a <script>alert(1)</script> & `code <b>` and [a link](#top)"
    html = inline_html(text)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<code>code &lt;b&gt;</code>" in html and '<a href="#top">a link</a>' in html
    markdown = inline_markdown(text)
    assert "<script>" not in markdown and "&lt;script>" in markdown
    assert "`code <b>`" in markdown  # a code span shows its text as typed
    # A string from outside cannot open or close a code span.
    assert foreign("`<script>`") == "'<script>'"
    assert "<script>" not in inline_markdown(foreign("`<script>`"))


def test_elements_escape_their_attributes_and_text() -> None:
    built = element("a", {"href": '#"x"', "aria_label": "<b>", "hidden": True, "skip": None}, "<i>")
    assert built == '<a href="#&#34;x&#34;" aria-label="&lt;b&gt;" hidden>&lt;i&gt;</a>'
    assert element("p", None, Markup("<b>kept</b>")) == "<p><b>kept</b></p>"


def test_a_page_escapes_everything_it_is_given() -> None:
    hostile = "</script><script>alert(1)</script>"
    section = Section("s", hostile).add(
        Paragraph(hostile),
        Verdicts((Verdict("v", hostile, "holds", "good", hostile, hostile, hostile),)),
        Widget("w", Markup("<div></div>"), hostile, {"x": hostile}),
    )
    document = Document(hostile, hostile, [], [section])
    page = render_html(document)
    # The page's own one script element, and the widget's data element; nothing else.
    assert page.count("<script") == 2 and "alert(1)</script>" not in page
    assert "<script>alert" not in render_markdown(document)


def test_assets_are_package_files() -> None:
    for name in ("report.css", "sort.js", "tip.js", "explorer.js"):
        assert len(asset(name)) > 200, name
    assert "table.sortable" in asset("sort.js")


# matplotlib's SVG: sized in points (576pt = 768 CSS px), its units one point each, font sizes
# in a style; the report's own SVGs: sized in px, font sizes as attributes.
MATPLOTLIB_SVG = (
    '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE svg>\n<svg width="576pt" height="324pt" '
    'viewBox="0 0 576 324" xmlns="http://www.w3.org/2000/svg"><metadata>Matplotlib</metadata>'
    '<text style="font-size: 10px">ticks</text><text style="font-size: 8.5px">label</text>'
    '<path d="M 3 -0 C 3 -0.795609 -0 1" transform="rotate(-0 70 20)"/></svg>'
)


def test_a_figure_shrinks_only_as_far_as_its_text_stays_legible() -> None:
    assert LEGIBLE_PX == 10
    fit = figure_fit(MATPLOTLIB_SVG)
    # Drawn at 768 px; its 8.5-unit text is 10 px when the 576 units are 576 x 10 / 8.5 px.
    assert (fit.natural, fit.legible) == (768, 678)
    # Shown larger than drawn (a width of 1.35 x its units); text of 11 units.
    zoomed = '<svg viewBox="0 0 400 300" width="540"><text font-size="11">a</text></svg>'
    assert (figure_fit(zoomed).natural, figure_fit(zoomed).legible) == (540, 364)
    assert figure_fit('<svg width="300"><rect/></svg>').legible == 0  # no text: any width
    assert fit.style() == "--natural: 768px; --legible: 678px"
    with pytest.raises(ValueError, match="needs a width"):
        figure_fit('<svg viewBox="0 0 10 10"></svg>')


def test_an_svg_file_placed_in_the_page_loses_its_prologue_and_negative_zeros() -> None:
    shown = str(inline_svg(MATPLOTLIB_SVG.encode()))
    assert shown.startswith("<svg ") and "<metadata>" not in shown and "DOCTYPE" not in shown
    assert 'd="M 3 0 C 3 -0.795609 0 1" transform="rotate(0 70 20)"' in shown
