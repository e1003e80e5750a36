"""Architecture diagrams as SVG, drawn from the lecture's layers of a real `nn.Module`.

Nothing is drawn by hand: every box is a `LectureLayer` (`cnnarch.lecture.layers`) of an
analyzed module, with its kernel, stride and padding, and the output shape, weights and MACs the
analyzer counted, so a change to a model changes its picture. The edges are the traced data flow
(`cnnarch.analysis.dataflow`: which call produced each tensor a call read), never module names:

- a module that concatenates (an Inception module) is drawn as its branches, each the calls
  that lead to one of the concatenated tensors, labeled as the lecture labels them (1x1 conv,
  3x3 conv, 5x5 conv, 3x3 max pool), merged by "C";
- a module that adds its input, or a projection of it, to what its other path made of it (a
  residual block) is drawn as its main path, the shortcut beside it (identity dashed; a
  projection with its layers and weights), the "+" and what follows it (the ReLU);
- AlexNet's towers side by side, with the exchanges where a `cat()` joins them;
- a whole network as columns: VGG's stages, each ending at a pooling layer; for a network of
  modules or blocks, the stem, then one column per grid size (ResNet's conv2_x ... conv5_x with
  their block counts and a skip arc per block; Inception-v3's 35×35, 17×17 and 8×8), the
  auxiliary heads beside the layer whose output they read; and as a strip whose segments are
  sized by MACs and by memory.

Pure Python: the SVG is text (every label escaped by `_esc`), a `Diagram`: a report `Picture`
that the page shows inline and writes as a file, and that Jupyter shows as itself.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from markupsafe import Markup
from torch import nn

from cnnarch import units
from cnnarch.analysis.dataflow import Residual, children, concat_branches, residuals
from cnnarch.errors import CnnarchError
from cnnarch.lecture.layers import (
    BYTES_PER_VALUE,
    LectureLayer,
    LectureLayers,
    Part,
    block_name,
    lecture_layers,
    stage_name,
    within,
)
from cnnarch.report.document import Picture

if TYPE_CHECKING:
    from cnnarch.analysis import LayerRow, Summary

# One color per kind of layer, shared by every diagram and the per-layer charts (Okabe-Ito).
KIND_COLORS = {
    "conv": "#0072B2",
    "pool": "#E69F00",
    "fc": "#009E73",
    "norm": "#CC79A7",
    "module": "#56B4E9",  # an Inception module, a residual block or stage: several layers
    "shortcut": "#D55E00",
    "training only": "#999999",
}
KIND_LABELS = {
    "conv": "conv",
    "pool": "pool",
    "fc": "fully connected",
    "norm": "local response norm",
    "module": "module / block",
    "shortcut": "shortcut",
    "training only": "training only",
}
BOX_W, BOX_H = 206, 74
LINE_H = 16  # one more line of text in a box
HEAD_W = BOX_W + 36  # an auxiliary head's box: one line per layer
GAP_X, GAP_Y = 28, 26
PAD = 16
TITLE_H = 30
LEGEND_H = 28
MAX_WIDTH = 1300
FONT = "system-ui, 'DejaVu Sans', sans-serif"
# The training pass that finds the training-only heads runs on two images: batch norm in training
# needs more than one value per channel, and Inception-v3's auxiliary head reaches a 1x1 map.
# What is drawn is per image either way.
TRAINING_PASS_BATCH = 2


@dataclass(frozen=True)
class Diagram(Picture):
    """One picture of a network or block: a report `Picture` (file name without .svg, title,
    caption, the SVG text) that Jupyter shows as itself."""

    def _repr_svg_(self) -> str:
        """Jupyter shows the picture itself."""
        return str(self.svg)

    def __repr__(self) -> str:
        return f"Diagram({self.title!r}, {len(self.svg):,} characters of SVG)"


@dataclass(frozen=True)
class Panel:
    """Part of a picture: SVG elements in a `width` x `height` box with its origin at 0, 0."""

    width: float
    height: float
    body: str


def color_kind(layer: LectureLayer) -> str:
    """The color key of a layer: its kind, with blocks and stages drawn as modules."""
    if layer.training_only:
        return "training only"
    return layer.kind if layer.kind in KIND_COLORS else "module"


def shape_text(layer: LectureLayer) -> str:
    return units.shape(layer.output_hwc, "×")


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def tooltip(layer: LectureLayer) -> str:
    """The layer's exact values, shown on hover."""
    return (
        f"{layer.name}: output {shape_text(layer)} = {units.number(layer.memory)} values "
        f"({units.byte_size(layer.memory * BYTES_PER_VALUE)} in float32); params "
        f"{units.number(layer.params)} (weights {units.number(layer.weights)}); MACs "
        f"{units.number(layer.macs)}; modules: {', '.join(layer.paths)}"
    )


def box_height(notes: Sequence[str] = ()) -> float:
    """The height of a box with `notes` lines under its four.

    Args:
        notes: the box's extra lines.
    """
    return BOX_H + LINE_H * len(notes)


def box(
    x: float,
    y: float,
    layer: LectureLayer,
    kind: str | None = None,
    *,
    detail: str | None = None,
    notes: Sequence[str] = (),
    width: float = BOX_W,
) -> str:
    """One layer as a box: its name; its kernel, stride and padding (or `detail`); its output
    shape (H×W×C); its weights and MACs for one image; then `notes`, a line each (a block's
    shortcut, a head's layers).

    Args:
        x: left edge.
        y: top edge.
        layer: the layer shown.
        kind: its color key (default: `color_kind(layer)`).
        detail: the second line, instead of the kernel, stride and padding.
        notes: more lines under the cost.
        width: the box's width.
    """
    kind = kind or color_kind(layer)
    color = KIND_COLORS[kind]
    dash = ' stroke-dasharray="5 3"' if layer.training_only else ""
    name = layer.name.replace(" (training only)", "")
    cost = f"{units.prefixed(layer.weights)} weights · {units.prefixed(layer.macs)} MACs"
    height = box_height(notes)
    second = detail if detail is not None else (layer.geometry or _kind_text(layer))
    lines = [_text(x + 13, y + 33, second, 11)] if second else []
    lines += [
        _text(x + 13, y + 49, f"out {shape_text(layer)}", 11),
        _text(x + 13, y + 65, cost, 10.5, muted=True),
    ]
    lines += [_text(x + 13, y + 65 + LINE_H * (i + 1), n, 10.5) for i, n in enumerate(notes)]
    return (
        f'<g class="layer" data-kind="{kind}" data-params="{layer.params}" '
        f'data-weights="{layer.weights}" data-macs="{layer.macs}" data-memory="{layer.memory}" '
        f'data-path="{_esc(layer.paths[0])}" data-tip="" tabindex="-1" role="img" '
        f'aria-label="{_esc(tooltip(layer))}">'
        f"<title>{_esc(tooltip(layer))}</title>"
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width}" height="{height}" rx="5" '
        f'fill="{color}" fill-opacity="0.14" stroke="{color}" stroke-width="1.6"{dash}/>'
        f'<rect x="{x:.1f}" y="{y:.1f}" width="6" height="{height}" fill="{color}"/>'
        + _text(x + 13, y + 17, name, 12.5, bold=True)
        + "".join(lines)
        + "</g>"
    )


