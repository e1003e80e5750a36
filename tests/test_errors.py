"""The error types: one `CnnarchError` to catch; a bad argument's value is also a `ValueError`;
a wrapped failure keeps its cause (the user's own traceback included); the CLI prints one line
whatever the message and the chain hold."""

from __future__ import annotations

import traceback

import pytest
import torch
from torch import nn

import cnnarch
from cnnarch import CnnarchError, CnnarchValueError
from cnnarch.analysis.loading import parse_size
from cnnarch.analysis.precision import parse_dtype
from cnnarch.analysis.training_modes import TrainingStep
from cnnarch.cli import main
from cnnarch.errors import describe, one_line


def test_a_bad_value_is_both_kinds() -> None:
    assert issubclass(CnnarchValueError, CnnarchError)
    assert issubclass(CnnarchValueError, ValueError)
    assert not issubclass(CnnarchError, ValueError)  # a failed forward is not a bad value


@pytest.mark.parametrize(
    "call",
    [
        lambda: cnnarch.analyze(nn.Linear(2, 2), (0,)),
        lambda: cnnarch.analyze(nn.Linear(2, 2), (2,), batch_size=0),
        lambda: cnnarch.analyze(nn.Linear(2, 2), (2,), dtype=torch.int8),
        lambda: cnnarch.analyze(nn.Linear(2, 2), (2,), device="gpu"),
        lambda: cnnarch.analyze(nn.Linear(2, 2), (2,), optimizer="adam"),
        lambda: cnnarch.analyze(nn.Linear(2, 2), (2,), inputs=torch.ones(2)),
        lambda: cnnarch.analyze(42),
        lambda: parse_size("3xax4"),
        lambda: parse_dtype("int8"),
        lambda: TrainingStep(optimizer="lbfgs"),
        lambda: TrainingStep(accumulate=0),
        lambda: cnnarch.analyze(nn.Linear(2, 2), (2,)).collapse(-1),
    ],
)
def test_bad_arguments_are_value_errors(call) -> None:
    with pytest.raises(ValueError) as raised:
        call()
    assert isinstance(raised.value, CnnarchError)


class Broken(nn.Module):
    def forward(self, x):
        return self.deep(x)

    def deep(self, x):
        raise RuntimeError("the user's own failure\nwith a second line")


def test_a_wrapped_failure_keeps_the_users_traceback() -> None:
    with pytest.raises(CnnarchError) as raised:
        cnnarch.analyze(Broken(), (3,))
    error = raised.value
    assert not isinstance(error, ValueError)  # the model failed; no argument was wrong
    assert "\n" not in str(error) and "the user's own failure" in str(error)
    cause = error.__cause__
    assert isinstance(cause, RuntimeError) and "second line" in str(cause)
    frames = [frame.name for frame in traceback.extract_tb(cause.__traceback__)]
    assert "deep" in frames  # where the user's code raised, kept for whoever debugs it


def test_describe_and_one_line() -> None:
    assert describe(RuntimeError("first\nsecond")) == "RuntimeError: first"
    long = "x" * 130 + ". And then PyTorch's internals."
    assert describe(ValueError(long)) == f"ValueError: {'x' * 130}."
    assert describe(KeyError()) == "KeyError"
    assert one_line("a\n  b\n\nc") == "a b c"


def test_the_cli_prints_one_line_for_a_chained_multiline_error(monkeypatch, capsys) -> None:
    import cnnarch.zoo_models

    def failing(model, input_size=None, *, batch_size=1, device="auto", **kwargs):
        try:
            raise OSError("disk\nfull")
        except OSError as err:
            raise CnnarchError("could not analyze:\nthe disk is full") from err

    monkeypatch.setattr(cnnarch.zoo_models, "analyze", failing)
    assert main(["summary", "resnet20"]) == 2
    err = capsys.readouterr().err
    assert err == "cnnarch: error: could not analyze: the disk is full\n"
