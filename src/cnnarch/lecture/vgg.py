"""The lecture's VGG16 slide, for any network: one line per layer with its output, its memory
(values in the output, per image) and its weights; for VGG16 each line beside the slide's.

Also the slide's argument for 3x3 filters: three stacked 3x3 convolutions against one 7x7.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cnnarch.lecture.claims import (
    MEMORY_AND_PARAMS,
    SMALL_FILTERS,
    Check,
    Idea,
    claim_check,
    figure_check,
)
from cnnarch.lecture.figures import Figure, agreement, total_not_its_rows
from cnnarch.lecture.layers import BYTES_PER_VALUE, LectureLayers, lecture_layers
from cnnarch.lecture.topic import Topic
from cnnarch.report.document import Paragraph, Section, Verdicts
from cnnarch.tables import Column, Table, macs_column
from cnnarch.units import byte_size, number, parse_printed
from cnnarch.zoo.registry import published

if TYPE_CHECKING:
    from cnnarch.analysis import Summary
    from cnnarch.lecture.analyses import Analyses

SLIDE = "CS231n 2017 Lecture 9, VGG16 slide"
SLIDES = "CS231n 2017 Lecture 9 slides"


@dataclass(frozen=True)
class SlideRow:
    layer: str  # CONV3-64, POOL2, FC-4096; INPUT for the image
    output: tuple[int, ...]  # H×W×C as on the slide
    memory: int  # values in the output, one image
    weights: int  # the slide's params: weights without biases
    params: int  # every parameter of the layer
    modules: str = ""  # the modules behind the line
    slide_layer: str | None = None  # the slide's own line, for VGG16
    slide_output: tuple[int, ...] | None = None
    slide_memory: str | None = None  # as printed: '3.2M'
    slide_weights: int | None = None
    agreement: str | None = None  # the slide's line against the computed one

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SlideTable:
    """The slide's table of a model, with its totals and, for VGG16, the slide's checks."""

    model: str
    variant: str
    rows: list[SlideRow]
    layers: LectureLayers
    bytes_per_value: int
    total_params: int  # every parameter of the model
    checks: list[Check] = field(default_factory=list)  # the slide's two observations
    figures: list[Check] = field(default_factory=list)  # the slide's printed totals
    notes: list[str] = field(default_factory=list)

    @property
    def input_values(self) -> int:
        return self.rows[0].memory

    @property
    def output_values(self) -> int:
        """Values in the layers' outputs, input excluded (the report's one convention)."""
        return sum(r.memory for r in self.rows[1:])

    @property
    def slide_total_values(self) -> int:
        """What the slide sums: its memory column, INPUT line included."""
        return self.input_values + self.output_values

    @property
    def weights(self) -> int:
        return sum(r.weights for r in self.rows)

    def totals(self) -> dict[str, Any]:
        return {
            "input_values": self.input_values,
            "layer_output_values": self.output_values,
            "slide_total_values": self.slide_total_values,
            "slide_total_bytes": self.slide_total_values * self.bytes_per_value,
            "weights": self.weights,
            "params": self.total_params,
        }

    def total_lines(self) -> list[str]:
        b = self.bytes_per_value
        size = byte_size(self.slide_total_values * b, "MB", 1)
        return [
            f"TOTAL memory: {number(self.output_values)} values in the layers' outputs + "
            f"{number(self.input_values)} in the input = {number(self.slide_total_values)} values "
            f"x {b} bytes = {size} / image (forward only; "
            "the slide's total counts the input)",
            f"TOTAL params: {number(self.weights)} weights ({number(self.total_params)} with "
            "biases and all other parameters)",
        ]

    def as_table(self) -> Table:
        """The rows as a report table (text, Markdown, CSV, JSON, HTML); with the slide's own
        columns beside the computed ones when there is a slide to compare with."""
        compared = self.rows[0].slide_layer is not None
        columns = [Column("layer", "layer")]
        if compared:
            columns.append(Column("slide_output", "output, slide"))
        columns.append(Column("output", "output (H×W×C)"))
        if compared:
            columns.append(Column("slide_memory", "memory, slide"))
        columns.append(Column("memory", "memory (values)"))
        if compared:
            columns.append(Column("slide_weights", "weights, slide"))
        columns += [Column("weights", "weights"), Column("params", "params incl. biases")]
        if compared:
            columns.append(Column("agreement", "slide against computed"))
        columns.append(Column("modules", "modules"))
        return Table(
            f"{self.model}_lecture_table",
            f"{self.model} ({self.variant} variant), one image: the lecture's table"
            + (" beside the slide's" if compared else ""),
            columns,
            [r.as_dict() for r in self.rows],
            note="Memory: values in each layer's output (BN and ReLU folded into the layer "
            "before them); weights without biases, as the slide counts them."
            + (" Slide values as printed in CS231n 2017 Lecture 9." if compared else ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "variant": self.variant,
            "rows": [r.as_dict() for r in self.rows],
            "totals": self.totals(),
            "not_layers": self.layers.artifacts,
            "checks": [c.to_dict() for c in self.checks],
            "notes": self.notes,
        }


def slide_table(
    name_or_model: str | nn.Module,
    input_size: Any = None,
    *,
    variant: str = "paper",
    summary: Summary | None = None,
) -> SlideTable:
    """The slide's table of a zoo model (by name) or of any module; checked against the slide
    for the paper VGG16. `summary`, if given, is the model's forward analysis already made (the
    report passes the one it has cached)."""
    from cnnarch import analyze

    model = name_or_model
    if isinstance(model, str):
        from cnnarch.zoo import create_model

        with torch.device("meta"):
            model = create_model(model, variant=variant)
    if summary is None:
        summary = analyze(model, input_size, variant=variant)
    layers = lecture_layers(model, summary)
    batch = summary.batch_size
    per_value = summary.input_bytes // max(summary.input_elements, 1)
    c, *spatial = summary.input_shape[1:]
    rows = [SlideRow("INPUT", (*spatial, c), summary.input_elements // batch, 0, 0, "input")]
    rows += [
        SlideRow(
            layer.name,
            layer.output_hwc,
            layer.memory,
            layer.weights,
            layer.params,
            ", ".join(layer.paths),
        )
        for layer in layers.inference
    ]
    table = SlideTable(summary.model_name, variant, rows, layers, per_value, summary.total_params)
    if summary.model_name == "vgg16" and variant == "paper" and len(rows) == len(slide_rows()):
        _beside_the_slide(table)
    return table


def slide_rows() -> list[list[Any]]:
    return published()["cs231n_lecture9_2017"]["vgg16_table"]["rows"]


def _beside_the_slide(table: SlideTable) -> None:
    """Each line beside the slide's, the slide's totals and its two observations."""
    printed = slide_rows()
    agrees = []
    for i, (row, (label, shape, memory, weights)) in enumerate(
        zip(table.rows, printed, strict=True)
    ):
        found = {
            f"memory {agreement(row.memory, memory).name}": agreement(row.memory, memory),
            f"weights {agreement(row.weights, weights).name}": agreement(row.weights, weights),
        }
        same_layer = label.split("-")[0] == row.layer.split("-")[0]
        agrees.append(
            all(a.holds for a in found.values()) and same_layer and tuple(shape) == row.output
        )
        reasons = sorted(text for text, a in found.items() if a.name != "equal")
        if tuple(shape) != row.output or not same_layer:
            reasons.append("output differs")
        table.rows[i] = SlideRow(
            **{
                **row.as_dict(),
                "slide_layer": label,
                "slide_output": tuple(shape),
                "slide_memory": memory,
                "slide_weights": weights,
                "agreement": "; ".join(reasons) or "equal",
            }
        )
    table.notes = [
        f"Every line agrees with the slide's ({len(table.rows)} lines: outputs and weights "
        "exactly, memory to the slide's rounding)."
        if all(agrees)
        else "Lines that differ: "
        + ", ".join(r.layer for r, ok in zip(table.rows, agrees, strict=True) if not ok),
    ]
    table.checks = vgg_checks(table)
    total, params = slide_total_check(table), slide_params_check(table)
    table.figures = [total, params]
    assert total.cause is not None
    table.notes += [
        f"The slide's TOTAL memory, 24M: {total.evidence} Why: {total.cause.shown()}.",
        f"The slide's TOTAL params, 138M: {params.evidence}",
    ]


@dataclass(frozen=True)
class MemoryAndParams:
    """Where VGG16's memory and parameters sit: the slide's two observations in numbers
    (input excluded from the memory)."""

    early_layers: int  # layers of the first two stages (outputs 224x224 and 112x112)
    layers: int
    early_memory: int
    memory: int
    fc_params: int
    params: int
    first_fc_params: int

    @property
    def early_share(self) -> float:
        return self.early_memory / self.memory

    @property
    def fc_share(self) -> float:
        return self.fc_params / self.params


def memory_and_params(table: SlideTable) -> MemoryAndParams:
    layers = table.rows[1:]
    # "Early" = the first two stages, at full and half resolution (conv1_x, conv2_x, pools).
    early = [r for r in layers if len(r.output) == 3 and r.output[0] >= 112]
    fc = [r for r in layers if r.layer.startswith("FC")]
    return MemoryAndParams(
        len(early),
        len(layers),
        sum(r.memory for r in early),
        table.output_values,
        sum(r.params for r in fc),
        table.total_params,
        fc[0].params,
    )


def vgg_checks(table: SlideTable) -> list[Check]:
    """The slide's two observations, measured on the computed table (input excluded)."""
    sits = memory_and_params(table)
    return [
        claim_check(
            "vgg16-early-memory",
            "Most memory is in early CONV",
            sits.early_share > 0.5,
            f"the first two stages ({sits.early_layers} of {sits.layers} layers, outputs 224×224 "
            f"and 112×112) hold {number(sits.early_memory)} of the {number(sits.memory)} values "
            f"in the layers' outputs ({sits.early_share:.0%}; input excluded).",
            SLIDE,
        ),
        claim_check(
            "vgg16-late-fc-params",
            "Most params are in late FC",
            sits.fc_share > 0.5,
            f"the three FC layers hold {number(sits.fc_params)} of {number(sits.params)} "
            f"parameters ({sits.fc_share:.0%}); FC-4096 after the last pool alone holds "
            f"{number(sits.first_fc_params)} ({sits.first_fc_params / sits.params:.0%}).",
            SLIDE,
        ),
    ]


