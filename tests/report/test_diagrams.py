"""Architecture diagrams: their numbers are the analyzer's (one block derived by hand), their
edges the traced data flow (ResNet-50's 16 shortcuts, a user's block with its own names), lines
that meet their merge nodes and cross no text, every lecture model has its pictures in the
report, each SVG is well-formed, and `cnnarch diagram` draws any zoo model or module and fails
clearly."""

import re
import sys
import xml.etree.ElementTree as ET

import pytest
import torch

import cnnarch
from analysis.user_blocks import UserNet
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


def skips(svg: str) -> list[dict[str, str]]:
    """The shortcuts drawn (a block's, or a network's arc beside a block)."""
    root = ET.fromstring(svg)
    return [dict(e.attrib) for e in root.iter() if e.get("class") == "skip"]


def _walk(element: ET.Element, dx: float = 0.0, dy: float = 0.0):
    """Each element with the offset of the translations above it."""
    found = re.match(r"translate\(([-\d.]+),([-\d.]+)\)", element.get("transform", ""))
    if found:
        dx, dy = dx + float(found.group(1)), dy + float(found.group(2))
    yield element, dx, dy
    for child in element:
        if child.tag != f"{SVG}defs":
            yield from _walk(child, dx, dy)


def text_boxes(svg: str) -> list[tuple[float, float, float, float, str]]:
    """Each text's box (x0, y0, x1, y1, text), estimated generously: 0.6 em a character, from
    0.8 em above the baseline to 0.2 em below."""
    found = []
    for e, dx, dy in _walk(ET.fromstring(svg)):
        if e.tag != f"{SVG}text" or not e.text:
            continue
        x, y, size = float(e.get("x")) + dx, float(e.get("y")) + dy, float(e.get("font-size"))
        width = 0.6 * size * len(e.text)
        x0 = {"start": x, "middle": x - width / 2, "end": x - width}[e.get("text-anchor")]
        found.append((x0, y - 0.8 * size, x0 + width, y + 0.2 * size, e.text))
    return found


def _points(d: str) -> list[tuple[float, float]]:
    """Points along a path of absolute M, L, H, V and C commands, a pixel or so apart."""
    points: list[tuple[float, float]] = []
    x = y = 0.0
    for command, args in re.findall(r"([MLHVC])([^MLHVC]*)", d):
        values = [float(v) for v in re.findall(r"-?[\d.]+", args)]
        if command == "M":
            x, y = values
            points.append((x, y))
            continue
        if command == "C":
            (x1, y1, x2, y2, x3, y3), x0, y0 = values, x, y
            curve = [
                (
                    (1 - t) ** 3 * x0
                    + 3 * (1 - t) ** 2 * t * x1
                    + 3 * (1 - t) * t**2 * x2
                    + t**3 * x3,
                    (1 - t) ** 3 * y0
                    + 3 * (1 - t) ** 2 * t * y1
                    + 3 * (1 - t) * t**2 * y2
                    + t**3 * y3,
                )
                for t in (i / 60 for i in range(1, 61))
            ]
            points += curve
            x, y = x3, y3
            continue
        nx, ny = {"L": (values[0], values[1] if len(values) > 1 else y), "H": (values[0], y)}.get(
            command, (x, values[0])
        )
        steps = max(2, int(abs(nx - x) + abs(ny - y)))
        points += [
            (x + (nx - x) * i / steps, y + (ny - y) * i / steps) for i in range(1, steps + 1)
        ]
        x, y = nx, ny
    return points


def lines(svg: str) -> list[list[tuple[float, float]]]:
    """The points of every line drawn (arrows, shortcuts, routes), in the picture's frame."""
    return [
        [(x + dx, y + dy) for x, y in _points(e.get("d"))]
        for e, dx, dy in _walk(ET.fromstring(svg))
        if e.tag == f"{SVG}path"
    ]


def crossings(svg: str) -> list[str]:
    """The texts that a line runs through."""
    crossed = []
    drawn = lines(svg)
    for x0, y0, x1, y1, text in text_boxes(svg):
        if any(x0 < x < x1 and y0 < y < y1 for line in drawn for x, y in line):
            crossed.append(text)
    return crossed