def _kind_text(layer: LectureLayer) -> str:
    """The second line of a box without kernel: what the layer is."""
    if layer.kind == "fc":
        return "fully connected"
    if layer.kind == "norm":
        return "across channels"
    convs = sum(p.name.startswith("CONV") for p in layer.parts)
    pools = sum("POOL" in p.name for p in layer.parts)
    fcs = sum(p.name.startswith("FC") for p in layer.parts)
    counts = [(convs, "conv"), (pools, "pool"), (fcs, "fully connected")]
    return ", ".join(f"{n} {what}" for n, what in counts if n)


def _text(
    x: float,
    y: float,
    text: str,
    size: float,
    *,
    bold: bool = False,
    muted: bool = False,
    anchor: str = "start",
) -> str:
    weight = ' font-weight="700"' if bold else ""
    fill = "#59636e" if muted else "#1f2328"
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}"{weight} fill="{fill}" '
        f'text-anchor="{anchor}">{_esc(text)}</text>'
    )


def _arrow(x1: float, y1: float, x2: float, y2: float, color: str = "#59636e") -> str:
    return (
        f'<path d="M{x1:.1f},{y1:.1f} L{x2:.1f},{y2:.1f}" stroke="{color}" '
        f'stroke-width="1.4" fill="none" marker-end="url(#arrow)"/>'
    )


def _node(cx: float, cy: float, label: str) -> str:
    """A merge point: concat or + (an addition)."""
    return (
        f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="13" fill="#fff" stroke="#1f2328" '
        f'stroke-width="1.4"/>' + _text(cx, cy + 4.5, label, 13, bold=True, anchor="middle")
    )


def _label_box(x: float, y: float, width: float, text: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="26" rx="13" fill="#f6f8fa" '
        f'stroke="#d1d9e0"/>' + _text(x + width / 2, y + 17, text, 11.5, anchor="middle")
    )


def diagram(
    name: str, title: str, caption: str, panels: Sequence[Panel], kinds: Sequence[str]
) -> Diagram:
    """Panels under a title, with a legend of the colors used: side by side if they fit
    `MAX_WIDTH` (a page's width, so the text stays readable), else one above the other."""
    across = sum(p.width for p in panels) + GAP_X * (len(panels) - 1) <= MAX_WIDTH
    width = (
        max(
            sum(p.width for p in panels) + GAP_X * (len(panels) - 1)
            if across
            else max(p.width for p in panels),
            560.0,
        )
        + 2 * PAD
    )
    parts = [_text(PAD, PAD + 14, title, 15, bold=True)]
    x, y = PAD, PAD + TITLE_H
    for panel in panels:
        parts.append(f'<g transform="translate({x:.1f},{y:.1f})">{panel.body}</g>')
        if across:
            x += panel.width + GAP_X
        else:
            y += panel.height + GAP_Y
    bottom = y + max(p.height for p in panels) if across else y - GAP_Y
    height = bottom + LEGEND_H + PAD
    parts.append(_legend(PAD, height - PAD - 8, kinds))
    marker = "arrow-" + re.sub(r"[^\w-]", "-", name)  # one id per diagram in a page
    defs = (
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#59636e"/></marker></defs>'
    )
    body = "".join(parts).replace("url(#arrow)", f"url(#{marker})")
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" font-family="{FONT}" role="group" '
        f'aria-label="{_esc(title)}"><title>{_esc(title)}</title>{defs}'
        f'<rect width="100%" height="100%" fill="#fff"/>{body}</svg>'
    )
    return Diagram(name, title, caption, Markup(svg))


def _legend(x: float, y: float, kinds: Sequence[str]) -> str:
    parts = []
    for kind in dict.fromkeys(kinds):
        color = KIND_COLORS[kind]
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{color}"/>'
            + _text(x + 17, y, KIND_LABELS[kind], 11)
        )
        x += 30 + 6.5 * len(KIND_LABELS[kind])
    return "".join(parts)


def _kinds(layers: Sequence[LectureLayer]) -> list[str]:
    return [color_kind(layer) for layer in layers]


def _total(layers: Sequence[LectureLayer]) -> str:
    return (
        f"{units.prefixed(sum(x.weights for x in layers))} weights · "
        f"{units.prefixed(sum(x.macs for x in layers))} MACs"
    )


# -- blocks: branches and shortcuts --------------------------------------------------------------

NODE_R = 13  # radius of a merge node ("+", "C")
# Kinds of shortcut: the input itself; a projection (weights); calls without weights (ResNet's
# option A, ENet's pooling and zero-padding).
IDENTITY, PROJECTION, WEIGHTLESS = "identity", "projection", "weightless"
# What the calls after a block's merge are called on the slides.
AFTER_MERGE = {"ReLU": "ReLU", "relu": "ReLU", "relu_": "ReLU"}


def _of(
    layers: Sequence[LectureLayer], rows: Sequence[LayerRow], picked: Sequence[int]
) -> list[LectureLayer]:
    """The layers behind the calls at row indices `picked`."""
    paths = [rows[i].path for i in picked]
    return [x for x in layers if within(x.paths[0], paths)]


@dataclass(frozen=True)
class Lanes:
    """How a block's layers run: `merge` is "concat" (its branches), "add" (main path and
    shortcut) or "chain" (one lane); `after` names the calls after the merge ("ReLU")."""

    merge: str
    lanes: list[tuple[str, list[LectureLayer]]]
    after: tuple[str, ...] = ()
    residual: Residual | None = None
    shortcut_calls: tuple[str, ...] = ()  # what the shortcut calls (ZeroPadShortcut, pad)


