"""VGG16 as the lecture tabulates it, and why VGG stacks 3x3 convolutions (both computed in
`cnnarch.lecture.vgg`)."""

from __future__ import annotations

from cnnarch.lecture.claims import SMALL_FILTERS, WHERE_IT_SITS
from cnnarch.lecture.vgg import stacked_3x3_check, stacked_3x3_rows, where_it_sits
from cnnarch.report.context import Context
from cnnarch.report.document import Checks, Paragraph, Section
from cnnarch.tables import Column, Table, macs_column
from cnnarch.units import byte_size, number

SLIDES = "CS231n 2017 Lecture 9 slides"


def vgg_section(ctx: Context) -> Section:
    table = ctx.slide_table("vgg16")
    totals = table.totals()
    ctx.compare(
        "VGG16",
        "values per image in the slide's memory column (input included)",
        table.slide_total_values,
        "24M",
        SLIDES,
        table.notes[1].split(": ", 1)[-1].rstrip("."),
    )
    ctx.compare(
        "VGG16",
        "parameters",
        table.total_params,
        "138M",
        SLIDES,
        f"rounded as printed; weights alone are {number(table.weights)}",
    )
    sits = where_it_sits(table)
    ctx.key_idea(
        WHERE_IT_SITS,
        f"VGG16: the first two stages hold {sits.early_share:.0%} of the values in the layers' "
        f"outputs; the three FC layers {sits.fc_share:.0%} of the parameters.",
        table.checks,
        "vgg",
    )
    section = Section("vgg", "VGG16: the lecture's table, computed")
    section.add(
        Paragraph(
            "The slide's table and the analyzer's, line by line. The layers' outputs hold "
            f"{number(table.output_values)} values per image; the slide's memory column also "
            f"counts the input ({number(table.input_values)}), "
            f"{number(totals['slide_total_values'])} values = "
            f"{byte_size(totals['slide_total_bytes'], 'MB', 1)} in float32. "
            + " ".join(table.notes)
        ),
        table.as_table(),
        Checks(tuple(table.checks)),
        *stacked_3x3_blocks(ctx),
    )
    return section


def stacked_3x3_blocks(ctx: Context) -> list:
    channels, size = 256, 56
    rows = stacked_3x3_rows(channels, size)
    three, seven = rows
    check = stacked_3x3_check(rows)
    ctx.key_idea(
        SMALL_FILTERS,
        f"input region seen: {three['field']} by three 3x3 convs, {seven['field']} by one 7x7; "
        f"weights {three['params'] / seven['params']:.2f}×; ReLUs {three['nonlinearities']} "
        f"against {seven['nonlinearities']}.",
        [check],
        "vgg",
    )
    return [
        Paragraph(
            "Why 3x3 convolutions: three stacked 3x3 layers (stride 1) see the same 7x7 input "
            "region as one 7x7 layer, with fewer weights and two more non-linearities."
        ),
        Table(
            "vgg_3x3_vs_7x7",
            f"Why stacks of 3x3: C = {channels} channels in and out, {size}×{size} maps",
            [
                Column("stack", "layers"),
                Column("field", "receptive field"),
                Column("formula", "weights"),
                Column("params", "params"),
                macs_column("macs", "MACs", prefix="M", digits=1),
                Column("nonlinearities", "ReLUs"),
            ],
            rows,
            note="Receptive field measured by back-propagating from one output pixel; params "
            "and MACs from the analyzer.",
        ),
        Checks((check,)),
    ]
