"""Every command in every `--format` it offers, its output parsed: JSON loads, CSV has the
header of the JSON's rows, Markdown holds a table, a terminal table has its header and rule.
The formats of one command must tell the same story: the same rows, the same totals.

The commands and formats come from the parser itself, so a format added to a command is run
here (it needs an invocation in `INVOCATIONS`). Small models, in this process."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cnnarch.cli import build_parser, main
from cnnarch.zoo import list_models
from train.train_helpers import write_tiny_fashion

# conv 3 -> 4 (3x3) on 3x8x8 -> 4x6x6, ReLU, 2x2 max pool -> 4x3x3, flatten, linear 36 -> 2.
# Parameters: 3*4*9 + 4 = 112 and 36*2 + 2 = 74, so 186. MACs: 108 per output position of the
# conv, 36 positions: 3,888; the linear layer 72; 3,960 in all.
TINY_FACTORY = (
    "from torch import nn\n"
    "def build():\n"
    "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),"
    " nn.Linear(36, 2))\n"
)
TINY = ["formats_tiny:build", "--input", "3x8x8"]
TINY_PARAMS, TINY_MACS = 186, 3960
MODELS_PATTERN = "resnet1*"


def invocations(tmp_path: Path) -> dict[str, list[str]]:
    """One small run of each command that offers `--format` (or may offer it soon)."""
    data = write_tiny_fashion(tmp_path / "data", n_train=32, n_test=10)
    tiny_run = ["--data-dir", str(data), "--epochs", "1", "--batch-size", "16"]
    return {
        "models": ["models", MODELS_PATTERN],
        "rules": ["rules", "conv*"],
        "summary": ["summary", *TINY],
        "plan": ["plan", *TINY, "--memory", "2GB"],
        "diagram": ["diagram", *TINY],
        "report": ["report", "--models", "alexnet", "--out", str(tmp_path / "report")],
        "train": ["train", "resnet20", *tiny_run, "--out", str(tmp_path / "run"), "--no-progress"],
        "experiment degradation": [
            "experiment",
            "degradation",
            "--depths",
            "8,14",
            "--seeds",
            "1",
            *tiny_run[:4],
            "--out",
            str(tmp_path / "degradation"),
        ],
    }


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(command name, its parser) for every command and sub-command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = f"{prefix} {name}".strip()
                yield full, sub
                yield from _commands(sub, full)


def offered_formats() -> list[tuple[str, str]]:
    """(command, format) for every `--format` choice of every command."""
    pairs = []
    for name, sub in _commands(build_parser()):
        for action in sub._actions:
            if "--format" in action.option_strings:
                pairs += [(name, fmt) for fmt in action.choices]
    return pairs


# Commands that train or build a report take seconds; the rest run in well under one.
SLOW_COMMANDS = {"report", "train", "experiment degradation"}
CASES = [
    pytest.param(command, fmt, marks=[pytest.mark.slow] if command in SLOW_COMMANDS else [])
    for command, fmt in offered_formats()
]


@pytest.fixture
def tiny_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The tiny model as `formats_tiny:build`, importable from the current folder."""
    (tmp_path / "formats_tiny.py").write_text(TINY_FACTORY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "formats_tiny", raising=False)
    yield tmp_path
    sys.modules.pop("formats_tiny", None)


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """`cnnarch ARGV` in this process; its stdout, once it exited with status 0."""
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 0, (argv, captured.err)
    assert captured.out.strip(), argv
    return captured.out


# -- parsers: each fails on output that is not what its format promises -------------------------


def parse_csv(text: str) -> tuple[list[str], list[list[str]]]:
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert all(len(row) == len(header) for row in rows), "ragged CSV"
    return header, rows


MARKDOWN_RULE = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")