def block_lanes(layers: LectureLayers, summary: Summary) -> Lanes:
    """The lanes of the block `summary` analyzed (its model is the block), from the data flow:
    a residual addition of the block gives its main path and shortcut, its last concatenation
    the branches (each the calls that lead to one concatenated tensor).

    Args:
        layers: the block's lecture layers (`analyze_block`).
        summary: the block's forward summary.
    """
    rows = summary.rows
    own = [r for r in residuals(rows) if r.block == 0]
    if own:
        residual = own[-1]
        main = _of(layers.layers, rows, residual.main)
        shortcut = _of(layers.layers, rows, residual.shortcut)
        main += [x for x in layers.layers if x not in main and x not in shortcut]
        siblings = children(rows)[0]
        later = siblings[siblings.index(residual.addition) + 1 :]
        after = tuple(AFTER_MERGE.get(rows[i].type, rows[i].type) for i in later)
        calls = tuple(rows[i].type for i in residual.shortcut)
        lanes = [("main path", main), ("shortcut", shortcut)]
        return Lanes("add", lanes, after, residual, calls)
    branches = concat_branches(rows, 0)
    if branches is not None:
        labeled = []
        for branch in branches:
            lane = _of(layers.layers, rows, branch)
            # A pool called as a function (Inception-v3's F.avg_pool2d) is no layer: its row says.
            pools = [
                rows[i].type for i in branch if rows[i].kind == "op" and "pool" in rows[i].type
            ]
            labeled.append((branch_label(lane, pools[0] if pools else None), lane))
        return Lanes("concat", labeled)
    return Lanes("chain", [("", list(layers.layers))])


def _kernel_of(layer: LectureLayer) -> str:
    """'3' of CONV3-64, '1x7' of CONV1x7-192, '3' of POOL3."""
    found = re.match(r"(?:CONV|AVGPOOL|POOL)([\dx]+)", layer.name)
    return found.group(1) if found else ""


def branch_label(lane: Sequence[LectureLayer], pool_call: str | None = None) -> str:
    """A branch as the lecture labels it: "3x3 max pool" for one that pools, else by its
    convs' kernels: "1x1 conv", "5x5 conv", "3x3 conv ×2", "1x7 + 7x1 conv".

    Args:
        lane: the branch's layers, in call order.
        pool_call: the function a branch pools with, if it calls one (`avg_pool2d`): its
            kernel is not recorded, so the label is "avg pool".
    """
    if pool_call is not None:
        return f"{'avg' if 'avg' in pool_call else 'max'} pool"
    if not lane:
        return "identity"
    for layer in lane:
        k = _kernel_of(layer)
        if layer.kind == "pool" and k:
            side = k if "x" in k else f"{k}x{k}"
            return f"{side} {'avg' if layer.name.startswith('AVG') else 'max'} pool"
    kernels = [_kernel_of(x) for x in lane if x.kind == "conv"]
    wide = [k for k in kernels if k not in ("1", "")] or kernels[:1]
    if not wide:
        return lane[0].name
    sides = [k if "x" in k else f"{k}x{k}" for k in wide]
    if len(set(sides)) == 1:
        return f"{sides[0]} conv" + (f" ×{len(sides)}" if len(sides) > 1 else "")
    return " + ".join(dict.fromkeys(sides)) + " conv"


def _on_circle(x: float, y: float, cx: float, cy: float, r: float = NODE_R) -> tuple[float, float]:
    """The point of the circle around (cx, cy) that a line from (x, y) to its center meets."""
    dx, dy = x - cx, y - cy
    length = (dx * dx + dy * dy) ** 0.5 or 1.0
    return cx + r * dx / length, cy + r * dy / length


def _lane(
    x: float, y: float, lane: Sequence[LectureLayer], kind: str | None
) -> tuple[list[str], list[str], float]:
    """A lane's boxes top to bottom from (x, y), joined by arrows: (SVG parts, color kinds,
    the y of the last box's bottom edge)."""
    parts, kinds = [], []
    cx = x + BOX_W / 2
    for j, layer in enumerate(lane):
        if j:
            parts.append(_arrow(cx, y - GAP_Y, cx, y))
        shown = kind or color_kind(layer)
        kinds.append(shown)
        parts.append(box(x, y, layer, shown))
        y += BOX_H + GAP_Y
    return parts, kinds, y - GAP_Y


def lanes_panel(
    layers: LectureLayers, summary: Summary, input_shape: Sequence[int], heading: str
) -> tuple[Panel, list[str]]:
    """A block drawn from its data flow: the input on top; for a residual block the main path
    with the shortcut beside it, the "+" they meet at and what follows it; for a concatenation
    the branches side by side into "C"; else the layers in a column.

    Args:
        layers: the block's lecture layers (`analyze_block`).
        summary: the block's forward summary.
        input_shape: the block's input, C×H×W.
        heading: the panel's heading.
    """
    flow = block_lanes(layers, summary)
    if flow.merge == "add":
        return _residual_panel(layers, flow, input_shape, heading)
    lanes = flow.lanes
    n = len(lanes)
    width = n * BOX_W + (n - 1) * GAP_X
    c, *hw = input_shape
    parts = [_text(0, 12, heading, 13, bold=True)]
    top = 22
    parts.append(_label_box(0, top, width, f"input {units.shape((*hw, c), '×')}"))
    y0 = top + 26 + GAP_Y
    deepest = max(len(lane) for _, lane in lanes)
    bottom = y0 + deepest * (BOX_H + GAP_Y) - GAP_Y
    merge_y = bottom + 58
    kinds: list[str] = []
    node = (width / 2, merge_y)
    for i, (label, lane) in enumerate(lanes):
        x = i * (BOX_W + GAP_X)
        cx = x + BOX_W / 2
        # The label beside the arrow from the input, never on it.
        if label:
            parts.append(_text(cx + 7, top + 26 + GAP_Y / 2 + 4, label, 11.5, bold=True))
        parts.append(_arrow(cx, top + 26, cx, y0))
        drawn, used, end = _lane(x, y0, lane, None)
        parts += drawn
        kinds += used
        if flow.merge == "chain":
            continue
        parts.append(f'<path d="M{cx:.1f},{end:.1f} V{bottom:.1f}" stroke="#59636e" fill="none"/>')
        if lane:  # what each branch adds to the concatenation
            weights = units.prefixed(sum(x.weights for x in lane))
            shape = f"{shape_text(lane[-1])} · {weights} weights"
            parts.append(_text(cx, bottom + 12, shape, 10.5, muted=True, anchor="middle"))
            macs = f"{units.prefixed(sum(x.macs for x in lane))} MACs"
            parts.append(_text(cx, bottom + 25, macs, 10.5, muted=True, anchor="middle"))
        parts.append(_arrow(cx, bottom + 30, *_on_circle(cx, bottom + 30, *node)))
    if flow.merge == "concat":
        parts.append(_node(*node, "C"))
        out_text = f"concat: output {_concat_shape(lanes)}"
        out_y = merge_y + 20
    else:
        out_text = f"output {shape_text(layers.layers[-1])}"
        out_y = bottom + GAP_Y
        parts.append(_arrow(width / 2, bottom, width / 2, out_y))
    parts.append(_label_box(0, out_y, width, out_text))
    total = f"block total: {_total(layers.layers)}"
    parts.append(_text(width / 2, out_y + 44, total, 11.5, bold=True, anchor="middle"))
    return Panel(width, out_y + 52, "".join(parts)), kinds


