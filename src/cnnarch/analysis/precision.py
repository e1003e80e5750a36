"""The precision vocabulary, defined once: the dtypes a model is analyzed in, and the mixed
precision of a training step.

- A dtype name (`DTYPES`: "float32", "bfloat16", ...) is what the whole model is analyzed as if
  converted to (`analyze(dtype=...)`, `cnnarch summary --dtype`).
- A precision name (`PRECISIONS`: "fp32", "bf16", "fp16") is how a training step computes
  (`TrainingStep.precision`, `cnnarch plan --precision`): "fp32" without autocast; "bf16" and
  "fp16" under `torch.autocast` in that dtype, over float32 weights (fp16 with a GradScaler).

Bytes per value are the dtype's own (`torch.dtype.itemsize`).
"""

from __future__ import annotations

import torch

from cnnarch.errors import CnnarchValueError

# Name -> dtype, for analyzing a whole model in one dtype.
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}

# Name -> the dtype autocast computes in, or None for no autocast (everything in float32).
PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}

# Precisions whose step keeps a GradScaler (float16's range needs the loss scaled).
SCALED_PRECISIONS = frozenset({"fp16"})


def dtype_name(dtype: torch.dtype) -> str:
    """ "float32" for torch.float32: the name `DTYPES` and `Summary.dtype` use.

    Args:
        dtype: any torch dtype.
    """
    return str(dtype).removeprefix("torch.")


def parse_dtype(name: str) -> torch.dtype:
    """The dtype a name of `DTYPES` stands for.

    Args:
        name: "float32", "float16", "bfloat16" or "float64".
    """
    try:
        return DTYPES[name]
    except KeyError as err:
        raise CnnarchValueError(
            f"unknown dtype {name!r}; choose one of {', '.join(DTYPES)}"
        ) from err
