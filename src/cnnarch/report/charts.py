"""One chart style for every chart, and a figure as a `Chart` block (its PNG and SVG bytes).

Matplotlib runs on the Agg backend (no display needed). Figures are `matplotlib.figure.Figure`
objects, not tracked by pyplot, so nothing leaks; nothing is written here (the files are
written with the rest of the document).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from cnnarch.report.document import Chart

# Color-blind-safe palette (Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
WIDTH_IN = 8.0  # fits a laptop-width page at 100 dpi without scaling text below ~9 px
DPI = 120

STYLE = {
    "figure.figsize": (WIDTH_IN, 4.5),
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.facecolor": "white",
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "svg.fonttype": "none",  # text stays text in the SVG: smaller, searchable
    "svg.hashsalt": "cnnarch",  # stable ids, so unchanged charts give identical files
}


@contextmanager
def chart_style() -> Iterator[None]:
    with matplotlib.rc_context(STYLE):
        yield


def new_figure(
    height: float = 4.5, nrows: int = 1, ncols: int = 1, **subplot_kw: Any
) -> tuple[Figure, list[Axes]]:
    """A figure of the report's width with its axes as a flat list; call inside `chart_style`."""
    fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, list(axes.flat)


def figure_bytes(fig: Figure, dpi: float | None = None) -> dict[str, bytes]:
    """`fig` as {"png": bytes, "svg": bytes}, the PNG at `dpi` (None: the style's); the same
    figure gives the same bytes every time (no date in the SVG, stable ids)."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=dpi or DPI)
    # The layout is settled by the first save; solving it again for the SVG changes nothing.
    fig.set_layout_engine("none")
    svg = io.BytesIO()
    fig.savefig(svg, format="svg", metadata={"Date": None})
    return {"png": png.getvalue(), "svg": svg.getvalue()}


def draw_chart(name: str, title: str, caption: str, draw: Callable[[], Figure]) -> Chart:
    """A `Chart` of the figure `draw()` makes in the report's style.

    Args:
        name: the files' stem (`figures/<name>.png` and `.svg`).
        title: the chart's title, shown in bold before its caption.
        caption: what the chart shows.
        draw: makes the figure (called inside `chart_style`).
    """
    with chart_style():
        drawn = figure_bytes(draw())
    return Chart(name, title, caption, drawn["png"], drawn["svg"])


def label_points(
    ax: Axes,
    xs: Sequence[float],
    ys: Sequence[float],
    labels: Sequence[str],
    sizes: Sequence[float] | None = None,
    fontsize: float = 8.5,
) -> None:
    """Name each point beside its marker, choosing for each label the first of a few places
    around the marker where it overlaps neither a marker nor a label already placed.

    Call after the axis limits are final (positions are computed in display space). `sizes` are
    the markers' areas in points^2, as given to `scatter`.
    """
    fig = ax.figure
    px_per_pt = fig.dpi / 72.0
    # `scatter`'s size is the square of the marker's diameter in points.
    radii = [0.5 * float(np.sqrt(s)) for s in (sizes or [36.0] * len(xs))]
    centers = ax.transData.transform(np.column_stack([xs, ys]))
    frame = ax.transAxes.transform([(0.0, 0.0), (1.0, 1.0)]).ravel()  # x0, y0, x1, y1
    obstacles = [
        _box(cx - r * px_per_pt, cy - r * px_per_pt, 2 * r * px_per_pt, 2 * r * px_per_pt)
        for (cx, cy), r in zip(centers, radii, strict=True)
    ]
    for (cx, cy), radius, label in zip(centers, radii, labels, strict=True):
        width = 0.6 * fontsize * len(label) * px_per_pt
        height = fontsize * 1.2 * px_per_pt
        gap = (radius + 2) * px_per_pt
        candidates = [  # (dx, dy) of the label's lower-left corner from the center, in pixels
            (gap, -height / 2),
            (gap * 0.7, gap * 0.7),
            (gap * 0.7, -gap * 0.7 - height),
            (-gap - width, -height / 2),
            (-width / 2, gap),
            (-width / 2, -gap - height),
            (-gap * 0.7 - width, gap * 0.7),
            (-gap * 0.7 - width, -gap * 0.7 - height),
        ]
        chosen = candidates[0]
        for dx, dy in candidates:
            box = _box(cx + dx, cy + dy, width, height)
            inside = frame[0] <= box[0] and box[2] <= frame[2] and frame[1] <= box[1]
            if inside and not any(_overlaps(box, other) for other in obstacles):
                chosen = (dx, dy)
                break
        box = _box(cx + chosen[0], cy + chosen[1], width, height)
        obstacles.append(box)
        offset = (chosen[0] / px_per_pt, chosen[1] / px_per_pt)
        ax.annotate(
            label,
            ax.transData.inverted().transform((cx, cy)),
            xytext=offset,
            textcoords="offset points",
            fontsize=fontsize,
            ha="left",
            va="bottom",
        )


def _box(x: float, y: float, width: float, height: float) -> tuple[float, float, float, float]:
    return (x, y, x + width, y + height)


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def plain_log_axis(ax: Axes, axis: str = "x") -> None:
    """Log scale with ticks written as plain numbers (0.5, 1, 2, 5, 10), not powers of ten."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())