# --- why 3x3: three stacked 3x3 convs against one 7x7 -------------------------------------------


def receptive_field(stack: nn.Module, size: int = 15) -> int:
    """Side of the input region that one output pixel depends on, measured by its gradient."""
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    out = stack(x)
    center = out.shape[-1] // 2
    out[0, 0, center, center].backward()
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


def stacked_3x3_rows(channels: int = 256, size: int = 56) -> list[dict[str, Any]]:
    """Receptive field (measured), weights and MACs (analyzed) of both stacks."""
    from cnnarch.analysis import analyze

    with torch.device("meta"):
        counted = stacks(channels)  # analyzed only: nothing allocated
    probes = stacks(1)  # one channel on the CPU, to measure the receptive field
    rows = []
    for label, stack in counted.items():
        summary = analyze(stack, (channels, size, size))
        field_ = receptive_field(_all_ones(probes[label]))
        three = label.startswith("three")
        rows.append(
            {
                "stack": label,
                "field": f"{field_}×{field_}",
                "weights": summary.total_params,
                "formula": "3 · 3² · C²" if three else "7² · C²",
                "macs": summary.total_macs,
                "nonlinearities": 3 if three else 1,
            }
        )
    return rows


def stacked_3x3_check(rows: list[dict[str, Any]]) -> Check:
    three, seven = rows
    ratio = three["weights"] / seven["weights"]
    holds = three["field"] == seven["field"] and ratio < 1 and three["nonlinearities"] > 1
    return claim_check(
        "vgg-3x3-stack",
        "Stack of three 3x3 conv (stride 1) layers has same effective receptive field as one "
        "7x7 conv layer, with fewer parameters and more non-linearities",
        holds,
        f"receptive fields {three['field']} and {seven['field']} (measured by back-propagation); "
        f"weights {number(three['weights'])} against {number(seven['weights'])} ({ratio:.2f}×, = "
        f"27/49); {three['nonlinearities']} ReLUs against {seven['nonlinearities']}.",
        "CS231n 2017 Lecture 9, VGG slides",
    )