def _residual_panel(
    layers: LectureLayers, flow: Lanes, input_shape: Sequence[int], heading: str
) -> tuple[Panel, list[str]]:
    """A residual block: the main path in a column into "+", the shortcut beside it (dashed
    when it is the input itself; its layers and weights when it projects), joining the "+"
    from the side; then what follows the addition (the ReLU) and the output."""
    (_, main), (_, shortcut) = flow.lanes
    # An identity is a line with its words beside it; a projection, a lane of boxes.
    sx = BOX_W + GAP_X + BOX_W / 2 if shortcut else BOX_W + 64
    width = 2 * BOX_W + GAP_X if shortcut else sx + 150
    c, *hw = input_shape
    color = KIND_COLORS["shortcut"]
    parts = [_text(0, 12, heading, 13, bold=True)]
    top = 22
    parts.append(_label_box(0, top, width, f"input {units.shape((*hw, c), '×')}"))
    y0 = top + 26 + GAP_Y
    cx = BOX_W / 2
    parts.append(_text(cx + 7, top + 26 + GAP_Y / 2 + 4, "main path", 11.5, bold=True))
    parts.append(_arrow(cx, top + 26, cx, y0))
    drawn, kinds, main_end = _lane(0, y0, main, None)
    parts += drawn
    merge_y = max(main_end, y0 + len(shortcut) * (BOX_H + GAP_Y) - GAP_Y) + 40
    parts.append(_arrow(cx, main_end, cx, merge_y - NODE_R))
    if shortcut:
        projects = sum(x.weights for x in shortcut) > 0  # else: pooling, zero-padding
        label = "projection shortcut" if projects else "shortcut, no weights"
        label_y = top + 26 + GAP_Y / 2 + 4
        parts.append(_text(sx - 7, label_y, label, 11.5, bold=True, anchor="end"))
        parts.append(_arrow(sx, top + 26, sx, y0, color))
        drawn, used, start = _lane(BOX_W + GAP_X, y0, shortcut, "shortcut")
        parts += drawn
        kinds += used
        style, kind = ("", PROJECTION) if projects else (' stroke-dasharray="6 4"', WEIGHTLESS)
    else:  # the input itself, or calls that are no layer (a zero-padding): a line
        start = top + 26
        kinds.append("shortcut")
        middle = (start + merge_y) / 2
        kind = WEIGHTLESS if flow.shortcut_calls else IDENTITY
        words = (
            ("identity shortcut", "the input, no weights")
            if kind == IDENTITY
            else ("shortcut, no weights", ", ".join(dict.fromkeys(flow.shortcut_calls)))
        )
        parts.append(_text(sx + 7, middle - 2, words[0], 11.5, bold=True))
        parts.append(_text(sx + 7, middle + 13, words[1], 10.5, muted=True))
        style = ' stroke-dasharray="6 4"'
    # The shortcut: down its lane, then across into the side of the "+".
    parts.append(
        f'<path class="skip" data-shortcut="{kind}" d="M{sx:.1f},{start:.1f} V{merge_y:.1f} '
        f'H{cx + NODE_R:.1f}" stroke="{color}" stroke-width="1.6" fill="none"{style} '
        'marker-end="url(#arrow)"/>'
    )
    parts.append(_node(cx, merge_y, "+"))
    y = merge_y + NODE_R
    for name in flow.after:  # the ReLU after the addition
        parts.append(_arrow(cx, y, cx, y + GAP_Y))
        parts.append(_label_box(cx - 60, y + GAP_Y, 120, name))
        y += GAP_Y + 26
    parts.append(_arrow(cx, y, cx, y + GAP_Y))
    out = layers.layers[-1] if layers.layers else None
    out_text = f"output {shape_text(out)}" if out is not None else "output"
    parts.append(_label_box(0, y + GAP_Y, width, out_text))
    y += GAP_Y + 26
    total = f"block total: {_total(layers.layers)}"
    parts.append(_text(width / 2, y + 18, total, 11.5, bold=True, anchor="middle"))
    return Panel(width, y + 26, "".join(parts)), kinds


def _concat_shape(lanes: Sequence[tuple[str, list[LectureLayer]]]) -> str:
    """The branches' outputs stacked along channels (H×W×C)."""
    last = [lane[-1] for _, lane in lanes if lane]
    depth = sum(layer.output[0] for layer in last)
    return units.shape((*last[0].output[1:], depth), "×")


def block_diagram(
    name: str,
    title: str,
    caption: str,
    blocks: Sequence[tuple[str, nn.Module, Sequence[int]]],
) -> Diagram:
    """Blocks side by side, each analyzed on meta tensors.

    Args:
        name: the picture's file name, without .svg.
        title: its title.
        caption: its caption.
        blocks: (heading, module, input C×H×W) of each block.
    """
    panels, kinds = [], []
    for heading, module, input_shape in blocks:
        layers, summary = analyze_block(module, input_shape)
        panel, used = lanes_panel(layers, summary, input_shape, heading)
        panels.append(panel)
        kinds += used
    return diagram(name, title, caption, panels, kinds)


