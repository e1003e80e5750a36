"""Architecture diagrams: their numbers are the analyzer's (one block derived by hand), every
lecture model has its pictures in the report, each SVG is well-formed, and `cnnarch diagram`
draws any zoo model or module and fails clearly."""

import re
import sys
import xml.etree.ElementTree as ET

import pytest
import torch

from cnnarch import analyze
from cnnarch.cli import main
from cnnarch.errors import CnnarchError
from cnnarch.experiments.inception import lecture_example
from cnnarch.lecture.defaults import DEFAULT_MODELS
from cnnarch.lecture.diagrams import (
    KIND_COLORS,
    analyze_block,
    block_lanes,
    inception_diagram,
    model_diagram,
    resnet_block_diagrams,
)
from cnnarch.zoo.registry import create_model

SVG = "{http://www.w3.org/2000/svg}"


def boxes(svg: str) -> list[dict[str, str]]:
    """The layer boxes of a diagram (parsing fails on malformed SVG)."""
    root = ET.fromstring(svg)
    return [dict(g.attrib) for g in root.iter(f"{SVG}g") if g.get("class") == "layer"]


@pytest.fixture(scope="module")
def resnet50():
    with torch.device("meta"):
        model = create_model("resnet50")
    return model, analyze(model)


def test_bottleneck_block_with_projection_by_hand(resnet50) -> None:
    # resnet50's first block: 56x56x64 in, 1x1 64 -> 3x3 64 -> 1x1 256, and a 1x1 projection
    # 64 -> 256 on the shortcut. A k x k conv from c_in to c_out has k*k*c_in*c_out weights and
    # that many MACs per output position (56*56 = 3136 here).
    model, summary = resnet50
    layers = analyze_block(model.get_submodule("layer1.0"), (64, 56, 56))
    merge, lanes = block_lanes(layers)
    assert merge == "add"
    (main_label, main), (short_label, shortcut) = lanes
    assert (main_label, short_label) == ("main path", "shortcut")
    by_hand = [(64 * 64, (64, 56, 56)), (9 * 64 * 64, (64, 56, 56)), (64 * 256, (256, 56, 56))]
    assert [(x.weights, x.output) for x in main] == by_hand
    assert [x.macs for x in main] == [w * 3136 for w, _ in by_hand]
    assert [(x.weights, x.macs, x.output) for x in shortcut] == [
        (64 * 256, 64 * 256 * 3136, (256, 56, 56))
    ]
    # ... and the block's totals are the analyzer's for that module inside the network.
    row = next(r for r in summary.rows if r.path == "layer1.0")
    assert sum(x.macs for x in main + shortcut) == row.macs
    assert sum(x.params for x in main + shortcut) == row.params


def test_identity_shortcut_is_drawn_without_weights(resnet50) -> None:
    model, _ = resnet50
    merge, lanes = block_lanes(analyze_block(model.get_submodule("layer1.1"), (256, 56, 56)))
    assert merge == "add" and lanes[1] == ("shortcut", [])


def test_resnet_block_diagrams_show_the_analyzers_numbers(resnet50) -> None:
    model, summary = resnet50
    (drawn,) = resnet_block_diagrams({"resnet50": (model, summary)})
    shown = boxes(drawn.svg)
    rows = {r.path: r for r in summary.rows}
    # Identity block then projection block; each box's MACs add up to its block's row.
    assert sum(int(b["data-macs"]) for b in shown[:3]) == rows["layer1.1"].macs
    assert sum(int(b["data-macs"]) for b in shown[3:]) == rows["layer1.0"].macs
    assert [b["data-kind"] for b in shown[3:]] == ["conv", "conv", "conv", "shortcut"]
    assert "identity (no weights)" in drawn.svg


def test_inception_module_branches_are_the_analyzers() -> None:
    naive, bottleneck = lecture_example(bias=False)
    drawn = inception_diagram()
    shown = boxes(drawn.svg)
    # Naive: one box per branch (1x1, 3x3, 5x5 convs and the 3x3 max pool); bottlenecked: a
    # 1x1 conv before the 3x3 and 5x5 convs and after the pool.
    assert len(shown) == 4 + 7
    for cost, drawn_boxes in ((naive, shown[:4]), (bottleneck, shown[4:])):
        assert sum(int(b["data-macs"]) for b in drawn_boxes) == cost.total_macs
        assert sum(int(b["data-params"]) for b in drawn_boxes) == cost.total_params
    assert "concat: output 28×28×672" in drawn.svg  # 128 + 192 + 96 + 256 channels
    assert f"concat: output 28×28×{bottleneck.output_depth}" in drawn.svg


