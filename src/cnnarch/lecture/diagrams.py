"""Architecture diagrams as SVG, drawn from the lecture's layers of a real `nn.Module`.

Nothing is drawn by hand: every box is a `LectureLayer` (`cnnarch.lecture.layers`) of an
analyzed module, with the output shape, weights and MACs the analyzer counted, so a change to a
model changes its picture. The layout follows what the analysis shows:

- a module whose outputs are concatenated (`cat()`, an Inception module) is drawn as parallel
  branches, one per child it calls, merged by "concat";
- a module that adds (`add()`, a residual block) is drawn as its main path beside its shortcut
  (the child named `downsample` or `shortcut`: a projection; none: the identity);
- AlexNet's towers side by side, with the exchanges where a `cat()` joins them;
- a whole network as columns that each end at a pooling layer (VGG's five stages), with
  training-only heads apart, and as a strip whose segments are sized by MACs and by memory.

Pure Python: the SVG is text (every label escaped by `_esc`), a `Diagram`: a report `Picture`
that the page shows inline and writes as a file, and that Jupyter shows as itself.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from torch import nn

from cnnarch import units
from cnnarch.errors import CnnarchError
from cnnarch.lecture.layers import BYTES_PER_VALUE, LectureLayer, LectureLayers, lecture_layers
from cnnarch.report.document import Picture

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
SHORTCUT_NAMES = ("downsample", "shortcut")

BOX_W, BOX_H = 196, 60
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


def box(x: float, y: float, layer: LectureLayer, kind: str | None = None) -> str:
    """One layer as a box: name, output shape (H×W×C), weights and MACs for one image."""
    kind = kind or color_kind(layer)
    color = KIND_COLORS[kind]
    dash = ' stroke-dasharray="5 3"' if layer.training_only else ""
    name = layer.name.replace(" (training only)", "")
    cost = f"{units.prefixed(layer.weights)} weights · {units.prefixed(layer.macs)} MACs"
    return (
        f'<g class="layer" data-kind="{kind}" data-params="{layer.params}" '
        f'data-weights="{layer.weights}" data-macs="{layer.macs}" data-memory="{layer.memory}" '
        f'data-path="{_esc(layer.paths[0])}" data-tip="" tabindex="-1" role="img" '
        f'aria-label="{_esc(tooltip(layer))}">'
        f"<title>{_esc(tooltip(layer))}</title>"
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="5" '
        f'fill="{color}" fill-opacity="0.14" stroke="{color}" stroke-width="1.6"{dash}/>'
        f'<rect x="{x:.1f}" y="{y:.1f}" width="6" height="{BOX_H}" fill="{color}"/>'
        + _text(x + 13, y + 18, name, 12.5, bold=True)
        + _text(x + 13, y + 35, f"out {shape_text(layer)}", 11)
        + _text(x + 13, y + 51, cost, 10.5, muted=True)
        + "</g>"
    )


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


def _first_name(layer: LectureLayer) -> str:
    return layer.paths[0].split(".", 1)[0]


def block_lanes(layers: LectureLayers) -> tuple[str, list[tuple[str, list[LectureLayer]]]]:
    """How a block's layers run: ("concat", branches), ("add", [main, shortcut]) or
    ("chain", [all]). A branch is the layers under one child the block calls."""
    ops = {path.rsplit(".", 1)[-1] for path in layers.artifacts}
    if "cat()" in ops:
        lanes: dict[str, list[LectureLayer]] = {}
        for layer in layers.layers:
            lanes.setdefault(_first_name(layer), []).append(layer)
        return "concat", list(lanes.items())
    if "add()" in ops or "add_()" in ops:
        main = [x for x in layers.layers if _first_name(x) not in SHORTCUT_NAMES]
        shortcut = [x for x in layers.layers if _first_name(x) in SHORTCUT_NAMES]
        return "add", [("main path", main), ("shortcut", shortcut)]
    return "chain", [("", list(layers.layers))]


def lanes_panel(
    layers: LectureLayers, input_shape: Sequence[int], heading: str
) -> tuple[Panel, list[str]]:
    """A block drawn from its layers: the input on top, its lanes side by side, the merge."""
    merge, lanes = block_lanes(layers)
    n = len(lanes)
    width = n * BOX_W + (n - 1) * GAP_X
    c, *hw = input_shape
    parts = [_text(0, 12, heading, 13, bold=True)]
    top = 22
    parts.append(_label_box(0, top, width, f"input {units.shape((*hw, c), '×')}"))
    y0 = top + 26 + GAP_Y
    deepest = max(len(lane) for _, lane in lanes)
    bottom = y0 + 16 + deepest * (BOX_H + GAP_Y)
    merge_y = bottom + 58
    kinds: list[str] = []
    for i, (label, lane) in enumerate(lanes):
        x = i * (BOX_W + GAP_X)
        cx = x + BOX_W / 2
        is_shortcut = merge == "add" and label == "shortcut"
        parts.append(_text(cx, y0 + 8, label if merge != "chain" else "", 11, anchor="middle"))
        parts.append(_arrow(cx, top + 26, cx, y0 + 16))
        y = y0 + 16
        for j, layer in enumerate(lane):
            kind = "shortcut" if is_shortcut else color_kind(layer)
            kinds.append(kind)
            parts.append(box(x, y, layer, kind))
            y += BOX_H
            if j < len(lane) - 1:
                parts.append(_arrow(cx, y, cx, y + GAP_Y))
            y += GAP_Y
        end = y - GAP_Y if lane else y0 + 16
        if not lane:  # an identity shortcut: the input itself
            kinds.append("shortcut")
            parts.append(_text(cx, (y0 + bottom) / 2, "identity (no weights)", 11, anchor="middle"))
        line = KIND_COLORS["shortcut"] if is_shortcut and not lane else "#59636e"
        parts.append(f'<path d="M{cx:.1f},{end:.1f} V{bottom:.1f}" stroke="{line}" fill="none"/>')
        if lane and merge == "concat":  # what each branch adds to the concatenation
            weights = units.prefixed(sum(x.weights for x in lane))
            shape = f"{shape_text(lane[-1])} · {weights} weights"
            parts.append(_text(cx, bottom + 12, shape, 10.5, muted=True, anchor="middle"))
            macs = f"{units.prefixed(sum(x.macs for x in lane))} MACs"
            parts.append(_text(cx, bottom + 25, macs, 10.5, muted=True, anchor="middle"))
        parts.append(_arrow(cx, bottom + 30, width / 2, merge_y - 13))
    symbol = {"concat": "C", "add": "+", "chain": "→"}[merge]
    if merge != "chain":
        parts.append(_node(width / 2, merge_y, symbol))
    out = layers.layers[-1] if merge != "concat" else None
    out_text = (
        f"output {shape_text(out)}" if out is not None else f"concat: output {_concat_shape(lanes)}"
    )
    parts.append(_label_box(0, merge_y + 20, width, out_text))
    parts.append(
        _text(
            width / 2,
            merge_y + 64,
            f"block total: {_total(layers.layers)}",
            11.5,
            bold=True,
            anchor="middle",
        )
    )
    return Panel(width, merge_y + 72, "".join(parts)), kinds


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
    """Blocks side by side, each (heading, module, input C×H×W) analyzed on meta tensors."""
    panels, kinds = [], []
    for heading, module, input_shape in blocks:
        panel, used = lanes_panel(analyze_block(module, input_shape), input_shape, heading)
        panels.append(panel)
        kinds += used
    return diagram(name, title, caption, panels, kinds)


def analyze_block(module: nn.Module, input_shape: Sequence[int]) -> LectureLayers:
    """The lecture's layers of `module` for one input of `input_shape` (C×H×W)."""
    from cnnarch.analysis import analyze

    return lecture_layers(module, analyze(module, tuple(input_shape)), keep_pools=True)