def analyze_block(module: nn.Module, input_shape: Sequence[int]) -> tuple[LectureLayers, Summary]:
    """The lecture's layers of `module` for one input of `input_shape`, and the forward
    summary they come from (its rows carry the data flow).

    Args:
        module: the block.
        input_shape: one input, C×H×W.
    """
    from cnnarch.analysis import analyze

    summary = analyze(module, tuple(input_shape))
    return lecture_layers(module, summary, keep_pools=True), summary


# -- whole networks ------------------------------------------------------------------------------

COMPOSITE = ("module", "block", "stage")  # a layer that holds layers (see `lecture_layers`)
_STAGE = re.compile(r"^(conv\d+)_(?:\d+|x)$")  # ResNet's conv2_1 ... conv5_x
COLUMN_TOP = 44.0  # below a column's heading and its second line


@dataclass(frozen=True)
class Column:
    """A column of a network's picture: a heading, a second line, its layers top to bottom."""

    heading: str
    sub: str
    layers: list[LectureLayer]


def _grid(layer: LectureLayer) -> str | None:
    """The output's grid, "56×56"; None for a vector (a fully connected layer's)."""
    return units.shape(layer.output[1:], "×") if len(layer.output) == 3 else None


def columns(
    layers: LectureLayers, summary: Summary, found: Sequence[Residual] | None = None
) -> list[Column]:
    """The inference layers in columns. Without modules or blocks: columns that each end at a
    pooling layer (VGG's five stages). With them: the stem (the layers before the first), then
    one column per grid size, a pooling layer staying with the grid it reads (ResNet's stages
    headed conv2_x ... conv5_x with their number of residual blocks; Inception-v3's 35×35,
    17×17 and 8×8), then the classifier (under the last column if it is one layer).

    Args:
        layers: the network's lecture layers.
        summary: its forward summary (the residual blocks are found in its data flow).
        found: `residuals(summary.rows)`, if already at hand.
    """
    shown = layers.inference
    first = next((i for i, x in enumerate(shown) if x.kind in COMPOSITE), None)
    if first is None:
        stages: list[list[LectureLayer]] = []
        for layer in shown:
            if not stages or stages[-1][-1].kind == "pool":
                stages.append([])
            stages[-1].append(layer)
        return [
            Column(
                f"stage {n}" if stage[-1].kind == "pool" else "classifier",
                _grid(stage[0]) or "",
                stage,
            )
            for n, stage in enumerate(stages, 1)
        ]
    out = [Column("stem", f"to {_grid(shown[first - 1])}", shown[:first])] if first else []
    grids: list[tuple[str | None, list[LectureLayer]]] = []
    for i, layer in enumerate(shown[first:], first):
        # A pooling layer stays with the grid it reads.
        grid = _grid(shown[i - 1]) if layer.kind == "pool" else _grid(layer)
        if not grids or grids[-1][0] != grid:
            grids.append((grid, []))
        grids[-1][1].append(layer)
    found = residuals(summary.rows) if found is None else found
    blocks_at = [summary.rows[r.block].path for r in found]
    for grid, group in grids:
        if grid is None:
            if len(group) == 1 and out:  # one layer (ResNet's FC-1000) ends the last column
                out[-1].layers.append(group[0])
            else:
                out.append(Column("classifier", "", group))
            continue
        held = [x for x in group if x.kind in COMPOSITE]
        names = {m.group(1) for x in held if (m := _STAGE.match(x.name))}
        blocks = sum(1 for path in blocks_at for x in held if within(path, x.paths))
        if len(names) == 1:  # a ResNet stage: conv3_x × 4
            count = blocks or sum(x.kind == "block" for x in held)
            out.append(Column(f"{names.pop()}_x" + (f" × {count}" if count else ""), grid, group))
        else:
            sub = f"{blocks} residual blocks" if blocks else f"{len(held)} modules"
            out.append(Column(grid, sub if held else "", group))
    return out


MAIN_PATH_CONVS = 4  # more convs than this on a main path (branches) are counted, not listed


def _main_path_text(parts: Sequence[Part]) -> str:
    """A residual block's main path as the ResNet paper writes it: "1×1,64 · 3×3,64 · 1×1,256",
    "/2" on the conv that strides; "7 conv on the main path" where it has branches."""
    convs = [p for p in parts if p.name.startswith("CONV")]
    if len(convs) > MAIN_PATH_CONVS:
        return f"{len(convs)} conv on the main path"
    shown = []
    for part in convs:
        kernel = part.geometry.split(",")[0]
        width = part.name.rpartition("-")[2]
        shown.append(f"{kernel},{width}" + (f"/{part.stride}" if part.stride > 1 else ""))
    return " · ".join(shown)


@dataclass(frozen=True)
class _Skip:
    """The shortcuts of one box (one for a block, several for a stage): the kind of each
    (the input itself; a projection, with weights; calls without weights, such as ResNet's
    option A or ENet's pool and zero-padding), the first block's main path and shortcut."""

    kinds: list[str]
    main_parts: list[Part]
    shortcut_parts: list[Part]

    @property
    def kind(self) -> str:
        """The arc's kind: a stage's, its first block's (the one that changes the shape)."""
        return self.kinds[0]

    def notes(self) -> list[str]:
        n = len(self.kinds)
        if n > 1:
            counts = {k: self.kinds.count(k) for k in (PROJECTION, WEIGHTLESS, IDENTITY)}
            shown = ", ".join(f"{c} {k}" for k, c in counts.items() if c)
            return [f"{n} blocks: {shown}"]
        if self.kind == PROJECTION:
            weights = units.prefixed(sum(p.weights for p in self.shortcut_parts))
            kernel = self.shortcut_parts[0].geometry.split(",")[0] if self.shortcut_parts else ""
            return [f"{kernel} projection: {weights} weights".strip()]
        if self.kind == WEIGHTLESS:
            return ["shortcut without weights"]
        return ["identity shortcut"]


