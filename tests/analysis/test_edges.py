"""The data flow a summary records (which tensors each call read and returned) and what is found
from it: residual additions and a concatenation's branches, whatever the modules are called."""

from __future__ import annotations

import torch
from torch import nn

import cnnarch
from analysis.user_blocks import UserNet
from cnnarch.analysis.dataflow import concat_branches, residuals


def edges(summary: cnnarch.Summary) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    return [(r.path, r.input_ids, r.output_ids) for r in summary.rows]


def test_rows_record_the_tensors_each_call_read_and_returned() -> None:
    summary = cnnarch.analyze(UserNet(), (3, 16, 16))
    # Numbered by hand: the input is 0; each call that allocates makes the next number (rows in
    # call order, a module's inputs before its subtree); flatten is a view of the pool's output
    # (17) and makes no row; a block's output is its last ReLU's.
    assert edges(summary) == [
        ("", (0,), (18,)),
        ("stem", (0,), (1,)),
        ("body", (1,), (16,)),
        ("body.0", (1,), (9,)),
        ("body.0.a", (1,), (2,)),
        ("body.0.a_bn", (2,), (3,)),
        ("body.0.relu()", (3,), (4,)),
        ("body.0.b", (4,), (5,)),
        ("body.0.b_bn", (5,), (6,)),
        ("body.0.proj", (1,), (7,)),  # reads the block's input, as `a` does
        ("body.0.add()", (6, 7), (8,)),
        ("body.0.relu()", (8,), (9,)),
        ("body.1", (9,), (16,)),
        ("body.1.a", (9,), (10,)),
        ("body.1.a_bn", (10,), (11,)),
        ("body.1.relu()", (11,), (12,)),
        ("body.1.b", (12,), (13,)),
        ("body.1.b_bn", (13,), (14,)),
        ("body.1.add()", (14, 9), (15,)),  # the block's input itself: an identity
        ("body.1.relu()", (15,), (16,)),
        ("pool", (16,), (17,)),
        ("out", (17,), (18,)),
    ]
    # In-place calls keep their tensor's number: ResNet's ReLU(inplace=True) after each BN.
    rows = {r.path: r for r in cnnarch.analyze("resnet18").rows}
    assert rows["relu"].input_ids == rows["relu"].output_ids == rows["bn1"].output_ids


def test_residuals_of_a_user_block_are_found_whatever_its_children_are_called() -> None:
    summary = cnnarch.analyze(UserNet(), (3, 16, 16))
    rows = summary.rows
    found = summary.residuals
    assert [rows[r.block].path for r in found] == ["body.0", "body.1"]
    assert [rows[r.addition].path for r in found] == ["body.0.add()", "body.1.add()"]
    main = ["a", "a_bn", "relu()", "b", "b_bn"]
    projection, identity = found
    assert [rows[i].path for i in projection.main] == [f"body.0.{p}" for p in main]
    assert [rows[i].path for i in projection.shortcut] == ["body.0.proj"]
    assert [rows[i].path for i in identity.main] == [f"body.1.{p}" for p in main]
    assert identity.shortcut == () and identity.identity and not projection.identity


def test_resnet50_torchvision_has_16_residual_blocks_4_of_them_projections() -> None:
    # Table 1: 3 + 4 + 6 + 3 = 16 bottleneck blocks. The first block of each stage changes the
    # shape (64 -> 256 channels in conv2_x; stride 2 in the others), and torchvision projects
    # there (option B): 4 projections, 12 identities.
    summary = cnnarch.analyze("resnet50", variant="torchvision")
    rows = summary.rows
    found = summary.residuals
    assert len(found) == 16
    projections = [r for r in found if not r.identity]
    assert [rows[r.block].path for r in projections] == [f"layer{i}.0" for i in (1, 2, 3, 4)]
    for r in projections:
        assert [rows[i].path for i in r.shortcut] == [f"{rows[r.block].path}.downsample"]
        assert [rows[i].type for i in r.main if rows[i].type == "Conv2d"] == ["Conv2d"] * 3


def test_a_shortcut_through_nn_identity_is_an_identity() -> None:
    # ResNet-20 for CIFAR-10 calls its shortcut module in every block: nn.Identity where the
    # shape stays (it returns its input and computes nothing), a zero-padding where it changes
    # (the first blocks of the 16x16 and 8x8 stages).
    summary = cnnarch.analyze("resnet20")
    rows = summary.rows
    found = summary.residuals
    assert len(found) == 9
    assert [rows[r.block].path for r in found if not r.identity] == ["layer2.0", "layer3.0"]
    assert [rows[i].type for r in found for i in r.shortcut] == ["ZeroPadShortcut"] * 2


class NotResidual(nn.Module):
    """Additions that are no residual: of a tensor to itself (one path), of a parameter (not
    from the input), of a scalar, and of two tensors of which one is on the other's path."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.offset = nn.Parameter(torch.zeros(1, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y = y + y
        y = y + self.offset
        y = y + 1.0
        return self.conv2(y) + y


def test_additions_that_are_not_residual_are_not_counted() -> None:
    summary = cnnarch.analyze(NotResidual(), (4, 8, 8))
    adds = [r for r in summary.rows if r.type == "add"]
    assert len(adds) == 4  # each addition has its row...
    assert summary.residuals == []  # ...and none is a residual one


def test_inception_branches_come_from_the_data_flow() -> None:
    summary = cnnarch.analyze("googlenet")
    rows = summary.rows
    at = next(i for i, r in enumerate(rows) if r.path == "inception3a")
    branches = concat_branches(rows, at)
    assert branches is not None
    # Four branches (1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1), each one child that
    # reads the module's input; the last starts with its pool.
    assert len(branches) == 4 and all(len(branch) == 1 for branch in branches)
    assert all(rows[branch[0]].input_ids == rows[at].input_ids for branch in branches)
    assert rows[branches[3][0] + 1].type == "MaxPool2d"
    assert residuals(rows) == []


def test_the_flow_is_exported_and_empty_without_a_pass() -> None:
    summary = cnnarch.analyze(UserNet(), (3, 16, 16))
    layers = summary.to_dict()["layers"]
    assert layers[10]["input_ids"] == [6, 7] and layers[10]["output_ids"] == [8]
    header, *lines = summary.to_csv().splitlines()
    assert header.endswith(",input_ids,output_ids") and lines[10].endswith(",6 7,8")
    no_pass = cnnarch.analyze(UserNet())
    assert no_pass.mode == "parameters" and no_pass.residuals == []
    assert all(r.input_ids == r.output_ids == () for r in no_pass.rows)