# -- whole networks ------------------------------------------------------------------------------


def stages(layers: Sequence[LectureLayer]) -> list[list[LectureLayer]]:
    """The inference layers in columns, each ending at a pooling layer (VGG's five stages)."""
    columns: list[list[LectureLayer]] = [[]]
    for layer in layers:
        if layer.training_only:
            continue
        columns[-1].append(layer)
        if layer.kind == "pool":
            columns.append([])
    return [c for c in columns if c]


def network_panel(layers: LectureLayers) -> tuple[Panel, list[str]]:
    """The network in columns (`stages`), read top to bottom, left to right; the
    training-only heads in a last column, each naming the layer it reads."""
    columns = stages(layers.layers)
    heads = [x for x in layers.layers if x.training_only]
    parts, kinds = [], []
    tallest = max(len(c) for c in columns)
    height = 30 + tallest * (BOX_H + GAP_Y)
    x = 0.0
    previous: tuple[float, float] | None = None
    for number, column in enumerate(columns, 1):
        ends_in_pool = column[-1].kind == "pool"
        label = f"stage {number}" if ends_in_pool else "head"
        parts.append(_text(x + BOX_W / 2, 12, label, 12, bold=True, anchor="middle"))
        y = 30.0
        for layer in column:
            if previous is not None:
                parts.append(_route(previous, (x + BOX_W / 2, y), x - GAP_X / 2))
            kinds.append(color_kind(layer))
            parts.append(box(x, y, layer))
            previous = (x + BOX_W / 2, y + BOX_H)
            y += BOX_H + GAP_Y
        x += BOX_W + GAP_X
    if heads:
        parts.append(_text(x + BOX_W / 2, 12, "training only", 12, bold=True, anchor="middle"))
        y = 30.0
        for head in heads:
            kinds.append("training only")
            parts.append(box(x, y, head))
            source = _head_source(layers.layers, head)
            parts.append(_text(x, y + BOX_H + 13, f"reads {source}", 10.5, muted=True))
            y += BOX_H + GAP_Y + 8
        height = max(height, y)
        x += BOX_W + GAP_X
    return Panel(x - GAP_X, height, "".join(parts)), kinds


