"""A model card's one per-layer chart: each layer's output memory on top, its parameters below
on a log axis, one column per layer as the lecture counts them.

The page shows it as inline SVG: each column shows the layer's exact values in the page's
detail box on hover, tap or keyboard focus (arrow keys move between columns), and the card's
explorer rescales the memory axis (`text.tick`) to its batch size and precision. report.md shows
the same chart drawn by matplotlib, as PNG.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from markupsafe import Markup
from matplotlib.patches import Patch
from matplotlib.ticker import LogLocator, NullLocator

from cnnarch.lecture.diagrams import KIND_COLORS, KIND_LABELS, color_kind, tooltip
from cnnarch.lecture.layers import BYTES_PER_VALUE, LectureLayer, LectureLayers
from cnnarch.report.charts import draw_chart, new_figure
from cnnarch.report.document import Chart
from cnnarch.report.markup import element, join
from cnnarch.units import MB, prefixed

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

# Sizes of the drawn chart, in its own units. One column per layer, `SLOT` wide so that a name
# turned upright fits in it, an axis wide enough for "13,153.03 MB" (VGG16's largest output at
# batch 1024), and text of `FONT` or more: shrunk until that text is 10 px, a chart of up to
# 21 layers (VGG16) fits a phone's page. A wide screen shows it up to `ZOOM` times larger.
AXIS_W, TOP, PANEL_GAP = 78, 26, 34
MEMORY_H, PARAMS_H, NAMES_H = 130, 96, 118
SLOT, MIN_WIDTH = 14, 340
FONT = 11
ZOOM = 1.35
MUTED, INK, GRID = "#59636e", "#1f2328", "#d1d9e0"


def short_name(layer: LectureLayer) -> str:
    """The name under a column: a training-only head ends with `*` (the caption says why)."""
    return layer.name.replace(" (training only)", "") + ("*" if layer.training_only else "")


def _text(x: float, y: float, text: str, **attributes: object) -> Markup:
    return element(
        "text",
        {"x": f"{x:.1f}", "y": f"{y:.1f}", "font_size": FONT, "fill": INK, **attributes},
        text,
    )


def _rule(x1: float, x2: float, y: float) -> Markup:
    return element("line", {"x1": x1, "x2": x2, "y1": f"{y:.1f}", "y2": f"{y:.1f}", "stroke": GRID})


def _decades(params: list[int]) -> tuple[int, int]:
    """The log axis' lowest and highest power of ten around the layers' nonzero parameters."""
    present = [p for p in params if p > 0] or [1]
    low = math.floor(math.log10(min(present)))
    high = max(math.ceil(math.log10(max(present))), low + 1)
    return low, high


def _legend(kinds: list[str], width: float, y: float) -> tuple[Markup, float]:
    """The colors' keys in rows that fit `width`; the markup and the height it takes."""
    parts, x, row = [], 0.0, 0
    for kind in dict.fromkeys(kinds):
        label = KIND_LABELS[kind]
        item = 22 + 7 * len(label)
        if x and x + item > width:
            x, row = 0.0, row + 1
        top = y + 20 * row
        key = {"x": x, "y": top, "width": 12, "height": 12, "fill": KIND_COLORS[kind]}
        parts.append(element("rect", key))
        parts.append(_text(x + 17, top + 10.5, label))
        x += item + 8
    return join(parts), 20.0 * (row + 1)