def arrivals(svg: str, label: str) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """(start, end) of each line that ends on the rim of a merge node showing `label`."""
    nodes = []
    walked = list(_walk(ET.fromstring(svg)))
    for i, (e, dx, dy) in enumerate(walked):
        if e.tag == f"{SVG}circle" and walked[i + 1][0].text == label:
            nodes.append((float(e.get("cx")) + dx, float(e.get("cy")) + dy, float(e.get("r"))))
    found = []
    for line in lines(svg):
        (x, y) = line[-1]
        for cx, cy, r in nodes:
            if abs(((x - cx) ** 2 + (y - cy) ** 2) ** 0.5 - r) < 0.6:
                found.append((line[0], line[-1]))
    return found


def bottom_edges(svg: str) -> list[tuple[float, float, float]]:
    """(x0, x1, y) of the bottom edge of every box and label."""
    return [
        (
            float(e.get("x")) + dx,
            float(e.get("x")) + dx + float(e.get("width")),
            float(e.get("y")) + dy + float(e.get("height")),
        )
        for e, dx, dy in _walk(ET.fromstring(svg))
        if e.tag == f"{SVG}rect" and e.get("x") and float(e.get("width", "0")) > 50
    ]


def assert_connectors_meet_the_plus(svg: str, blocks: int) -> None:
    """Into each "+": the main path and the shortcut, each a line that runs unbroken from the
    bottom of a box (or of the input) to the node's rim."""
    arriving = arrivals(svg, "+")
    assert len(arriving) == 2 * blocks
    edges = bottom_edges(svg)
    for (x, y), _ in arriving:
        assert any(x0 <= x <= x1 and abs(y - bottom) < 0.6 for x0, x1, bottom in edges), (x, y)


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
    flow = block_lanes(*analyze_block(model.get_submodule("layer1.0"), (64, 56, 56)))
    assert flow.merge == "add" and flow.after == ("ReLU",)
    (main_label, main), (short_label, shortcut) = flow.lanes
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
    flow = block_lanes(*analyze_block(model.get_submodule("layer1.1"), (256, 56, 56)))
    assert flow.merge == "add" and flow.lanes[1] == ("shortcut", [])
    assert flow.residual is not None and flow.residual.identity


def test_resnet_block_diagrams_show_the_analyzers_numbers(resnet50) -> None:
    model, summary = resnet50
    (drawn,) = resnet_block_diagrams({"resnet50": (model, summary)})
    shown = boxes(drawn.svg)
    rows = {r.path: r for r in summary.rows}
    # Identity block then projection block; each box's MACs add up to its block's row.
    assert sum(int(b["data-macs"]) for b in shown[:3]) == rows["layer1.1"].macs
    assert sum(int(b["data-macs"]) for b in shown[3:]) == rows["layer1.0"].macs
    assert [b["data-kind"] for b in shown[3:]] == ["conv", "conv", "conv", "shortcut"]
    assert [s["data-shortcut"] for s in skips(drawn.svg)] == ["identity", "projection"]
    assert drawn.svg.count(">ReLU<") == 2  # after each addition


def test_residual_blocks_connectors_meet_the_plus_and_cross_no_text(resnet50) -> None:
    model, summary = resnet50
    (drawn,) = resnet_block_diagrams({"resnet50": (model, summary)})
    assert_connectors_meet_the_plus(drawn.svg, blocks=2)
    assert crossings(drawn.svg) == []
    assert "identity shortcut" in drawn.svg and "projection shortcut" in drawn.svg