def _route(start: tuple[float, float], end: tuple[float, float], between: float) -> str:
    """An arrow from one box to the next: straight down in a column, else down, across to
    the gap between the columns, up above them and across to the next column's first box."""
    (x1, y1), (x2, y2) = start, end
    if x1 == x2:
        return _arrow(x1, y1, x2, y2)
    d = f"M{x1:.1f},{y1:.1f} V{y1 + 10:.1f} H{between:.1f} V{y2 - 10:.1f} H{x2:.1f} V{y2:.1f}"
    return (
        f'<path d="{d}" stroke="#59636e" stroke-width="1.2" fill="none" marker-end="url(#arrow)"/>'
    )


def _head_source(layers: Sequence[LectureLayer], head: LectureLayer) -> str:
    """The layer a training-only head is attached after (it is listed right after it)."""
    index = layers.index(head)
    before = [x for x in layers[:index] if not x.training_only]
    return before[-1].name if before else "the input"


def towers_panel(layers: LectureLayers, summary: Any) -> tuple[Panel, list[str]]:
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
    from dataclasses import replace

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


def network_diagrams(layers: LectureLayers, summary: Any) -> list[Diagram]:
    """A model's pictures: its layers (towers where it has towers) and its strip."""
    name = layers.model
    towers = any(p.startswith("towers.") for x in layers.layers for p in x.paths)
    panel, kinds = towers_panel(layers, summary) if towers else network_panel(layers)
    shape = "towers" if towers else f"per {layers.level}"
    diagrams = [
        diagram(
            f"diagram_{name}",
            f"{name}: the network, {shape}",
            "Each box is one layer as the lecture counts it, with its output (H×W×C) and its "
            "weights and multiply-accumulates for one image; hover a box for the exact "
            "values and the modules behind it.",
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


def submodule_input(summary: Any, path: str) -> tuple[int, ...]:
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
    model: nn.Module, summary: Any, path: str, heading: str
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
    layers = _drawable(analyze_block(module, input_shape), f"{summary.model_name}.{path}")
    return lanes_panel(layers, input_shape, heading)


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


def resnet_block_diagrams(
    models: dict[str, tuple[nn.Module, Any]],
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
            panel, used = model_block_panel(model, summary, path, f"{name} {path}: {heading}")
            panels.append(panel)
            kinds += used
        title = f"The {kind} block ({used_in}): identity and projection shortcuts"
        caption = (
            f"Blocks `{blocks[0][0]}` and `{blocks[1][0]}` of {name}, analyzed at the input "
            "they get in the network. The shortcut adds the block's input (identity) or a 1x1 "
            "projection of it, where the shape changes, to the main path's output (+); "
            "batch-norm and ReLU are folded into the conv before them."
        )
        diagrams.append(diagram(f"diagram_{kind}_block", title, caption, panels, kinds))
    return diagrams
