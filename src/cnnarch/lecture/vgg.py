"""The lecture's VGG16 slide, for any network: one line per layer with its output, its memory
(values in the output, per image) and its weights; for VGG16 each line beside the slide's.

Also the slide's argument for 3x3 filters: three stacked 3x3 convolutions against one 7x7.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnarch.lecture.claims import Check, difference
from cnnarch.lecture.layers import LectureLayers, lecture_layers
from cnnarch.tables import Column, Table
from cnnarch.units import byte_size, explain_gap, number, parse_printed, signed_percent
from cnnarch.zoo.registry import published

SLIDE = "CS231n 2017 Lecture 9, VGG16 slide"
AGREES = ("equal", "rounded as printed")


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
    checks: list[Check] = field(default_factory=list)
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
            "checks": [{**c.__dict__, "verdict": c.verdict} for c in self.checks],
            "notes": self.notes,
        }


def slide_table(
    name_or_model: str | nn.Module,
    input_size: Any = None,
    *,
    variant: str = "paper",
    summary: Any = None,
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
    for i, (row, (label, shape, memory, weights)) in enumerate(
        zip(table.rows, printed, strict=True)
    ):
        reasons = {explain_gap(row.memory, memory), explain_gap(row.weights, weights)}
        if tuple(shape) != row.output or label.split("-")[0] != row.layer.split("-")[0]:
            reasons.add("output differs")
        agreement = "equal" if reasons == {"equal"} else "; ".join(sorted(reasons - {"equal"}))
        table.rows[i] = SlideRow(
            **{
                **row.as_dict(),
                "slide_layer": label,
                "slide_output": tuple(shape),
                "slide_memory": memory,
                "slide_weights": weights,
                "agreement": agreement,
            }
        )
    printed_sum = sum(parse_printed(r.slide_memory) for r in table.rows)
    total = table.slide_total_values
    gap = signed_percent(difference(total, 24e6))
    table.notes = [
        f"Every line equals the slide's ({len(table.rows)} lines: outputs and weights exactly, "
        "memory to the slide's rounding)."
        if all(r.agreement in AGREES for r in table.rows)
        else "Lines that differ: "
        + ", ".join(r.layer for r in table.rows if r.agreement not in AGREES),
        f"The slide prints a total of 24M values (96 MB); its own column sums to "
        f"{printed_sum / 1e6:.1f}M and the architecture gives {number(total)} ({gap}): "
        "the printed total is an arithmetic slip.",
        f"The slide's '138M parameters' agrees with {number(table.total_params)} parameters "
        f"({number(table.weights)} weights + {number(table.total_params - table.weights)} biases).",
    ]
    table.checks = vgg_checks(table)


@dataclass(frozen=True)
class WhereItSits:
    """The slide's two observations in numbers (input excluded from the memory)."""

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


def where_it_sits(table: SlideTable) -> WhereItSits:
    layers = table.rows[1:]
    # "Early" = the first two stages, at full and half resolution (conv1_x, conv2_x, pools).
    early = [r for r in layers if len(r.output) == 3 and r.output[0] >= 112]
    fc = [r for r in layers if r.layer.startswith("FC")]
    return WhereItSits(
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
    sits = where_it_sits(table)
    return [
        Check(
            "Most memory is in early CONV",
            sits.early_share > 0.5,
            f"the first two stages ({sits.early_layers} of {sits.layers} layers, outputs 224×224 "
            f"and 112×112) hold {number(sits.early_memory)} of the {number(sits.memory)} values "
            f"in the layers' outputs ({sits.early_share:.0%}; input excluded).",
            SLIDE,
        ),
        Check(
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
                "params": summary.total_params,
                "formula": "3 · 3² · C²" if three else "7² · C²",
                "macs": summary.total_macs,
                "nonlinearities": 3 if three else 1,
            }
        )
    return rows


def stacked_3x3_check(rows: list[dict[str, Any]]) -> Check:
    three, seven = rows
    ratio = three["params"] / seven["params"]
    return Check(
        "Stack of three 3x3 conv (stride 1) layers has same effective receptive field as one "
        "7x7 conv layer, with fewer parameters and more non-linearities",
        three["field"] == seven["field"] and ratio < 1 and three["nonlinearities"] > 1,
        f"receptive fields {three['field']} and {seven['field']} (measured by back-propagation); "
        f"weights {number(three['params'])} against {number(seven['params'])} ({ratio:.2f}x, = "
        f"27/49); {three['nonlinearities']} ReLUs against {seven['nonlinearities']}.",
        "CS231n 2017 Lecture 9, VGG slides",
    )