def test_alexnet_towers_exchange_where_the_model_concatenates() -> None:
    drawn = model_diagram("alexnet")
    # The towers' maps are joined before conv3, fc6 and fc7; fc8 reads both towers at once.
    assert drawn.svg.count(">exchange<") == 3
    shown = boxes(drawn.svg)
    assert len(shown) == 2 * 12 + 1  # 12 layers split over the towers, then fc8
    assert sum(int(b["data-macs"]) for b in shown) == analyze("alexnet").total_macs


def test_googlenet_marks_its_auxiliary_heads_training_only() -> None:
    drawn = model_diagram("googlenet")
    heads = [b for b in boxes(drawn.svg) if b["data-kind"] == "training only"]
    assert len(heads) == 2
    assert "reads inception (4a)" in drawn.svg and "reads inception (4d)" in drawn.svg


def test_every_lecture_model_has_its_diagrams_in_the_report(report, report_dir) -> None:
    page = report.html.read_text(encoding="utf-8")
    for name in DEFAULT_MODELS:
        for kind in ("diagram", "strip"):
            assert f'<figure class="diagram" id="{kind}_{name}">' in page, (kind, name)
            svg = (report_dir / "figures" / f"{kind}_{name}.svg").read_text(encoding="utf-8")
            assert svg in page  # the file is the picture in the page
            ET.fromstring(svg)
    for block in ("inception_module", "basic_block", "bottleneck_block"):
        ET.fromstring((report_dir / "figures" / f"diagram_{block}.svg").read_text())
    # One arrowhead id per diagram: ids in the page stay unique.
    ids = re.findall(r'<marker id="([^"]+)"', page)
    assert len(ids) == len(set(ids)) > 0


def test_colors_are_one_per_kind_of_layer() -> None:
    shown = boxes(model_diagram("vgg16").svg)
    kinds = {b["data-kind"] for b in shown}
    assert kinds == {"conv", "pool", "fc"}
    assert len(set(KIND_COLORS.values())) == len(KIND_COLORS)


def test_unknown_block_names_the_modules_there_are() -> None:
    with pytest.raises(CnnarchError, match=r"no module called 'layer9'.*layer1"):
        model_diagram("resnet18", "layer9")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`cnnarch diagram ARGS` in this process: (exit status, stdout, stderr)."""
    status = main(["diagram", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_writes_a_block_and_fails_clearly(tmp_path, capsys) -> None:
    out = tmp_path / "block.svg"
    status, _, err = run_cli(capsys, "resnet18", "--block", "layer2.0", "--out", str(out))
    assert status == 0, err
    shown = boxes(out.read_text())
    assert [b["data-kind"] for b in shown] == ["conv", "conv", "shortcut"]
    status, _, err = run_cli(capsys, "resnet18", "--out", str(tmp_path / "x.png"))
    assert status == 2 and "must name an .svg file" in err
    assert "Traceback" not in err and not (tmp_path / "x.png").exists()
    status, _, err = run_cli(capsys, "resnet18", "--block", "nope")
    assert status == 2 and "no module called 'nope'" in err


def test_cli_draws_a_local_factory(tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "tiny_factory.py").write_text(
        "from torch import nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2),"
        " nn.Flatten(), nn.Linear(4 * 3 * 3, 2))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "tiny_factory", raising=False)
    status, svg, err = run_cli(capsys, "tiny_factory:build", "--input", "3x8x8")
    sys.modules.pop("tiny_factory", None)
    assert status == 0, err
    # conv 3 -> 4, 3x3 on 8x8 -> 6x6: 108 weights, 108 * 36 MACs; FC 36 -> 2.
    assert [(b["data-kind"], b["data-macs"]) for b in boxes(svg)] == [
        ("conv", str(108 * 36)),
        ("pool", "0"),
        ("fc", "72"),
    ]
