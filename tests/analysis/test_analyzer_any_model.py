"""The analyzer on models beyond plain image networks: no input, no forward, lazy modules,
other dtypes, data-dependent ops (the CPU fallback), inputs of any structure in errors, time
limits, and the analysis package on its own."""

from __future__ import annotations

import gc
import math
import subprocess
import sys
import threading
import time

import pytest
import torch
from torch import nn

import cnnarch
from cnnarch import CnnarchError


# -- a standalone package ------------------------------------------------------------------------
@pytest.mark.slow
def test_analysis_package_imports_nothing_from_the_zoo():
    # Nothing installs the zoo into the analyzer: no module of the analysis package names the
    # zoo, and the analyzer, called directly in a fresh process, analyzes a module as it is.
    code = (
        "import torch, cnnarch.analysis.analyzer as a\n"
        "s = a.analyze(torch.nn.Linear(3, 4), (3,))\n"
        "print(s.total_macs)\n"
    )
    import cnnarch.analysis as package

    folder = package.__path__[0]
    for module in sorted(__import__("pathlib").Path(folder).glob("*.py")):
        text = module.read_text()
        assert "cnnarch.zoo" not in text, module.name
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "12"


def test_the_analyzer_takes_modules_and_the_front_door_resolves_names():
    from cnnarch.analysis import analyzer

    with pytest.raises(CnnarchError, match=r"cnnarch\.analyze also takes a zoo model's name"):
        analyzer.analyze("resnet20")
    with pytest.raises(ValueError, match=r"expected an nn\.Module"):  # a bad value
        analyzer.analyze(42)
    with torch.device("meta"):
        model = cnnarch.create_model("resnet20")
    assert analyzer.analyze(model).mode == "parameters"  # no default size: nothing resolved it
    assert cnnarch.analyze(model).input_shape == (1, 3, 32, 32)  # the card's, by the front door
    assert (
        cnnarch.analyze("resnet20").total_params
        == analyzer.analyze(model, (3, 32, 32)).total_params
    )


def test_one_size_search_for_the_zoo_and_the_analyzer():
    from cnnarch import meta
    from cnnarch.zoo import common

    assert common.smallest_square_side is meta.smallest_square_side
    assert meta.bisect_smallest_side(lambda side: side >= 37) == 37
    assert meta.bisect_smallest_side(lambda side: False, limit=64) is None


# -- no input, no forward -------------------------------------------------------------------------
class Tower(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.LayerNorm(4)])
        self.register_buffer("scale", torch.ones(3, dtype=torch.float64))

    def forward(self, x):
        return self.blocks[1](self.blocks[0](self.embed(x)))


def test_no_input_gives_the_parameters_and_says_no_pass_ran():
    model = Tower()
    model.embed.weight.requires_grad_(False)
    summary = cnnarch.analyze(model)
    assert summary.mode == "parameters" and "no input size" in summary.mode_reason
    rows = {r.path: r for r in summary.rows}
    assert rows[""].params == 40 + 20 + 8 and rows["blocks"].params == 28
    assert rows["blocks.1"].params == 8 and rows["blocks.1"].depth == 2
    assert (summary.trainable_params, summary.frozen_params) == (28, 40)
    assert summary.param_bytes == 68 * 4 and summary.buffer_bytes == 3 * 8
    assert summary.total_macs == 0 and summary.input_shapes == ()
    text = summary.to_table()
    assert "No forward pass ran (no input size was given)" in text
    assert "MACs" not in text.splitlines()[1]  # no columns a pass would fill


def test_a_model_without_forward_gets_its_parameters_even_with_an_input():
    blocks = nn.ModuleList([nn.Linear(2, 3), nn.Linear(3, 4)])
    summary = cnnarch.analyze(blocks, (2,))
    assert summary.mode == "parameters" and "has no forward" in summary.mode_reason
    assert summary.total_params == 9 + 16
    assert [r.path for r in summary.rows] == ["", "0", "1"]


def test_zoo_models_keep_their_card_size_as_default():
    assert cnnarch.analyze("resnet20").input_shape == (1, 3, 32, 32)


def test_a_zoo_model_built_for_other_channels_defaults_to_them():
    rgb = cnnarch.analyze(cnnarch.create_model("resnet20"))
    gray = cnnarch.analyze(cnnarch.create_model("resnet20", in_channels=1))
    assert gray.input_shape == (1, 1, 32, 32)
    # Only the first conv sees the channels: 3x3 kernels, 16 filters, 32x32 outputs, 2 fewer.
    assert rgb.total_macs - gray.total_macs == 9 * 16 * 32 * 32 * 2


