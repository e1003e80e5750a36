"""The report in a real browser: headless Chromium loads it without errors, every figure
decodes, the screenshot is not blank, every table fits a desktop window and scrolls as a whole
on a phone, and every numeric column sorts by value, printed figures ("1072K") included."""

import io
import json
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from cdp_client import Browser, find_chromium
from matplotlib import image

from cnnarch import create_model, model_card, plan
from cnnarch.analysis.precision import DTYPES
from cnnarch.lecture.analyses import TRAINING_OPTIMIZER
from cnnarch.lecture.defaults import DEFAULT_BATCH, DEFAULT_MODELS
from cnnarch.lecture.explorer import PRECISIONS, QUANTITIES
from cnnarch.planner import NothingFits
from cnnarch.units import parse_printed

CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed (apt-get install chromium; .ci/run does)",
    ),
]

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
  var diagrams = Array.from(document.querySelectorAll("figure.diagram")).map(function (fig) {
    var box = fig.querySelector(".diagram-box").getBoundingClientRect();
    return {id: fig.id, width: box.width, height: box.height, right: box.right,
            boxes: fig.querySelectorAll("g.layer, g.segment").length};
  });
  var root = document.documentElement;
  return {tables: tables, diagrams: diagrams, pageScrollWidth: root.scrollWidth,
          pageWidth: root.clientWidth};
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
    """Every chart is in the page once, as inline SVG (its text stays text), none as an image."""
    charts = page.evaluate(
        "Array.from(document.querySelectorAll('figure[id^=figure-]')).map(f => [f.id,"
        " f.querySelectorAll('svg').length, f.querySelector('svg').getBoundingClientRect().width,"
        " f.querySelector('svg').getBoundingClientRect().height])"
    )
    assert page.evaluate("document.images.length") == 0
    shown = sorted(name.removeprefix("figure-") for name, _, _, _ in charts)
    assert shown == sorted(path.stem for path in report.figures)
    assert all(count == 1 and width > 300 and height > 200 for _, count, width, height in charts)


def test_screenshot_is_not_blank(page) -> None:
    page.evaluate("document.getElementById('comparison').scrollIntoView()")
    pixels = image.imread(io.BytesIO(page.screenshot()), format="png")[..., :3]
    assert pixels.shape[:2] == (HEIGHT, DESKTOP)
    not_white = (pixels < 0.9).any(axis=-1).mean()
    assert not_white > 0.02  # text, tables and a chart, not an empty page
    assert len(np.unique(pixels.reshape(-1, 3).round(2), axis=0)) > 20  # more than one color


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_every_lecture_model_has_its_diagrams_shown_within_the_page(layouts, width) -> None:
    shown = {d["id"]: d for d in layouts[width]["diagrams"]}
    expected = [f"{kind}_{name}" for name in DEFAULT_MODELS for kind in ("diagram", "strip")]
    expected += ["diagram_inception_module", "diagram_basic_block", "diagram_bottleneck_block"]
    for name in expected:
        drawn = shown[name]
        assert drawn["boxes"] > 0 and drawn["height"] > 50, name
        assert drawn["width"] > 0 and drawn["right"] <= layouts[width]["pageWidth"], name


def test_a_diagram_is_drawn_in_color(page) -> None:
    page.evaluate("document.getElementById('diagram_inception_module').scrollIntoView()")
    pixels = image.imread(io.BytesIO(page.screenshot()), format="png")[..., :3]
    conv_blue = np.array([0x00, 0x72, 0xB2]) / 255  # the conv color of every diagram
    assert (np.abs(pixels - conv_blue).max(axis=-1) < 0.02).sum() > 200


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