def test_a_users_residual_block_is_drawn_from_its_data_flow() -> None:
    # Its children are `a`, `b` and `proj`: nothing names a shortcut, the data flow finds it.
    drawn = model_diagram(UserNet(), "body.0", input_size=(3, 16, 16))
    shown = boxes(drawn.svg)
    assert [(b["data-path"], b["data-kind"]) for b in shown] == [
        ("a", "conv"),
        ("b", "conv"),
        ("proj", "shortcut"),
    ]
    # proj: 1x1 conv 8 -> 16, stride 2: 128 weights, 128 MACs at each of 8x8 positions.
    assert (int(shown[2]["data-weights"]), int(shown[2]["data-macs"])) == (128, 128 * 64)
    assert [s["data-shortcut"] for s in skips(drawn.svg)] == ["projection"]
    assert ">ReLU<" in drawn.svg
    assert_connectors_meet_the_plus(drawn.svg, blocks=1)
    assert crossings(drawn.svg) == []
    identity = model_diagram(UserNet(), "body.1", input_size=(3, 16, 16))
    assert [b["data-kind"] for b in boxes(identity.svg)] == ["conv", "conv"]
    assert [s["data-shortcut"] for s in skips(identity.svg)] == ["identity"]
    # The whole network: one column on the 8x8 grid holding both blocks, an arc beside each.
    network = model_diagram(UserNet(), input_size=(3, 16, 16))
    assert [s["data-shortcut"] for s in skips(network.svg)] == ["projection", "identity"]
    assert ">8×8<" in network.svg and ">2 residual blocks<" in network.svg


def test_resnet50_torchvision_is_drawn_with_its_16_shortcuts_and_stages() -> None:
    # Table 1 of the ResNet paper: conv2_x ... conv5_x hold 3, 4, 6 and 3 bottleneck blocks.
    # The first block of each stage changes the shape (64 -> 256 channels in conv2_x, stride 2
    # in the others) and torchvision projects there: 4 projections, 12 identities.
    model = cnnarch.create_model("resnet50", variant="torchvision")
    drawn = model_diagram(model, input_size=(3, 224, 224))
    arcs = skips(drawn.svg)
    assert len(arcs) == 16
    assert [a["data-shortcut"] for a in arcs] == (["projection"] + ["identity"] * 2) + (
        ["projection"] + ["identity"] * 3
    ) + (["projection"] + ["identity"] * 5) + (["projection"] + ["identity"] * 2)
    texts = [t[-1] for t in text_boxes(drawn.svg)]
    stages = [t for t in texts if re.fullmatch(r"conv\d_x × \d+", t)]
    assert stages == ["conv2_x × 3", "conv3_x × 4", "conv4_x × 6", "conv5_x × 3"]
    assert [t for t in texts if t in ("56×56", "28×28", "14×14", "7×7")] == [
        "56×56",
        "28×28",
        "14×14",
        "7×7",
    ]
    # conv3_1: torchvision strides in the 3x3 conv; its projection is a 1x1 conv 256 -> 512.
    assert "1×1,128 · 3×3,128/2 · 1×1,512" in texts
    assert f"1×1 projection: {256 * 512 / 1000:.2f}K weights" in texts
    assert texts.count("identity shortcut") == 12
    assert crossings(drawn.svg) == []
    # The paper's variant strides in the first 1x1 conv.
    assert "1×1,128/2 · 3×3,128 · 1×1,512" in model_diagram("resnet50").svg


def test_shortcuts_without_weights_are_told_from_identities() -> None:
    # ResNet-20 for CIFAR-10 (He et al. 2015, section 4.2): option A, where the shape changes
    # (the first block of the 16x16 and of the 8x8 stage) the shortcut subsamples and pads
    # with zeros: no weights, yet not the input itself. 9 blocks: 2 of those, 7 identities.
    arcs = [a["data-shortcut"] for a in skips(model_diagram("resnet20").svg)]
    assert (
        arcs
        == ["identity"] * 3 + ["weightless"] + ["identity"] * 2 + ["weightless"] + ["identity"] * 2
    )
    block = model_diagram("resnet20", "layer2.0").svg
    assert [s["data-shortcut"] for s in skips(block)] == ["weightless"]
    assert ">shortcut, no weights<" in block and ">ZeroPadShortcut<" in block
    assert crossings(block) == []


def test_every_box_says_kernel_stride_and_padding() -> None:
    texts = [t[-1] for t in text_boxes(model_diagram("vgg16").svg)]
    # VGG16: 13 convs 3x3, stride 1, pad 1; 5 max pools 2x2, stride 2.
    assert texts.count("3×3, stride 1, pad 1") == 13
    assert texts.count("2×2, stride 2, pad 0") == 5


