"""The user's module is never changed by an analysis: every mode (inference, training with each
kind of step), every device choice (meta, cpu, auto with and without the CPU fallback), sizes
or real inputs; weights, buffers, gradients, the module tree, the devices and the flags are as
they were. A forward that builds a submodule on first use leaves nothing behind."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import cnnarch
from cnnarch.analysis.training_modes import TrainingStep


class Net(nn.Module):
    """Conv, batch norm (running statistics a training pass updates), linear; `needs_data`
    makes the forward read a value (`.item()`), so that "auto" falls back to the CPU."""

    def __init__(self, needs_data: bool = False) -> None:
        super().__init__()
        self.needs_data = needs_data
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x)).relu()
        if self.needs_data and x.sum().item() < 0:  # never true: the read is what matters
            x = -x
        return self.fc(x.flatten(1))


def fingerprint(model: nn.Module) -> dict[str, object]:
    """Everything an analysis could change: values, tree, devices, flags, gradients."""
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "tree": [(name, type(m), id(m)) for name, m in model.named_modules()],
        "devices": [(n, p.device, p.dtype, p.requires_grad) for n, p in model.named_parameters()],
        "grads": [p.grad for p in model.parameters()],
        "training": [m.training for m in model.modules()],
        "attributes": [sorted(m.__dict__) for m in model.modules()],
        "ids": [id(t) for t in (*model.parameters(), *model.buffers())],
    }


def assert_same(before: dict[str, object], after: dict[str, object]) -> None:
    assert before.keys() == after.keys()
    for key, value in before.items():
        if key == "state":
            assert value.keys() == after[key].keys()
            for name, tensor in value.items():
                assert torch.equal(tensor, after[key][name]), name
        else:
            assert value == after[key], key


STEPS = [
    pytest.param({}, id="inference"),
    pytest.param({"train": True}, id="sgd"),
    pytest.param({"train": True, "optimizer": "adam"}, id="adam"),
    pytest.param({"train": True, "optimizer": "momentum"}, id="momentum"),
    pytest.param(
        {"train": True, "step": TrainingStep(optimizer="adamw", accumulate=2, set_to_none=False)},
        id="adamw-accumulate",
    ),
    pytest.param(
        {"train": True, "step": TrainingStep(precision="bf16", checkpoint="stages")},
        id="bf16-checkpoint",
    ),
]


@pytest.mark.parametrize("options", STEPS)
@pytest.mark.parametrize(
    ("device", "needs_data"),
    [("meta", False), ("cpu", False), ("auto", False), ("auto", True)],
    ids=["meta", "cpu", "auto", "auto-falls-back-to-cpu"],
)
@pytest.mark.parametrize("given", ["input_size", "inputs"])
def test_the_users_module_is_unchanged(options, device, needs_data, given) -> None:
    torch.manual_seed(0)
    model = Net(needs_data).train(False)
    model.fc.weight.requires_grad_(False)  # a frozen parameter among trainable ones
    before = fingerprint(model)
    x = torch.randn(2, 3, 6, 6)
    size = {"input_size": (3, 6, 6), "batch_size": 2} if given == "input_size" else {"inputs": x}
    summary = cnnarch.analyze(model, device=device, **size, **options)
    assert summary.mode == ("cpu" if device == "cpu" or needs_data else "meta")
    assert (summary.training is not None) == bool(options)
    assert_same(before, fingerprint(model))
    assert torch.equal(model(x), copy.deepcopy(model)(x))  # and it still runs, as before


def test_a_cpu_training_step_leaves_the_users_weights_where_they_were() -> None:
    # The two steps the trace runs (the first creates the optimizer state) used to update the
    # module's own tensors: SGD moved the bias (the weight's gradient is zero for a zero input),
    # Adam with real inputs moved the weights too.
    torch.manual_seed(0)
    layer = nn.Linear(4, 2)
    bias = layer.bias.detach().clone()
    cnnarch.analyze(layer, (4,), device="cpu", train=True)
    assert torch.equal(layer.bias, bias)
    weight = layer.weight.detach().clone()
    cnnarch.analyze(layer, inputs=torch.randn(3, 4), device="auto", train=True, optimizer="adam")
    assert torch.equal(layer.weight, weight) and torch.equal(layer.bias, bias)
    assert layer.weight.grad is None and layer.bias.grad is None


class GrowsAHead(nn.Module):
    """Builds its head on the first call, from the input's width (a common lazy pattern)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "head"):
            self.head = nn.Linear(x.shape[-1], 2)
        self.calls = getattr(self, "calls", 0) + 1
        return self.head(x)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_a_submodule_built_in_the_forward_is_not_left_on_the_users_model(device) -> None:
    model = GrowsAHead()
    summary = cnnarch.analyze(model, (5,), device=device)
    assert summary.total_macs == 5 * 2  # the head ran, and was counted
    assert not hasattr(model, "head") and not hasattr(model, "calls")
    assert dict(model.named_children()) == {}
    out = model(torch.ones(1, 5))  # the first real call builds a real head
    assert out.shape == (1, 2) and model.head.weight.device.type == "cpu"
    # Analyzing a model that has its head already changes nothing of it either.
    head = model.head
    before = fingerprint(model)
    cnnarch.analyze(model, (5,), device=device, train=True)
    assert model.head is head
    assert_same(before, fingerprint(model))


def test_analysis_leaves_no_global_module_hook_behind() -> None:
    # A leftover global entry slows every later module call in the process (the slow path of
    # nn.Module.__call__) and makes torch.compile warn of hooks.
    from cnnarch.analysis.torch_internals import any_global_module_hook

    assert not any_global_module_hook()
    cnnarch.analyze(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (4,))
    cnnarch.analyze(nn.Linear(4, 2), (4,), train=True, device="cpu")
    assert not any_global_module_hook()


def meta_fingerprint(model: nn.Module) -> dict[str, object]:
    """`fingerprint` of a model on meta (its tensors have no values to compare)."""
    found = fingerprint(model)
    found["state"] = {k: (v.shape, v.dtype, v.device) for k, v in model.state_dict().items()}
    return found


def test_a_zoo_model_is_built_once_and_every_analysis_leaves_it_as_built() -> None:
    """`cnnarch.analyze("resnet18")` builds ResNet-18 on meta once per process and reuses it:
    inference, each kind of training step, another dtype and the CPU leave it unchanged, and
    the summaries equal those of a model built for each analysis."""
    from cnnarch.zoo import create_model
    from cnnarch.zoo_models import _built_on_meta

    _built_on_meta.cache_clear()
    settings = [
        {},
        {"dtype": torch.bfloat16, "batch_size": 3},
        {"train": True, "batch_size": 2, "step": TrainingStep(optimizer="adam", foreach=True)},
        {"train": True, "step": TrainingStep(optimizer="momentum", precision="bf16")},
        {"device": "cpu", "input_size": (3, 32, 32)},
    ]
    shared = cnnarch.analyze("resnet18")
    built = _built_on_meta("resnet18", "paper")
    before = meta_fingerprint(built)
    for options in settings:
        reused = cnnarch.analyze("resnet18", **options)
        assert _built_on_meta("resnet18", "paper") is built
        assert meta_fingerprint(built) == before
        with torch.device("meta"):
            model = create_model("resnet18")
        fresh = cnnarch.analyze(model, **options)
        assert reused.to_dict() == {**fresh.to_dict(), "model": reused.model_name}
    assert shared.to_dict() == cnnarch.analyze("resnet18").to_dict()