# -- lazy modules --------------------------------------------------------------------------------
def test_lazy_modules_are_sized_by_a_dry_pass_and_left_uninitialized():
    model = nn.Sequential(nn.LazyConv2d(6, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    summary = cnnarch.analyze(model, (3, 5, 5), batch_size=2)
    # conv: 6 x 3 x 3 x 3 + 6; linear: (6 x 3 x 3) x 2 + 2
    assert summary.total_params == 168 + 110
    assert summary.total_macs == 2 * (6 * 9 * 27 + 54 * 2)
    assert type(model[0]) is nn.LazyConv2d and type(model[3]) is nn.LazyLinear
    assert all(nn.parameter.is_lazy(p) for p in model.parameters())
    with pytest.raises(CnnarchError, match="lazy modules have no parameter shapes"):
        cnnarch.analyze(model)


# -- dtypes --------------------------------------------------------------------------------------
def test_dtype_comes_from_the_model():
    half = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).half()
    summary = cnnarch.analyze(half, (4,))
    assert summary.dtype == "float16" and summary.param_dtypes == {"float16": 15}
    assert summary.param_bytes == 2 * 15 and summary.input_bytes == 2 * 4
    as_float = cnnarch.analyze(half, (4,), dtype=torch.float32)  # as if converted
    assert as_float.param_bytes == 4 * 15 and as_float.dtype == "float32"


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wide = nn.Linear(8, 8)
        self.narrow = nn.Linear(8, 2).to(torch.bfloat16)

    def forward(self, x):
        return self.narrow(self.wide(x).to(torch.bfloat16))


def test_mixed_dtype_model_reports_real_bytes_per_dtype():
    summary = cnnarch.analyze(Mixed(), (8,))
    assert summary.param_dtypes == {"float32": 72, "bfloat16": 18}
    assert summary.param_bytes == 72 * 4 + 18 * 2
    assert summary.dtype == "float32"
    assert "mixed dtypes: float32 72, bfloat16 18" in summary.to_table()


# -- errors --------------------------------------------------------------------------------------
class Nested(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, pair, extra):
        return self.fc(pair[0]) + self.fc(extra["b"])


@pytest.mark.parametrize(
    "inputs",
    [
        ([torch.zeros(2, 5), torch.zeros(2, 4)], {"b": torch.zeros(2, 4)}),
        {"pair": [torch.zeros(2, 5)], "extra": {"b": torch.zeros(2, 4)}},
    ],
)
def test_errors_with_list_and_dict_inputs_keep_the_models_message(inputs):
    with pytest.raises(CnnarchError) as err:
        cnnarch.analyze(Nested(), inputs=inputs)
    text = str(err.value)
    assert "fails in `fc` (Linear) on input (2, 5)" in text
    assert "mat1 and mat2 shapes cannot be multiplied (2x5 and 4x2)" in text  # PyTorch's words


def test_error_in_the_model_itself_names_every_input_shape():
    class Early(nn.Module):
        def forward(self, pair):
            return pair[0] @ pair[1]

    with pytest.raises(CnnarchError, match=r"in `\(model\)` \(Early\) on input \(2, 3\), \(4, 5\)"):
        cnnarch.analyze(Early(), inputs=([torch.zeros(2, 3), torch.zeros(4, 5)],))


def test_channel_error_uses_pytorchs_wording():
    with pytest.raises(CnnarchError) as err:
        cnnarch.analyze(nn.Sequential(nn.Conv2d(3, 8, 3)), (4, 8, 8))
    text = str(err.value)
    assert "expected input[1, 4, 8, 8] to have 3 channels, but got 4 channels instead" in text
    assert "Invalid channel dimensions" not in text
    assert text.count("\n") == 0


def test_error_says_when_the_size_was_a_default():
    with torch.device("meta"):
        model = cnnarch.create_model("resnet20")
    model.fc = nn.Linear(7, 10)  # no longer fits its own card's size
    with pytest.raises(CnnarchError, match=r"3x32x32 is resnet20's default input size"):
        cnnarch.analyze(model)
    with pytest.raises(CnnarchError) as err:
        cnnarch.analyze(model, (3, 32, 32))
    assert "default" not in str(err.value)


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * scale


def test_a_scalar_input_among_several_is_a_0d_tensor_without_a_batch():
    model = Scaled()
    assert model(torch.zeros(4, 3), torch.tensor(2.0)).shape == (4, 2)  # PyTorch runs it
    summary = cnnarch.analyze(model, [(3,), ()], batch_size=4)
    assert summary.input_shapes == ((4, 3), ())
    assert summary.total_macs == 4 * 3 * 2  # the Linear; the product by a scalar has none
    mul = next(r for r in summary.rows if r.kind == "op")
    assert mul.input_shapes == ((4, 2), ()) and mul.output_shapes == ((4, 2),)
    assert summary.input_elements == 4 * 3 + 1
    assert "scalar" in summary.to_table()  # a 0-d shape is named, not left blank
    # A 0-d input to a layer that needs more is the layer's error, with the shapes named.
    with pytest.raises(CnnarchError, match=r"fails in `\(model\)` \(Linear\)"):
        cnnarch.analyze(nn.Linear(3, 3), ())


def test_any_failure_is_one_cnnarch_error(monkeypatch):
    from cnnarch.analysis import analyzer

    def broken(*args, **kwargs):
        raise KeyError("internal")

    monkeypatch.setattr(analyzer, "_build_summary", broken)
    with pytest.raises(CnnarchError, match="the analysis failed: KeyError"):
        cnnarch.analyze(nn.Linear(3, 3), (3,))


# -- data-dependent ops: the CPU fallback ---------------------------------------------------------
class Positives(nn.Module):
    """Keeps the positive scores (`nonzero` underneath), then a layer on what is left."""

    def __init__(self) -> None:
        super().__init__()
        self.score = nn.Linear(4, 6)
        self.head = nn.Linear(1, 3)

    def forward(self, x):
        scores = self.score(x)
        kept = scores[scores > 0]
        return self.head(kept.unsqueeze(1))


def test_data_dependent_op_falls_back_to_cpu_and_says_so():
    torch.manual_seed(0)
    model = Positives()
    x = torch.randn(2, 4)
    with torch.no_grad():
        kept = int((model.score(x) > 0).sum())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary = cnnarch.analyze(model, inputs=x)
    assert summary.mode == "cpu" and "nonzero" in summary.mode_reason
    assert "those of this input" in summary.mode_reason
    # score: 2 x 4 x 6; head: kept x 1 x 3 (depends on the data, as said)
    assert summary.total_macs == 2 * 4 * 6 + kept * 3
    assert summary.rows[-1].output_shapes == ((kept, 3),)
    assert "Ran on real CPU tensors" in summary.to_table()
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    with pytest.raises(
        CnnarchError, match=r"needs real data in `getitem\(\)`.*nonzero.*device='cpu'"
    ):
        cnnarch.analyze(model, inputs=x, device="meta")


class Sampler(nn.Module):
    """Returns a distribution, which checks its argument's values."""

    def __init__(self) -> None:
        super().__init__()
        self.logits = nn.Linear(4, 3)

    def forward(self, x):
        return torch.distributions.Categorical(logits=self.logits(x)).probs


def test_item_on_a_tensor_falls_back_to_cpu():
    summary = cnnarch.analyze(Sampler(), (4,), batch_size=2)
    assert summary.mode == "cpu" and ".item()" in summary.mode_reason
    assert summary.total_macs == 2 * 4 * 3


class Packed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 5, batch_first=True)

    def forward(self, x, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
        _, hidden = self.rnn(packed)
        return hidden


def test_cpu_only_arguments_stay_on_the_cpu():
    lengths = torch.tensor([4, 2])
    summary = cnnarch.analyze(Packed(), inputs=(torch.zeros(2, 4, 3), lengths))
    assert summary.mode == "cpu" and "lengths" in summary.mode_reason
    assert summary.rows[0].output_shapes == ((1, 2, 5),)
    assert summary.total_params == 3 * (3 * 5 + 5 * 5 + 2 * 5)


def test_device_cpu_equals_meta_on_a_static_model():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())
    meta = cnnarch.analyze(model, (3, 6, 6), batch_size=2)
    cpu = cnnarch.analyze(model, (3, 6, 6), batch_size=2, device="cpu")
    assert cpu.mode == "cpu" and "asked for" in cpu.mode_reason and meta.mode == "meta"
    assert cpu.rows == meta.rows
    assert (cpu.total_macs, cpu.total_flops, cpu.activation_bytes) == (
        meta.total_macs,
        meta.total_flops,
        meta.activation_bytes,
    )
    with pytest.raises(CnnarchError, match="device must be one of"):
        cnnarch.analyze(model, (3, 6, 6), device="cuda")