def _skips(
    layers: Sequence[LectureLayer], rows: Sequence[LayerRow], found: Sequence[Residual]
) -> dict[int, _Skip]:
    """For the index of each layer that holds residual blocks, its shortcuts."""
    held_by: dict[int, list[Residual]] = {}
    for residual in found:
        path = rows[residual.block].path
        at = next((i for i, x in enumerate(layers) if within(path, x.paths)), None)
        if at is not None:
            held_by.setdefault(at, []).append(residual)
    out = {}
    for at, held in held_by.items():
        parts = layers[at].parts

        def inside(picked: Sequence[int], parts: Sequence[Part] = parts) -> list[Part]:
            paths = [rows[i].path for i in picked]
            return [p for p in parts if within(p.path, paths)]

        kinds = [
            IDENTITY
            if r.identity
            else PROJECTION
            if sum(p.weights for p in inside(r.shortcut))
            else WEIGHTLESS
            for r in held
        ]
        out[at] = _Skip(kinds, inside(held[0].main), inside(held[0].shortcut))
    return out


def _skip_arc(x: float, y: float, height: float, skip: _Skip) -> str:
    """A shortcut around a block's box, on its right: dashed for one without weights (the
    identity, a zero-padding), solid with a small square (the projection's conv) for a
    projection."""
    right = x + BOX_W
    color = KIND_COLORS["shortcut"]
    dash = "" if skip.kind == PROJECTION else ' stroke-dasharray="5 3"'
    d = (
        f"M{right:.1f},{y + 10:.1f} C{right + 20:.1f},{y + 10:.1f} {right + 20:.1f},"
        f"{y + height - 10:.1f} {right + 3:.1f},{y + height - 10:.1f}"
    )
    mark = (
        f'<rect x="{right + 12:.1f}" y="{y + height / 2 - 4:.1f}" width="8" height="8" '
        f'fill="{color}"/>'
        if skip.kind == PROJECTION
        else ""
    )
    return (
        f'<g class="skip" data-shortcut="{skip.kind}" data-blocks="{len(skip.kinds)}">'
        f"<title>{_esc('; '.join(skip.notes()))}</title>"
        f'<path d="{d}" stroke="{color}" stroke-width="1.8" fill="none"{dash} '
        f'marker-end="url(#arrow)"/>{mark}</g>'
    )


def _module_detail(
    layer: LectureLayer, rows: Sequence[LayerRow], index: dict[str, int], kids: list[list[int]]
) -> str | None:
    """An Inception module's second line: its branches (from the data flow) and layers."""
    at = index.get(layer.paths[0])
    branches = concat_branches(rows, at, kids) if at is not None else None
    if branches is None:
        return None
    return f"{len(branches)} branches: {_kind_text(layer)}"


def _head_lines(head: LectureLayer) -> list[str]:
    """An auxiliary head's layers, one line each: "CONV1-128: 1×1, stride 1, pad 0"."""
    return [f"{p.name}: {p.geometry}" if p.geometry else p.name for p in head.parts]


def network_panel(layers: LectureLayers, summary: Summary) -> tuple[Panel, list[str]]:
    """The network in `columns`, read top to bottom, left to right; a skip arc beside each
    residual block; each training-only head beside the layer whose output it reads, with its
    layers.

    Args:
        layers: the network's lecture layers, training-only heads included.
        summary: its forward summary (the data flow).
    """
    rows = summary.rows
    found = residuals(rows)
    kids = children(rows)
    skips = _skips(layers.layers, rows, found)
    index: dict[str, int] = {}
    for i, row in enumerate(summary.rows):
        index.setdefault(row.path, i)
    heads: dict[int, list[LectureLayer]] = {}  # id of the layer read -> heads reading it
    source: LectureLayer | None = None
    for layer in layers.layers:
        if layer.training_only and source is not None:
            heads.setdefault(id(source), []).append(layer)
        elif not layer.training_only:
            source = layer
    position = {id(x): i for i, x in enumerate(layers.layers)}
    parts, kinds = [], []
    height = 0.0
    x = 0.0
    previous: tuple[float, float] | None = None
    low = 0.0  # the lowest box bottom of the column before (a route passes under it)
    gap = GAP_X + 14 if skips else GAP_X  # room for the skip arcs beside the routes
    for column in columns(layers, summary, found):
        parts.append(_text(x + BOX_W / 2, 12, column.heading, 12.5, bold=True, anchor="middle"))
        if column.sub:
            parts.append(_text(x + BOX_W / 2, 27, column.sub, 11, muted=True, anchor="middle"))
        y = COLUMN_TOP
        column_low = 0.0
        head_y = COLUMN_TOP
        width = BOX_W
        for layer in column.layers:
            if previous is not None:
                parts.append(_route(previous, (x + BOX_W / 2, y), x - gap / 2, low))
            skip = skips.get(position[id(layer)])
            notes = skip.notes() if skip else []
            detail = None
            if skip is not None:
                detail = _main_path_text(skip.main_parts)
            elif layer.kind in COMPOSITE:
                detail = _module_detail(layer, rows, index, kids)
            kinds.append(color_kind(layer))
            parts.append(box(x, y, layer, detail=detail, notes=notes))
            h = box_height(notes)
            if skip is not None:
                kinds.append("shortcut")
                parts.append(_skip_arc(x, y, h, skip))
            for head in heads.get(id(layer), []):  # beside the layer it reads
                hx = x + BOX_W + gap
                hy = max(y, head_y)
                lines = _head_lines(head)
                kinds.append("training only")
                parts.append(
                    _arrow(
                        x + BOX_W, y + BOX_H / 2, hx, hy + BOX_H / 2, KIND_COLORS["training only"]
                    )
                )
                reads = f"training only; reads {layer.name}"
                parts.append(box(hx, hy, head, detail=reads, notes=lines, width=HEAD_W))
                head_y = hy + box_height(lines) + GAP_Y
                column_low = max(column_low, head_y - GAP_Y)
                width = BOX_W + gap + HEAD_W
            previous = (x + BOX_W / 2, y + h)
            y += h + GAP_Y
        column_low = max(column_low, y - GAP_Y)
        low = column_low
        height = max(height, column_low)
        x += width + gap
    # Room for a route that passes under the tallest column.
    return Panel(x - gap, height + 12, "".join(parts)), kinds