def slide_total_check(table: SlideTable) -> Check:
    """The slide's printed total memory (24M values) against its own column and the
    architecture."""
    printed = published()["cs231n_lecture9_2017"]["vgg16_table"]
    figure = Figure(
        "VGG16",
        "values per image in the slide's memory column (input included)",
        "24M",
        table.slide_total_values,
        SLIDES,
    )
    rows = [parse_printed(r.slide_memory) for r in table.rows if r.slide_memory is not None]
    return figure_check(
        "vgg16-slide-memory-total",
        f"VGG16: TOTAL memory {printed['total_memory_as_printed'].split(' [')[0]}",
        figure,
        evidence=f"{figure.summary()}; in float32 "
        f"{byte_size(table.slide_total_values * BYTES_PER_VALUE, 'MB', 1)} per image, not 96 MB.",
        cause=total_not_its_rows("24M", rows, table.slide_total_values),
    )


def slide_params_check(table: SlideTable) -> Check:
    """The slide's '138M parameters' against every parameter of VGG16."""
    figure = Figure("VGG16", "parameters", "138M", table.total_params, SLIDES)
    return figure_check(
        "vgg16-slide-params",
        "VGG16: TOTAL params 138M parameters",
        figure,
        evidence=f"{figure.summary()}: {number(table.weights)} weights + "
        f"{number(table.total_params - table.weights)} biases.",
    )