def test_cpu_fallback_on_a_meta_model_and_in_training():
    with torch.device("meta"):
        model = Positives()
    summary = cnnarch.analyze(model, (4,), batch_size=3, train=True)
    # meta weights become zeros on the CPU: every score is 0, none is kept
    assert summary.mode == "cpu" and summary.total_macs == 3 * 4 * 6
    assert summary.training is not None
    assert all(p.device.type == "meta" and p.grad is None for p in model.parameters())


# -- time limit and tensors made in the forward ------------------------------------------------
class Forever(nn.Module):
    def forward(self, x):
        while True:
            x = x + 0


class Stuck(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 4)
        self.loop = Forever()

    def forward(self, x):
        return self.loop(self.stem(x))


def test_a_forward_that_never_returns_is_stopped_naming_the_layer():
    start = time.monotonic()
    with pytest.raises(CnnarchError, match=r"within 0.3 s \(the forward pass was in `loop`"):
        cnnarch.analyze(Stuck(), (4,), timeout=0.3)
    assert time.monotonic() - start < 5
    assert cnnarch.analyze(Stuck().stem, (4,), timeout=5).total_macs == 16  # no stray timer
    time.sleep(0.01)
    with pytest.raises(CnnarchError, match="timeout must be a positive number"):
        cnnarch.analyze(Stuck(), (4,), timeout=0)