def _route(
    start: tuple[float, float], end: tuple[float, float], between: float, low: float = 0.0
) -> str:
    """An arrow from one box to the next: straight down in a column, else down below
    everything of the column (`low`), across to the gap between the columns, up above them
    and across to the next column's first box."""
    (x1, y1), (x2, y2) = start, end
    if x1 == x2:
        return _arrow(x1, y1, x2, y2)
    under = max(y1, low) + 10
    d = f"M{x1:.1f},{y1:.1f} V{under:.1f} H{between:.1f} V{y2 - 8:.1f} H{x2:.1f} V{y2:.1f}"
    return (
        f'<path d="{d}" stroke="#59636e" stroke-width="1.2" fill="none" marker-end="url(#arrow)"/>'
    )


def towers_panel(layers: LectureLayers, summary: Summary) -> tuple[Panel, list[str]]:
    """AlexNet's towers side by side; a crossing marks where a `cat()` joins the towers'
    outputs (the towers exchange activations there), a merge where one layer reads both."""
    order = {row.path: i for i, row in reversed(list(enumerate(summary.rows)))}
    cats = [i for i, row in enumerate(summary.rows) if row.path.endswith("cat()")]
    left, right = 0.0, BOX_W + 3 * GAP_X
    width = right + BOX_W
    parts = [
        _text(left + BOX_W / 2, 12, "GPU 1", 12, bold=True, anchor="middle"),
        _text(right + BOX_W / 2, 12, "GPU 2", 12, bold=True, anchor="middle"),
    ]
    kinds: list[str] = []
    y = 22.0
    last_end = -1
    previous_split = True
    for layer in layers.inference:
        rows = [order[p] for p in layer.paths if p in order]
        exchange = any(last_end < i < min(rows) for i in cats)
        split = any(p.startswith("towers.") for p in layer.paths)
        if y > 22:
            if exchange and split:
                parts.append(_crossing(left, right, y))
            elif previous_split and not split:
                parts.append(_arrow(left + BOX_W / 2, y - GAP_Y - 8, width / 2 - 30, y))
                parts.append(_arrow(right + BOX_W / 2, y - GAP_Y - 8, width / 2 + 30, y))
            else:
                for x in (left, right) if split else (width / 2 - BOX_W / 2,):
                    parts.append(_arrow(x + BOX_W / 2, y - GAP_Y - 8, x + BOX_W / 2, y))
        if exchange and split:
            parts.append(_text(width / 2, y - 18, "exchange", 10.5, muted=True, anchor="middle"))
        half = _half(layer) if split else layer
        xs = (left, right) if split else (width / 2 - BOX_W / 2,)
        for x in xs:
            kinds.append(color_kind(layer))
            parts.append(box(x, y, half))
        y += BOX_H + GAP_Y + 8
        last_end = max(rows)
        previous_split = split
    return Panel(width, y - GAP_Y - 8, "".join(parts)), kinds


def _crossing(left: float, right: float, y: float) -> str:
    """Both towers feed both towers: straight and crossed arrows."""
    top = y - GAP_Y - 8
    a, b = left + BOX_W / 2, right + BOX_W / 2
    color = KIND_COLORS["shortcut"]
    return (
        _arrow(a, top, a, y)
        + _arrow(b, top, b, y)
        + _arrow(a + 20, top, b - 20, y, color)
        + _arrow(b - 20, top, a + 20, y, color)
    )