# Set a model's explorer to a batch size (as typed), mode, precision, optimizer and card
# memory; read each shown value (exact integers; the training peak's phase and its breakdown
# by category), the batch problem and the largest batch that fits.
SET_EXPLORER = """
(function (model, batch, precision, mode, optimizer, memory) {
  var form = document.querySelector('form.explorer[data-model="' + model + '"]');
  form.mode.value = mode;
  form.dispatchEvent(new Event("change"));
  form.batch.value = String(batch);
  form.precision.value = precision;
  form.optimizer.value = optimizer;
  form.memory.value = memory;
  form.dispatchEvent(new Event("input"));
  var shown = {parts: {}};
  var list = form.querySelector(mode === "training" ? "dl.training" : "div.inference");
  list.querySelectorAll("output").forEach(function (out) {
    if (out.closest("div").hidden || out.dataset.value === undefined) { return; }
    var value = out.dataset.key === "peak_phase" ? out.dataset.value : Number(out.dataset.value);
    if (out.dataset.part) { shown.parts[out.dataset.part] = value; }
    else { shown[out.dataset.key] = value; }
  });
  shown.message = list.querySelector("output").textContent;
  shown.hidden = form.querySelector(mode === "training" ? "div.inference" : "dl.training").hidden;
  shown.optimizerDisabled = form.optimizer.disabled;
  shown.precision = form.precision.value;
  var problem = form.querySelector("output.problem");
  shown.problem = problem.textContent;
  shown.problemShown = problem.getBoundingClientRect().height > 0;
  shown.invalid = form.batch.getAttribute("aria-invalid");
  var largest = form.querySelector("output.largest");
  shown.largest = largest.dataset.value === undefined ? null : Number(largest.dataset.value);
  shown.largestText = largest.textContent;
  return shown;
})
"""


