"""A network's layers as the lecture counts them: CONV3-64, POOL2, FC-4096, inception (3a),
conv2_x.

The analyzer records every module and function call; the slides show one line per layer, with
batch-norm, ReLU and dropout folded into the layer before them, an Inception module or a
residual block as one unit, and the towers of AlexNet as one layer each (CONV1 has 96 filters,
48 per GPU). A layer's memory is the size of its output, as on the VGG16 slide.

Steps of an implementation that are not layers (the exchange of maps between AlexNet's towers,
`cat()`; dense evaluation's average over windows, `mean()`) are listed apart in `artifacts`.
Deep ResNets are shown stage by stage (conv2_x ... conv5_x) so that they stay readable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from cnnarch import units

# Layers that start a new line of the lecture's table; anything else folds into the line before.
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOL = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)
_NORM = (nn.LocalResponseNorm,)
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
# A ResNet with more blocks than this is shown stage by stage rather than block by block.
MAX_BLOCKS = 16
BYTES_PER_VALUE = 4  # float32: the lecture's memory is values x 4 bytes
_TOWER = re.compile(r"^towers\.\d+\.")  # AlexNet: one layer across both towers


@dataclass(frozen=True)
class Part:
    """A conv, pooling or linear layer inside a composite layer (a block, a module, a head)."""

    path: str  # the module's path (a functional pooling call's row path ends in "()")
    name: str  # CONV3-64, POOL3, FC-1000
    geometry: str  # "3×3, stride 2, pad 1"; "" for linear layers and functional calls
    stride: int = 1  # the largest of its strides
    weights: int = 0  # parameters with more than one dimension


@dataclass(frozen=True)
class LectureLayer:
    """One line of the lecture's table: what it is, its output and what it holds, per image."""

    name: str  # CONV3-64, POOL2, FC-4096, NORM, inception (3a), conv2_x, ...
    kind: str  # conv, pool, norm, fc, module, block, stage
    paths: tuple[str, ...]  # the modules behind it
    output: tuple[int, ...]  # C×H×W (or features) of one image; towers' channels added
    memory: int  # values in its output, one image
    params: int  # every parameter (weights, biases, batch-norm)
    weights: int  # parameters with more than one dimension (the slides' count)
    macs: int  # one image
    training_only: bool = False
    geometry: str = ""  # a conv or pooling layer's kernel, stride, padding: "7×7, stride 2, pad 3"
    parts: tuple[Part, ...] = ()  # a composite layer's conv, pooling and linear layers

    @property
    def output_hwc(self) -> tuple[int, ...]:
        """The output as the slides write it: H×W×C (features alone for FC layers)."""
        return (*self.output[1:], self.output[0]) if len(self.output) == 3 else self.output


@dataclass
class LectureLayers:
    model: str
    layers: list[LectureLayer]
    artifacts: list[str] = field(default_factory=list)  # calls shown as no layer
    level: str = "layer"  # "layer", "block" or "stage"

    @property
    def inference(self) -> list[LectureLayer]:
        return [layer for layer in self.layers if not layer.training_only]


def _weights(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.dim() > 1)


