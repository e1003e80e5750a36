"""The report in a real browser: headless Chromium loads it without errors, every figure
decodes, the screenshot is not blank, every table fits a desktop window and scrolls as a whole
on a phone, and every numeric column sorts by value, printed figures ("1072K") included."""

import io
import re

import numpy as np
import pytest
from cdp_client import Browser, find_chromium
from matplotlib import image

from cnnarch.report.numbers import parse_printed

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/run does)"
)

DESKTOP, PHONE = 1400, 400  # window widths in CSS pixels
HEIGHT = 900

# Every table's box (the element around the table) and the page, measured with every folded
# table unfolded. scrollWidth > clientWidth: part of the box is scrolled out of sight;
# scrollHeight > clientHeight: rows hidden behind an inner vertical scroll.
MEASURE = """
(function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  var tables = Array.from(document.querySelectorAll("table")).map(function (table) {
    var box = table.parentElement;
    return {
      id: table.id,
      scrollWidth: box.scrollWidth, clientWidth: box.clientWidth,
      scrollHeight: box.scrollHeight, clientHeight: box.clientHeight,
      right: box.getBoundingClientRect().right,
      overflowX: getComputedStyle(box).overflowX,
    };
  });
  var root = document.documentElement;
  return {tables: tables, pageScrollWidth: root.scrollWidth, pageWidth: root.clientWidth};
})()
"""

# Click every heading of every table twice; after each click read the column's sort values
# (null: none, as for a missing value or text) and texts, top to bottom.
SORT_EVERY_COLUMN = """
(function () {
  var found = [];
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.from(table.tHead.rows[0].cells).forEach(function (th, index) {
      function read() {
        return Array.from(table.tBodies[0].rows).map(function (row) {
          var cell = row.cells[index];
          var v = cell.getAttribute("data-sort");
          return [v === null ? null : parseFloat(v), cell.textContent];
        });
      }
      th.click();
      var up = read();
      th.click();
      found.push({table: table.id, heading: th.textContent, up: up, down: read(),
                  state: th.getAttribute("aria-sort"), numeric: th.classList.contains("num")});
    });
  });
  return found;
})()
"""

PRINTED = re.compile(r"[0-9]+(?:\.[0-9]+)?([KMG]?)")  # a figure as a paper prints it: "3.2M"
NAME_NUMBER = re.compile(r"(.*\D)([0-9]+)")  # "resnet18", "features.10"


@pytest.fixture(scope="module")
def browser():
    with Browser(CHROMIUM) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def layouts(browser, report_dir) -> dict[int, dict]:
    found = {}
    for width in (DESKTOP, PHONE):
        browser.load(report_dir / "index.html", width=width, height=HEIGHT)
        found[width] = browser.evaluate(MEASURE)
    return found


@pytest.fixture(scope="module")
def page(browser, layouts, report_dir):
    """The page at the desktop width (loaded after the layouts were measured)."""
    browser.load(report_dir / "index.html", width=DESKTOP, height=HEIGHT)
    return browser


@pytest.fixture(scope="module")
def sorted_columns(page) -> list[dict]:
    return page.evaluate(SORT_EVERY_COLUMN)


def test_loads_without_console_errors_or_failed_requests(page) -> None:
    problems = page.problems()
    assert problems.exceptions == []
    assert problems.console_errors == []
    assert problems.failed_loads == []


def test_every_figure_is_shown(page, report) -> None:
    images = page.evaluate(
        "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(images) == len(report.figures)
    assert all(complete and width > 300 and height > 200 for complete, width, height in images)


def test_screenshot_is_not_blank(page) -> None:
    page.evaluate("document.getElementById('comparison').scrollIntoView()")
    pixels = image.imread(io.BytesIO(page.screenshot()), format="png")[..., :3]
    assert pixels.shape[:2] == (HEIGHT, DESKTOP)
    not_white = (pixels < 0.9).any(axis=-1).mean()
    assert not_white > 0.02  # text, tables and a chart, not an empty page
    assert len(np.unique(pixels.reshape(-1, 3).round(2), axis=0)) > 20  # more than one colour


def test_every_table_is_measured(layouts, report) -> None:
    for width in (DESKTOP, PHONE):
        ids = [t["id"] for t in layouts[width]["tables"]]
        assert ids == [f"table-{path.stem}" for path in report.tables]


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_no_table_hides_rows_behind_an_inner_scroll(layouts, width) -> None:
    clipped = [t["id"] for t in layouts[width]["tables"] if t["scrollHeight"] > t["clientHeight"]]
    assert clipped == []


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_the_page_never_overflows_sideways(layouts, width) -> None:
    layout = layouts[width]
    assert layout["pageScrollWidth"] <= layout["pageWidth"]
    outside = [t["id"] for t in layout["tables"] if t["right"] > layout["pageWidth"]]
    assert outside == []


def test_at_desktop_width_every_column_shows(layouts) -> None:
    clipped = [
        (t["id"], t["scrollWidth"], t["clientWidth"])
        for t in layouts[DESKTOP]["tables"]
        if t["scrollWidth"] > t["clientWidth"]
    ]
    assert clipped == []


def test_on_a_phone_wide_tables_scroll_as_a_whole(layouts) -> None:
    wide = [t for t in layouts[PHONE]["tables"] if t["scrollWidth"] > t["clientWidth"]]
    assert wide, "no table is wider than a phone: this test measures nothing"
    assert {t["overflowX"] for t in wide} <= {"auto", "scroll"}


def test_every_numeric_column_sorts_by_value(sorted_columns) -> None:
    columns = [c for c in sorted_columns if c["numeric"]]
    assert len(columns) > 20
    for column in columns:
        where = f"{column['table']}: {column['heading']}"
        for cells, descending in ((column["up"], False), (column["down"], True)):
            values = [value for value, _ in cells]
            present = [v for v in values if v is not None]
            assert present == sorted(present, reverse=descending), where
            # Missing values ("—") stay last; every shown number carries its sort value.
            assert values[len(present) :] == [None] * (len(values) - len(present)), where
            assert all(text == "—" for value, text in cells if value is None), where
        assert column["state"] == "descending"


def test_printed_figures_sort_by_value_not_as_text(sorted_columns) -> None:
    """Columns of printed figures ("150K", "3.2M") sort by the number they stand for."""
    printed = []
    for column in sorted_columns:
        if not column["numeric"]:
            continue
        texts = [text for value, text in column["up"] if value is not None]
        matches = [PRINTED.fullmatch(t) for t in texts]
        if texts and all(matches) and len({m.group(1) for m in matches}) > 1:
            printed.append((column, texts))
    assert printed, "no column of printed figures with mixed prefixes (4096, 25K, 3.2M) found"
    for column, texts in printed:
        read = [parse_printed(t) for t in texts]
        assert read == sorted(read), column["table"]
        assert texts != sorted(texts), column["table"]  # as text they would sort differently


def test_names_with_numbers_sort_naturally(sorted_columns) -> None:
    """In text columns, "resnet18" comes before "resnet101" and "features.2" before
    "features.10"."""
    discriminating = 0
    for column in (c for c in sorted_columns if not c["numeric"]):
        by_name: dict[str, list[str]] = {}
        for _, text in column["up"]:
            match = NAME_NUMBER.fullmatch(text)
            if match:
                by_name.setdefault(match.group(1), []).append(match.group(2))
        for name, numbers in by_name.items():
            where = f"{column['table']}: {column['heading']}: {name}"
            assert [int(n) for n in numbers] == sorted(int(n) for n in numbers), where
            discriminating += numbers != sorted(numbers)  # text order would differ here
    assert discriminating > 0