def cli_summary(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnarch", "summary", *args, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )


# Every explorer has read back its step's storages (the page unpacks them after it loads).
STORAGES_READ = (
    "document.querySelectorAll('form.explorer:not([data-storages=\"read\"])').length === 0"
)


def set_explorer(
    page, model, batch, precision, mode="inference", optimizer="sgd", memory=""
) -> dict:
    deadline = time.monotonic() + 30
    while not page.evaluate(STORAGES_READ):
        assert time.monotonic() < deadline, "the explorers never read their storages"
        time.sleep(0.05)
    args = ", ".join(json.dumps(a) for a in (model, batch, precision, mode, optimizer, memory))
    return page.evaluate(f"{SET_EXPLORER}({args})")


@pytest.mark.parametrize(
    ("model", "batch", "precision"),
    [
        ("vgg16", 256, "bfloat16"),
        ("googlenet", 1000, "float16"),
        ("resnet50", 3, "float32"),
        ("alexnet", 65536, "float32"),
    ],
)
def test_explorer_equals_the_cli(page, model, batch, precision) -> None:
    shown = set_explorer(page, model, batch, precision)
    cli = cli_summary(model, "--batch", str(batch), "--dtype", precision)
    expected = json.loads(cli.stdout)
    keys = {key for key, _ in QUANTITIES}
    assert {k for k in shown if k in keys} == keys  # every quantity held the check
    assert {k: shown[k] for k in keys} == {key: expected[key] for key in keys}
    assert shown["hidden"] and shown["optimizerDisabled"]  # no training rows, no optimizer


def test_explorer_opens_on_the_pages_training_figures(page, report_dir) -> None:
    """Training at the page's batch, float32, SGD with momentum: VGG16's peak is the totals
    table's (the card's figure)."""
    page.load(report_dir / "index.html", width=DESKTOP, height=HEIGHT)  # as a reader opens it
    found = page.evaluate(
        "(function () { var f = document.querySelector('form.explorer[data-model=\"vgg16\"]');"
        " return {batch: f.batch.value, mode: f.mode.value, precision: f.precision.value,"
        " optimizer: f.optimizer.value, peak: Number(f.querySelector("
        "'output[data-key=training_peak_bytes]').dataset.value)}; })()"
    )
    totals = json.loads((report_dir / "tables" / "model_totals.json").read_text())
    vgg16 = next(row for row in totals["rows"] if row["name"] == "vgg16")
    assert found == {
        "batch": str(DEFAULT_BATCH),
        "mode": "training",
        "precision": "float32",
        "optimizer": TRAINING_OPTIMIZER,
        "peak": vgg16["train_peak"],
    }
    cli = cli_summary("vgg16", "--batch", str(DEFAULT_BATCH), "--train", "--optimizer", "momentum")
    assert found["peak"] == json.loads(cli.stdout)["training_peak_bytes"]


def test_explorer_shows_only_the_parts_the_step_has(page) -> None:
    """Low-precision weight copies exist under autocast only: their row is not displayed in
    float32, and is in bf16 autocast."""
    height = (
        'document.querySelector(\'form.explorer[data-model="resnet18"] '
        "output[data-part=\"low-precision weight copies\"]').closest('div')"
        ".getBoundingClientRect().height"
    )
    shown = set_explorer(page, "resnet18", 16, "float32", "training", "momentum")
    assert "low-precision weight copies" not in shown["parts"] and page.evaluate(height) == 0
    shown = set_explorer(page, "resnet18", 16, "bf16", "training", "momentum")
    assert shown["parts"]["low-precision weight copies"] > 0 and page.evaluate(height) > 0


def test_explorer_refuses_a_batch_that_is_not_a_whole_number(page) -> None:
    shown = set_explorer(page, "vgg16", "2.5", "float32")
    assert shown["problemShown"] and "whole number" in shown["problem"]
    assert "2.5" in shown["problem"] and shown["invalid"] == "true"
    assert not any(key in shown for key, _ in QUANTITIES)  # nothing rounded to batch 3
    for bad in ("0", "65537", ""):
        assert "whole number" in set_explorer(page, "vgg16", bad, "float32")["problem"]
    shown = set_explorer(page, "vgg16", 65536, "float32")
    assert shown["problem"] == "" and not shown["problemShown"] and shown["invalid"] == "false"


def plan_step(model, batch, precision, optimizer):
    """The planner's training step at `batch` as the explorer names it: (peak, phase, breakdown)."""
    setting = PRECISIONS[precision]
    options = {"optimizer": optimizer, "precision": setting.step}
    subject = model if setting.dtype == "float32" else pure(model, setting.dtype)
    size = None if setting.dtype == "float32" else model_card(model).input_size
    found = plan(subject, card="h200", batch_size=batch, input_size=size, **options)
    return found.peak_bytes, found.peak_phase, found.breakdown


def pure(model: str, dtype: str) -> torch.nn.Module:
    """The zoo model converted to `dtype` (on meta: nothing allocated)."""
    with torch.device("meta"):
        return create_model(model).to(DTYPES[dtype])


# AlexNet with Adam peaks in the optimizer step at a small batch (its FC weights' Adam
# temporaries), in the backward pass at a large one. Each precision is the planner's step.
@pytest.mark.parametrize(
    ("model", "batch", "precision", "optimizer"),
    [
        ("alexnet", 2, "fp16", "adam"),
        ("alexnet", 512, "float32", "adam"),
        ("resnet50", 64, "bf16", "momentum"),
        ("resnet18", 100, "bfloat16", "sgd"),
        ("inception_v3", 1024, "float32", "sgd"),
    ],
)
def test_explorer_training_peak_equals_the_planner(page, model, batch, precision, optimizer):
    shown = set_explorer(page, model, batch, precision, "training", optimizer)
    peak, phase, breakdown = plan_step(model, batch, precision, optimizer)
    assert shown["training_peak_bytes"] == peak
    assert shown["peak_phase"] == phase
    assert shown["parts"] == {k: v for k, v in breakdown.items() if k in shown["parts"]}
    assert sum(shown["parts"].values()) == peak
    assert shown["hidden"] and not shown["optimizerDisabled"]


def test_explorer_training_peak_equals_the_cli_in_float32_and_pure_bf16(page) -> None:
    """Where `cnnarch summary --train` can say the same (no autocast; SGD's step is the same
    loop or foreach), it does."""
    for precision in ("float32", "bfloat16"):
        shown = set_explorer(page, "resnet50", 48, precision, "training", "momentum")
        command = ["--batch", "48", "--dtype", precision, "--train", "--optimizer", "momentum"]
        expected = json.loads(cli_summary("resnet50", *command).stdout)
        assert shown["training_peak_bytes"] == expected["training_peak_bytes"]


def test_explorer_offers_autocast_in_training_only(page) -> None:
    shown = set_explorer(page, "resnet18", 8, "bf16", "inference")
    assert shown["precision"] == "float32"  # autocast is not traced for inference
    shown = set_explorer(page, "resnet18", 8, "float16", "training", "sgd")
    assert shown["precision"] == "float32"  # pure fp16 is not a training step it traces


def test_explorer_says_where_training_cannot_be_traced(page) -> None:
    shown = set_explorer(page, "inception_v3", 1, "float32", "training", "sgd")
    assert "training_peak_bytes" not in shown
    assert shown["message"].startswith("from batch 2")
    cli = cli_summary("inception_v3", "--batch", "1", "--train")
    assert cli.returncode == 2 and "more than 1 value per channel" in cli.stderr


# Cells of "will it fit": a model, a precision, an optimizer and a card (by name, or its memory
# as `cnnarch plan --memory` takes it). The explorer reads the largest batch off the planner's
# peak lines; for inference that is `cnnarch plan --inference`'s answer.
@pytest.mark.parametrize(
    ("model", "precision", "memory", "card"),
    [("vgg16", "float32", "h100", "h100-80gb"), ("resnet50", "bfloat16", "24GiB", None)],
)
def test_explorer_largest_inference_batch_equals_the_plan(page, model, precision, memory, card):
    shown = set_explorer(page, model, 1, precision, "inference", memory=memory)
    subject = model if precision == "float32" else pure(model, precision)
    found = plan(
        subject,
        None if card else memory,
        card=card,
        train=False,
        input_size=model_card(model).input_size,
    )
    assert shown["largest"] == found.batch
    assert "largest batch that fits on " in shown["largestText"]


# For training the page replays the caching allocator as `plan` does, on the storages it reads
# off the traces as `plan` reads them: the same batch. VGG16 and GoogLeNet (paper) take another
# path at batch 1, so their storages are read off batches 2 and 3; Inception-v3 trains from 2.
@pytest.mark.parametrize(
    ("model", "precision", "optimizer", "memory", "card"),
    [
        ("vgg16", "float32", "momentum", "rtx4090", "rtx4090"),
        ("resnet50", "bf16", "momentum", "a100-80gb", "a100-80gb"),
        ("alexnet", "float32", "adam", "24GiB", None),
        ("resnet18", "bfloat16", "sgd", "T4", "t4"),
        ("googlenet", "fp16", "momentum", "40GB", None),
        ("inception_v3", "float32", "adam", "h100", "h100-80gb"),
        ("resnet152", "fp16", "adam", "12GB", None),
    ],
)
def test_explorer_largest_training_batch_equals_the_plan(
    page, model, precision, optimizer, memory, card
):
    shown = set_explorer(page, model, 1, precision, "training", optimizer, memory)
    setting = PRECISIONS[precision]
    subject = model if setting.dtype == "float32" else pure(model, setting.dtype)
    size = model_card(model).input_size
    options = {"optimizer": optimizer, "precision": setting.step}
    found = plan(subject, None if card else memory, card=card, input_size=size, **options)
    assert found.checked  # its own trace and the next batch's agree with the replay
    assert shown["largest"] == found.batch
    reserved = f"{found.reserved_bytes / 1e9:,.2f}".rstrip("0").rstrip(".")
    assert f"{reserved} GB reserved by the caching allocator" in shown["largestText"]


def test_explorer_says_nothing_fits_where_plan_does(page) -> None:
    shown = set_explorer(page, "vgg16", 32, "float32", "training", "momentum", "2GB")
    assert shown["largest"] == 0 and "nothing fits" in shown["largestText"]
    with pytest.raises(NothingFits):
        plan("vgg16", "2GB", optimizer="momentum")


def test_explorer_explains_a_memory_it_cannot_read(page) -> None:
    def said(memory: str) -> str:
        return set_explorer(page, "vgg16", 32, "float32", "training", "momentum", memory)[
            "largestText"
        ]

    assert "has no unit" in said("24")
    assert "ambiguous card" in said("rtx")
    assert "unknown card" in said("v100")
    assert "unknown unit" in said("24GIBS")
    assert "nothing fits" in said("2GB")
    assert (
        set_explorer(page, "vgg16", 32, "float32", "training", "momentum", "H100")["largest"]
        == set_explorer(page, "vgg16", 32, "float32", "training", "momentum", "h100-80gb")[
            "largest"
        ]
    )


def test_explorer_is_labeled_and_every_model_has_one(page) -> None:
    found = page.evaluate(
        "Array.from(document.querySelectorAll('form.explorer')).map(f => [f.dataset.model, "
        "['batch', 'precision', 'mode', 'optimizer', 'memory'].every("
        "n => f.elements[n].closest('label') !== null)])"
    )
    assert [m for m, _ in found] == list(DEFAULT_MODELS)
    assert all(labeled for _, labeled in found)


# A model card's bars and diagram boxes at an explorer setting: each one's label (what the
# hover box and a screen reader show), the axis' ticks, and the hover box after hovering and
# after focusing with the keyboard.
READ_LAYERS = """
(function (model) {
  var card = document.getElementById("model-" + model);
  var bars = Array.from(card.querySelectorAll("g.bar"));
  var boxes = Array.from(card.querySelectorAll("g.layer[data-tip]"));
  var tip = document.getElementById("tip");
  bars[2].dispatchEvent(new MouseEvent("mouseover", {bubbles: true}));
  var hovered = [tip.hidden, tip.textContent];
  bars[0].focus();
  bars[0].dispatchEvent(new KeyboardEvent("keydown", {key: "ArrowRight", bubbles: true}));
  var focused = [document.activeElement === bars[1], tip.hidden, tip.textContent];
  return {
    bars: bars.map(function (b) { return [b.dataset.path, b.getAttribute("aria-label")]; }),
    boxes: boxes.map(function (b) { return [b.dataset.path, b.getAttribute("aria-label")]; }),
    tabbable: bars.filter(function (b) { return b.tabIndex === 0; }).length,
    ticks: Array.from(card.querySelectorAll("text.tick")).map(function (t) {
      return t.textContent;
    }),
    hovered: hovered, focused: focused,
  };
})
"""


def test_bars_and_boxes_show_the_layers_values_at_the_explorer_setting(page) -> None:
    set_explorer(page, "vgg16", 8, "bfloat16")
    found = page.evaluate(f"{READ_LAYERS}('vgg16')")
    summary = json.loads(cli_summary("vgg16", "--batch", "8", "--dtype", "bfloat16").stdout)
    rows = {row["path"]: row for row in summary["layers"]}
    first_path, first = found["bars"][0]
    # The first conv's output at batch 8 in bfloat16, as the analyzer counts it.
    output = rows[first_path]["output_bytes"]
    assert output == 8 * 224 * 224 * 64 * 2
    assert f"output {output:,} bytes" in first
    assert f"MACs {rows[first_path]['macs']:,}" in first
    train = cli_summary("vgg16", "--batch", "8", "--dtype", "bfloat16", "--train")
    saved = {row["path"]: row["saved_bytes"] for row in json.loads(train.stdout)["layers"]}
    for _, label in found["bars"]:
        modules = label.split("; modules: ")[1].split(", ")
        layer_saved = sum(saved[path] for path in modules)
        assert f"saved for backward in training {layer_saved:,} bytes" in label
    assert found["tabbable"] == 1
    assert found["ticks"][-1] == f"{8 * 224 * 224 * 64 * 2 / 1e6:,.2f} MB"
    labels = dict(found["bars"])
    assert found["boxes"] and all(label == labels[path] for path, label in found["boxes"])
    assert found["hovered"] == [False, found["bars"][2][1]]
    assert found["focused"] == [True, False, found["bars"][1][1]]


def test_the_bars_axis_labels_fit_at_the_largest_batch(page) -> None:
    set_explorer(page, "vgg16", 65536, "float32")
    found = page.evaluate(
        "Array.from(document.querySelectorAll('#model-vgg16 text.tick')).map(t => [t.textContent,"
        " t.getBoundingClientRect().left - t.ownerSVGElement.getBoundingClientRect().left])"
    )
    assert found[-1][0] == f"{65536 * 224 * 224 * 64 * 4 / 1e9:,.2f} GB"  # not 210,453 MB
    assert all(left >= 0 for _, left in found)  # inside the picture, not cut at its edge


def test_comparison_bubbles_show_their_numbers_and_link_to_the_model(page) -> None:
    found = page.evaluate(
        "Array.from(document.querySelectorAll('#figure-comparison_accuracy_compute a.point'))"
        ".map(a => [a.getAttribute('href'), a.getAttribute('aria-label'),"
        " document.querySelector(a.getAttribute('href')) !== null])"
    )
    assert len(found) >= 8
    assert all(exists for _, _, exists in found)
    alexnet = next(label for href, label, _ in found if href == "#model-alexnet")
    assert "top-1 56.52%" in alexnet and "MACs" in alexnet
    page.evaluate(
        "document.querySelector('#figure-comparison_accuracy_compute a[href=\"#model-alexnet\"]')"
        ".dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true}))"
    )
    assert page.evaluate("location.hash") == "#model-alexnet"


def test_keyboard_reaches_every_picture_once_in_page_order(page) -> None:
    """No positive tabindex (the order is the page's); each picture with values to show is
    one stop of the Tab key (arrow keys move inside it), with a label a screen reader reads."""
    found = page.evaluate(
        '({positive: document.querySelectorAll(\'[tabindex]:not([tabindex^="-"])'
        ':not([tabindex="0"])\').length,'
        " pictures: Array.from(document.querySelectorAll('svg')).filter("
        "s => s.querySelector('[data-tip]')).map(s => ["
        "s.querySelectorAll('[data-tip]').length,"
        " Array.from(s.querySelectorAll('[data-tip]')).filter(e => e.tabIndex === 0).length,"
        " Array.from(s.querySelectorAll('[data-tip]')).every(e => e.getAttribute('aria-label'))"
        "])})"
    )
    assert found["positive"] == 0
    assert len(found["pictures"]) > 2 * len(DEFAULT_MODELS)  # bars and diagram per model, more
    assert all(count > 0 and stops == 1 and labeled for count, stops, labeled in found["pictures"])


# Where the first screen's parts are, at the top of the page.
FIRST_SCREEN = """
(function () {
  window.scrollTo(0, 0);
  function box(selector) {
    var el = document.querySelector(selector);
    if (!el) { return null; }
    var r = el.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, right: r.right};
  }
  return {title: box("header h1"), lead: box("header p.lead"),
          chart: box("header #figure-comparison_accuracy_compute svg"),
          ideas: box("header #table-key_ideas"), contents: box("header nav.toc"),
          width: document.documentElement.clientWidth};
})()
"""


def test_the_first_screen_shows_title_line_chart_key_ideas_and_contents(browser, report_dir):
    browser.load(report_dir / "index.html", width=DESKTOP, height=HEIGHT)
    found = browser.evaluate(FIRST_SCREEN)
    for part in ("title", "lead", "chart", "ideas", "contents"):
        shown = found[part]
        assert shown is not None, part
        assert shown["top"] >= 0 and shown["bottom"] <= HEIGHT, (part, shown)
        assert shown["right"] <= found["width"], part
    # In the order a reader meets them: the title, the line, then the picture and the ideas.
    assert found["title"]["bottom"] <= found["lead"]["top"] <= found["chart"]["top"]


# At a phone's width: every figure's smallest text as rendered (its font size in the SVG's
# units times the scale from those units to the screen, transforms and the SVG's shrinking
# included), whether the figure stays within the page, and whether, where part of it is
# scrolled out of sight, a cue says so. A chart embedded as an image has no text to measure
# (and shrinks with its text): it is listed apart.
PHONE_FIGURES = """
(function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  var page = document.documentElement.clientWidth;
  function visible(el) {
    var r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden";
  }
  return Array.from(document.querySelectorAll("figure")).map(function (fig) {
    var smallest = null, where = "";
    fig.querySelectorAll("svg text").forEach(function (t) {
      if (!t.textContent.trim() || !visible(t)) { return; }
      var m = t.getScreenCTM();
      var px = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
      if (smallest === null || px < smallest) { smallest = px; where = t.textContent; }
    });
    var hidden = Array.from(fig.querySelectorAll("*")).some(function (el) {
      return el.scrollWidth > el.clientWidth + 1 &&
        ["auto", "scroll"].indexOf(getComputedStyle(el).overflowX) >= 0;
    });
    var cue = fig.querySelector(".scroll-cue");
    var r = fig.getBoundingClientRect();
    return {id: fig.id, smallest: smallest, text: where, left: r.left, right: r.right,
            page: page, scrolls: hidden, cue: cue !== null && visible(cue),
            images: fig.querySelectorAll("img").length};
  });
})()
"""
LEGIBLE_PX = 10.0  # the smallest text a phone shows readably, in CSS pixels


@pytest.fixture(scope="module")
def phone_figures(browser, report_dir) -> list[dict]:
    browser.load(report_dir / "index.html", width=PHONE, height=HEIGHT)
    return browser.evaluate(PHONE_FIGURES)


def test_on_a_phone_every_figure_shows_its_text_as_text(phone_figures) -> None:
    assert len(phone_figures) > 20
    assert [f["id"] for f in phone_figures if f["images"]] == []


def test_on_a_phone_every_figures_text_is_at_least_10_px(phone_figures) -> None:
    measured = [f for f in phone_figures if f["smallest"] is not None]
    assert len(measured) > 20
    small = [(f["id"], round(f["smallest"], 1), f["text"]) for f in measured]
    assert [s for s in small if s[1] < LEGIBLE_PX - 0.05] == []


def test_on_a_phone_every_figure_fits_or_scrolls_with_a_cue(phone_figures) -> None:
    outside = [f["id"] for f in phone_figures if f["left"] < 0 or f["right"] > f["page"]]
    assert outside == []
    scrolling = [f for f in phone_figures if f["scrolls"]]
    assert scrolling, "no figure scrolls on a phone: this test measures nothing"
    assert [f["id"] for f in scrolling if not f["cue"]] == []
    # A figure that fits shows no cue.
    assert [f["id"] for f in phone_figures if f["cue"] and not f["scrolls"]] == []


# At a phone's width, every table scrolled to its right end: where its first column is, against
# its box (a sticky first column stays at the box's left edge, and leaves room for numbers).
TABLES_SCROLLED = """
(function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  return Array.from(document.querySelectorAll("table")).map(function (table) {
    var box = table.parentElement;
    var wide = box.scrollWidth > box.clientWidth + 1;
    box.scrollLeft = box.scrollWidth;
    var edge = box.getBoundingClientRect();
    var firsts = Array.from(table.rows).map(function (row) {
      var r = row.cells[0].getBoundingClientRect();
      return [r.left - edge.left, r.width];
    });
    box.scrollLeft = 0;
    return {id: table.id, wide: wide, width: box.clientWidth, firsts: firsts};
  });
})()
"""


def test_on_a_phone_a_wide_table_keeps_its_first_column_in_view(browser, report_dir) -> None:
    browser.load(report_dir / "index.html", width=PHONE, height=HEIGHT)
    tables = browser.evaluate(TABLES_SCROLLED)
    wide = [t for t in tables if t["wide"]]
    assert wide, "no table is wider than a phone: this test measures nothing"
    for table in wide:
        lefts = [left for left, _ in table["firsts"]]
        assert max(abs(left) for left in lefts) <= 1.5, table["id"]  # at the box's left edge
        # The names leave at least half the box to the numbers beside them.
        assert max(width for _, width in table["firsts"]) <= 0.5 * table["width"], table["id"]


# Every detail a pointer shows on hover, reached without one: each element with a hover detail
# (an SVG <title> below the root, an HTML title attribute, a data-tip) and whether it can take
# focus (a tap focuses it too).
HOVER_DETAILS = """
(function () {
  var found = [];
  document.querySelectorAll("svg title").forEach(function (t) {
    if (t.parentElement.tagName.toLowerCase() !== "svg") { found.push(t.parentElement); }
  });
  document.querySelectorAll("[title], [data-tip]").forEach(function (el) { found.push(el); });
  return found.map(function (el) {
    return {tag: el.tagName, focusable: el.hasAttribute("tabindex") || el.tagName === "A" ||
            el.tagName === "a", label: el.getAttribute("aria-label") || ""};
  });
})()
"""


def test_every_hover_detail_can_be_reached_by_focus(browser, report_dir) -> None:
    browser.load(report_dir / "index.html", width=PHONE, height=HEIGHT)
    details = browser.evaluate(HOVER_DETAILS)
    assert len(details) > 100
    assert [d for d in details if not (d["focusable"] and d["label"])] == []


def tap(browser, selector: str) -> dict:
    """Tap (a touch, not a mouse) the middle of the first element `selector` finds; what the
    detail box shows after it."""
    where = browser.evaluate(
        f"(function () {{ var el = document.querySelector({json.dumps(selector)});"
        " el.scrollIntoView({block: 'center', inline: 'center'});"
        " var r = el.getBoundingClientRect();"
        " return {x: r.left + r.width / 2, y: r.top + r.height / 2,"
        " label: el.getAttribute('aria-label')}; })()"
    )
    browser.send("Input.synthesizeTapGesture", {"x": where["x"], "y": where["y"]})
    shown = browser.evaluate(
        "(function () { var tip = document.getElementById('tip');"
        " return {hidden: tip.hidden, text: tip.textContent}; })()"
    )
    return {"label": where["label"], **shown}


@pytest.mark.parametrize(
    "selector",
    [
        "#model-vgg16 figure[id^=figure-profile] g[data-tip]:nth-of-type(3)",
        "#strip_resnet50 g.segment",
        "#diagram_googlenet g.layer",
    ],
)
def test_a_tap_shows_the_detail_a_hover_shows(browser, report_dir, selector) -> None:
    browser.load(report_dir / "index.html", width=PHONE, height=HEIGHT)
    browser.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 1})
    try:
        shown = tap(browser, selector)
    finally:
        browser.send("Emulation.setTouchEmulationEnabled", {"enabled": False})
    assert shown["label"] and not shown["hidden"]
    assert shown["text"] == shown["label"]