def _per_image(shape: Sequence[int], batch: int) -> tuple[int, ...]:
    """One image's part of an output shape (batch first; AlexNet's FC outputs carry a window
    axis, (N, windows, features), whose windows are all the same image's)."""
    rest = tuple(int(d) for d in shape[1:])
    if len(rest) == 2:  # (windows, features)
        return (rest[0] * rest[1],) if rest[0] > 1 else (rest[1],)
    return rest if rest else (int(shape[0]) // batch,)


def _kernel(module: nn.Module) -> str:
    size = module.kernel_size
    size = size if isinstance(size, tuple) else (size,)
    return str(size[0]) if len(set(size)) == 1 else units.shape(size)


def _leaf_name(module: nn.Module) -> tuple[str, str] | None:
    """(name, kind) of a module that starts a layer; None for one that folds into the last."""
    if isinstance(module, _CONV):
        return f"CONV{_kernel(module)}-{module.out_channels}", "conv"
    if isinstance(module, nn.Linear):
        return f"FC-{module.out_features}", "fc"
    if isinstance(module, _NORM):
        return "NORM", "norm"
    if isinstance(module, _POOL):
        prefix = "AVGPOOL" if "Avg" in type(module).__name__ else "POOL"
        if "Adaptive" in type(module).__name__:
            return prefix, "pool"
        return f"{prefix}{_kernel(module)}", "pool"
    return None


def _sides(value: int | str | tuple[int, ...] | None) -> str:
    """A size as the slides write it: 3 for 3x3 or (3, 3), "1×7" where the sides differ."""
    if isinstance(value, str) or value is None:  # padding="same"
        return str(value)
    sides = value if isinstance(value, tuple) else (value,)
    return str(sides[0]) if len(set(sides)) == 1 else units.shape(sides, "×")


def geometry(module: nn.Module) -> str:
    """Kernel, stride and padding of a conv or pooling layer (or of a conv wrapper's conv):
    "3×3, stride 2, pad 1"; "" for any other module.

    Args:
        module: a module.
    """
    layer = module if isinstance(module, _CONV + _POOL) else _single_conv(module)
    if layer is None:
        return ""
    if "Adaptive" in type(layer).__name__:
        return f"adaptive, to {_sides(layer.output_size)}"
    kernel = layer.kernel_size if isinstance(layer.kernel_size, tuple) else (layer.kernel_size,) * 2
    stride = layer.stride if layer.stride is not None else layer.kernel_size  # pools' default
    return f"{units.shape(kernel, '×')}, stride {_sides(stride)}, pad {_sides(layer.padding)}"


def _single_conv(module: nn.Module) -> nn.Module | None:
    """The conv of a conv wrapper (conv + BN + ReLU as one module), else None."""
    convs = [m for m in module.modules() if isinstance(m, _CONV)]
    others = [m for m in module.modules() if isinstance(m, nn.Linear | nn.LocalResponseNorm)]
    return convs[0] if len(convs) == 1 and not others and len(list(module.children())) else None


def _unit_name(path: str, module: nn.Module) -> tuple[str, str]:
    """(name, kind) of a composite module shown as one line."""
    leaf = path.rsplit(".", 1)[-1]
    found = re.fullmatch(r"(?:inception|Mixed_)(\d[a-e])", leaf)
    if found:
        return f"inception ({found.group(1)})", "module"
    conv = _single_conv(module)
    if conv is not None:
        return _leaf_name(conv)  # type: ignore[return-value]
    parent = path.rsplit(".", 2)[-2] if path.count(".") else ""
    if leaf.isdigit() and parent:
        return _numbered_name(parent, int(leaf)), "module"
    return leaf, "module"


def _numbered_name(parent: str, index: int) -> str:
    """A block known only by its place in a sequence, named by the sequence in words:
    inception_resnet_a.0 is "Inception-ResNet-A 1", stage1.2 is "stage 1, block 3"."""
    found = re.fullmatch(r"([a-z]+)(\d+)", parent)
    if found:
        return f"{found.group(1)} {found.group(2)}, block {index + 1}"
    words = [w.upper() if len(w) == 1 else w.capitalize() for w in parent.split("_")]
    return "-".join(words).replace("Resnet", "ResNet") + f" {index + 1}"


def stage_name(path: str) -> str | None:
    """ResNet stages: layer1 is the paper's conv2_x."""
    found = re.fullmatch(r"layer(\d+)", path)
    return f"conv{int(found.group(1)) + 1}_x" if found else None


def block_name(stage: str, index: int) -> str:
    """A ResNet stage's block by the paper's name: block 0 of conv2_x is conv2_1."""
    return f"{stage.removesuffix('x')}{index + 1}"


@dataclass
class _Open:
    """A layer being gathered: its first call names it, the following folded calls add to it."""

    name: str
    kind: str
    key: str
    rows: list[Any]
    training_only: bool = False


def lecture_layers(
    model: nn.Module,
    summary: Any,
    training: Any | None = None,
    *,
    max_blocks: int = MAX_BLOCKS,
    keep_pools: bool = False,
) -> LectureLayers:
    """The lecture's layers of `model` from its forward `summary`.

    A pooling layer that keeps its input's shape (stride 1) folds into the layer before,
    unless `keep_pools` (a diagram of a block draws the pool that starts a branch).

    With `training` (a summary of a training pass), modules that run only in training (the
    auxiliary classifiers of GoogLeNet and Inception-v3) are added, marked `training_only`,
    after the module they hang on.
    """
    batch = summary.batch_size
    rows = summary.rows
    by_depth1 = [r for r in rows if r.depth == 1]
    blocks = sum(
        len(list(model.get_submodule(r.path).children()))
        for r in by_depth1
        if stage_name(r.path) and r.kind == "module"
    )
    by_stage = blocks > max_blocks
    opened: list[_Open] = []
    artifacts: list[str] = []
    current: list[_Open] = []  # the layer that folded calls join (the last one started)

    def start(name: str, kind: str, key: str, row: Any) -> None:
        same = next((o for o in opened if o.key == key), None)
        if same is not None:  # the other tower's half of a layer already seen
            same.rows.append(row)
        else:
            same = _Open(name, kind, key, [row])
            opened.append(same)
        current[:] = [same]

    def visit(row: Any) -> None:
        if row.reused:
            return
        if row.kind == "op":
            if row.depth == 1 or _TOWER.match(row.path) is None:
                artifacts.append(row.path)
            return
        module = model.get_submodule(row.path)
        key = _TOWER.sub("", row.path)
        stage = stage_name(row.path)
        if stage is not None and isinstance(module, _CONTAINERS):
            if by_stage:
                start(stage, "stage", key, row)
            else:
                for i, child in enumerate(_children(rows, row)):
                    start(block_name(stage, i), "block", _TOWER.sub("", child.path), child)
            return
        if isinstance(module, _CONTAINERS):
            for child in _children(rows, row):
                visit(child)
            return
        if row.is_leaf:
            named = _leaf_name(module)
            unchanged = row.input_shapes[:1] == row.output_shapes[:1]
            if named is None or (named[1] == "pool" and unchanged and not keep_pools):
                if current:
                    current[0].rows.append(row)  # BN, ReLU, dropout: part of the layer before
                return
            start(*named, key, row)
            return
        start(*_unit_name(row.path, module), key, row)

    for row in by_depth1:
        visit(row)
    layers = [_close(model, o, batch, rows) for o in opened]
    if training is not None:
        layers = _with_training_only(model, layers, summary, training)
    level = "stage" if by_stage else ("block" if blocks else "layer")
    return LectureLayers(summary.model_name, layers, artifacts, level)


def _children(rows: Sequence[Any], parent: Any) -> list[Any]:
    """The calls made directly inside `parent`, in order."""
    prefix = f"{parent.path}."
    return [r for r in rows if r.depth == parent.depth + 1 and r.path.startswith(prefix)]


def _close(model: nn.Module, layer: _Open, batch: int, rows: Sequence[Any]) -> LectureLayer:
    # Split over AlexNet's towers, a layer's output is both towers' outputs side by side.
    # The output is the last call's of each tower that keeps the layer's own layout (a
    # folded flatten or dropout after it only reshapes the same values).
    rank = len(layer.rows[0].output_shapes[0])
    towers: dict[str, Any] = {}
    for row in layer.rows:
        found = _TOWER.match(row.path)
        if len(row.output_shapes[0]) == rank:
            towers[found.group(0) if found else ""] = row
    halves = [_per_image(r.output_shapes[0], batch) for r in towers.values()]
    output = (sum(h[0] for h in halves), *halves[0][1:])
    paths = tuple(dict.fromkeys(r.path for r in layer.rows))
    first = model.get_submodule(layer.rows[0].path)
    composite = layer.kind in ("module", "block", "stage")
    return LectureLayer(
        name=_tower_name(layer.name, output) if len(towers) > 1 else layer.name,
        kind=layer.kind,
        paths=paths,
        output=output,
        memory=math.prod(output),
        params=sum(int(r.params) for r in layer.rows),
        weights=sum(_weights(model.get_submodule(p)) for p in paths),
        macs=sum(int(r.macs) for r in layer.rows) // batch,
        training_only=layer.training_only,
        geometry="" if composite else geometry(first),
        parts=_parts(model, rows, paths) if composite else (),
    )


def _parts(model: nn.Module, rows: Sequence[Any], paths: Sequence[str]) -> tuple[Part, ...]:
    """The conv, pooling and linear layers called inside the modules at `paths`, in call
    order (a functional pooling call too, without its geometry)."""
    prefixes = tuple(f"{p}." for p in paths)
    found = []
    for row in rows:
        if row.reused or not row.is_leaf or not row.path.startswith(prefixes):
            continue
        if row.kind == "op":
            if "pool" in row.type:
                found.append(Part(row.path, "AVGPOOL" if "avg" in row.type else "POOL", ""))
            continue
        module = model.get_submodule(row.path)
        named = _leaf_name(module)
        if named is not None:
            stride = getattr(module, "stride", 1) or 1
            stride = max(stride) if isinstance(stride, tuple) else stride
            found.append(Part(row.path, named[0], geometry(module), stride, _weights(module)))
    return tuple(found)


def _tower_name(name: str, output: tuple[int, ...]) -> str:
    """CONV11-48 per tower is CONV11-96 for the whole layer."""
    head, _, width = name.rpartition("-")
    return f"{head}-{output[0]}" if head and width.isdigit() else name


def _with_training_only(
    model: nn.Module, layers: list[LectureLayer], summary: Any, training: Any
) -> list[LectureLayer]:
    """Insert the modules that only a training pass calls after the layer whose output they
    read (found from the pass's data flow), named as the lecture names them: auxiliary
    classifiers (numbered where there are several)."""
    seen = {r.path for r in summary.rows if r.depth == 1}
    heads: list[tuple[str, Any]] = []  # (the call whose output it reads, the head's call)
    made_by: dict[int, str] = {}  # tensor number -> the last call that returned it
    for row in training.rows:
        if row.depth == 1 and row.kind == "module" and row.path not in seen:
            heads.append((next((made_by[t] for t in row.input_ids if t in made_by), ""), row))
        for tensor in row.output_ids:
            made_by[tensor] = row.path
    out = list(layers)
    for number, (source, row) in enumerate(heads, start=1):
        name = "aux. classifier" + (f" {number}" if len(heads) > 1 else "")
        extra = _close(
            model,
            _Open(f"{name} (training only)", "module", row.path, [row], True),
            training.batch_size,
            training.rows,
        )
        at = next((i + 1 for i, lay in enumerate(out) if within(source, lay.paths)), len(out))
        out.insert(at, extra)
    return out


def within(path: str, paths: Sequence[str]) -> bool:
    """Whether the call at `path` is one of `paths` or runs inside one of them.

    Args:
        path: a row's path.
        paths: module paths.
    """
    return any(path == p or path.startswith(f"{p}.") for p in paths)
