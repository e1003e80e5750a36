"""`cnnarch summary`, through `cnnarch.cli.main`: formats, factories, errors, --style cs231n."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

import cnnarch
from cnnarch.cli import main


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    """An importable module with a good factory, a broken model and a module object."""
    (tmp_path / "userzoo.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn

            class Head(nn.Module):
                def forward(self, x):
                    raise ValueError("head needs a feature vector")

            def tiny():
                return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten())

            def broken():
                return nn.Sequential(nn.Conv2d(3, 8, 3), Head())

            def not_a_model():
                return 42

            instance = nn.Linear(4, 2)

            class Chatty(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = nn.Linear(4, 2)

                def forward(self, x):
                    print("forward called with", tuple(x.shape))
                    return self.fc(x)

            class Spin(nn.Module):
                def forward(self, x):
                    while True:
                        x = x + 0

            def chatty():
                return Chatty()

            def spin():
                return nn.Sequential(nn.Linear(4, 4), Spin())

            class Sleeps(nn.Module):
                def forward(self, x):
                    import time
                    time.sleep(1000)
                    return x

            class Waits(nn.Module):
                def forward(self, x):
                    import threading
                    threading.Event().wait()
                    return x

            def sleeps():
                return nn.Sequential(nn.Linear(4, 4), Sleeps())

            def waits():
                return nn.Sequential(nn.Linear(4, 4), Waits())

            def fails_deep():
                class Deep(nn.Module):
                    def forward(self, x):
                        raise RuntimeError("first line of a long story\\nsecond line\\nthird")
                return nn.Sequential(Deep())
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "userzoo"


@pytest.mark.slow
def test_json_has_the_documented_keys(capsys):
    assert main(["summary", "resnet20", "--format", "json", "--train", "--batch", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in (
        "model",
        "input_shape",
        "total_params",
        "trainable_params",
        "total_macs",
        "activation_elements",
        "input_elements",
        "activation_bytes",
        "param_bytes",
        "training_peak_bytes",
        "layers",
    ):
        assert key in data, key
    assert data["model"] == "resnet20" and data["input_shape"] == [2, 3, 32, 32]
    assert data["total_params"] == 269_722 and data["input_elements"] == 2 * 3 * 32 * 32
    assert data["layers"][0]["path"] == ""


def test_factory_path_table_and_depth(factory_module, capsys):
    assert main(["summary", f"{factory_module}:tiny", "--input", "3x10x10", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "0 (Conv2d)" in out and "1x8x8x8" in out
    assert f"Params: {8 * 27 + 8:,}" in out
    assert main(["summary", f"{factory_module}:instance", "--input", "4", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith(",Linear,0,")


def test_markdown(capsys):
    assert main(["summary", "resnet20", "--format", "md", "--depth", "1"]) == 0
    assert capsys.readouterr().out.startswith("| Layer (type) | Output shape |")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["resnet20", "--input", "3x32"], "expected a batch of images"),
        (["resnet20", "--input", "3xabcx32"], "malformed input size"),
        (["resnet20", "--input", "3x0x32"], "zero or negative"),
        (["resnet20", "--input", "3x-4x32"], "zero or negative"),
        (["resnet20", "--batch", "0"], "--batch-size must be at least 1"),
        (["resnet20", "--optimizer", "adam"], "--optimizer needs --train"),
        (["resnet20", "--dtype", "int8"], "unknown dtype"),
        (["vgg16", "--input", "3x32x32"], r"smallest input this model accepts is 224x224"),
        (["vgg16", "--input", "3x16x16"], r"features\.30` \(MaxPool2d\)"),
        (["nosuchpackage.models:net"], "cannot import 'nosuchpackage.models'"),
        (["resnet2O"], "unknown model 'resnet2O'"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert main(["summary", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnarch: error: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def test_bad_factories(factory_module, capsys):
    cases = [
        (f"{factory_module}:missing", "has no attribute 'missing'"),
        (f"{factory_module}:not_a_model", "returned a int, not an nn.Module"),
        (f"{factory_module}:broken", "fails in `1` (Head)"),
    ]
    for spec, message in cases:
        assert main(["summary", spec, "--input", "3x8x8"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert main(["summary", f"{factory_module}:tiny", "--input", "3x2x2"]) == 2
    err = capsys.readouterr().err
    assert "fails in `0` (Conv2d)" in err and "smallest square input that works is 3x3x3" in err


def test_prints_of_the_forward_pass_stay_out_of_json(factory_module, capsys):
    assert main(["summary", f"{factory_module}:chatty", "--input", "4", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["total_macs"] == 8
    assert "forward called with (1, 4)" in captured.err


def test_timeout_names_the_layer(factory_module, capsys):
    argv = ["summary", f"{factory_module}:spin", "--input", "4", "--timeout", "0.3"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "did not finish within 0.3 s" in err and "`1` (Spin)" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("factory", ["sleeps", "waits"])
def test_timeout_stops_a_forward_blocked_in_native_code(factory_module, factory, tmp_path):
    # time.sleep and Event().wait() run no Python bytecode: an exception raised in their
    # thread waits for them to return. The pass runs in a worker thread that is abandoned.
    argv = ["summary", f"{factory_module}:{factory}", "--input", "4", "--timeout", "2"]
    run = subprocess.run(
        [sys.executable, "-m", "cnnarch", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # where the fixture wrote the module
        timeout=120,  # before the fix: never returned
    )
    assert run.returncode == 2 and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "did not finish within 2 s" in lines[0] and "blocked in native code" in lines[0]
    assert f"`1` ({factory.capitalize()})" in lines[0]


def test_timeout_inf_is_no_limit_and_nan_is_refused(factory_module, capsys):
    assert main(["summary", f"{factory_module}:tiny", "--input", "3x4x4", "--timeout", "inf"]) == 0
    assert "Params: 224" in capsys.readouterr().out
    assert main(["summary", f"{factory_module}:tiny", "--input", "3x4x4", "--timeout", "nan"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnarch: error: --timeout must be") and len(err.splitlines()) == 1


def test_a_chained_error_with_a_long_cause_prints_one_line(factory_module, capsys):
    assert main(["summary", f"{factory_module}:fails_deep", "--input", "4"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "first line of a long story" in err
    assert "second line" not in err  # the cause's first line only; the rest stays chained


def test_no_input_for_a_factory_model_lists_parameters(factory_module, capsys):
    assert main(["summary", f"{factory_module}:instance"]) == 0
    out = capsys.readouterr().out
    assert "No forward pass ran (no input size was given)" in out and "Params: 10" in out
    assert main(["summary", f"{factory_module}:instance", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "parameters"


# --- --style cs231n: the lecture's table of any model ---------------------------------------


@pytest.mark.parametrize("fmt", ["table", "md", "csv", "json"])
def test_cs231n_style_in_every_format(fmt: str, capsys) -> None:
    assert main(["summary", "vgg16", "--style", "cs231n", "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        data = json.loads(out)
        assert data["totals"]["slide_total_values"] == 15_237_608
        assert data["totals"]["layer_output_values"] == 15_087_080
        assert [c["verdict"] for c in data["checks"]] == ["holds", "holds"]
        assert len(data["rows"]) == 22 and data["not_layers"] == ["mean()"]
    elif fmt == "csv":
        lines = out.splitlines()
        assert lines[1].split(",")[:2] == ["INPUT", "224x224x3"] and len(lines) == 23
    else:
        assert "15,237,608" in out and "24M" in out and "CONV3-64" in out


def test_cs231n_style_for_any_model(capsys) -> None:
    assert main(["summary", "resnet18", "--style", "cs231n", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = [r["layer"] for r in data["rows"]]
    assert names[:4] == ["INPUT", "CONV7-64", "POOL3", "conv2_1"] and data["checks"] == []
    summary = cnnarch.analyze("resnet18")
    assert sum(r["params"] for r in data["rows"]) == summary.total_params


@pytest.mark.parametrize("extra", [["--train"], ["--depth", "1"], ["--batch", "4"]])
def test_cs231n_style_refuses_flags_it_cannot_show(extra, capsys) -> None:
    assert main(["summary", "vgg16", "--style", "cs231n", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnarch: error: --style cs231n shows the lecture's table")
    assert len(err.strip().splitlines()) == 1