def test_inception_v3_columns_are_its_grid_sizes() -> None:
    drawn = model_diagram("inception_v3")
    texts = [t[-1] for t in text_boxes(drawn.svg)]
    # Szegedy et al. 2016, Table 1: three modules on the 35x35 grid, the reduction 6a and four
    # modules on 17x17, the reduction 7a and two modules on 8x8.
    columns = [(t, texts[i + 1]) for i, t in enumerate(texts) if t in ("35×35", "17×17", "8×8")]
    assert columns == [("35×35", "3 modules"), ("17×17", "5 modules"), ("8×8", "3 modules")]
    assert crossings(drawn.svg) == []


def test_inception_v3_branches_are_named_from_their_layers_and_calls() -> None:
    # Mixed_5b (Szegedy et al. 2016, Figure 5): a 1x1 conv; 1x1 then 5x5; 1x1 then two 3x3; a
    # 3x3 average pool, called as a function (no layer of its own), then 1x1.
    drawn = model_diagram("inception_v3", "Mixed_5b")
    labels = ["1x1 conv", "5x5 conv", "3x3 conv ×2", "avg pool"]
    assert [t[-1] for t in text_boxes(drawn.svg) if t[-1] in labels] == labels
    assert crossings(drawn.svg) == []


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
    # Branches named as the lecture names them, arrows that meet the boxes and cross no label.
    labels = ["1x1 conv", "3x3 conv", "5x5 conv", "3x3 max pool"]
    assert [t[-1] for t in text_boxes(drawn.svg) if t[-1] in labels] == labels * 2
    assert crossings(drawn.svg) == []
    assert len(arrivals(drawn.svg, "C")) == 2 * 4


def test_alexnet_towers_exchange_where_the_model_concatenates() -> None:
    drawn = model_diagram("alexnet")
    # The towers' maps are joined before conv3, fc6 and fc7; fc8 reads both towers at once.
    assert drawn.svg.count(">exchange<") == 3
    shown = boxes(drawn.svg)
    assert len(shown) == 2 * 12 + 1  # 12 layers split over the towers, then fc8
    assert sum(int(b["data-macs"]) for b in shown) == analyze("alexnet").total_macs


def test_googlenet_attaches_its_auxiliary_heads_to_the_modules_they_read() -> None:
    drawn = model_diagram("googlenet")
    heads = [b for b in boxes(drawn.svg) if b["data-kind"] == "training only"]
    assert [h["data-path"] for h in heads] == ["aux1", "aux2"]
    assert "reads inception (4a)" in drawn.svg and "reads inception (4d)" in drawn.svg
    # Each with its layers (Szegedy et al. 2014, section 5): a 5x5 average pool, stride 3; a
    # 1x1 conv to 128; a fully connected layer of 1024; the 1000-way classifier.
    texts = [t[-1] for t in text_boxes(drawn.svg)]
    for layer in ("AVGPOOL5: 5×5, stride 3, pad 0", "CONV1-128: 1×1, stride 1, pad 0", "FC-1024"):
        assert texts.count(layer) == 2
    # An arrow from the right edge of the module read to the left edge of the head, level.
    rects = {
        g.get("data-path"): (float(r.get("x")) + dx, float(r.get("y")) + dy, float(r.get("width")))
        for g, dx, dy in _walk(ET.fromstring(drawn.svg))
        if g.get("class") == "layer" and (r := g.find(f"{SVG}rect")) is not None
    }
    for head, read in (("aux1", "inception4a"), ("aux2", "inception4d")):
        (x, y, width), (head_x, head_y, _) = rects[read], rects[head]
        start, end = (x + width, y + 37), (head_x, head_y + 37)
        assert any(
            abs(line[0][0] - start[0]) < 1
            and abs(line[-1][0] - end[0]) < 1
            and abs(line[0][1] - start[1]) < 1
            and abs(line[-1][1] - end[1]) < 1
            for line in lines(drawn.svg)
        ), head
    assert crossings(drawn.svg) == []


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
