"""The analyzer on any module: functional ops, reuse, several inputs, odd outputs, frozen
parameters, buffers, meta models; and the user's module is left exactly as it was."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnarch
from cnnarch import CnnarchError
from cnnarch.analysis.summary import LayerRow
from cnnarch.analysis.trace import SHAPE_RULES


class Shared(nn.Module):
    """One Linear applied twice, with functional ops around it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        z = self.fc(F.relu(y))
        return torch.cat([y, z], 1).view(-1, 4, 4) + 1


def test_reused_module_gives_two_rows_and_counts_params_once():
    summary = cnnarch.analyze(Shared(), (8,), batch_size=2)
    calls = [r for r in summary.rows if r.path == "fc"]
    assert len(calls) == 2
    assert [c.params for c in calls] == [8 * 8 + 8, 0]
    assert [c.reused for c in calls] == [False, True]
    assert summary.total_params == 72
    assert summary.total_macs == 2 * (2 * 8 * 8)
    ops = [(r.type, r.output_shapes) for r in summary.rows if r.kind == "op"]
    # x.view allocates nothing and gets no row; relu, cat and + do.
    assert ops == [("relu", ((2, 8),)), ("cat", ((2, 16),)), ("add", ((2, 4, 4),))]
    # activations: two fc outputs, relu, cat, add
    assert summary.activation_elements == 2 * 16 + 16 + 32 + 32


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Conv2d(3, 4, 3, padding=1)
        self.meta = nn.Linear(5, 4)

    def forward(self, image: torch.Tensor, extra: torch.Tensor, *, scale: torch.Tensor):
        return {"map": self.image(image) * scale, "vec": self.meta(extra)}


def test_positional_and_keyword_inputs_and_dict_output():
    real = {"image": torch.zeros(2, 3, 6, 6), "extra": torch.zeros(2, 5), "scale": torch.ones(1)}
    summary = cnnarch.analyze(TwoInputs(), inputs=real)
    assert summary.input_shapes == ((2, 3, 6, 6), (2, 5), (1,))
    assert summary.input_elements == 2 * 3 * 36 + 10 + 1
    assert summary.rows[0].output_shapes == ((2, 4, 6, 6), (2, 4))
    assert summary.total_macs == 2 * 36 * 4 * 27 + 2 * 5 * 4
    single = cnnarch.analyze(nn.Linear(5, 4), inputs=real["extra"])
    assert single.total_macs == 2 * 5 * 4 and single.input_shape == (2, 5)


class Pair(NamedTuple):
    logits: torch.Tensor
    features: torch.Tensor


class NamedOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> Pair:
        return Pair(self.fc(x), x)


def test_namedtuple_output_and_several_input_sizes():
    summary = cnnarch.analyze(NamedOut(), (4,), batch_size=5)
    assert summary.rows[0].output_shapes == ((5, 3), (5, 4))

    class Add(nn.Module):
        def forward(self, a, b):
            return a + b

    two = cnnarch.analyze(Add(), [(3, 4), (1, 4)], batch_size=2)
    assert two.input_shapes == ((2, 3, 4), (2, 1, 4))
    assert two.activation_elements == 2 * 3 * 4


class InPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv(x))
        y += x
        y.mul_(2)
        return y


def test_in_place_ops_add_no_activation_memory():
    summary = cnnarch.analyze(InPlace(), (2, 3, 3))
    rows = {r.path: r for r in summary.rows}
    assert rows["act"].activation_elements == 0
    assert rows["add_()"].activation_elements == 0 and rows["add_()"].flops == 18
    assert rows["mul_()"].flops == 18
    assert summary.activation_elements == 18  # only the conv output is new


