"""Tables keep exact values in CSV/JSON and show scaled, separated values elsewhere."""

import csv
import io
import json

import pytest

from cnnarch.report.html import render_table
from cnnarch.tables import (
    MISSING,
    Column,
    Table,
    macs_column,
    megabytes_column,
    params_column,
    percent_column,
)


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


def test_printed_figures_sort_by_their_value_but_stay_as_printed() -> None:
    # GoogLeNet's Table 1 prints parameters with K = 1024; as text "1072K" < "112K" < "2.7K".
    column = Column("printed", "params, printed", k=1024)
    rows = [{"printed": "2.7K"}, {"printed": "1072K"}, {"printed": "112K"}, {"printed": None}]
    table = Table("t", "t", [column], rows)
    assert table.numeric_columns() == [True]
    assert [column.sort_value(r["printed"]) for r in rows] == [
        2.7 * 1024,
        1072 * 1024,
        112 * 1024,
        None,
    ]
    assert table.to_markdown().splitlines()[1] == "|---:|"
    assert json.loads(table.to_json())["rows"][1]["printed"] == "1072K"
    html = render_table(table)
    assert f'<td class="num" data-sort="{1072 * 1024 * 1.0!r}">1072K</td>' in html
    assert f'<td class="num">{MISSING}</td>' in html  # no value: sorts last either way
    # A column with one cell that is not a number stays text.
    words = Table("w", "w", [Column("a", "a")], [{"a": "3.2M"}, {"a": "7x7/2"}])
    assert words.numeric_columns() == [False]
    assert "data-sort" not in render_table(words)


def test_no_negative_zero_and_one_number_format() -> None:
    columns = [Column("gap", "gap", unit="%", digits=1), Column("v", "value", digits=None)]
    rows = [{"gap": -0.04, "v": 2764.8}, {"gap": -1.25, "v": 3.0}]
    assert Table("t", "t", columns, rows).cells() == [["0.0", "2,764.8"], ["-1.2", "3"]]
    difference = Column("d", "difference", unit="%", digits=1, signed=True)
    assert [difference.format(v) for v in (57.5, -1.6, -0.04, 0.0)] == [
        "+57.5",
        "-1.6",
        "0.0",
        "0.0",
    ]


def test_byte_columns_use_decimal_units_only() -> None:
    # 3,211,264 float32 values = 12,845,056 bytes = 12.8 MB (not 12.3 MiB).
    column = Column("b", "memory", unit="bytes", show_unit="MB", digits=1)
    assert column.format(12_845_056) == "12.8"
    assert column.heading() == "memory (MB)" and column.heading(stored=True) == "memory (bytes)"
    assert Column("b", "memory", unit="bytes", show_unit="GB", digits=2).format(2.5e9) == "2.50"
    with pytest.raises(ValueError, match="1 MB = 10⁶ bytes"):
        Column("b", "memory", unit="bytes", show_unit="MB", scale=2**20)
    with pytest.raises(ValueError, match="not 'MiB'"):
        Column("b", "memory", unit="bytes", show_unit="MiB")
    # Counts take their decimal prefix from the shown unit unless a scale is given.
    assert Column("m", "MACs", unit="MACs", show_unit="G", digits=2).format(1.814e9) == "1.81"


def test_a_column_may_set_its_alignment() -> None:
    # Byte sizes printed with their unit are text that reads as numbers: aligned right.
    columns = [Column("size", "size", align="right"), Column("n", "count", align="left")]
    rows = [{"size": "12.85 MB", "n": 5}, {"size": "512 B", "n": 1234}]
    table = Table("t", "t", columns, rows)
    assert table.numeric_columns() == [False, True]  # HTML still sorts by the content
    assert table.right_aligned() == [True, False]
    assert table.to_markdown().splitlines()[1] == "|---:|:---|"
    assert table.to_text().splitlines()[2:] == ["12.85 MB  5", "   512 B  1,234"]


def test_the_recurring_columns_show_their_units() -> None:
    # VGG16: 138,357,544 params, 15,470,264,320 MACs; conv1_1: 224*224*64 * 3*3*3 = 86,704,128
    # MACs and an output of 224*224*64 float32 values = 12,845,056 bytes.
    assert params_column("p", "params").format(138_357_544) == "138.36"
    assert params_column("p", "params").heading() == "params (M)"
    assert macs_column("m", "MACs").format(15_470_264_320) == "15.47"
    assert macs_column("m", "MACs", prefix="M", digits=1).format(86_704_128) == "86.7"
    assert megabytes_column("b", "memory").format(12_845_056) == "12.8"
    assert megabytes_column("b", "memory").heading(stored=True) == "memory (bytes)"
    assert percent_column("t", "top-1").format(71.592) == "71.6"
    assert percent_column("t", "top-1").heading() == "top-1 (%)"
