"""`cnnarch models`: the zoo listed with each variant's parameter count."""

import csv
import io
import json
import re

import pytest
import torch

import cnnarch
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


def test_every_format_parses_and_holds_the_same_models(capsys) -> None:
    # JSON once ended in "Object of type Paper is not JSON serializable".
    outputs = {}
    for fmt in ("table", "md", "csv", "json"):
        assert main(["models", "resnet5?", "--format", fmt]) == 0
        outputs[fmt] = capsys.readouterr().out
    document = json.loads(outputs["json"])
    rows = {row["name"]: row for row in document["rows"]}
    assert list(rows) == ["resnet50", "resnet56"]
    assert rows["resnet50"]["params_torchvision"] == 25_557_032
    assert rows["resnet56"]["params_torchvision"] is None  # the CIFAR net is the paper's only
    assert rows["resnet50"]["paper"].startswith("He, Zhang, Ren, Sun (2015), 'Deep Residual")
    csv_rows = list(csv.DictReader(io.StringIO(outputs["csv"])))
    assert [r["name"] for r in csv_rows] == list(rows)
    assert csv_rows[0]["paper"] == rows["resnet50"]["paper"]
    header, rule, *lines = outputs["md"].strip().splitlines()
    assert header.startswith("| name | family |") and set(rule) <= set("|-: ")
    assert [line.split("|")[1].strip() for line in lines] == list(rows)
    text_lines = outputs["table"].strip().splitlines()
    assert [line.split()[0] for line in text_lines[2:]] == list(rows)
    assert "25.56" in text_lines[2]


NEW_MODELS = ["nin", "inception_v4", "inception_resnet_v1", "inception_resnet_v2"]
NEW_MODELS += ["bn_alexnet", "bn_nin", "enet"]


def test_the_chart_networks_are_listed_with_their_variants(capsys) -> None:
    assert main(["models", "--format", "json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["rows"]}
    assert set(NEW_MODELS) <= set(rows)
    assert rows["inception_resnet_v2"]["variants"] == "paper/timm"
    assert rows["inception_resnet_v2"]["params_timm"] == 55_843_464
    assert rows["inception_resnet_v2"]["params_paper"] == 32_433_928
    assert rows["enet"]["paper"].startswith("Paszke, Chaurasia, Kim, Culurciello (2016)")
    assert rows["bn_nin"]["family"] == "nin" and rows["bn_nin"]["params_timm"] is None


@pytest.mark.parametrize("name", NEW_MODELS)
def test_summary_of_each_new_model(name: str, capsys) -> None:
    assert main(["summary", name, "--format", "json", "--depth", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    with torch.device("meta"):
        model = cnnarch.create_model(name)
    assert summary["total_params"] == sum(p.numel() for p in model.parameters())
    side = 299 if name.startswith("inception") else 224
    assert summary["input_shape"] == [1, 3, side, side]
    assert summary["total_macs"] > 0
