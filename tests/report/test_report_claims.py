"""The page as one argument: every claim once with one verdict, verdicts that carry their
uncertainty and their measures, run descriptions from the runs' own settings, one unit per
quantity, and nothing on the first screen that the page contradicts below.

Each test here reads the report built once per session (`conftest.report`)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections import defaultdict

from cnnarch.lecture.claims import VERDICTS, combined


def table(report_dir, name: str) -> dict:
    return json.loads((report_dir / "tables" / f"{name}.json").read_text())


def section(report_dir, title: str) -> str:
    """The Markdown of the section whose heading starts with `title`, up to the next `## `."""
    markdown = (report_dir / "report.md").read_text()
    return markdown.split(f"## {title}")[1].split("\n## ")[0]


def test_every_claim_appears_with_one_verdict_and_one_count(report, report_dir) -> None:
    claims = table(report_dir, "claims")["rows"]
    ids = [r["id"] for r in claims]
    assert len(ids) == len(set(ids)) == len(report.checks)
    # One statement, one row: no claim counted twice under two runs or two sources.
    statements = [r["claim"] for r in claims]
    assert len(statements) == len(set(statements))
    # Every verdict the page shows for a claim, in its section, in the list of failures and in
    # the published table, is the one verdict of the tally's row.
    page = (report_dir / "index.html").read_text()
    shown: dict[str, set[str]] = defaultdict(set)
    for claim, verdict in re.findall(r'data-claim="([^"]+)" data-verdict="([^"]+)"', page):
        shown[claim].add(html.unescape(verdict))
    for row in table(report_dir, "published_vs_computed")["rows"]:
        shown[row["claim"]].add(row["verdict"])
    by_id = {r["id"]: r["verdict"] for r in claims}
    assert set(shown) <= set(by_id)
    for claim, verdicts in shown.items():
        assert verdicts == {by_id[claim]}, claim
    # Every claim of the tally is shown with its verdict somewhere on the page.
    assert set(shown) == set(by_id)
    # The first line counts the rows.
    lead = (report_dir / "report.md").read_text().split("\n\n")[1]
    assert f"{len(claims)} claims checked: " in lead
    for verdict in VERDICTS:
        n = sum(r["verdict"] == verdict for r in claims)
        word = {"holds": "hold", "does not hold": "do not hold"}.get(verdict, verdict)
        word = "depend on the measure" if verdict == "depends on the measure" else word
        assert (f"{n} {word}" in lead) == (n > 0), verdict


def test_the_key_ideas_say_what_the_claims_below_say(report_dir) -> None:
    claims = {r["id"]: r for r in table(report_dir, "claims")["rows"]}
    ideas = {r["idea"].split("](")[0][1:]: r for r in table(report_dir, "key_ideas")["rows"]}
    decided_by = {
        "Residual learning: a deeper ResNet trains no worse": ["degradation-residual"],
        "… but deeper plain nets are harder to optimize": ["degradation-plain"],
        "Accuracy against cost": [
            "comparison-inception-v4",
            "comparison-most-accurate",
            "comparison-vgg",
            "comparison-googlenet",
            "comparison-alexnet",
            "comparison-resnet",
        ],
        "Deeper is better": ["resnet-deeper-is-better"],
    }
    for idea, ids in decided_by.items():
        assert ideas[idea]["verdict"] == combined([claims[i]["verdict"] for i in ids]), idea
    # The deeper ResNet is level with the shallower one: the first screen says so too.
    assert ideas["Residual learning: a deeper ResNet trains no worse"]["verdict"] == "within noise"
    # Deeper is better rests on torchvision's published accuracy, and says so.
    assert ideas["Deeper is better"]["kind"] == "published"
    assert claims["resnet-deeper-is-better"]["kind"] == "published"


def test_the_longer_run_decides_and_each_run_is_described_from_its_settings(report_dir) -> None:
    degradation = section(report_dir, "The degradation experiment")
    decided, supporting = degradation.split("### Supporting data")
    # The standard run (48 epochs) decides; its words are its own settings: 5,000 of the
    # images, 48 epochs, two seeds for the ResNets and one for the plain nets.
    assert "The longest run decides the claims" in decided
    assert (
        "a 1 h 16 min run of `--standard`: 5,000 training images (a subset), 48 epochs of 157 "
        "steps at batch 32, depths 20 and 56, residual seeds 0,1, plain seed 0"
    ) in decided.lower()
    assert "a few epochs" not in degradation
    assert not re.search(r"(?<!residual )seeds 0,1\b(?!,2)", decided)  # the plain nets ran one
    assert decided.count("**holds**") + decided.count("**within noise**") == 2
    # The quick run is supporting data: described, with its gaps, and no verdict of its own.
    assert supporting.startswith(": a 29 min run of `--quick`")
    assert "6 epochs of 63 steps" in supporting and "seeds 0,1,2" in supporting
    assert not any(f"**{v}**" in supporting for v in VERDICTS)


def test_a_measured_verdict_carries_its_uncertainty(report_dir) -> None:
    claims = {r["id"]: r for r in table(report_dir, "claims")["rows"]}
    degradation = section(report_dir, "The degradation experiment")
    # -0.10 points, seeds +0.02 and -0.22: below twice the 0.34-point sampling error of an
    # error rate on 5,000 images. Not "holds": within noise, counted apart.
    assert claims["degradation-residual"]["verdict"] == "within noise"
    assert (
        "-0.10 points (2 seeds: +0.02, -0.22; seed spread ±0.12, sampling error ±0.34 on 5,000 "
        "images): within noise"
    ) in degradation
    assert claims["degradation-plain"]["verdict"] == "holds"
    assert "+11.84 points (1 seed: +11.84; one seed: no seed spread, sampling error ±0.67" in (
        degradation
    )


def test_comparative_claims_are_judged_on_every_measure_the_page_shows(report_dir) -> None:
    comparison = section(report_dir, "Comparing the architectures")
    rows = {r["name"]: r for r in table(report_dir, "comparison")["rows"]}
    vgg = next(line for line in comparison.splitlines() if "“VGG: highest memory" in line)
    assert vgg.startswith("- **depends on the measure**")
    # The page's own columns: ResNet-152 has more activations and a larger training peak than
    # VGG19, VGG19 the larger inference peak and the most MACs.
    assert rows["resnet152"]["activations"] > rows["vgg19"]["activations"]
    assert rows["resnet152"]["train"] > rows["vgg19"]["train"]
    assert rows["vgg19"]["inference_peak"] == max(r["inference_peak"] for r in rows.values())
    assert "✗ forward activations, one image: resnet152, 233.8 MB; vgg19 65.7 MB" in vgg
    assert "✗ training peak, batch 32: resnet152, 6,194.2 MB" in vgg
    assert "✓ inference peak, one image: vgg19" in vgg
    resnet = next(line for line in comparison.splitlines() if "“ResNet: moderate" in line)
    # With the Inception networks computed, a ResNet is the most accurate on neither accuracy:
    # Inception-ResNet-v2's published 80.1% and the chart's reading of Inception-v4, 80%.
    assert resnet.startswith("- **depends on the measure**")
    assert "✗ top-1 (published): inception_resnet_v2, 80.10%; resnet152 78.31%" in resnet
    assert "✗ top-1 as read off Canziani et al.'s figure: Inception-v4, 80%" in resnet
    # Inception-v4: not residual, as the trace finds; the most accurate depends on the measure.
    v4 = next(line for line in comparison.splitlines() if "“Inception-v4: ResNet" in line)
    assert v4.startswith("- **does not hold**") and "Inception-v4 0, Inception-ResNet-v1 20" in v4
    most = next(line for line in comparison.splitlines() if "“Inception-v4: the most" in line)
    assert most.startswith("- **depends on the measure**")
    assert "not residual: Inception-v3, Inception-v4" in comparison


def test_one_unit_per_quantity(report_dir) -> None:
    # GoogLeNet's Table 1 is the one place with K = 1024, and its columns say so.
    labels = [c["label"] for c in table(report_dir, "googlenet_table1")["columns"]]
    assert "params, printed (K = 1024)" in labels
    page = (report_dir / "index.html").read_text()
    head = page.split('id="table-googlenet_table1"')[1].split("</thead>")[0]
    assert "weights, computed (K = 1024)</th>" in head and "(K)" not in head
    # A column of weights only says "weights"; "params" always include biases.
    three = table(report_dir, "vgg_3x3_vs_7x7")
    assert "params" not in [c["key"] for c in three["columns"]]
    assert [r["weights"] for r in three["rows"]] == [3 * 9 * 256 * 256, 49 * 256 * 256]
    module = table(report_dir, "inception_module_example")
    assert "params" not in [c["key"] for c in module["columns"]]
    # AlexNet's GPUs named once, as the paper names them.
    parts = [r["part"] for r in table(report_dir, "alexnet_towers")["rows"]]
    assert parts == ["GPU 1", "GPU 2", "fc8 (on GPU 1)"]
    page = (report_dir / "index.html").read_text() + (report_dir / "report.md").read_text()
    for name in ("tower 0", "tower 1", "GPU 0", "tower 1 (GPU 1)"):
        assert name not in page, name
    # A heading never repeats its unit.
    for path in (report_dir / "tables").glob("*.csv"):
        header = next(csv.reader(io.StringIO(path.read_text())))
        assert not [h for h in header if re.search(r"(\w+) \(\1\)", h)], path.name


def test_the_first_screen_is_the_chart_and_the_key_ideas_with_the_contents(report_dir) -> None:
    page = (report_dir / "index.html").read_text()
    header = page.split("</header>")[0]
    assert '<p class="lead">' in header
    assert '<figure id="figure-comparison_accuracy_compute">' in header
    assert 'id="table-key_ideas"' in header and '<nav class="toc"' in header
    # The chart is on the page once: at the top, the comparison section points to it.
    assert page.count('<figure id="figure-comparison_accuracy_compute">') == 1
    assert "the chart at [the top of the page]" in section(report_dir, "Comparing the")