def parse_markdown(text: str) -> tuple[list[str], list[list[str]]]:
    """The first Markdown table: its header cells and rows."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if MARKDOWN_RULE.match(line))
    head = lines[at - 1]
    body = []
    for line in lines[at + 1 :]:
        if not line.startswith("|"):
            break
        body.append(line)

    def cells(line: str) -> list[str]:
        return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]

    header = cells(head)
    assert lines[at].count("|") == head.count("|") - head.count("\\|"), "rule and header differ"
    rows = [cells(line) for line in body]
    assert rows and all(len(row) == len(header) for row in rows), "ragged Markdown table"
    return header, rows


TEXT_RULE = re.compile(r"-+(  -+)*")


def parse_text_table(text: str) -> tuple[str, list[str]]:
    """A terminal table: a header line over a rule of dashes (one, or one per column); the
    lines below."""
    lines = text.splitlines()
    at = next(
        i
        for i, line in enumerate(lines)
        if i
        and TEXT_RULE.fullmatch(line)
        and lines[i - 1].strip()
        and not TEXT_RULE.fullmatch(lines[i - 1])
    )
    return lines[at - 1], lines[at + 1 :]


# -- what each command's formats must agree on ---------------------------------------------------


def check_models(fmt: str, out: str) -> None:
    names = list_models(MODELS_PATTERN)
    if fmt == "json":
        assert [row["name"] for row in json.loads(out)["rows"]] == names
    elif fmt == "csv":
        header, rows = parse_csv(out)
        assert header[:3] == ["name", "family", "variants"] and header[-2:] == ["input", "paper"]
        assert [row[0] for row in rows] == names
        resnet18 = dict(zip(header, rows[names.index("resnet18")], strict=True))
        assert resnet18["params, paper (params)"] == "11689512"  # exact in CSV
    elif fmt == "md":
        assert [row[0] for row in parse_markdown(out)[1]] == names
    else:
        _, rows = parse_text_table(out)
        assert [row.split()[0] for row in rows] == names


def check_rules(fmt: str, out: str) -> None:
    if fmt == "json":
        document = json.loads(out)
        assert [c["key"] for c in document["columns"]] == ["ops", "macs", "flops"]
        (row,) = document["rows"]
        assert row["ops"] == "convolution"
    elif fmt == "csv":
        header, rows = parse_csv(out)
        assert header == ["aten ops", "MACs", "FLOPs"] and [r[0] for r in rows] == ["convolution"]
    elif fmt == "md":
        header, rows = parse_markdown(out)
        assert header == ["aten ops", "MACs", "FLOPs"] and rows[0][0] == "convolution"
    else:
        header, rows = parse_text_table(out)
        assert header.split()[:2] == ["aten", "ops"] and rows[0].startswith("convolution")


def check_summary(fmt: str, out: str) -> None:
    if fmt == "json":
        summary = json.loads(out)
        assert (summary["total_params"], summary["total_macs"]) == (TINY_PARAMS, TINY_MACS)
        layers = summary["layers"]
        assert [row["type"] for row in layers] == [
            "Sequential", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear",
        ]  # fmt: skip
    elif fmt == "csv":
        header, rows = parse_csv(out)
        model = dict(zip(header, rows[0], strict=True))
        assert (model["type"], model["params"], model["macs"]) == (
            "Sequential", str(TINY_PARAMS), str(TINY_MACS),
        )  # fmt: skip
        conv = dict(zip(header, rows[1], strict=True))
        assert (conv["output_shapes"], conv["macs"]) == ("1x4x6x6", "3888")
    elif fmt == "md":
        _, rows = parse_markdown(out)
        assert any(cell == "186" for row in rows for cell in row)
    else:
        parse_text_table(out)
        assert "186" in out


def check_plan(fmt: str, out: str) -> None:
    if fmt == "json":
        plan = json.loads(out)
        assert plan["searched"] and plan["fits"]  # the largest batch that fits
        assert plan["total_bytes"] <= plan["memory_bytes"] == 2_000_000_000
    else:
        assert re.search(r"^Largest batch that fits: \d+$", out, re.MULTILINE), out


def check_diagram(fmt: str, out: str) -> None:
    svg = json.loads(out)["svg"] if fmt == "json" else out
    root = ET.fromstring(svg)
    kinds = [g.get("data-kind") for g in root.iter("{http://www.w3.org/2000/svg}g")]
    assert [k for k in kinds if k] == ["conv", "pool", "fc"]
    if fmt == "json":
        described = json.loads(out)
        assert described["file"] is None and described["bytes"] == len(svg.encode())


def check_parses(fmt: str, out: str) -> None:
    """A command whose formats this file knows no more about: each parses."""
    if fmt == "json":
        json.loads(out)
    elif fmt == "csv":
        parse_csv(out)
    elif fmt == "md":
        parse_markdown(out)


CHECKS: dict[str, Callable[[str, str], None]] = {
    "models": check_models,
    "rules": check_rules,
    "summary": check_summary,
    "plan": check_plan,
    "diagram": check_diagram,
}


def test_every_command_with_formats_has_a_run_here(tmp_path: Path) -> None:
    offered = {command for command, _ in offered_formats()}
    assert set(CHECKS) <= offered
    assert offered <= set(invocations(tmp_path)), "add the command to invocations()"


@pytest.mark.parametrize("command", ["models", "rules", "summary"])
def test_csv_columns_are_the_json_fields(
    command: str, tiny_factory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = invocations(tiny_factory)[command]
    header, rows = parse_csv(run(capsys, [*argv, "--format", "csv"]))
    document = json.loads(run(capsys, [*argv, "--format", "json"]))
    if command == "summary":  # every field of every row
        assert [list(row) for row in document["layers"]] == [header] * len(rows)
    else:  # a table: one CSV column per JSON column, headed by its label (and unit)
        labels = [c["label"] for c in document["columns"]]
        assert [
            h.removesuffix(f" ({c['unit']})")
            for h, c in zip(header, document["columns"], strict=True)
        ] == labels
        assert len(rows) == len(document["rows"])


@pytest.mark.parametrize(("command", "fmt"), CASES)
def test_every_command_in_every_format(
    command: str, fmt: str, tiny_factory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = invocations(tiny_factory)[command]
    out = run(capsys, [*argv, "--format", fmt])
    CHECKS.get(command, check_parses)(fmt, out)


@pytest.mark.parametrize("fmt", [fmt for command, fmt in offered_formats() if command == "summary"])
def test_the_lecture_table_in_every_format(
    fmt: str, tiny_factory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(capsys, ["summary", *TINY, "--style", "cs231n", "--format", fmt])
    # The slide's lines: the input, the conv (4 filters of 3x3x3: 108 weights), the pool, the
    # linear layer (72 weights).
    layers = ["INPUT", "CONV3-4", "POOL2", "FC-2"]
    if fmt == "json":
        table = json.loads(out)
        assert [row["layer"] for row in table["rows"]] == layers
        assert [row["weights"] for row in table["rows"]] == [0, 108, 0, 72]
    elif fmt == "csv":
        header, rows = parse_csv(out)
        assert header[0] == "layer" and [row[0] for row in rows] == layers
    elif fmt == "md":
        assert [row[0] for row in parse_markdown(out)[1]] == layers
    else:
        _, rows = parse_text_table(out)
        assert [row.split()[0] for row in rows[:4]] == layers


def test_a_diagram_written_to_a_file_is_described_in_json(
    tiny_factory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tiny_factory / "tiny.svg"
    described = json.loads(run(capsys, ["diagram", *TINY, "--out", str(out), "--format", "json"]))
    assert described["file"] == str(out) and "svg" not in described
    assert described["bytes"] == out.stat().st_size > 0
    assert (described["block"], described["view"]) == (None, "layers")
