"""The inference fast path for common layers gives exactly the summaries of the exact path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnarch
from cnnarch import CnnarchError
from cnnarch.analysis import fast_leaves
from cnnarch.analysis.trace import SHAPE_RULES

aten = torch.ops.aten


def _both_paths(model: nn.Module, monkeypatch: pytest.MonkeyPatch, **kwargs):
    fast = cnnarch.analyze(model, **kwargs)
    with monkeypatch.context() as patch:
        patch.setattr(fast_leaves, "ENABLED", False)
        exact = cnnarch.analyze(model, **kwargs)
    return fast, exact


def _assert_same(fast, exact) -> None:
    assert len(fast.rows) == len(exact.rows)
    for ours, theirs in zip(fast.rows, exact.rows, strict=True):
        assert ours == theirs, ours.path  # every field of every row
    assert fast == exact  # totals, memory, uncounted ops


ZOO = [
    (name, variant)
    for name in cnnarch.list_models()
    for variant in cnnarch.model_card(name).variants
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "variant"), ZOO)
def test_fast_path_equals_exact_path_on_the_zoo(name, variant, monkeypatch):
    with torch.device("meta"):
        model = cnnarch.create_model(name, variant=variant)
    _assert_same(*_both_paths(model, monkeypatch))


def test_fast_path_covers_the_zoo_layers_it_names():
    # The equality above would hold trivially if nothing took the fast path.
    with torch.device("meta"):
        model = cnnarch.create_model("resnet18")
    types = {type(m) for m in model.modules()}
    assert {nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.Linear} <= types
    assert types & set(fast_leaves.FAST_LEAVES) == {
        nn.Conv2d,
        nn.BatchNorm2d,
        nn.ReLU,
        nn.MaxPool2d,
        nn.Linear,
    }


def test_layer_variants_off_the_fast_path_agree(monkeypatch):
    # Options the fast path declines or handles separately: string padding, circular padding,
    # no bias, BN without running stats or affine parameters, half precision, 3-D input.
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding="same", bias=False),
        nn.BatchNorm2d(8, affine=False),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular", groups=2),
        nn.BatchNorm2d(8, track_running_stats=False),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.Dropout(0.2),
        nn.Identity(),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 5, bias=False),
    )
    for dtype in (torch.float32, torch.float16):
        _assert_same(*_both_paths(model, monkeypatch, input_size=(3, 7, 7), dtype=dtype))
    unbatched = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
    _assert_same(*_both_paths(unbatched, monkeypatch, inputs=torch.zeros(3, 8, 8)))


def test_fast_path_is_removed_afterwards_also_on_error():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 5), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(),
        nn.Linear(8, 2),
    )  # fmt: skip
    # 12x12: conv 8x8, pool 2x2, 2 * 2 * 2 = 8 features; 16x16: 2 * 3 * 3 = 18 features.
    assert cnnarch.analyze(model, (1, 12, 12)).rows[-1].output_shapes == ((1, 2),)
    with pytest.raises(CnnarchError, match=r"fails in `5` \(Linear\) on input \(1, 18\)"):
        cnnarch.analyze(model, (1, 16, 16))  # raised on the fast path, by the meta kernel
    assert all("_call_impl" not in m.__dict__ for m in model.modules())


def test_modules_with_their_own_hooks_keep_them(monkeypatch):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    seen: list[tuple[int, ...]] = []
    model[0].register_forward_hook(lambda m, args, out: seen.append(tuple(out.shape)))
    _assert_same(*_both_paths(model, monkeypatch, input_size=(3, 6, 6)))
    assert seen == [(1, 4, 4, 4), (1, 4, 4, 4)]  # the hook ran on both paths


def _meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


@pytest.mark.parametrize(
    ("op", "args"),
    [
        # convolution(x, weight, bias, stride, padding, dilation, transposed, out_pad, groups)
        (aten.convolution.default, (_meta(2, 3, 9, 7), _meta(8, 3, 3, 3), None,
                                    [2, 1], [1, 0], [1, 2], False, [0, 0], 1)),
        (aten.convolution.default, (_meta(1, 8, 5, 5, dtype=torch.float16),
                                    _meta(8, 2, 3, 3, dtype=torch.float16), None,
                                    [1, 1], [1, 1], [1, 1], False, [0, 0], 4)),
        (aten.convolution.default, (_meta(1, 2, 6), _meta(4, 2, 3), _meta(4),
                                    [2], [0], [1], False, [0], 1)),
        (aten.mm.default, (_meta(5, 7), _meta(7, 3))),
        (aten.addmm.default, (_meta(3), _meta(5, 7), _meta(7, 3))),
        (aten.addmm.default, (_meta(5, 3), _meta(5, 7), _meta(7, 3))),
        (aten.addmm.default, (_meta(3), _meta(7, 5).t(), _meta(3, 7).t())),  # nn.Linear's
        (aten.mm.default, (_meta(1, 7), _meta(3, 7).t())),
        (aten.relu.default, (_meta(2, 8, 5, 5),)),
        (aten.relu_.default, (_meta(2, 8, 5, 5),)),
        (aten.add.Tensor, (_meta(2, 8, 5, 5), _meta(2, 8, 5, 5))),
        (aten.mul.Tensor, (_meta(3, 4, dtype=torch.bfloat16), _meta(3, 4, dtype=torch.bfloat16))),
        (aten.cat.default, ([_meta(2, 3, 4, 4), _meta(2, 5, 4, 4)], 1)),
        (aten.cat.default, ([_meta(2, 3), _meta(4, 3)],)),
        (aten.cat.default, ([_meta(2, 3, 4), _meta(2, 3, 1)], -1)),
    ],
)  # fmt: skip
def test_shape_rules_equal_the_meta_kernels(op, args):
    ours, theirs = SHAPE_RULES[op](args, {}), op(*args)
    assert (ours.shape, ours.stride(), ours.dtype) == (theirs.shape, theirs.stride(), theirs.dtype)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dtype": torch.uint8, "layout": torch.strided, "device": torch.device("meta")},
        {"device": torch.device("meta")},  # the default dtype
    ],
)
def test_empty_rule_equals_the_kernel(kwargs):
    op = aten.empty.memory_format
    ours, theirs = SHAPE_RULES[op](([0, 3],), kwargs), op([0, 3], **kwargs)
    assert (ours.shape, ours.stride(), ours.dtype, ours.device) == (
        theirs.shape,
        theirs.stride(),
        theirs.dtype,
        theirs.device,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dtype": torch.uint8},  # no device: the CPU
        {"device": torch.device("cpu")},
        {"device": torch.device("meta"), "memory_format": torch.channels_last},
        {"device": torch.device("meta"), "layout": torch.sparse_coo},
    ],
)
def test_empty_rule_leaves_other_calls_to_the_kernel(kwargs):
    assert SHAPE_RULES[aten.empty.memory_format](([2, 3, 4, 4],), kwargs) is None


@pytest.mark.parametrize(
    ("op", "args"),
    [
        (aten.convolution.default, (_meta(1, 4, 5, 5), _meta(8, 3, 3, 3), None,
                                    [1, 1], [0, 0], [1, 1], False, [0, 0], 1)),  # channels
        (aten.convolution.default, (_meta(1, 3, 2, 2), _meta(8, 3, 3, 3), None,
                                    [1, 1], [0, 0], [1, 1], False, [0, 0], 1)),  # too small
        (aten.convolution.default, (_meta(1, 3, 5, 5), _meta(3, 3, 3, 3), None,
                                    [1, 1], [0, 0], [1, 1], True, [0, 0], 1)),  # transposed
        (aten.mm.default, (_meta(5, 7), _meta(6, 3))),
        (aten.addmm.default, (_meta(1, 1), _meta(5, 7), _meta(7, 3))),  # broadcast bias
        (aten.add.Tensor, (_meta(2, 8, 5, 5), _meta(8, 1, 1))),  # broadcast
        (aten.add.Tensor, (_meta(2, 8, 1, 1), _meta(2, 8, 1, 1))),  # layout ambiguous
        (aten.relu.default, (_meta(2, 3, 4, 4).permute(0, 2, 3, 1),)),  # not contiguous
        (aten.relu_.default, (_meta(2, 3).expand(4, 2, 3),)),  # overlapping elements
        (aten.cat.default, ([_meta(2, 3, 4, 4), _meta(2, 5, 3, 4)], 1)),  # sizes differ
        (aten.cat.default, ([_meta(2, 3), _meta(2, 3)], 2)),  # no such dimension
    ],
)  # fmt: skip
def test_shape_rules_leave_unusual_calls_to_the_kernel(op, args):
    assert SHAPE_RULES[op](args, {}) is None


def _outcome(model: nn.Module, **kwargs):
    """The summary, or the error message."""
    try:
        return cnnarch.analyze(model, **kwargs)
    except CnnarchError as err:
        return str(err)


@pytest.mark.parametrize(
    ("model", "kwargs", "error"),
    [
        # float16 inputs to float32 layers: PyTorch refuses, so must both paths
        (nn.Sequential(nn.Conv2d(3, 4, 3)), {"inputs": torch.zeros(1, 3, 6, 6).half()},
         "Input type (c10::Half) and bias type (float) should be the same"),
        (nn.Sequential(nn.Conv2d(3, 4, 3, bias=False)),
         {"inputs": torch.zeros(1, 3, 6, 6).half()}, "Half"),
        (nn.Sequential(nn.Linear(4, 2)), {"inputs": torch.zeros(3, 4).half()},
         "mat1 and mat2 must have the same dtype"),
        # the wrong number of channels, in PyTorch's words
        (nn.Sequential(nn.Conv2d(3, 4, 3)), {"input_size": (5, 6, 6)},
         "to have 3 channels, but got 5 channels instead"),
        (nn.Sequential(nn.BatchNorm2d(3)), {"input_size": (5, 6, 6)},
         "running_mean should contain 5 elements not 3"),
        # a float16 model analyzed in its own dtype, and a bfloat16 one
        (nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                       nn.Flatten(), nn.Linear(16, 2)).half(), {"input_size": (3, 6, 6)}, None),
        (nn.Sequential(nn.Linear(4, 2)).to(torch.bfloat16), {"input_size": (4,)}, None),
    ],
)  # fmt: skip
def test_fast_and_exact_paths_check_what_pytorch_checks(model, kwargs, error, monkeypatch):
    model.eval()
    fast = _outcome(model, **kwargs)
    with monkeypatch.context() as patch:
        patch.setattr(fast_leaves, "ENABLED", False)
        exact = _outcome(model, **kwargs)
    if error is None:
        _assert_same(fast, exact)
        assert fast.dtype == str(next(model.parameters()).dtype).removeprefix("torch.")
    else:
        assert fast == exact, (fast, exact)
        assert error in fast
