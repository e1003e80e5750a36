"""`summary`: torchinfo's `summary(model, input_size=..., ...)`, with its signature and its
conventions, answered by the analyzer (on meta: no forward pass on a device, no weights
touched) and returning a cnnarch `Summary` that prints like torchinfo's table.

torchinfo's conventions kept: `input_size` includes the batch (a list of sizes for several
inputs); `dtypes` gives each input's dtype (float32 by default); `batch_dim` inserts a batch of
1 at that position; `mode` is "eval" by default; the table shows modules to `depth` 3 with the
columns `col_names`; `verbose` 1 prints it (0 in an interactive session, as torchinfo does).
The figures are cnnarch's: its parameter count (torchinfo's but for tied weights, counted once)
and its MACs (convolutions and matrix products only, where torchinfo's mult-adds also count
biases and normalization parameters; docs/from-torchinfo.md says where they agree), and its
memory (the analyzer's exact figures, under names that say what they are).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from cnnarch.errors import CnnarchValueError

if TYPE_CHECKING:
    from cnnarch.analysis.summary import LayerRow, Summary

# torchinfo's columns, in its order, with its headers.
HEADERS = {
    "kernel_size": "Kernel Shape",
    "input_size": "Input Shape",
    "output_size": "Output Shape",
    "num_params": "Param #",
    "params_percent": "Param %",
    "mult_adds": "Mult-Adds",
    "trainable": "Trainable",
}
NEEDS_INPUT = frozenset({"input_size", "output_size", "mult_adds"})
ROW_SETTINGS = ("ascii_only", "depth", "var_names", "hide_recursive_layers")
MODES = ("train", "eval")
LAYER_NAME_WIDTH = 40  # torchinfo's first column, widened in steps of 5 for long names


@dataclass(frozen=True)
class TorchinfoStyle:
    """How a `Summary` prints as torchinfo's table: depth, columns and row settings, as
    `torchinfo.summary` takes them; the kernel sizes of the modules that have one (module
    path -> size), for the "kernel_size" column."""

    depth: int = 3
    col_names: tuple[str, ...] = ("output_size", "num_params")
    col_width: int = 25
    row_settings: frozenset[str] = frozenset({"depth"})
    kernel_sizes: Mapping[str, Any] = field(default_factory=dict)


def summary(
    model: nn.Module,
    input_size: Sequence[Any] | None = None,
    input_data: Any = None,
    batch_dim: int | None = None,
    cache_forward_pass: bool | None = None,
    col_names: Iterable[str] | None = None,
    col_width: int = 25,
    depth: int = 3,
    device: torch.device | str | None = None,
    dtypes: Sequence[torch.dtype] | None = None,
    mode: str | None = None,
    row_settings: Iterable[str] | None = None,
    verbose: int | None = None,
    **kwargs: Any,
) -> Summary:
    """torchinfo's `summary`, same arguments: the model's table and totals, from the analyzer.

    Args:
        model: any `nn.Module`.
        input_size: the input's shape, batch included ((1, 3, 224, 224)), or a list of shapes
            for several inputs.
        input_data: instead of `input_size`: the inputs (a tensor, a list of positional
            inputs, or a dict of keyword inputs); only their shapes and dtypes are used
            unless an op needs their values.
        batch_dim: where to insert a batch of 1 into each `input_size` (None: the sizes have
            their batch already).
        cache_forward_pass: accepted for torchinfo's sake; the analysis is fast, nothing is
            cached.
        col_names: the columns shown, of "input_size", "output_size", "num_params",
            "params_percent", "kernel_size", "mult_adds", "trainable" (default output size
            and params; params alone without an input).
        col_width: width of each column.
        depth: the deepest module level shown (the totals always cover the whole model).
        device: where the model would run. Nothing runs there: the analysis is on meta and
            needs no GPU, so "cuda" works on a machine without one; the figures are those of
            the model's tensors, which are the same on every device (the CUDA allocator's
            rounding and workspaces are not in them: see `cnnarch.plan` for those).
        dtypes: each input's dtype for `input_size` (default float32).
        mode: "eval" (default) or "train" (the forward in training mode; the summary then
            also holds a training step's memory).
        row_settings: of "ascii_only", "depth", "var_names", "hide_recursive_layers".
        verbose: 0 prints nothing, 1 or 2 print the table (default: 1, or 0 in an
            interactive session).
        **kwargs: keyword inputs of the forward, with `input_data` given as a dict.
    """
    from cnnarch.analysis.analyzer import analyze

    del cache_forward_pass  # nothing to cache
    if not isinstance(model, nn.Module):
        raise CnnarchValueError(f"summary takes an nn.Module, got {type(model).__name__}")
    given = input_size is not None or input_data is not None
    style = _style(model, given, col_names, col_width, depth, row_settings)
    verbose = _check_verbose(verbose)
    _check_device(device)
    if mode not in (None, *MODES):
        raise CnnarchValueError(f"mode must be 'train' or 'eval', got {mode!r}")
    if input_size is not None and input_data is not None:
        raise CnnarchValueError("give either input_size or input_data, not both")
    inputs = None
    if input_size is not None:
        inputs = _inputs_of_sizes(input_size, batch_dim, dtypes)
    elif input_data is not None:
        inputs = _as_tensors(input_data)
    if kwargs:
        if inputs is not None and not isinstance(inputs, Mapping):
            raise CnnarchValueError(
                f"keyword inputs ({', '.join(kwargs)}) beside positional ones: give every "
                f"input by keyword, in input_data as a dict"
            )
        inputs = {**(inputs or {}), **kwargs}
    result = analyze(model, inputs=inputs, train=mode == "train")
    result = dataclasses.replace(result, table_style=style)
    if verbose:
        print(result)
    return result


def _style(
    model: nn.Module,
    given: bool,
    col_names: Iterable[str] | None,
    col_width: int,
    depth: int,
    row_settings: Iterable[str] | None,
) -> TorchinfoStyle:
    columns = (
        tuple(col_names)
        if col_names is not None
        else (("output_size", "num_params") if given else ("num_params",))
    )
    unknown = [c for c in columns if c not in HEADERS]
    if unknown:
        raise CnnarchValueError(
            f"unknown column {unknown[0]!r}; the columns are: {', '.join(HEADERS)}"
        )
    if not given and NEEDS_INPUT & set(columns):
        needing = ", ".join(c for c in columns if c in NEEDS_INPUT)
        raise CnnarchValueError(f"the columns {needing} need input_size or input_data")
    settings = frozenset(row_settings) if row_settings is not None else frozenset({"depth"})
    if settings - set(ROW_SETTINGS):
        raise CnnarchValueError(
            f"unknown row setting {sorted(settings - set(ROW_SETTINGS))[0]!r}; the row "
            f"settings are: {', '.join(ROW_SETTINGS)}"
        )
    if isinstance(col_width, bool) or not isinstance(col_width, int) or col_width <= 0:
        raise CnnarchValueError(f"col_width must be a positive integer, got {col_width!r}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise CnnarchValueError(f"depth must be 0 or more, got {depth!r}")
    kernels = {}
    if "kernel_size" in columns:
        kernels = {
            path: list(k) if isinstance(k, Iterable) else k
            for path, m in model.named_modules()
            if (k := getattr(m, "kernel_size", None)) is not None
        }
    return TorchinfoStyle(depth, columns, col_width, settings, kernels)


def _check_verbose(verbose: int | None) -> int:
    if verbose is None:  # torchinfo's default: quiet where the result displays itself
        return 0 if getattr(sys, "ps1", None) else 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise CnnarchValueError(
            f"verbose must be 0 (quiet), 1 (print) or 2 (print), got {verbose!r}"
        )
    return verbose


def _check_device(device: torch.device | str | None) -> None:
    if device is None or isinstance(device, torch.device):
        return
    try:
        torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise CnnarchValueError(f"device {device!r} is not a torch device") from err


def _sizes(input_size: Any) -> list[tuple[int, ...]]:
    """torchinfo's reading of `input_size`: one size (a tuple, a list of ints, a torch.Size)
    or a list (or tuple) of sizes."""
    if not isinstance(input_size, (list, tuple)) or not input_size:
        raise CnnarchValueError(
            f"input_size is a shape with the batch, like (1, 3, 224, 224), or a list of "
            f"shapes, got {input_size!r}"
        )
    several = all(isinstance(s, (list, tuple)) for s in input_size)
    sizes = [tuple(s) for s in input_size] if several else [tuple(input_size)]
    for size in sizes:
        if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in size):
            raise CnnarchValueError(f"input sizes must be positive integers, got {size!r}")
    return sizes


def _inputs_of_sizes(
    input_size: Any, batch_dim: int | None, dtypes: Sequence[torch.dtype] | None
) -> tuple[torch.Tensor, ...]:
    sizes = _sizes(input_size)
    if dtypes is None:
        dtypes = [torch.float32] * len(sizes)
    if len(dtypes) != len(sizes) or not all(isinstance(d, torch.dtype) for d in dtypes):
        raise CnnarchValueError(
            f"dtypes needs one torch dtype per input size ({len(sizes)}), got {dtypes!r}"
        )
    if batch_dim is not None:
        if isinstance(batch_dim, bool) or not isinstance(batch_dim, int):
            raise CnnarchValueError(f"batch_dim must be an integer, got {batch_dim!r}")
        sizes = [_with_batch(size, batch_dim) for size in sizes]
    return tuple(
        torch.empty(size, dtype=dtype, device="meta")
        for size, dtype in zip(sizes, dtypes, strict=True)
    )


def _with_batch(size: tuple[int, ...], batch_dim: int) -> tuple[int, ...]:
    """`size` with a batch of 1 inserted at `batch_dim`, as `Tensor.unsqueeze` inserts it."""
    position = batch_dim if batch_dim >= 0 else len(size) + 1 + batch_dim
    if not 0 <= position <= len(size):
        raise CnnarchValueError(f"batch_dim {batch_dim} is out of range for the size {size}")
    return (*size[:position], 1, *size[position:])


def _as_tensors(input_data: Any) -> Any:
    """`input_data` as `analyze(inputs=...)` takes it: numpy arrays as tensors; a list of
    positional inputs as a tuple."""

    def tensor(value: Any) -> Any:
        return torch.from_numpy(value) if isinstance(value, np.ndarray) else value

    if isinstance(input_data, Mapping):
        return {k: tensor(v) for k, v in input_data.items()}
    if isinstance(input_data, (list, tuple)):
        return tuple(tensor(v) for v in input_data)
    return tensor(input_data)


# -- the table -----------------------------------------------------------------------------------
def torchinfo_table(summary: Summary, style: TorchinfoStyle) -> str:
    """`summary` as torchinfo prints its own: rows of module calls to `style.depth`, then the
    totals, between rules of "="; the memory lines are the analyzer's, named for what they
    are.

    Args:
        summary: what the analyzer found.
        style: depth, columns and row settings.
    """
    rows = [row for row in summary.rows if row.kind == "module"]
    leaves = _module_leaves(rows)
    names = _layer_names(rows, style)
    width = LAYER_NAME_WIDTH
    longest = max(
        (len(n) + row.depth * 5 + 1 for n, row in zip(names, rows, strict=True)), default=0
    )
    if longest >= width:
        width = math.ceil(longest / 5) * 5
    rule = "=" * (len(style.col_names) * style.col_width + width)

    def line(name: str, values: Mapping[str, str]) -> str:
        cells = "".join(f"{values.get(c, ''):<{style.col_width}} " for c in style.col_names)
        return f"{name:<{width}} {cells}".rstrip()

    header = "Layer (type"
    header += " (var_name)" if "var_names" in style.row_settings else ""
    header += ":depth-idx)" if "depth" in style.row_settings else ")"
    lines = [rule, line(header, HEADERS), rule]
    for index, (row, name) in enumerate(zip(rows, names, strict=True)):
        if row.depth > style.depth or (
            row.reused and "hide_recursive_layers" in style.row_settings
        ):
            continue
        cells = _cells(summary, rows, index, leaves[index], row.depth == style.depth, style)
        lines.append(line(f"{_indent(row.depth, style)}{name}", cells))
    lines += [
        rule,
        f"Total params: {summary.total_params:,}",
        f"Trainable params: {summary.trainable_params:,}",
        f"Non-trainable params: {summary.frozen_params:,}",
    ]
    if summary.mode != "parameters":
        lines += [f"Total mult-adds{_scaled(summary.total_macs)}", rule]
        lines += [
            f"Input size (MB): {summary.input_bytes / 1e6:0.2f}",
            f"Forward pass activations (MB): {summary.activation_bytes / 1e6:0.2f}",
            f"Params size (MB): {summary.param_bytes / 1e6:0.2f}",
            f"Inference peak (MB): {summary.inference_peak_bytes / 1e6:0.2f}",
        ]
        if summary.training is not None:
            lines.append(f"Training step peak (MB): {summary.training.peak_bytes / 1e6:0.2f}")
    lines.append(rule)
    return "\n".join(lines)


def _module_leaves(rows: list[LayerRow]) -> list[bool]:
    """Whether each module row has no module rows under it (torchinfo's leaf layers)."""
    return [
        index + 1 == len(rows) or rows[index + 1].depth <= row.depth
        for index, row in enumerate(rows)
    ]


def _layer_names(rows: list[LayerRow], style: TorchinfoStyle) -> list[str]:
    """ "Conv2d: 2-3": the class, the attribute name with "var_names", the depth and the
    row's number among all rows of its depth with "depth"."""
    counts: dict[int, int] = {}
    names = []
    for row in rows:
        counts[row.depth] = counts.get(row.depth, 0) + 1
        name = row.type
        if "var_names" in style.row_settings:  # the model's own is its class name
            name += f" ({row.path.rsplit('.', 1)[-1] if row.path else row.type})"
        if "depth" in style.row_settings and row.depth > 0:
            name += f": {row.depth}-{counts[row.depth]}"
        names.append(name)
    return names


def _indent(depth: int, style: TorchinfoStyle) -> str:
    ascii_only = "ascii_only" in style.row_settings
    if depth == 0:
        return ""
    if depth == 1:
        return "+ " if ascii_only else "├─"
    return ("|    " if ascii_only else "│    ") * (depth - 1) + ("+ " if ascii_only else "└─")


def _shape_text(shapes: tuple[tuple[int, ...], ...]) -> str:
    """The first tensor's shape, as torchinfo shows a call's inputs and outputs."""
    return str(list(shapes[0])) if shapes and shapes[0] else "--"


def _own_params(rows: list[LayerRow], index: int) -> int:
    """Parameters of the module itself, not of its children (torchinfo's "leftover")."""
    row = rows[index]
    children = 0
    for later in rows[index + 1 :]:
        if later.depth <= row.depth:
            break
        if later.depth == row.depth + 1:
            children += later.params
    return row.params - children


def _cells(
    summary: Summary,
    rows: list[LayerRow],
    index: int,
    leaf: bool,
    at_depth: bool,
    style: TorchinfoStyle,
) -> dict[str, str]:
    row = rows[index]
    whole = leaf or at_depth  # torchinfo shows a subtree's totals at the depth limit
    params = row.params if whole else _own_params(rows, index)
    if row.reused:
        params_text = percent = "(recursive)"
    elif params <= 0:
        params_text, percent = "--", "     --"
    else:
        params_text = f"{params:,}" if not whole or row.trainable_params else f"({params:,})"
        total = summary.total_params
        percent = f"{params / total:>7.2%}" if total else "     --"
    # A module called again: its parameters, counted on its first call, are still its own.
    owner = next((r for r in rows if r.path == row.path and not r.reused), row)
    if owner.params == 0:
        trainable = "--"
    elif owner.trainable_params == 0:
        trainable = "False"
    else:
        trainable = "True" if owner.trainable_params == owner.params else "Partial"
    kernel = style.kernel_sizes.get(row.path)
    return {
        "kernel_size": str(kernel) if kernel else "--",
        "input_size": _shape_text(row.input_shapes),
        "output_size": _shape_text(row.output_shapes),
        "num_params": params_text,
        "params_percent": percent,
        "mult_adds": f"{row.macs:,}" if whole and row.macs > 0 else "--",
        "trainable": trainable,
    }


def _scaled(count: int) -> str:
    """torchinfo's total mult-adds: " (G): 1.81", in M, G or T."""
    if count >= 1e12:
        unit, value = "T", count / 1e12
    elif count >= 1e9:
        unit, value = "G", count / 1e9
    else:
        unit, value = "M", count / 1e6
    return f" ({unit}): {int(value):,d}" if value.is_integer() else f" ({unit}): {value:,.2f}"