class MakesTensors(nn.Module):
    """Creates tensors in its forward without naming a device, as much user code does."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * torch.arange(x.shape[-1]) + torch.ones(x.shape[-1])


def test_tensors_created_in_forward_land_on_meta():
    summary = cnnarch.analyze(MakesTensors(), (5,))
    ops = [(r.type, r.activation_elements) for r in summary.rows if r.kind == "op"]
    assert ops == [("arange", 5), ("mul", 5), ("ones", 5), ("add", 5)]


def test_frozen_params_and_buffers():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Linear(2, 2))
    model[0].weight.requires_grad_(False)
    summary = cnnarch.analyze(model, (3, 4, 4), train=True, optimizer="momentum")
    assert (summary.frozen_params, summary.trainable_params) == (108, 8 + 6)
    assert summary.buffer_bytes == 4 * 4 + 4 * 4 + 8  # running mean, var; num_batches_tracked
    training = summary.training
    assert training.grads_bytes == training.optimizer_state_bytes == 14 * 4
    assert summary.rows[1].frozen_params == 108


def test_model_on_meta_and_dtype():
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(10, 20), nn.ReLU())
    half = cnnarch.analyze(model, (10,), dtype=torch.float16)
    assert half.param_bytes == 2 * (10 * 20 + 20)
    assert half.activation_bytes == 2 * (20 + 20) and half.input_bytes == 2 * 10
    assert all(p.device.type == "meta" and p.dtype == torch.float32 for p in model.parameters())


def test_users_module_is_left_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(), nn.Flatten())
    model[1].eval()  # a mixed mode must come back as it was
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pointers = {k: v.data_ptr() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    hooks = [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()]
    for train in (False, True):
        cnnarch.analyze(model, (3, 8, 8), batch_size=4, train=train)
    assert [m.training for m in model.modules()] == modes
    assert [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()] == hooks
    for key, value in model.state_dict().items():
        assert value.data_ptr() == pointers[key]
        assert torch.equal(value, before[key]), key  # BN running stats not updated
    assert all(p.grad is None for p in model.parameters())
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())


def test_tied_weights_count_once():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    model[1].weight = model[0].weight
    summary = cnnarch.analyze(model, inputs=torch.zeros(2, 3, dtype=torch.long))
    assert summary.total_params == 40 and summary.param_bytes == 160


def test_batch_norm_shape_rule_equals_the_meta_kernel():
    batch_norm_rules = {op: r for op, r in SHAPE_RULES.items() if "batch_norm" in op.__name__}
    assert len(batch_norm_rules) == 3
    for op, rule in batch_norm_rules.items():
        for dtype, layout in (
            (torch.float32, torch.contiguous_format),
            (torch.float16, torch.channels_last),
            (torch.bfloat16, torch.contiguous_format),
        ):
            x = torch.empty(2, 3, 5, 5, dtype=dtype, device="meta", memory_format=layout)
            w = torch.empty(3, dtype=dtype, device="meta")
            if op.__name__.endswith("no_stats"):
                args = (x, w, w, True, 0.1, 1e-5)
            else:
                args = (x, w, w, w.clone(), w.clone(), True, 0.1, 1e-5)
            ours, theirs = rule(args, {}), op(*args)
            for a, b in zip(ours, theirs, strict=True):
                assert (a.shape, a.stride(), a.dtype) == (b.shape, b.stride(), b.dtype), op


def test_batch_size_scales_memory_and_macs_not_params():
    one = cnnarch.analyze("resnet20")
    many = cnnarch.analyze("resnet20", batch_size=16)
    assert many.total_params == one.total_params
    assert many.total_macs == 16 * one.total_macs
    assert many.activation_elements == 16 * one.activation_elements


def test_collapse_keeps_subtree_totals():
    summary = cnnarch.analyze("resnet20")
    top = summary.collapse(1)
    assert max(r.depth for r in top.rows) == 1
    children = [r for r in top.rows if r.depth == 1]
    assert sum(r.macs for r in children) == summary.total_macs
    assert sum(r.params for r in children) == summary.total_params
    assert sum(r.activation_elements for r in children) == summary.activation_elements
    with pytest.raises(CnnarchError):
        summary.collapse(-1)


def test_exports_agree_with_the_rows():
    summary = cnnarch.analyze(Shared(), (8,), batch_size=2, train=True)
    data = json.loads(summary.to_json())
    for key in ("model", "input_shape", "total_params", "trainable_params", "total_macs"):
        assert key in data
    assert data["training_peak_bytes"] == summary.training.peak_bytes
    assert [layer["path"] for layer in data["layers"]] == [r.path for r in summary.rows]
    table = list(csv.DictReader(io.StringIO(summary.to_csv())))
    assert [int(r["macs"]) for r in table] == [r.macs for r in summary.rows]
    assert table[1]["output_shapes"] == "2x8"
    frame = summary.to_dataframe()
    assert list(frame["params"]) == [r.params for r in summary.rows]
    markdown = summary.to_markdown().splitlines()
    assert markdown[0].startswith("| Layer (type) |") and len(markdown) > len(summary.rows) + 2
    assert "Params: 72" in summary.to_table()


def test_the_table_marks_a_reused_modules_params_and_keeps_them_right_aligned():
    summary = cnnarch.analyze(Shared(), (8,), batch_size=2)
    lines = summary.to_table().splitlines()
    params_end = lines[1].index("Params") + len("Params")
    fc_lines = [line for line in lines if line.startswith("  fc (Linear)")]
    # fc: 8 x 8 weights + 8 biases on its first call; its second call adds none.
    assert [line[:params_end].split("  ")[-1] for line in fc_lines] == ["72", "0 (reused)"]
    markdown = summary.to_markdown().splitlines()
    assert markdown[1] == "|:---|---:|---:|---:|---:|"
    assert "| &nbsp;&nbsp;fc (Linear) | 2x8 | 0 (reused) | 128 | 16 |" in markdown


def test_rows_are_complete_frozen_layer_rows():
    # The analyzer builds rows without LayerRow's __init__ (make_row): each must be the row
    # that __init__ builds from the same fields, frozen and hashable like it.
    summary = cnnarch.analyze(Shared(), (8,), batch_size=2)
    for row in summary.rows:
        fields = {f.name: getattr(row, f.name) for f in dataclasses.fields(LayerRow)}
        rebuilt = LayerRow(**fields)
        assert vars(row) == vars(rebuilt)
        assert row == rebuilt and hash(row) == hash(rebuilt)
        with pytest.raises(dataclasses.FrozenInstanceError):
            row.macs = 0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_size": (3, 0, 4)}, "positive"),
        ({"input_size": (3, -2, 4)}, "positive"),
        ({"input_size": "3x4"}, "tuple of ints"),
        ({"batch_size": 0}, "batch size"),
        ({"optimizer": "adam"}, "train=True"),
        ({"train": True, "optimizer": "lion"}, "unknown optimizer"),
        ({"dtype": torch.int64}, "floating"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(CnnarchError, match=message):
        cnnarch.analyze(nn.Linear(3, 3), **{"input_size": (3,), **kwargs})


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), nn.Linear(5, 2))

    def forward(self, x):
        return self.body(x)


def test_failing_forward_names_the_module():
    with pytest.raises(CnnarchError, match=r"fails in `body\.1` \(Linear\) on input \(1, 4\)"):
        cnnarch.analyze(Broken(), (4,))


def test_batch_norm_of_the_wrong_width_is_an_error():
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(4))
    with pytest.raises(CnnarchError, match=r"fails in `1` \(BatchNorm2d\).*8 elements"):
        cnnarch.analyze(model, (3, 4, 4))


def test_analysis_inside_an_exception_handler():
    try:
        raise KeyError("unrelated")
    except KeyError:
        summary = cnnarch.analyze(Shared(), (8,))
    assert summary.total_params == 72


def test_too_small_input_names_layer_and_smallest_size():
    model = nn.Sequential(nn.Conv2d(1, 2, 5), nn.MaxPool2d(4), nn.Conv2d(2, 2, 3))
    # 5x5 conv: s-4; 4x4 pool: floor((s-4)/4); 3x3 conv needs that >= 3, so s >= 16.
    with pytest.raises(CnnarchError) as err:
        cnnarch.analyze(model, (1, 12, 12))
    text = str(err.value)
    assert "`2` (Conv2d)" in text and "smallest square input that works is 1x16x16" in text
    assert cnnarch.analyze(model, (1, 16, 16)).rows[-1].output_shapes == ((1, 2, 1, 1),)


def test_zoo_model_too_small_names_layer():
    with pytest.raises(CnnarchError, match=r"224x224.*features\.30"):
        cnnarch.analyze("vgg16", (3, 16, 16))


class CachesOnDevice(nn.Module):
    """Moves a tensor attribute (not a buffer) to the input's device, as torchvision's anchor
    generators do."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.offsets = torch.ones(3)
        self.calls = 0

    def forward(self, x):
        self.offsets = self.offsets.to(x.device)
        self.calls += 1
        return self.fc(x) + self.offsets


def test_attributes_the_forward_reassigns_are_restored():
    model = CachesOnDevice()
    offsets = model.offsets
    cnnarch.analyze(model, (3,))
    assert model.offsets is offsets and model.calls == 0
    assert cnnarch.analyze(model, (3,), device="cpu").total_macs == 9
    assert model.offsets is offsets
