"""Tables keep exact values in CSV/JSON and show scaled, separated values elsewhere."""

import csv
import io
import json

from cnnarch.report.tables import MISSING, Column, Table


def vgg_like_table() -> Table:
    # conv1_1 of VGG16 on 224x224x3: 64 filters of 3x3x3 weights + 64 biases = 1,792 params;
    # its output is 224*224*64 = 3,211,264 elements = 12,845,056 bytes in float32.
    columns = [
        Column("layer", "layer"),
        Column("output", "output"),
        Column("params", "params"),
        Column("bytes", "memory", unit="bytes", show_unit="MB", scale=1e6, digits=1),
        Column("published", "slide"),
    ]
    rows = [
        {"layer": "conv1_1", "output": (64, 224, 224), "params": 1792, "bytes": 12_845_056},
        {"layer": "fc8", "output": (1000,), "params": 4_097_000, "bytes": 4000, "published": None},
    ]
    return Table("vgg", "VGG16 | two layers", columns, rows, note="from the architecture")


def test_markdown_shows_separators_units_and_alignment() -> None:
    text = vgg_like_table().to_markdown()
    lines = text.splitlines()
    assert lines[0] == "| layer | output | params | memory (MB) | slide |"
    assert lines[1] == "|:---|:---|---:|---:|:---|"
    assert lines[2] == f"| conv1_1 | 64×224×224 | 1,792 | 12.8 | {MISSING} |"
    assert lines[3] == f"| fc8 | 1000 | 4,097,000 | 0.0 | {MISSING} |"


def test_csv_and_json_keep_exact_values_in_the_stored_unit() -> None:
    table = vgg_like_table()
    rows = list(csv.reader(io.StringIO(table.to_csv())))
    assert rows[0] == ["layer", "output", "params", "memory (bytes)", "slide"]
    assert rows[1] == ["conv1_1", "64x224x224", "1792", "12845056", ""]
    document = json.loads(table.to_json())
    assert document["columns"][3] == {"key": "bytes", "label": "memory", "unit": "bytes"}
    assert document["rows"][0]["bytes"] == 12_845_056
    assert document["rows"][0]["output"] == [64, 224, 224]
    assert document["rows"][1]["published"] is None
    assert document["title"] == "VGG16 | two layers"


def test_terminal_text_right_aligns_numbers() -> None:
    lines = vgg_like_table().to_text().splitlines()
    assert lines[0].startswith("layer    output")
    width = len("4,097,000")
    params_end = lines[0].index("params") + len("params")
    # Both numbers end in the same column as their (right-aligned) heading.
    assert params_end == lines[0].index("params") + 6
    assert lines[2][params_end - width : params_end] == "    1,792"
    assert lines[3][params_end - width : params_end] == "4,097,000"


def test_markdown_escapes_pipes_in_cells() -> None:
    table = Table("t", "t", [Column("a", "a")], [{"a": "x|y"}])
    assert "x\\|y" in table.to_markdown()
