"""`cnnarch.diagram` and `cnnarch diagram` at their edges: Inception-v3 with its auxiliary head,
a block that is one layer, a model with no layer to draw or no input size (one line, status 2),
and the picture a notebook shows."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import torch
from torch import nn

import cnnarch
from cnnarch.cli import main
from cnnarch.errors import CnnarchError
from cnnarch.lecture.diagrams import model_diagram

SVG = "{http://www.w3.org/2000/svg}"


def boxes(svg: str) -> list[dict[str, str]]:
    return [dict(g.attrib) for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == "layer"]


def test_inception_v3_is_drawn_with_its_auxiliary_head() -> None:
    # Its training pass used to run on one image, and the auxiliary head's batch norm refuses
    # a 1x1 map of one image: the command failed.
    drawn = cnnarch.diagram("inception_v3")
    shown = boxes(drawn.svg)
    (aux,) = [b for b in shown if b["data-kind"] == "training only"]
    # The head on 17x17x768: 5x5 average pool, stride 3 -> 5x5x768; 1x1 conv to 128 (25
    # positions); 5x5 conv to 768 (one position); linear 768 -> 1000. Convs without bias, each
    # with a batch norm (2 parameters per channel).
    macs = 768 * 128 * 25 + 128 * 25 * 768 + 768 * 1000
    weights = 768 * 128 + 128 * 25 * 768 + 768 * 1000
    params = weights + 2 * (128 + 768) + 1000
    assert (aux["data-path"], int(aux["data-macs"])) == ("AuxLogits", macs)
    assert (int(aux["data-weights"]), int(aux["data-params"])) == (weights, params)
    assert "reads inception (6e)" in drawn.svg
    # The inference layers are the whole forward pass, per image.
    inference = sum(int(b["data-macs"]) for b in shown if b["data-kind"] != "training only")
    assert inference == cnnarch.analyze("inception_v3").total_macs


def test_the_top_level_call_is_the_commands() -> None:
    assert "diagram" in cnnarch.__all__
    drawn = cnnarch.diagram("resnet18", "layer2.0")
    assert drawn == model_diagram("resnet18", "layer2.0")
    assert drawn._repr_svg_() == drawn.svg  # a notebook shows the picture
    assert repr(drawn) == f"Diagram('resnet18: layer2.0', {len(drawn.svg):,} characters of SVG)"
    assert [b["data-kind"] for b in boxes(drawn.svg)] == ["conv", "conv", "shortcut"]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("layer1.0.conv1", r"'layer1.0.conv1' is one layer \(Conv2d\).*--block layer1.0$"),
        ("fc", r"'fc' is one layer \(Linear\).*draw the whole model$"),
    ],
)
def test_a_block_that_is_one_layer_says_what_to_draw(block: str, message: str) -> None:
    with pytest.raises(CnnarchError, match=message):
        cnnarch.diagram("resnet18", block)


class NoLayers(nn.Module):
    """Runs, but has nothing a diagram draws: no conv, pooling or linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x) * 2


@pytest.mark.parametrize("model", [NoLayers(), nn.Identity(), nn.Sequential(nn.ReLU())])
@pytest.mark.parametrize("view", ["layers", "strip"])
def test_a_model_with_no_layer_to_draw_is_an_error(model: nn.Module, view: str) -> None:
    with pytest.raises(CnnarchError, match=r"has no layer to draw"):
        cnnarch.diagram(model, input_size=(3, 8, 8), view=view)


def test_a_model_without_an_input_size_asks_for_one() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    with pytest.raises(CnnarchError, match=r"nothing to draw without a forward pass.*--input"):
        cnnarch.diagram(model)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["resnet18", "--block", "layer1.0.conv1"], "is one layer (Conv2d)"),
        (["resnet18", "--block", "fc"], "is one layer (Linear)"),
        (["torch.nn:Identity", "--input", "3x8x8"], "Identity has no layer to draw"),
        (["torch.nn:ReLU", "--input", "3x8x8", "--view", "strip"], "ReLU has no layer to draw"),
    ],
)
def test_the_command_fails_in_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diagram", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("cnnarch: error: ") and message in captured.err
    assert captured.err.count("\n") == 1
