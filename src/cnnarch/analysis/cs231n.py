"""The lecture's view of a network (CS231n 2017, Lecture 9, the VGG16 slide): one line per
CONV, POOL and FC layer with its output volume, its memory in activations per image and its
parameters counted as weights only, then the totals; checked against the slide where it has
printed a table for the model."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnarch.analysis.analyzer import analyze
from cnnarch.analysis.summary import Summary

_CONV, _POOL, _FC = (nn.Conv1d, nn.Conv2d, nn.Conv3d), "Pool", nn.Linear


@dataclass(frozen=True)
class SlideRow:
    layer: str
    output: tuple[int, ...]  # per image, channels last as on the slide
    memory: int  # activations per image
    params: int  # weights only


def _label(module: nn.Module) -> str | None:
    if isinstance(module, _CONV):
        return f"CONV{module.kernel_size[0]}-{module.out_channels}"
    if isinstance(module, _FC):
        return "FC"
    if _POOL in type(module).__name__:
        kernel = getattr(module, "kernel_size", None)
        kernel = kernel[0] if isinstance(kernel, tuple) else kernel
        return f"POOL{kernel}" if kernel else "POOL"
    return None


def _per_image(shape: tuple[int, ...], module: nn.Module) -> tuple[int, ...]:
    if isinstance(module, _FC):
        return (shape[-1],)
    return (*shape[2:], shape[1]) if len(shape) > 2 else tuple(shape[1:])


def slide_rows(model: nn.Module, summary: Summary) -> list[SlideRow]:
    """The INPUT row, then every CONV, POOL and FC call in order. A pooling layer that leaves
    its input's shape unchanged (an adaptive pool at the size it expects) is not a layer of
    the slide and is left out."""
    batch = summary.batch_size
    channels, *spatial = summary.input_shape[1:]
    rows = [SlideRow("INPUT", (*spatial, channels), summary.input_elements // batch, 0)]
    for row in summary.rows:
        if row.kind != "module" or not row.is_leaf:
            continue
        module = model.get_submodule(row.path)
        label = _label(module)
        if label is None or (label.startswith("POOL") and row.input_shapes == row.output_shapes):
            continue
        weight = getattr(module, "weight", None)
        params = weight.numel() if isinstance(weight, nn.Parameter) else 0
        out = row.output_shapes[0]
        rows.append(SlideRow(label, _per_image(out, module), math.prod(out) // batch, params))
    return rows


def _printed_number(text: str) -> tuple[float, int] | None:
    """'3.2M' -> (3200000, 2 significant digits); '4096' -> (4096, 4)."""
    match = re.match(r"^\s*([\d.]+)\s*([KM]?)", text)
    if not match:
        return None
    mantissa, unit = match.groups()
    digits = mantissa.replace(".", "").lstrip("0").rstrip("0") or "0"
    scale = {"": 1, "K": 1e3, "M": 1e6}[unit]
    return float(mantissa) * scale, len(digits)


def _agrees(exact: int, printed: str) -> bool:
    parsed = _printed_number(printed)
    if parsed is None:
        return False
    value, significant = parsed
    if exact == 0:
        return value == 0
    rounded = round(exact, significant - 1 - math.floor(math.log10(abs(exact))))
    return math.isclose(rounded, value)


def _fmt_volume(shape: tuple[int, ...]) -> str:
    return "[" + "x".join(str(d) for d in shape) + "]"


def cs231n_table(
    model_or_name: nn.Module | str, input_size: Any = None, *, variant: str = "paper"
) -> str:
    """The slide's table for any network; for vgg16, compared with the slide's own figures."""
    model = model_or_name
    if isinstance(model, str):
        from cnnarch.zoo import create_model

        with torch.device("meta"):
            model = create_model(model, variant=variant)
    summary = analyze(model, input_size)  # defaults to the zoo card's input size
    rows = slide_rows(model, summary)
    lines = [f"{'':12s}{'output':>16s}  {'memory':>11s}  {'params (weights)':>16s}"]
    for row in rows:
        lines.append(
            f"{row.layer:12s}{_fmt_volume(row.output):>16s}  {row.memory:>11,}  {row.params:>16,}"
        )
    memory = sum(r.memory for r in rows)
    params = sum(r.params for r in rows)
    element = summary.input_bytes // max(summary.input_elements, 1)
    lines.append(
        f"TOTAL memory: {memory:,} activations x {element} bytes = "
        f"{memory * element / 1e6:.2f} MB / image (forward only, input included)"
    )
    lines.append(
        f"TOTAL params: {params:,} weights ({summary.total_params:,} with biases and all other "
        "parameters)"
    )
    if summary.model_name == "vgg16" and variant == "paper":
        lines += _compare_with_slide(rows, memory, params)
    return "\n".join(lines)


def _compare_with_slide(rows: list[SlideRow], memory: int, params: int) -> list[str]:
    from cnnarch.zoo.registry import published

    table = published()["cs231n_lecture9_2017"]["vgg16_table"]
    printed_rows = table["rows"]
    lines = []
    mismatches = [
        f"{mine.layer} (row {i + 1})"
        for i, (mine, (layer, volume, mem, weights)) in enumerate(
            zip(rows, printed_rows, strict=False)
        )
        if mine.layer.split("-")[0] != layer.split("-")[0]
        or list(mine.output) != list(volume)
        or not _agrees(mine.memory, mem)
        or mine.params != weights
    ]
    if len(rows) != len(printed_rows) or mismatches:
        lines.append(f"Differs from the slide's rows: {', '.join(mismatches) or 'row count'}")
    else:
        lines.append(
            f"All {len(rows)} rows equal the slide's (outputs and weights exactly, memory to "
            "the slide's rounding)."
        )
    printed_memory = table["total_memory_as_printed"]
    slide_total = _printed_number(printed_memory)
    if slide_total is not None and not _agrees(memory, printed_memory):
        lines.append(
            f"Note: the slide prints a memory total of {printed_memory.split('(')[0].strip()}, "
            f"but its own rows add up to {memory:,} activations "
            f"({memory * 4 / 1e6:.2f} MB at 4 bytes)."
        )
    printed_params = table["total_params_as_printed"]
    if _agrees(params, printed_params):
        lines.append(f"The slide's '{printed_params}' agrees with {params:,} weights.")
    else:
        lines.append(
            f"Note: the slide prints '{printed_params}', but its rows add up to {params:,}."
        )
    return lines