class Waits(nn.Module):
    """A forward blocked in native code (a lock's wait), which no Python-level signal
    interrupts: only its event ends it."""

    def __init__(self, event: threading.Event) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 4)
        self.event = event

    def forward(self, x):
        x = self.stem(x)
        self.event.wait()
        return x


def test_a_forward_blocked_in_native_code_is_abandoned_and_the_module_restored():
    from cnnarch.analysis.torch_internals import global_module_hook_counts

    event = threading.Event()
    model = Waits(event)
    weight = model.stem.weight
    hooks = global_module_hook_counts()
    with pytest.raises(CnnarchError) as raised:
        cnnarch.analyze(model, (4,), timeout=0.2)
    message = str(raised.value)
    assert "did not finish within 0.2 s" in message and "blocked in native code" in message
    assert "the forward pass was in `(model)` (Waits)" in message
    # While the abandoned thread still waits, the module is the user's again, as it was.
    assert model.stem.weight is weight and weight.device.type == "cpu"
    assert model.training and gc.isenabled() and global_module_hook_counts() == hooks
    assert cnnarch.analyze(model.stem, (4,)).total_macs == 16
    event.set()  # the thread wakes, finds its stop, unwinds, and changes nothing more
    for thread in threading.enumerate():
        if thread.name == "cnnarch-analysis":
            thread.join(10)
    assert model.stem.weight is weight and model.training
    assert not any(t.name == "cnnarch-analysis" for t in threading.enumerate())


def test_no_limit_is_none_or_infinity_and_a_limit_is_a_positive_number():
    assert cnnarch.analyze(nn.Linear(4, 4), (4,), timeout=math.inf).total_macs == 16
    for bad in (0, -1, math.nan, True, "10"):
        with pytest.raises(ValueError, match="timeout must be a positive number"):
            cnnarch.analyze(nn.Linear(4, 4), (4,), timeout=bad)


class MakesOnCpu(nn.Module):
    def forward(self, x):
        huge = torch.empty(10**12, device="cpu")  # 4 TB if it were allocated
        return x + huge[:4]


def test_explicit_cpu_factories_in_forward_stay_on_meta():
    summary = cnnarch.analyze(MakesOnCpu(), (4,))
    assert summary.mode == "meta"
    assert summary.inference_peak_bytes >= 4 * 10**12  # counted, never allocated


# -- TorchScript ---------------------------------------------------------------------------------
class Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_scripted_module_row_has_its_params_and_activations():
    stem = nn.Conv2d(3, 3, 1)
    eager = cnnarch.analyze(nn.Sequential(stem, Head()), (3, 8, 8))
    scripted = cnnarch.analyze(nn.Sequential(stem, torch.jit.script(Head())), (3, 8, 8))
    row = scripted.rows[-1]
    assert row.type == "Head (TorchScript)" and row.params == 4 * 27 + 4 + 4 * 2 + 2
    # its layers get no rows of their own; what they allocate is the scripted module's
    assert row.activation_elements == 4 * 36 + 4 + 2
    for total in ("total_params", "total_macs", "activation_elements", "inference_peak_bytes"):
        assert getattr(scripted, total) == getattr(eager, total), total
    with pytest.raises(CnnarchError, match="TorchScript"):
        cnnarch.analyze(torch.jit.script(Head()), (3, 8, 8), train=True)


# -- torchinfo's convention given to analyze ----------------------------------------------------
def test_a_size_with_the_batch_in_it_is_explained() -> None:
    # torchinfo's input_size holds the batch; analyze's does not. A first call written the
    # torchinfo way fails on a 5-D input, and says why and what to write.
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten())
    with pytest.raises(CnnarchError) as raised:
        cnnarch.analyze(net, input_size=(1, 3, 224, 224))
    message = str(raised.value)
    assert "input (1, 1, 3, 224, 224)" in message or "on input (1, 1, 3, 224, 224)" in message
    assert "input_size is one example's size, without the batch" in message
    assert "write input_size=(3, 224, 224), batch_size=1" in message
    with pytest.raises(CnnarchError, match=r"write input_size=\(3, 32, 32\), batch_size=8"):
        cnnarch.analyze("resnet20", input_size=(8, 3, 32, 32))  # a zoo model's own check
    # A failure that the batch does not explain gets no such note.
    with pytest.raises(CnnarchError) as other:
        cnnarch.analyze(net, input_size=(4, 224, 224))
    assert "without the batch" not in str(other.value)
