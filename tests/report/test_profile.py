"""A model card's one per-layer chart: one column per layer with its exact values, memory bars
on a linear axis, parameter bars on a log axis, and the PNG for report.md."""

import math
import re

import pytest
import torch

from cnnarch import analyze
from cnnarch.lecture.layers import lecture_layers
from cnnarch.lecture.profile import MEMORY_H, PARAMS_H, profile_chart, profile_svg
from cnnarch.report.html import LEGIBLE_PX, figure_fit
from cnnarch.zoo.registry import create_model

COLUMN = re.compile(r'<g class="bar" data-path="([^"]+)"[^>]*aria-label="([^"]+)">(.*?)</g>')
RECT_HEIGHT = re.compile(r'<rect x="[0-9.]+" y="[0-9.]+" width="[0-9]+" height="([0-9.]+)" fill="#')


@pytest.fixture(scope="module")
def vgg16_layers():
    with torch.device("meta"):
        model = create_model("vgg16")
    return lecture_layers(model, analyze("vgg16"))


def test_one_labeled_column_per_layer(vgg16_layers) -> None:
    svg = str(profile_svg("vgg16", vgg16_layers))
    columns = COLUMN.findall(svg)
    assert [path for path, _, _ in columns] == [layer.paths[0] for layer in vgg16_layers.layers]
    # The first conv: a 224x224x64 output, 3*3*3*64 + 64 parameters.
    assert columns[0][1].startswith("CONV3-64: output 224×224×64 = 3,211,264 values")
    assert "params 1,792" in columns[0][1]
    assert len(columns) == 13 + 5 + 3  # VGG16: 13 convs, 5 pools, 3 FC layers


def test_memory_is_linear_and_parameters_are_on_a_log_axis(vgg16_layers) -> None:
    svg = str(profile_svg("vgg16", vgg16_layers))
    by_name = {}
    for _path, label, body in COLUMN.findall(svg):
        by_name.setdefault(label.split(":")[0], []).append(
            [float(h) for h in RECT_HEIGHT.findall(body)]
        )
    # The largest output (the first two convs, 224x224x64) fills the memory axis; a pool has no
    # parameters, so no parameter bar.
    assert by_name["CONV3-64"][0][0] == MEMORY_H
    assert all(len(bars) == 1 for bars in by_name["POOL2"])
    # The log axis runs from 10^3 (below the first conv's 1,792) to 10^9 (above FC6's
    # 7*7*512*4096 + 4096 = 102,764,544): FC6's bar is (log10(102,764,544) - 3) / 6 of it.
    fc6 = by_name["FC-4096"][0][1]
    assert fc6 == pytest.approx(PARAMS_H * (math.log10(102_764_544) - 3) / 6, abs=0.05)
    conv1 = by_name["CONV3-64"][0][1]
    assert conv1 == pytest.approx(PARAMS_H * (math.log10(1_792) - 3) / 6, abs=0.05)
    # Half of the memory axis (the explorer rescales these ticks): 3,211,264 values x 4 bytes.
    ticks = re.findall(r'class="tick" data-fraction="([0-9.]+)"[^>]*>([^<]+)<', svg)
    assert ticks == [("0.0", "0.00 MB"), ("0.5", "6.42 MB"), ("1.0", "12.85 MB")]


def test_the_page_shows_the_svg_and_report_md_the_png(vgg16_layers) -> None:
    chart = profile_chart("vgg16", vgg16_layers)
    assert chart.png.startswith(b"\x89PNG")
    assert 'class="bars-setting"' in str(chart.inline)  # where the explorer writes its setting
    assert str(profile_svg("vgg16", vgg16_layers)) in str(chart.inline)


def test_the_chart_fits_a_phone_with_legible_text(vgg16_layers) -> None:
    """Shrunk until its smallest text is 10 px, VGG16's chart fits a phone's page (358 px)."""
    fit = figure_fit(str(profile_svg("vgg16", vgg16_layers)))
    assert LEGIBLE_PX == 10
    assert fit.legible <= 358 < fit.natural  # and a wide screen shows it larger
