"""`cnnarch models`: the zoo listed with each variant's parameter count."""

import csv
import io
import re

import pytest

from cnnarch.cli import main


def test_cli_lists_every_model_with_its_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "alexnet"]) == 0
    header, _rule, line = capsys.readouterr().out.strip().splitlines()
    assert re.split(r"\s{2,}", header)[:5] == [
        "name",
        "family",
        "variants",
        "params, paper (M)",
        "params, torchvision (M)",
    ]
    # 60,965,224 (two towers) and 61,100,840 (torchvision) parameters.
    assert line.split()[:6] == [
        "alexnet",
        "alexnet",
        "paper/torchvision",
        "60.97",
        "61.10",
        "3x227x227",
    ]
    assert "Krizhevsky" in line
    assert main(["models", "nothing*"]) == 2
    assert "no model matches" in capsys.readouterr().err


def test_csv_has_the_exact_counts_and_nothing_for_a_missing_variant(capsys) -> None:
    assert main(["models", "[az][lf]*", "--format", "csv"]) == 0  # alexnet, zfnet
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows["alexnet"]["params, paper (params)"] == "60965224"
    assert rows["alexnet"]["params, torchvision (params)"] == "61100840"
    assert rows["zfnet"]["params, torchvision (params)"] == ""  # ZFNet: the paper's only
    assert rows["zfnet"]["variants"] == "paper"
