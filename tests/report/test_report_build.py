"""The whole report: its files, its numbers against the analyzer's, and its errors."""

import json
import math
import re

import pytest

import cnnarch
from cnnarch.errors import CnnarchError
from cnnarch.lecture.build import build_report
from cnnarch.lecture.defaults import CHART_MODELS, DEFAULT_MODELS


def load_table(report_dir, name: str) -> dict:
    return json.loads((report_dir / "tables" / f"{name}.json").read_text())


def test_every_file_is_written(report, report_dir) -> None:
    assert report.html == report_dir / "index.html"
    assert (report_dir / "report.md").read_text().startswith("# CS231n Lecture 9")
    for png in report.figures:
        assert png.read_bytes().startswith(b"\x89PNG")
        assert png.with_suffix(".svg").read_text().lstrip().startswith("<?xml")
    for csv_path in report.tables:
        assert csv_path.with_suffix(".json").is_file()
    names = {p.stem for p in report.tables}
    assert {
        "comparison",
        "vgg16_lecture_table",
        "googlenet_table1",
        "alexnet_crossings",
        "inception_module_example",
        "resnet_depth",
        "published_vs_computed",
        "key_ideas",
        "claims",
    } <= names
    assert {f"layers_{m}" for m in DEFAULT_MODELS} <= names
    leftovers = [p for p in report_dir.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_html_is_self_contained(report_dir) -> None:
    html = (report_dir / "index.html").read_text()
    # Nothing fetched from the network: no external scripts, styles or images.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<link" not in html
    # Every chart is on the page as inline SVG (its PNG is for report.md), none as an image.
    pngs = list((report_dir / "figures").glob("*.png"))
    assert "data:image/png" not in html and "<img" not in html
    for png in pngs:
        figure = html.split(f'<figure id="figure-{png.stem}">')[1].split("</figure>")[0]
        assert figure.count("<svg") == 1, png.stem


def test_comparison_numbers_are_the_analyzers(report_dir) -> None:
    rows = {r["name"]: r for r in load_table(report_dir, "comparison")["rows"]}
    # the models, then the other networks of the lecture's chart
    assert list(rows) == [*DEFAULT_MODELS, "bn_alexnet", "bn_nin", "enet"]
    assert set(CHART_MODELS) <= set(rows)
    summary = cnnarch.analyze("resnet50", (3, 224, 224), variant="torchvision")
    assert rows["resnet50"]["params"] == summary.total_params == 25_557_032
    assert rows["resnet50"]["macs"] == summary.total_macs
    assert rows["resnet50"]["activations"] == summary.activation_bytes
    assert rows["resnet50"]["top1"] == 76.130  # torchvision's published acc@1
    googlenet = cnnarch.analyze("googlenet", (3, 224, 224), variant="torchvision")
    assert rows["googlenet"]["params"] == googlenet.total_params
    assert rows["googlenet"]["inference_params"] == 6_624_904  # torchvision's count (no aux)
    assert rows["zfnet"]["top1"] is None  # no published weights
    # Each accuracy from its source: the Inception-v4 paper's Table 2 (20.0% top-1 error), the
    # model file of BN-NIN, and for ENet the figure read off Canziani et al.'s chart.
    assert (rows["inception_v4"]["top1"], rows["inception_v4"]["top1_from"]) == (
        80.0,
        "paper, Table 2",
    )
    assert (rows["bn_nin"]["top1"], rows["bn_nin"]["top1_from"]) == (62.6, "model file")
    assert (rows["enet"]["top1"], rows["enet"]["top1_from"]) == (68.0, "read off the chart")
    enet = cnnarch.analyze("enet", (3, 224, 224))
    assert (rows["enet"]["params"], rows["enet"]["macs"]) == (enet.total_params, enet.total_macs)
    training = cnnarch.analyze(
        "vgg16",
        (3, 224, 224),
        batch_size=32,
        train=True,
        optimizer="momentum",
        variant="torchvision",
    )
    assert rows["vgg16"]["train"] == training.training.peak_bytes


def test_layer_tables_sum_to_the_totals(report_dir) -> None:
    for name in ("vgg16", "resnet152"):
        rows = load_table(report_dir, f"layers_{name}")["rows"]
        summary = cnnarch.analyze(name, (3, 224, 224))
        assert sum(r["params"] for r in rows) == summary.rows[0].params
        assert sum(r["macs"] for r in rows) == summary.total_macs


def test_published_figures_name_source_and_reason(report_dir) -> None:
    rows = load_table(report_dir, "published_vs_computed")["rows"]
    assert len(rows) > 40
    assert all(r["source"] and r["agreement"] for r in rows)
    # Every figure that does not agree names its cause, found by the code.
    assert all(r["cause"] for r in rows if r["verdict"] == "does not hold")
    by_quantity = {(r["topic"], r["quantity"]): r for r in rows}
    bottleneck = by_quantity[("Inception module", "bottleneck ops")]
    assert bottleneck["computed"] == 271_351_808 and bottleneck["published"] == 358e6
    assert "counted twice" in bottleneck["cause"]
    assert bottleneck["explained"] == pytest.approx(100, abs=0.1)  # 358,055,936 vs 358M
    resnet34 = by_quantity[("resnet34", "Table 1 FLOPs (multiply-adds)")]
    assert resnet34["agreement"] == "cut off"  # 3.66 G printed as 3.6 G: +1.8%
    # AlexNet: two towers of 28,434,112 parameters and fc8 (4096 x 1000 + 1000); "60 million".
    alexnet = by_quantity[("alexnet", "parameters")]
    assert alexnet["computed"] == 2 * 28_434_112 + 4_097_000
    assert alexnet["published"] == 60e6 and alexnet["agreement"] == "rounded"
    bound = by_quantity[("inception_v3", "parameters at inference")]
    assert bound["computed"] < bound["published"] == 25e6
    assert bound["agreement"] == "within the bound"


def test_canziani_reading_sits_beside_the_computed_costs(report_dir) -> None:
    rows = {r["label"]: r for r in load_table(report_dir, "canziani_reading")["rows"]}
    assert rows["VGG-16"]["weights"] == 138e6  # as read: 138 M-weights
    vgg = cnnarch.analyze("vgg16", (3, 224, 224), variant="torchvision")
    assert rows["VGG-16"]["ops"] == 2 * vgg.total_macs


def fake_run(kind: str, depth: int, seed: int, train_error: float) -> dict:
    epochs = [
        {
            "epoch": e,
            "train_error": train_error + 10 - 5 * e,
            "test_error": train_error + 12 - 5 * e,
            "train_loss": 1.0,
            "test_loss": 1.0,
            "lr": 0.1,
            "images_per_s": 100.0,
            "seconds": 1.0,
            "global_step": 10 * e,
        }
        for e in (1, 2)
    ]
    return {
        "model": f"{'resnet' if kind == 'residual' else 'plain'}{depth}",
        "kind": kind,
        "depth": depth,
        "seed": seed,
        "seconds": 2.0,
        "history": epochs,
    }


def fake_results(dataset: str = "fashion-mnist", environment: dict | None = None) -> dict:
    """A results.json of two depths and one seed. Final training errors: plain 20 -> 56 gets
    worse (5 -> 9), residual gets better (5 -> 4)."""
    from cnnarch.experiments.degradation import assess_effect, summary_table

    runs = [
        fake_run("plain", 20, 0, 5.0),
        fake_run("plain", 56, 0, 9.0),
        fake_run("residual", 20, 0, 5.0),
        fake_run("residual", 56, 0, 4.0),
    ]
    settings = {
        "preset": "quick",
        "depths": [20, 56],
        "dataset": dataset,
        "subset": 4000,
        "train_images": 4000,
        "test_images": 2000,
        "epochs": 2,
        "steps_per_epoch": 10,
        "batch_size": 128,
        "widths": [16, 32, 64],
        "seeds": [0],
        "classes": 10,
    }
    return {
        "experiment": "degradation",
        "format": 1,
        "complete": True,
        "settings": settings,
        "environment": environment
        or {"torch": "2.13.0+cpu", "device": "cpu", "threads": 1, "world_size": 1},
        "wall_seconds": 8.0,
        "runs": runs,
        "table": summary_table(runs),
        "effect": assess_effect(runs),
    }


@pytest.mark.slow
def test_degradation_results_are_included_when_present(tmp_path) -> None:
    """A run the reader names is shown, its verdicts with their uncertainty: the plain gap of
    +4 points and the residual gap of -1 point on 4,000 images are both beyond twice their
    sampling errors (1.16 and 0.93 points)."""
    from cnnarch.experiments.degradation import write_outputs

    results = fake_results()
    folder = tmp_path / "runs" / "degradation"
    write_outputs(results, folder)

    files = build_report(
        tmp_path / "out", ["resnet20"], batch_size=2, degradation_results=folder / "results.json"
    )
    table = load_table(files.out, "degradation")
    rows = {r["model"]: r for r in table["rows"]}
    assert rows["plain56"]["train_error_mean"] == 9.0  # last epoch: error + 10 - 5 * 2
    assert rows["resnet56"]["train_error_mean"] == 4.0
    assert (files.out / "figures" / "degradation.png").is_file()
    assert (files.out / "figures" / "degradation.svg").is_file()
    markdown = files.markdown.read_text()
    section = markdown.split("## The degradation experiment")[1]
    # The run shown, named as its reader can use it (not by the build machine's absolute path).
    assert "Results from `results.json`, your own run" in section
    assert str(tmp_path) not in markdown
    assert "plain-56 minus plain-20, final training error: +4.00 points" in section
    assert "ResNet-56 minus ResNet-20, final training error: -1.00 points" in section
    # Sampling errors of 4% and 5% error rates on 4,000 images, for the residual gap.
    sampling = math.hypot(*(100 * math.sqrt(p * (1 - p) / 4000) for p in (0.04, 0.05)))
    assert f"sampling error ±{sampling:.2f} on 4,000 images" in section
    assert section.count("**holds**") == 2  # both halves of the claim


@pytest.mark.slow
def test_unreadable_default_results_do_not_stop_the_report(tmp_path, monkeypatch) -> None:
    # The default file is optional: a broken one is named on the page, with why.
    monkeypatch.chdir(tmp_path)
    broken = tmp_path / "runs" / "degradation" / "results.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json")
    files = build_report(tmp_path / "out", ["resnet20"], batch_size=2)
    section = files.markdown.read_text().split("## The degradation experiment")[1]
    assert "The results at `runs/degradation/results.json` could not be read" in section
    assert "shows the results shipped with cnnarch" in section


