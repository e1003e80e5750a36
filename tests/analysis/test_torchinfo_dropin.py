"""`cnnarch.summary` as a drop-in for `torchinfo.summary`: the same calls run through both, on
the kinds of models torchinfo's own tests use; equal parameter totals, MACs equal where the
conventions agree and apart by exactly the terms torchinfo adds where they do not, and the
same table layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnarch

torchinfo = pytest.importorskip("torchinfo")


# -- torchinfo's kinds of models -----------------------------------------------------------------
class MnistNet(nn.Module):
    """Convolutions and linear layers with biases, functional pooling and activations."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.drop = nn.Dropout2d(0.3)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.drop(self.conv2(x)), 2))
        x = F.relu(self.fc1(x.view(-1, 320)))
        return F.log_softmax(self.fc2(x), dim=1)


class BiasFree(nn.Module):
    """Nested containers, convolutions and a linear layer without bias, batch norm."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Sequential(nn.Conv2d(8, 8, 3, bias=False), nn.ReLU()),
        )
        self.head = nn.Linear(8, 4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


class TwoInputs(nn.Module):
    """Two inputs of different dtypes (the second cast in the forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(30, 5, bias=False)
        self.b = nn.Linear(30, 5, bias=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.a(x), self.b(y.float())), 0)


class Reused(nn.Module):
    """One convolution applied six times (torchinfo marks it "(recursive)")."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(6):
            x = self.conv(x)
        return x


class Recurrent(nn.Module):
    """Embedding, a two-layer LSTM and a linear decoder, with a tuple output."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 30)
        self.encoder = nn.LSTM(30, 40, num_layers=2)
        self.decoder = nn.Linear(40, 20)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        out, hidden = self.encoder(self.embedding(x))
        return self.decoder(out).view(-1, 20), hidden


def frozen_mnist() -> nn.Module:
    model = MnistNet()
    for p in model.conv1.parameters():
        p.requires_grad_(False)
    return model


CASES = {
    "mnist": (MnistNet, {"input_size": (1, 1, 28, 28)}),
    "frozen": (frozen_mnist, {"input_size": (2, 1, 28, 28)}),
    "bias-free": (BiasFree, {"input_size": (2, 3, 16, 16)}),
    "two-inputs": (
        TwoInputs,
        {"input_size": [(1, 30), (1, 30)], "dtypes": [torch.float32, torch.long]},
    ),
    "reused": (Reused, {"input_size": (1, 4, 8, 8)}),
    "lstm": (Recurrent, {"input_size": (1, 12), "dtypes": [torch.long]}),
    "resnet18": (
        lambda: cnnarch.create_model("resnet18", variant="torchvision"),
        {"input_size": (1, 3, 224, 224)},
    ),
}

