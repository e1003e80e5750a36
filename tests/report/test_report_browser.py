"""The report in a real browser: headless Chromium loads it without errors, every figure
decodes, the screenshot is not blank, and the tables sort."""

import io

import numpy as np
import pytest
from cdp_client import Browser, find_chromium
from matplotlib import image

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/run does)"
)


@pytest.fixture(scope="module")
def page(report_dir):
    with Browser(CHROMIUM) as browser:
        browser.load(report_dir / "index.html", width=1280, height=900)
        yield browser


@pytest.mark.slow
def test_loads_without_console_errors_or_failed_requests(page) -> None:
    problems = page.problems()
    assert problems.exceptions == []
    assert problems.console_errors == []
    assert problems.failed_loads == []


@pytest.mark.slow
def test_every_figure_is_shown(page, report) -> None:
    images = page.evaluate(
        "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(images) == len(report.figures)
    assert all(complete and width > 300 and height > 200 for complete, width, height in images)


@pytest.mark.slow
def test_screenshot_is_not_blank(page) -> None:
    page.evaluate("document.getElementById('comparison').scrollIntoView()")
    pixels = image.imread(io.BytesIO(page.screenshot()), format="png")[..., :3]
    assert pixels.shape[:2] == (900, 1280)
    not_white = (pixels < 0.9).any(axis=-1).mean()
    assert not_white > 0.02  # text, tables and a chart, not an empty page
    assert len(np.unique(pixels.reshape(-1, 3).round(2), axis=0)) > 20  # more than one colour


@pytest.mark.slow
def test_clicking_a_heading_sorts_the_table(page) -> None:
    script = """
    (function () {
      var table = document.getElementById("table-comparison");
      var heads = Array.from(table.tHead.rows[0].cells);
      var macs = heads.findIndex(function (h) { return h.textContent.startsWith("MACs"); });
      heads[macs].click();
      var up = Array.from(table.tBodies[0].rows).map(function (r) {
        return parseFloat(r.cells[macs].getAttribute("data-v")); });
      heads[macs].click();
      var down = Array.from(table.tBodies[0].rows).map(function (r) {
        return parseFloat(r.cells[macs].getAttribute("data-v")); });
      return [up, down, heads[macs].getAttribute("aria-sort")];
    })()
    """
    ascending, descending, state = page.evaluate(script)
    assert ascending == sorted(ascending) and len(ascending) > 5
    assert descending == sorted(ascending, reverse=True)
    assert state == "descending"