@pytest.mark.parametrize("content", [None, "{not json"])
def test_a_results_file_the_user_names_must_be_there_and_readable(tmp_path, content) -> None:
    named = tmp_path / "typo" / "results.json"
    if content is not None:
        named.parent.mkdir()
        named.write_text(content)
    message = "no degradation results at" if content is None else "cannot read degradation"
    with pytest.raises(CnnarchError, match=message):
        build_report(tmp_path / "out", ["resnet20"], degradation_results=named)
    assert not (tmp_path / "out").exists()  # it fails before any work


def test_without_results_the_shipped_run_is_shown_and_named(report_dir) -> None:
    section = (report_dir / "report.md").read_text().split("## The degradation experiment")[1]
    assert "run `cnnarch experiment degradation` to make your own" in section
    assert "shows the results shipped with cnnarch" in section
    rows = load_table(report_dir, "degradation")["rows"]
    assert {r["kind"] for r in rows} == {"plain", "residual"}
    assert (report_dir / "figures" / "degradation.png").is_file()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"models": ["resnet5O"]}, "unknown model 'resnet5O'; did you mean"),
        ({"models": []}, "no models given"),
        ({"models": ["resnet20"], "batch_size": 0}, "batch_size must be at least 1"),
    ],
)
def test_bad_requests_are_clear_errors(tmp_path, kwargs, message) -> None:
    with pytest.raises(CnnarchError, match=message):
        build_report(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out" / "index.html").exists()


def test_out_that_is_a_file(tmp_path) -> None:
    blocker = tmp_path / "report"
    blocker.write_text("")
    with pytest.raises(CnnarchError, match="not a folder"):
        build_report(blocker, ["resnet20"])


def test_intro_opens_with_the_tally_and_the_key_ideas(report_dir) -> None:
    intro = (report_dir / "report.md").read_text().split("## How the numbers are counted")[0]
    assert intro.index("claims checked: ") < intro.index("**The lecture's key ideas, checked**")
    published = (report_dir / "report.md").read_text().split("## Published against computed")[1]
    # Those that do not hold are listed with their cause: 271M by the slide's own terms.
    assert "“bottleneck: 358M ops, output depth 480”" in published


@pytest.mark.slow
def test_strings_from_a_results_file_are_escaped_on_the_page_and_in_markdown(tmp_path) -> None:
    hostile = "<script>alert(1)</script>`x`"
    environment = {"torch": hostile, "device": hostile, "started_utc": hostile}
    results = fake_results(hostile, environment)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    files = build_report(tmp_path / "out", ["resnet20"], batch_size=2, degradation_results=path)
    page = files.html.read_text()
    markdown = files.markdown.read_text()
    assert hostile.split("`")[0].replace("<", "&lt;").replace(">", "&gt;") in page
    assert "<script>alert" not in page and "<script>alert" not in markdown
    assert "&lt;script>alert(1)&lt;/script>'x'" in markdown  # shown, inert