# What torchinfo's mult-adds add to cnnarch's MACs (convolutions and matrix products): for
# each leaf module, each parameter named weight or bias times the output's batch (times its
# positions, for a convolution); so every bias element once per output position, every
# normalization parameter once per example. Derived here by hand from each architecture.
TORCHINFO_EXTRA = {
    # conv1 bias: 10 x 24x24; conv2 bias: 20 x 8x8; fc1, fc2 biases: 50 + 10
    "mnist": 10 * 24 * 24 + 20 * 8 * 8 + 50 + 10,
    "frozen": 2 * (10 * 24 * 24 + 20 * 8 * 8 + 50 + 10),  # batch 2
    "bias-free": 2 * (8 + 8),  # batch norm's weight and bias, per example
    "two-inputs": 0,
    "reused": 0,
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_same_call_gives_the_same_totals(case) -> None:
    build, call = CASES[case]
    torch.manual_seed(0)
    model = build()
    theirs = torchinfo.summary(model, **call, verbose=0, device="cpu")
    ours = cnnarch.summary(model, **call, verbose=0)
    assert ours.total_params == theirs.total_params
    assert ours.trainable_params == theirs.trainable_params
    assert ours.total_param_bytes == theirs.total_param_bytes
    if case in TORCHINFO_EXTRA:
        assert theirs.total_mult_adds == ours.total_mult_adds + TORCHINFO_EXTRA[case]


def test_resnet18_macs_apart_by_biases_and_batch_norm() -> None:
    # torchvision's ResNet-18: convolutions without bias, 20 batch norms (4,800 channels in
    # all: 64 + 4 x 64 + (4 x 128 + 128) + (4 x 256 + 256) + (4 x 512 + 512), with the
    # downsampling shortcuts'), two parameters each; one linear layer with 1,000 biases.
    model = cnnarch.create_model("resnet18", variant="torchvision")
    theirs = torchinfo.summary(model, (1, 3, 224, 224), verbose=0, device="cpu")
    ours = cnnarch.summary(model, (1, 3, 224, 224), verbose=0)
    channels = sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert channels == 4_800
    assert theirs.total_mult_adds == ours.total_macs + 2 * channels + 1_000
    assert ours.total_macs == 1_814_073_344  # torchvision's 1.81 GMACs


def table_rows(text: str) -> list[str]:
    """The rows of a torchinfo-style table: header and layers, down to the totals."""
    lines = text.splitlines()
    return lines[: next(i for i, line in enumerate(lines) if line.startswith("Total params"))]


@pytest.mark.parametrize(
    "layout",
    [
        {},
        {"depth": 1},
        {"depth": 2, "row_settings": ("ascii_only", "var_names")},
        {"col_names": ("input_size", "output_size", "num_params", "params_percent", "trainable")},
        {"col_names": ("kernel_size", "num_params"), "col_width": 12},
        {"row_settings": ("depth", "hide_recursive_layers")},
    ],
)
@pytest.mark.parametrize("build", [MnistNet, BiasFree, Reused, frozen_mnist, Recurrent])
def test_the_table_is_laid_out_as_torchinfo_lays_it_out(build, layout) -> None:
    model = build()
    size = {
        MnistNet: (1, 1, 28, 28),
        frozen_mnist: (1, 1, 28, 28),
        BiasFree: (2, 3, 16, 16),
        Reused: (1, 4, 8, 8),
        Recurrent: (1, 12),
    }[build]
    dtypes = [torch.long] if build is Recurrent else None
    theirs = torchinfo.summary(model, size, dtypes=dtypes, verbose=0, device="cpu", **layout)
    ours = cnnarch.summary(model, size, dtypes=dtypes, verbose=0, **layout)
    assert table_rows(str(ours)) == table_rows(str(theirs))


def test_mult_adds_columns_differ_only_by_biases() -> None:
    columns = {"col_names": ("output_size", "mult_adds")}
    theirs = torchinfo.summary(MnistNet(), (1, 1, 28, 28), verbose=0, device="cpu", **columns)
    ours = cnnarch.summary(MnistNet(), (1, 1, 28, 28), verbose=0, **columns)
    rows = dict(zip(table_rows(str(theirs)), table_rows(str(ours)), strict=True))
    changed = {a.split()[0]: (a.split()[-1], b.split()[-1]) for a, b in rows.items() if a != b}
    assert changed == {
        "├─Conv2d:": ("321,280", "320,000"),  # the last of each name wins; conv2 here
        "├─Linear:": ("510", "500"),
    }


def test_printing_and_the_result() -> None:
    model = MnistNet()
    quiet = cnnarch.summary(model, (1, 1, 28, 28), verbose=0)
    assert isinstance(quiet, cnnarch.Summary) and quiet.input_shapes == ((1, 1, 28, 28),)
    assert str(quiet).startswith("=" * 90) and "cnnarch" not in str(quiet)
    assert quiet.to_table() != str(quiet)  # cnnarch's own table is still there


def test_verbose_prints_like_torchinfo(capsys) -> None:
    with pytest.raises(ValueError, match="verbose must be"):
        cnnarch.summary(MnistNet(), (1, 1, 28, 28), verbose=3)
    printed = cnnarch.summary(MnistNet(), (1, 1, 28, 28), verbose=1)
    assert capsys.readouterr().out == f"{printed}\n"
    cnnarch.summary(MnistNet(), (1, 1, 28, 28), verbose=0)
    assert capsys.readouterr().out == ""


def test_batch_dim_inserts_a_batch_of_one() -> None:
    with_dim = cnnarch.summary(MnistNet(), (1, 28, 28), batch_dim=0, verbose=0)
    theirs = torchinfo.summary(MnistNet(), (1, 28, 28), batch_dim=0, verbose=0, device="cpu")
    assert with_dim.input_shapes == ((1, 1, 28, 28),)
    assert with_dim.total_macs == cnnarch.summary(MnistNet(), (1, 1, 28, 28), verbose=0).total_macs
    assert with_dim.total_params == theirs.total_params


def test_input_data_positional_keyword_and_numpy() -> None:
    model = TwoInputs()
    x, y = torch.randn(1, 30), torch.randint(0, 5, (1, 30))
    as_list = cnnarch.summary(model, input_data=[x, y], verbose=0)
    as_dict = cnnarch.summary(model, input_data={"x": x, "y": y}, verbose=0)
    as_kwargs = cnnarch.summary(model, input_data={"x": x}, y=y, verbose=0)
    as_numpy = cnnarch.summary(model, input_data=[x.numpy(), y.numpy()], verbose=0)
    macs = {s.total_macs for s in (as_list, as_dict, as_kwargs, as_numpy)}
    assert macs == {2 * 30 * 5}


def test_mode_train_traces_training_and_eval_is_the_default() -> None:
    model = BiasFree()
    assert cnnarch.summary(model, (2, 3, 16, 16), verbose=0).training is None
    trained = cnnarch.summary(model, (2, 3, 16, 16), mode="train", verbose=0)
    assert trained.training is not None and "Training step peak (MB)" in str(trained)
    assert not model.training or model.training  # the model's own flag is left alone


def test_device_cuda_needs_no_gpu() -> None:
    # Nothing runs on the device: the analysis is on meta, and a model's tensors have the same
    # sizes on every device. torchinfo would move the model there and run it.
    assert not torch.cuda.is_available()
    on_cuda = cnnarch.summary(MnistNet(), (1, 1, 28, 28), device="cuda", verbose=0)
    on_cpu = cnnarch.summary(MnistNet(), (1, 1, 28, 28), device=torch.device("cpu"), verbose=0)
    assert str(on_cuda) == str(on_cpu)
    with pytest.raises(ValueError, match="is not a torch device"):
        cnnarch.summary(MnistNet(), (1, 1, 28, 28), device="gpu0", verbose=0)


def test_no_input_lists_parameters_as_torchinfo_does() -> None:
    theirs = torchinfo.summary(MnistNet(), verbose=0)
    ours = cnnarch.summary(MnistNet(), verbose=0)
    assert ours.mode == "parameters" and ours.total_params == theirs.total_params
    assert "Total mult-adds" not in str(ours)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"input_size": (1, 1, 28, 28), "input_data": torch.zeros(1, 1, 28, 28)}, "not both"),
        ({"input_size": (1, 1, 28, 28), "col_names": ("flops",)}, "unknown column 'flops'"),
        ({"col_names": ("output_size",)}, "need input_size or input_data"),
        ({"input_size": (1, 1, 28, 28), "mode": "training"}, "mode must be"),
        ({"input_size": (1, 1, 0, 28)}, "positive integers"),
        ({"input_size": (1, 1, 28, 28), "dtypes": [torch.float32] * 2}, "one torch dtype"),
        ({"input_size": (1, 1, 28, 28), "row_settings": ("colors",)}, "unknown row setting"),
    ],
)
def test_bad_arguments_are_value_errors(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        cnnarch.summary(MnistNet(), **call, verbose=0)
