"""The lecture's layers and the VGG16 slide's table, derived by hand from the architectures."""

from __future__ import annotations

import math

import pytest
import torch

import cnnarch
from cnnarch.lecture.layers import lecture_layers
from cnnarch.lecture.vgg import slide_table
from cnnarch.zoo.registry import create_model, published


def layers_of(name: str, train: bool = False):
    with torch.device("meta"):
        model = create_model(name)
    summary = cnnarch.analyze(name)
    training = cnnarch.analyze(name, batch_size=2, train=True) if train else None
    return lecture_layers(model, summary, training), summary


def test_alexnet_towers_are_one_layer_each_as_on_the_slide() -> None:
    found, summary = layers_of("alexnet")
    slide = published()["cs231n_lecture9_2017"]["alexnet"]["layers"]
    # The zoo follows the paper (norm before pool); the slide lists pool first. Without the
    # NORM lines both are the same sequence of output volumes.
    ours = [list(layer.output_hwc) for layer in found.layers if layer.name != "NORM"]
    theirs = [volume for name, _, volume in slide if not name.startswith("NORM")]
    assert ours == theirs
    assert [layer.name for layer in found.layers][:4] == ["CONV11-96", "NORM", "POOL3", "CONV5-256"]
    conv1 = found.layers[0]
    assert conv1.weights == 2 * 48 * 3 * 11 * 11 and conv1.memory == 55 * 55 * 96
    # The exchanges between towers and the windows' mean are steps, not layers.
    assert set(found.artifacts) == {"cat()", "mean()"}
    assert sum(layer.params for layer in found.layers) == summary.total_params
    assert sum(layer.macs for layer in found.layers) == summary.total_macs


def test_googlenet_inception_modules_and_training_only_heads() -> None:
    found, summary = layers_of("googlenet", train=True)
    names = [layer.name for layer in found.layers]
    assert names[7:9] == ["inception (3a)", "inception (3b)"]
    assert names.index("aux. classifier 1 (training only)") == names.index("inception (4a)") + 1
    assert names.index("aux. classifier 2 (training only)") == names.index("inception (4d)") + 1
    head = 512 * 128 + 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000  # conv, fc1, fc2 + biases
    aux1 = found.layers[names.index("aux. classifier 1 (training only)")]
    assert aux1.training_only and aux1.params == head
    inception3a = found.layers[names.index("inception (3a)")]
    assert inception3a.output == (256, 28, 28) and inception3a.memory == 256 * 28 * 28
    inference = found.inference
    assert sum(layer.params for layer in inference) == summary.rows[0].params
    assert sum(layer.macs for layer in inference) == summary.total_macs
    assert sum(layer.params for layer in found.layers) == summary.total_params  # heads included


def test_resnet_blocks_show_their_output_not_their_insides() -> None:
    found, summary = layers_of("resnet50")
    assert found.level == "block"
    names = [layer.name for layer in found.layers]
    assert names[:5] == ["CONV7-64", "POOL3", "conv2_1", "conv2_2", "conv2_3"]
    assert len([n for n in names if n.startswith("conv4_")]) == 6
    block = found.layers[2]
    assert block.memory == 256 * 56 * 56  # the block's output (3.2 MB) ...
    inside = next(r for r in summary.rows if r.path == "layer1.0").activation_elements
    assert inside > 5 * block.memory  # ... not every tensor made inside it (19.3 MB)
    conv1 = found.layers[0]
    assert conv1.paths == ("conv1", "bn1", "relu") and conv1.params == 7 * 7 * 3 * 64 + 2 * 64


def test_deep_resnets_are_shown_by_stage() -> None:
    found, summary = layers_of("resnet152")
    assert found.level == "stage"
    assert [layer.name for layer in found.layers] == [
        "CONV7-64",
        "POOL3",
        "conv2_x",
        "conv3_x",
        "conv4_x",
        "conv5_x",
        "AVGPOOL",
        "FC-1000",
    ]
    assert sum(layer.macs for layer in found.layers) == summary.total_macs


def test_blocks_known_only_by_their_place_are_named_by_their_sequence() -> None:
    """Inception-v4 keeps its 4 Inception-A blocks in an unnamed sequence (paths
    inception_a.0 to .3): they are named as the paper names them, numbered; ENet's
    bottlenecks by stage and place."""
    v4, _ = layers_of("inception_v4")
    names = [layer.name for layer in v4.layers]
    assert names[1:6] == [*(f"Inception-A {i}" for i in range(1, 5)), "reduction_a"]
    assert names.count("Inception-B 7") == 1 and "Inception-B 8" not in names
    enet, _ = layers_of("enet")
    assert [layer.name for layer in enet.layers][1:4] == [
        "stage 1, block 1",
        "stage 1, block 2",
        "stage 1, block 3",
    ]


def test_vgg16_slide_table_equals_the_slide() -> None:
    table = slide_table("vgg16")
    printed = published()["cs231n_lecture9_2017"]["vgg16_table"]["rows"]
    assert len(table.rows) == len(printed) == 22  # INPUT + 13 conv + 5 pool + 3 FC
    for row, (layer, volume, _, weights) in zip(table.rows, printed, strict=True):
        assert row.layer.split("-")[0] == layer.split("-")[0]
        assert list(row.output) == volume and row.memory == math.prod(volume)
        assert row.weights == weights
        assert row.agreement in ("equal", "memory rounded")  # the slide's two digits
    assert table.input_values == 224 * 224 * 3
    by_hand = 2 * 3211264 + 802816 + 2 * 1605632 + 401408 + 3 * 802816 + 200704
    by_hand += 3 * 401408 + 100352 + 3 * 100352 + 25088 + 4096 + 4096 + 1000
    assert table.output_values == by_hand == 15_087_080
    assert table.slide_total_values == 15_237_608  # the slide says 24M
    assert [c.verdict for c in table.checks] == ["holds", "holds"]
    assert "arithmetic slip" in table.notes[1]
    total, params = table.figures
    assert total.verdict == "does not hold" and params.verdict == "holds"


@pytest.mark.slow
def test_the_analyzer_does_not_depend_on_the_lecture() -> None:
    import subprocess
    import sys

    code = (
        "import sys, cnnarch.analysis; "
        "print(sorted(m for m in sys.modules if m.startswith(('cnnarch.lecture', "
        "'cnnarch.report'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_any_module_folds_bn_relu_and_flatten_into_its_layers() -> None:
    from torch import nn

    net = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),
    )
    found = lecture_layers(net, cnnarch.analyze(net, (3, 10, 10)))
    assert [(x.name, x.output, x.memory) for x in found.layers] == [
        ("CONV3-8", (8, 8, 8), 8 * 8 * 8),
        ("POOL2", (8, 4, 4), 8 * 4 * 4),  # the flatten after it only reshapes its output
        ("FC-10", (10,), 10),
    ]
    assert found.layers[0].params == 3 * 9 * 8 + 8 + 2 * 8  # conv with bias, BN scale and shift
    assert found.layers[0].paths == ("0", "1", "2")
