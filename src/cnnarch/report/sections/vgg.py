"""VGG16 as the lecture tabulates it, and why VGG stacks 3x3 convolutions."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnarch.report.context import BYTES_PER_ELEMENT, Context
from cnnarch.report.document import Check, Checks, Paragraph, Section
from cnnarch.report.layers import leaf_rows, output_shape
from cnnarch.report.numbers import explain_gap, parse_printed
from cnnarch.report.tables import Column, Table
from cnnarch.units import signed_percent
from cnnarch.zoo.registry import create_model, published

SLIDE_LAYERS = ("Conv2d", "MaxPool2d", "Linear")
SLIDES = "CS231n 2017 Lecture 9 slides"


def lecture_rows(
    summary: Any, model: nn.Module, input_size: tuple[int, int, int]
) -> list[dict[str, Any]]:
    """The slide's rows (INPUT, then every conv, pool and FC) beside the computed values."""
    slide = summary_slide_rows()
    computed = [r for r in leaf_rows(summary.rows) if r.type in SLIDE_LAYERS]
    if len(computed) != len(slide) - 1:
        raise RuntimeError(f"vgg16 has {len(computed)} conv/pool/FC layers, the slide {len(slide)}")
    c, h, w = input_size
    rows = [_row(slide[0], "input", (h, w, c), summary.input_elements, 0, 0)]
    for printed, row in zip(slide[1:], computed, strict=True):
        shape = output_shape(row)
        hwc = (shape[1], shape[2], shape[0]) if len(shape) == 3 else (shape[-1],)
        weights = _weights(model, row.path)
        rows.append(_row(printed, row.path, hwc, int(row.output_elements), weights, row.params))
    return rows


def summary_slide_rows() -> list[list[Any]]:
    return published()["cs231n_lecture9_2017"]["vgg16_table"]["rows"]


def _weights(model: nn.Module, path: str) -> int:
    weight = getattr(model.get_submodule(path), "weight", None)
    return 0 if weight is None else weight.numel()


def _row(
    printed: list[Any], path: str, hwc: tuple[int, ...], elements: int, weights: int, params: int
) -> dict[str, Any]:
    label, slide_shape, slide_memory, slide_params = printed
    verdicts = {explain_gap(elements, slide_memory), explain_gap(weights, slide_params)}
    if tuple(slide_shape) != hwc:
        verdicts.add("output shape differs")
    return {
        "agreement": "; ".join(sorted(verdicts)),
        "slide": label,
        "layer": path,
        "slide_output": tuple(slide_shape),
        "output": hwc,
        "slide_memory": slide_memory,
        "memory": elements,
        "slide_params": slide_params,
        "weights": weights,
        "params": int(params),
    }


def lecture_table(rows: list[dict[str, Any]]) -> Table:
    columns = [
        Column("slide", "slide row"),
        Column("layer", "module"),
        Column("slide_output", "output, slide"),
        Column("output", "output (H×W×C)"),
        Column("slide_memory", "memory, slide"),
        Column("memory", "memory (values)"),
        Column("slide_params", "weights, slide"),
        Column("weights", "weights"),
        Column("params", "params incl. biases"),
        Column("agreement", "slide against computed"),
    ]
    return Table(
        "vgg16_lecture_table",
        "VGG16 (config D), one 224×224 image: the lecture's table beside the computed one",
        columns,
        rows,
        note="Slide values as printed in CS231n 2017 Lecture 9 (memory rounded, e.g. 3.2M for "
        "3,211,264); weights without biases, as the slide counts them.",
    )


def vgg_section(ctx: Context) -> Section:
    summary = ctx.analyze("vgg16")
    with torch.device("meta"):
        model = create_model("vgg16")
    rows = lecture_rows(summary, model, ctx.card("vgg16").input_size)
    table = lecture_table(rows)
    source = SLIDES

    total_values = sum(r["memory"] for r in rows)  # input included, as on the slide
    printed_sum = sum(parse_printed(r["slide_memory"]) for r in rows)
    weights = sum(r["weights"] for r in rows)
    params = summary.total_params
    mem = ctx.compare(
        "VGG16",
        "activation values per image (input included)",
        total_values,
        "24M",
        source,
        f"the slide's own column sums to {printed_sum / 1e6:.1f}M, not 24M; the architecture "
        f"gives {total_values / 1e6:.1f}M, so the printed total is an arithmetic slip",
    )
    ctx.compare(
        "VGG16",
        "forward memory per image (bytes)",
        total_values * BYTES_PER_ELEMENT,
        "96M",
        source,
        "follows from the 24M slip (24M × 4 bytes); the course notes print ~93MB",
    )
    ctx.compare(
        "VGG16",
        "parameters",
        params,
        "138M",
        source,
        f"rounded as printed; weights alone are {weights:,}, biases add {params - weights:,}",
    )

    section = Section("vgg", "VGG16: the lecture's table, computed")
    section.add(
        Paragraph(
            f"The slide's table and the analyzer's, row by row. Summed over the rows (input "
            f"included) the activations come to {total_values:,} values "
            f"= {total_values * BYTES_PER_ELEMENT / 1e6:.1f} MB per image in float32; the slide "
            f'prints "24M * 4 bytes ~= 96MB" ({signed_percent(mem.difference)}): its own '
            f"column sums to {printed_sum / 1e6:.1f}M, so the printed total is a slip. "
            f"Parameters: {params:,} ({weights:,} weights + {params - weights:,} biases); "
            "the slide prints 138M."
        ),
        table,
        Checks(vgg_claims(rows, summary)),
        Paragraph(
            "Why 3x3 convolutions: three stacked 3x3 layers (stride 1) see the same 7x7 input "
            "region as one 7x7 layer, with fewer weights and two more non-linearities."
        ),
        stacked_3x3_table(ctx),
    )
    return section


