"""`cnnarch rules`: the counting rules in words, and a reader that goes away mid-output."""

import csv
import io
import subprocess
import sys

import pytest

from cnnarch.analysis.rules import RULES
from cnnarch.cli import main

POOLING_OPS = {
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
    "max_pool2d",
    "max_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "avg_pool1d",
    "_adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "_adaptive_avg_pool3d",
}


def rules_csv(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, str]]:
    assert main(["rules", *argv, "--format", "csv"]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_every_rule_is_listed_with_all_its_ops_and_its_words(capsys) -> None:
    rows = rules_csv(capsys)
    assert len(rows) == len(RULES)
    conv = rows[0]
    assert conv["aten ops"] == "convolution, _convolution"
    assert conv["MACs"].startswith("output elements x C_in/groups x kernel area")
    assert conv["FLOPs"] == "2 x MACs, + 1 per output element with bias"
    listed = {op for row in rows for op in row["aten ops"].split(", ")}
    assert {"mm", "addmm", "relu_", "cat", "_softmax"} <= listed


def test_a_pattern_gives_one_row_per_matching_op(capsys) -> None:
    rows = rules_csv(capsys, "*pool*")
    assert {row["aten ops"] for row in rows} == POOLING_OPS
    assert {row["MACs"] for row in rows} == {"0"}  # pooling has no multiply-accumulates
    [mm] = rules_csv(capsys, "mm")
    assert (mm["MACs"], mm["FLOPs"]) == ("m x k x n per matrix product", "2 x MACs")


def test_the_terminal_table_wraps_and_shortens_the_long_groups(capsys) -> None:
    assert main(["rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 140
    elementwise = next(r for r in RULES if "relu" in r.ops)
    assert any(f"... ({len(elementwise.ops)} ops)" in line for line in lines)


def test_an_unknown_op_is_one_clear_error(capsys) -> None:
    assert main(["rules", "no_such_op*"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnarch: error: no op matches 'no_such_op*'")


@pytest.mark.slow
def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    # ResNet-50's summary as JSON is larger than a pipe's buffer: the writer meets the closed
    # pipe while printing, as `cnnarch summary resnet50 --format json | head` would.
    command = [sys.executable, "-m", "cnnarch", "summary", "resnet50", "--format", "json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().strip() == b"{"
    process.stdout.close()
    assert process.wait(timeout=120) == 141  # 128 + SIGPIPE, as a shell reports it
    assert process.stderr.read() == b""