def _half(layer: LectureLayer) -> LectureLayer:
    """One tower's half of a layer split over two towers."""
    output = (layer.output[0] // 2, *layer.output[1:])
    name = re.sub(r"-(\d+)$", lambda m: f"-{int(m.group(1)) // 2}", layer.name)
    return replace(
        layer,
        name=name,
        output=output,
        memory=layer.memory // 2,
        params=layer.params // 2,
        weights=layer.weights // 2,
        macs=layer.macs // 2,
    )


def strip_panel(layers: LectureLayers, width: float = 900) -> tuple[Panel, list[str]]:
    """The whole network as two bars, one segment per layer in order: the top sized by MACs,
    the bottom by output memory; the widest segments are named."""
    shown = layers.inference
    parts, kinds = [], []
    y = 0.0
    for label, values, unit in (
        ("MACs", [x.macs for x in shown], ""),
        ("output memory", [x.memory * BYTES_PER_VALUE for x in shown], "B"),
    ):
        total = sum(values)
        total_text = units.byte_size(total) if unit else units.prefixed(total)
        parts.append(_text(0, y + 12, f"{label} (total {total_text}, one image)", 12, bold=True))
        y += 18
        x = 0.0
        for layer, value in zip(shown, values, strict=True):
            w = width * value / total if total else 0.0
            if w <= 0:
                continue
            kind = color_kind(layer)
            kinds.append(kind)
            share = units.percent(value / total)
            parts.append(
                f'<g class="segment"><title>{_esc(layer.name)}: {share} of {label}; '
                f"{_esc(tooltip(layer))}</title>"
                f'<rect x="{x:.2f}" y="{y:.1f}" width="{w:.2f}" height="34" '
                f'fill="{KIND_COLORS[kind]}" stroke="#fff" stroke-width="0.8"/></g>'
            )
            if w > 7.2 * len(layer.name):
                parts.append(_text(x + w / 2, y + 22, layer.name, 11, anchor="middle"))
            x += w
        y += 48
    return Panel(width, y - 8, "".join(parts)), kinds


def network_diagrams(layers: LectureLayers, summary: Summary) -> list[Diagram]:
    """A model's pictures: its layers (towers where it has towers) and its strip."""
    name = layers.model
    towers = any(p.startswith("towers.") for x in layers.layers for p in x.paths)
    panel, kinds = towers_panel(layers, summary) if towers else network_panel(layers, summary)
    shape = "towers" if towers else f"per {layers.level}"
    diagrams = [
        diagram(
            f"diagram_{name}",
            f"{name}: the network, {shape}",
            "Each box is one layer as the lecture counts it: its kernel, stride and padding (a "
            "residual block's convs as the ResNet paper writes them, /2 where one strides), its "
            "output (H×W×C), weights and multiply-accumulates for one image. Arrows follow the "
            "traced data flow; the arc beside a block is its shortcut (dashed: the identity; "
            "solid: a projection). Hover a box for the exact values and the modules behind it.",
            [panel],
            kinds,
        )
    ]
    strip, strip_kinds = strip_panel(layers)
    diagrams.append(
        diagram(
            f"strip_{name}",
            f"{name}: compute and memory along the network",
            "Each segment is one layer, in order from input to output, as wide as its share: "
            "of the MACs on top, of the output memory (float32) below.",
            [strip],
            strip_kinds,
        )
    )
    return diagrams


def submodule_input(summary: Summary, path: str) -> tuple[int, ...]:
    """The per-example input shape (C×H×W) of the first call of the module at `path`."""
    for row in summary.rows:
        if row.path == path and row.kind == "module":
            return tuple(int(d) for d in row.input_shapes[0][1:])
    known = sorted({r.path for r in summary.rows if r.kind == "module" and r.path})
    close = [p for p in known if path.split(".")[0] in p][:8] or known[:8]
    raise CnnarchError(
        f"the model has no module called {path!r} that runs in the forward pass; "
        f"try one of: {', '.join(close)} (module paths as in `cnnarch summary`)"
    )


# -- entry points: a model or one of its blocks; the lecture's blocks ----------------------------


def model_block_panel(
    model: nn.Module, summary: Summary, path: str, heading: str
) -> tuple[Panel, list[str]]:
    """The block at `path` of `model`, analyzed alone at the input it gets in the network."""
    input_shape = submodule_input(summary, path)
    module = model.get_submodule(path)
    if next(module.children(), None) is None:
        parent = path.rpartition(".")[0]
        instead = f"the block that holds it, --block {parent}" if parent else "the whole model"
        raise CnnarchError(
            f"{path!r} is one layer ({type(module).__name__}), not a block of layers; "
            f"draw {instead}"
        )
    layers, block = analyze_block(module, input_shape)
    _drawable(layers, f"{summary.model_name}.{path}")
    return lanes_panel(layers, block, input_shape, heading)


def _drawable(layers: LectureLayers, what: str) -> LectureLayers:
    """`layers`, if there is a layer to draw (a conv, pool or linear layer, or a block)."""
    if not layers.layers:
        raise CnnarchError(
            f"{what} has no layer to draw: a diagram shows the conv, pooling and linear layers "
            "among a module's submodules, and none runs in its forward pass"
        )
    return layers


def model_diagram(
    model: nn.Module | str,
    block: str | None = None,
    *,
    input_size: Sequence[int] | None = None,
    variant: str = "paper",
    view: str = "layers",
) -> Diagram:
    """The picture `cnnarch diagram` draws; `cnnarch.diagram` documents the arguments."""
    import torch

    from cnnarch import analyze
    from cnnarch.zoo.registry import create_model

    if view not in ("layers", "strip"):
        raise CnnarchError(f"unknown view {view!r}; choose layers or strip")
    if isinstance(model, str):
        with torch.device("meta"):
            model = create_model(model, variant=variant)
    size = tuple(input_size) if input_size else None
    summary = analyze(model, size)
    if block is not None:
        panel, kinds = model_block_panel(model, summary, block, f"{summary.model_name}.{block}")
        title = f"{summary.model_name}: {block}"
        caption = "One module, analyzed at the input it gets in the network."
        return diagram(f"diagram_{block}", title, caption, [panel], kinds)
    if summary.mode == "parameters":
        raise CnnarchError(
            f"{summary.model_name}: nothing to draw without a forward pass "
            f"({summary.mode_reason}); give the size of one example, e.g. --input 3x224x224 "
            "(input_size=(3, 224, 224) in Python)"
        )
    training = analyze(model, size, batch_size=TRAINING_PASS_BATCH, train=True)
    layers = _drawable(lecture_layers(model, summary, training), summary.model_name)
    network, strip = network_diagrams(layers, summary)
    return network if view == "layers" else strip


def inception_diagram() -> Diagram:
    """The lecture's Inception module on 28×28×256, naive beside the one with 1x1
    bottlenecks (weights only, as the slides count them)."""
    import torch

    from cnnarch.experiments.inception import InceptionModule, lecture_example

    blocks = []
    for heading, cost in zip(
        ("naive", "with 1x1 bottlenecks"), lecture_example(bias=False), strict=True
    ):
        with torch.device("meta"):
            module = InceptionModule(cost.config, bias=False)
        blocks.append(
            (heading, module, (cost.config.in_channels, cost.config.size, cost.config.size))
        )
    title = "The Inception module: naive against 1x1 bottlenecks (28×28×256 input)"
    caption = (
        "Each branch with its layers, output and cost for one image; the branches' outputs are "
        "concatenated along channels (C). The naive pool branch passes all 256 input channels on, "
        "so the output is deeper than the input; the bottlenecks cut both the MACs and the depth."
    )
    return block_diagram("diagram_inception_module", title, caption, blocks)


def _resnet_block(path: str) -> str:
    """A ResNet block by the paper's name: layer1.0 (torchvision's) is conv2_1."""
    stage, index = path.split(".")
    found = stage_name(stage)
    assert found is not None, path
    return block_name(found, int(index))


def resnet_block_diagrams(
    models: dict[str, tuple[nn.Module, Summary]],
) -> list[Diagram]:
    """ResNet's basic and bottleneck blocks, each with an identity and with a projection
    shortcut, taken from the real networks (`models`: name -> (model, forward summary)), for
    those of ResNet-34 and ResNet-50 that are given."""
    picked = {
        "resnet34": (
            "basic",
            "ResNet-18/34",
            (("layer1.0", "identity shortcut"), ("layer2.0", "projection shortcut")),
        ),
        "resnet50": (
            "bottleneck",
            "ResNet-50/101/152",
            (("layer1.1", "identity shortcut"), ("layer1.0", "projection shortcut")),
        ),
    }
    diagrams = []
    for name, (kind, used_in, blocks) in picked.items():
        if name not in models:
            continue
        model, summary = models[name]
        panels, kinds = [], []
        for path, heading in blocks:
            panel, used = model_block_panel(
                model, summary, path, f"{name} {_resnet_block(path)}: {heading}"
            )
            panels.append(panel)
            kinds += used
        title = f"The {kind} block ({used_in}): identity and projection shortcuts"
        (first, _), (second, _) = blocks
        caption = (
            f"Blocks {_resnet_block(first)} and {_resnet_block(second)} of {name} (in the code "
            f"`{first}` and `{second}`), analyzed at the input "
            "they get in the network. The shortcut adds the block's input (identity) or a 1x1 "
            "projection of it, where the shape changes, to the main path's output (+); "
            "batch-norm and ReLU are folded into the conv before them."
        )
        diagrams.append(diagram(f"diagram_{kind}_block", title, caption, panels, kinds))
    return diagrams