def vgg_claims(rows: list[dict[str, Any]], summary: Any) -> tuple[Check, ...]:
    """The slide's two observations, measured on the computed table."""
    source = "CS231n 2017 Lecture 9, VGG16 slide"
    memory_total = sum(r["memory"] for r in rows)
    # "Early" = the first two stages, at full and half resolution (conv1_x, conv2_x + pools).
    early = [r for r in rows[1:] if len(r["output"]) == 3 and r["output"][0] >= 112]
    early_memory = sum(r["memory"] for r in early)
    fc = [r for r in rows if r["slide"] == "FC"]
    fc_params = sum(r["params"] for r in fc)
    share_memory = early_memory / memory_total
    share_params = fc_params / summary.total_params
    return (
        Check(
            "Most memory is in early CONV",
            share_memory > 0.5,
            f"the first two stages ({len(early)} of {len(rows) - 1} layers, outputs 224×224 and "
            f"112×112) hold {early_memory:,} of {memory_total:,} activation values "
            f"({share_memory:.0%}).",
            source,
        ),
        Check(
            "Most params are in late FC",
            share_params > 0.5,
            f"the three FC layers hold {fc_params:,} of {summary.total_params:,} parameters "
            f"({share_params:.0%}); FC6 alone holds {fc[0]['params']:,} "
            f"({fc[0]['params'] / summary.total_params:.0%}).",
            source,
        ),
    )


# --- why 3x3: three stacked 3x3 convs against one 7x7 -------------------------------------------


def receptive_field(stack: nn.Module, size: int = 15) -> int:
    """Side of the input region that one output pixel depends on, measured by its gradient."""
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    out = stack(x)
    centre = out.shape[-1] // 2
    out[0, 0, centre, centre].backward()
    touched = (x.grad[0, 0] != 0).nonzero()
    return int(touched[:, 0].max() - touched[:, 0].min() + 1)


def stacks(channels: int) -> dict[str, nn.Module]:
    """Three 3x3 convs and one 7x7 conv, stride 1, `channels` in and out, no biases (as on
    the slide: 3 * 3^2 C^2 against 7^2 C^2 weights)."""
    three = nn.Sequential(
        *(nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(3))
    )
    seven = nn.Conv2d(channels, channels, 7, padding=3, bias=False)
    return {"three 3x3 convs": three, "one 7x7 conv": seven}


def _all_ones(module: nn.Module) -> nn.Module:
    # Weights of one let every input inside the receptive field reach the output with a
    # non-zero gradient, so the measured field is the geometric one.
    with torch.no_grad():
        for param in module.parameters():
            param.fill_(1.0)
    return module


def stacked_3x3_rows(ctx: Context, channels: int = 256, size: int = 56) -> list[dict[str, Any]]:
    with torch.device("meta"):
        counted = stacks(channels)  # analyzed only: nothing allocated
    probes = stacks(1)  # one channel on the CPU, to measure the receptive field
    rows = []
    for label, stack in counted.items():
        summary = ctx.analyze_module(f"{label}, C={channels}", stack, (channels, size, size))
        field = receptive_field(_all_ones(probes[label]))
        rows.append(
            {
                "stack": label,
                "field": f"{field}×{field}",
                "params": summary.total_params,
                "formula": "3 · 3² · C²" if label.startswith("three") else "7² · C²",
                "macs": summary.total_macs,
                "nonlinearities": 3 if label.startswith("three") else 1,
            }
        )
    return rows


def stacked_3x3_table(ctx: Context) -> Table:
    channels, size = 256, 56
    rows = stacked_3x3_rows(ctx, channels, size)
    return Table(
        "vgg_3x3_vs_7x7",
        f"Why stacks of 3x3: C = {channels} channels in and out, {size}×{size} maps",
        [
            Column("stack", "layers"),
            Column("field", "receptive field"),
            Column("formula", "weights"),
            Column("params", "params"),
            Column("macs", "MACs", unit="MACs", show_unit="M", scale=1e6, digits=1),
            Column("nonlinearities", "ReLUs"),
        ],
        rows,
        note="Receptive field measured by back-propagating from one output pixel; params and "
        "MACs from the analyzer. Same field, 27/49 of the weights and MACs, three "
        "non-linearities instead of one.",
    )
