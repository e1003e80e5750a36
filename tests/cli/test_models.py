"""`cnnarch models`: the zoo listed with each variant's parameter count."""

import pytest

from cnnarch.cli import main


def test_cli_lists_every_model_with_its_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "alexnet"]) == 0
    header, _rule, line = capsys.readouterr().out.strip().splitlines()
    assert header.split()[:6] == ["name", "family", "variants", "params", "input", "paper"]
    # 60,965,224 (two towers) and 61,100,840 (torchvision) parameters.
    assert line.split()[:5] == [
        "alexnet",
        "alexnet",
        "paper/torchvision",
        "60.97M/61.10M",
        "3x227x227",
    ]
    assert "Krizhevsky" in line
    assert main(["models", "nothing*"]) == 2
    assert "no model matches" in capsys.readouterr().err