def profile_svg(name: str, layers: LectureLayers) -> Markup:
    """The interactive chart: one column per layer (a `g.bar` with the layer's values as its
    label and first module as `data-path`), memory bars on top with explorer-scaled ticks,
    parameter bars below on a log axis, names under the columns and the colors' legend.

    Args:
        name: the model's name.
        layers: its layers as the lecture counts them.
    """
    shown = layers.layers
    width = max(AXIS_W + SLOT * len(shown) + 8, MIN_WIDTH)
    memory_base = TOP + MEMORY_H
    params_top = memory_base + PANEL_GAP
    params_base = params_top + PARAMS_H
    largest = max(layer.memory for layer in shown) or 1
    low, high = _decades([layer.params for layer in shown])

    def params_y(value: int) -> float:
        return params_base - PARAMS_H * (math.log10(value) - low) / (high - low)

    parts = [
        _text(0, 14, "output memory", font_weight="700"),
        _text(0, params_top - 10, "parameters (log scale)", font_weight="700"),
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = memory_base - MEMORY_H * fraction
        parts.append(_rule(AXIS_W - 4, width - 4, y))
        mb = f"{fraction * largest * BYTES_PER_VALUE / MB:,.2f} MB"
        tick = {"class": "tick", "data_fraction": fraction, "text_anchor": "end", "fill": MUTED}
        parts.append(_text(AXIS_W - 8, y + 4, mb, **tick))
    step = 1 if high - low <= 4 else 2
    for power in range(low, high + 1, step):
        y = params_y(10**power)
        parts.append(_rule(AXIS_W - 4, width - 4, y))
        label = prefixed(10**power, None)
        parts.append(_text(AXIS_W - 8, y + 4, label, text_anchor="end", fill=MUTED))
    for index, layer in enumerate(shown):
        x = AXIS_W + SLOT * index
        color = KIND_COLORS[color_kind(layer)]
        memory_h = MEMORY_H * layer.memory / largest
        middle = x + SLOT / 2 + FONT / 2 - 1
        bars = [
            element(
                "rect",
                {
                    "x": x,
                    "y": TOP,
                    "width": SLOT,
                    "height": params_base + NAMES_H - TOP,
                    "fill": "transparent",
                },
            ),
            element(
                "rect",
                {
                    "x": x + 2,
                    "y": f"{memory_base - memory_h:.1f}",
                    "width": SLOT - 4,
                    "height": f"{memory_h:.1f}",
                    "fill": color,
                },
            ),
        ]
        if layer.params:
            top = params_y(layer.params)
            bars.append(
                element(
                    "rect",
                    {
                        "x": x + 2,
                        "y": f"{top:.1f}",
                        "width": SLOT - 4,
                        "height": f"{params_base - top:.1f}",
                        "fill": color,
                    },
                )
            )
        label = tooltip(layer)
        parts.append(
            element(
                "g",
                {
                    "class": "bar",
                    "data_path": layer.paths[0],
                    "data_tip": "",
                    "tabindex": -1,
                    "role": "img",
                    "aria_label": label,
                },
                element("title", None, label),
                join(bars),
                _text(
                    middle,
                    params_base + 6,
                    short_name(layer),
                    text_anchor="end",
                    transform=f"rotate(-90 {middle:.1f} {params_base + 6:.1f})",
                ),
            )
        )
    legend, legend_h = _legend(
        [color_kind(layer) for layer in shown], width, params_base + NAMES_H + 6
    )
    parts.append(legend)
    height = params_base + NAMES_H + 6 + legend_h
    title = f"{name}: output memory and parameters per {layers.level}"
    return element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {width} {height:.0f}",
            "width": f"{width * ZOOM:.0f}",
            "height": f"{height * ZOOM:.0f}",
            "font-family": "system-ui, 'DejaVu Sans', sans-serif",
            "role": "group",
            "aria_label": title,
        },
        join(parts),
    )


def profile_figure(name: str, layers: LectureLayers) -> MplFigure:
    """The same chart drawn by matplotlib (report.md's PNG); call inside `chart_style`."""
    shown = layers.layers
    fig, (top, bottom) = new_figure(height=5.6, nrows=2, sharex=True)
    x = np.arange(len(shown))
    kinds = [color_kind(layer) for layer in shown]
    colors = [KIND_COLORS[kind] for kind in kinds]
    top.bar(x, [layer.memory * BYTES_PER_VALUE / MB for layer in shown], color=colors)
    top.set_ylabel("output (MB, one image)")
    params = [layer.params for layer in shown]
    bottom.bar(x, [p if p else np.nan for p in params], color=colors)
    bottom.set_yscale("log")  # so that conv layers show beside FC layers 1000x larger
    bottom.yaxis.set_major_locator(LogLocator(base=10, numticks=12))
    bottom.yaxis.set_minor_locator(NullLocator())
    bottom.yaxis.set_major_formatter(lambda v, _pos: prefixed(v, None))
    bottom.set_ylabel("parameters (log scale)")
    bottom.set_xticks(x, [short_name(layer) for layer in shown], rotation=90, fontsize=7.5)
    for ax in (top, bottom):
        ax.grid(axis="x", visible=False)
    # The same color for each kind of layer as the diagrams.
    legend = [Patch(color=KIND_COLORS[k], label=KIND_LABELS[k]) for k in dict.fromkeys(kinds)]
    top.legend(handles=legend, loc="upper right", ncols=min(len(legend), 4))
    return fig


def profile_chart(name: str, layers: LectureLayers) -> Chart:
    """A card's per-layer chart: the interactive SVG in the page, the PNG in report.md.

    Args:
        name: the model's name.
        layers: its layers as the lecture counts them.
    """
    caption = (
        f"One column per {layers.level}, colored by its kind as in the diagrams. Memory is "
        f"shown at the explorer's batch size and precision; parameters do not depend on them. "
        "Hover, tap or focus a column for its exact values (arrow keys move between columns)."
    )
    if any(layer.training_only for layer in layers.layers):
        caption += " *: a training-only head, left out of the inference totals."
    title = f"{name}: output memory and parameters per {layers.level}"
    chart = draw_chart(f"profile_{name}", title, caption, lambda: profile_figure(name, layers))
    # The explorer writes its setting into `output.bars-setting` and rescales the ticks.
    setting = element(
        "p",
        {"class": "chart-setting"},
        "Memory at ",
        element("output", {"class": "bars-setting"}, "batch 1, float32"),
    )
    inline = join([setting, profile_svg(name, layers)])
    return Chart(chart.name, chart.title, chart.caption, chart.png, chart.svg, inline)
