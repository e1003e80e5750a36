"""The lecture's sections: their numbers derived by hand from the architectures."""

import pytest
import torch

from cnnarch.lecture import alexnet, googlenet, resnet, vgg
from cnnarch.lecture.analyses import Analyses
from cnnarch.zoo.registry import create_model


@pytest.fixture
def analyses() -> Analyses:
    return Analyses(("alexnet", "vgg16", "googlenet"), 2)


def test_alexnet_towers_and_what_crosses_between_them(analyses) -> None:
    summary = analyses.forward("alexnet")

    def layer(c_in: int, c_out: int, k: int = 1) -> int:
        return c_out * (c_in * k * k) + c_out  # weights + biases

    tower = (
        layer(3, 48, 11)
        + layer(48, 128, 5)
        + layer(256, 192, 3)
        + layer(192, 192, 3)
        + layer(192, 128, 3)
        + layer(2 * 128 * 6 * 6, 2048)
        + layer(2 * 2048, 2048)
    )
    # Named as the paper names its GPUs (its Figure 3: "GPU 1", "GPU 2").
    assert alexnet.tower_params(summary) == {
        "GPU 1": tower,
        "GPU 2": tower,
        "fc8 (on GPU 1)": layer(4096, 1000),
    }
    crossings = {r["layer"]: r["values"] for r in alexnet.crossings(summary)}
    # Each tower receives the other's half: conv3 reads 2 x 128 maps of 13x13, fc6 2 x 128
    # maps of 6x6, fc7 2 x 2048 units; fc8 (one GPU) receives tower 1's 2048 units.
    assert crossings == {
        "conv3": 2 * 128 * 13 * 13,
        "fc6": 2 * 128 * 6 * 6,
        "fc7": 2 * 2048,
        "fc8": 2048,
    }


def test_three_3x3_against_one_7x7() -> None:
    rows = {r["stack"]: r for r in vgg.stacked_3x3_rows(channels=16, size=8)}
    three, seven = rows["three 3x3 convs"], rows["one 7x7 conv"]
    assert three["field"] == seven["field"] == "7×7"
    # Weights only (no biases), as the slide counts them: the column says "weights".
    assert three["weights"] == 3 * 3 * 3 * 16 * 16
    assert seven["weights"] == 7 * 7 * 16 * 16
    assert three["macs"] == three["weights"] * 8 * 8


def test_googlenet_table1_and_auxiliary_heads(analyses) -> None:
    summary = analyses.forward("googlenet")
    with torch.device("meta"):
        model = create_model("googlenet")
    printed = analyses.published["googlenet_paper"]["rows"]
    rows = googlenet.table1_rows(summary, model)
    conv1, conv2 = rows[0], rows[2]
    assert conv1["weights"] == 7 * 7 * 3 * 64
    assert conv1["macs"] == 112 * 112 * 64 * 7 * 7 * 3
    assert conv2["weights"] == 64 * 64 + 9 * 64 * 192  # the 1x1 reduce and the 3x3
    assert rows[-2]["weights"] == 1024 * 1000  # linear
    # Every grid up to the average pool is the printed one (56x56x64, ..., 1x1x1024).
    through_avgpool = 16
    assert [r["output"] for r in rows[:through_avgpool]] == [
        r[2] for r in printed[:through_avgpool]
    ]
    # conv1: 2.7K printed, 9,408 computed: the gap is computed relative to the printed figure.
    assert rows[0]["params_gap"] == pytest.approx(100 * (9408 - 2.7 * 1024) / (2.7 * 1024))
    heads = googlenet.aux_heads(analyses.training("googlenet"))
    # Each head: 1x1 conv 128 (+bias), FC 2048 -> 1024, FC 1024 -> 1000, with biases.
    head = lambda c_in: c_in * 128 + 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000  # noqa: E731
    assert heads.params == head(512) + head(528)
    assert heads.total == summary.total_params
    assert heads.without == summary.rows[0].params  # what an inference pass uses
    budget = googlenet.budget_check(summary, rows)
    aux = googlenet.aux_check(summary, heads)
    alexnet_params = analyses.forward("alexnet").total_params
    twelve = googlenet.fewer_params_check(heads, alexnet_params, rows)
    # 1.58 G multiply-adds: over the 1.5 G budget, and the evidence says so with the same sign.
    assert (
        budget.verdict == "does not hold"
        and "+5.5% relative to the 1.5 G budget" in budget.evidence
    )
    assert aux.verdict == "holds"
    assert twelve.verdict == "does not hold" and "8.7×" in twelve.evidence


def test_resnet_blocks_by_hand(analyses) -> None:
    rows = {r["block"].split(",")[0] + r["layers"][-3:]: r for r in resnet.block_rows(analyses)}
    basic = rows["basic 64"]
    bottleneck = rows["bottleneck256"]
    bn = lambda c: 2 * c  # noqa: E731  scale and shift
    assert basic["params"] == 2 * 9 * 64 * 64 + 2 * bn(64)
    assert basic["macs"] == 2 * 56 * 56 * 9 * 64 * 64
    assert bottleneck["params"] == 256 * 64 + 9 * 64 * 64 + 64 * 256 + bn(64) * 2 + bn(256)
    assert bottleneck["macs"] == 56 * 56 * (256 * 64 + 9 * 64 * 64 + 64 * 256)