def stacked_3x3_blocks(
    rows: list[dict[str, Any]], channels: int = 256, size: int = 56
) -> tuple[list[Any], Check]:
    """Three stacked 3x3 convs against one 7x7 (`stacked_3x3_rows`): the paragraph, the table
    and its check."""
    check = stacked_3x3_check(rows)
    blocks = [
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
                Column("formula", "weights, formula"),
                Column("weights", "weights"),
                macs_column("macs", "MACs", prefix="M", digits=1),
                Column("nonlinearities", "ReLUs"),
            ],
            rows,
            note="Receptive field measured by back-propagating from one output pixel; weights "
            "(no biases, as the slide counts) and MACs from the analyzer.",
        ),
        Verdicts((check.shown(),)),
    ]
    return blocks, check


def build(analyses: Analyses) -> Topic:
    """VGG16's section: the slide's table computed, its totals and observations, and why
    VGG stacks 3x3 convolutions."""
    table = slide_table("vgg16", summary=analyses.forward("vgg16"))
    totals = table.totals()
    total, params = table.figures
    stacks = stacked_3x3_rows()
    three_by_three, stack = stacked_3x3_blocks(stacks)
    three, seven = stacks
    early, late = table.checks
    sits = memory_and_params(table)
    section = Section("vgg", "VGG16: the lecture's table, computed")
    section.add(
        Paragraph(
            "The slide's table and the analyzer's, line by line. The layers' outputs hold "
            f"{number(table.output_values)} values per image; the slide's memory column also "
            f"counts the input ({number(table.input_values)}), "
            f"{number(totals['slide_total_values'])} values = "
            f"{byte_size(totals['slide_total_bytes'], 'MB', 1)} in float32. " + table.notes[0]
        ),
        table.as_table(),
        Verdicts(tuple(c.shown() for c in (total, params, early, late))),
        *three_by_three,
    )
    ideas = (
        Idea(
            MEMORY_AND_PARAMS,
            f"VGG16: first two stages {sits.early_share:.0%} of the layers' outputs; FC layers "
            f"{sits.fc_share:.0%} of the parameters.",
            (early.id, late.id),
            "vgg",
        ),
        Idea(
            SMALL_FILTERS,
            f"three 3x3 convs see {three['field']} like one 7x7, with "
            f"{three['weights'] / seven['weights']:.2f}× its weights, "
            f"{three['nonlinearities']} ReLUs instead of {seven['nonlinearities']}.",
            (stack.id,),
            "vgg",
        ),
    )
    return Topic(section, (total, params, early, late, stack), ideas)
