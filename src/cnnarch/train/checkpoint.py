"""Checkpoints: written atomically, read only with `weights_only=True`, with all RNG states.

A save writes a temporary file next to `checkpoint.pt`, flushes and fsyncs it, moves the
previous checkpoint to `checkpoint.prev.pt` and the new one into place with `os.replace`. A crash
at any moment leaves at least one complete checkpoint, and `load_latest` falls back to the
previous one when the latest is unreadable.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnarch.errors import CnnarchError
from cnnarch.files import fsync_dir, write_synced_temp

FORMAT = "cnnarch-checkpoint-1"
LATEST = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"
REQUIRED_KEYS = ("format", "model", "optimizer", "scheduler", "epoch", "step", "rng", "config")


class CheckpointError(CnnarchError):
    """A checkpoint that cannot be used: unreadable, truncated, or not one of ours."""


def rng_state() -> dict[str, Any]:
    """Every RNG state of this process, as tensors and plain values (loadable weights_only)."""
    keys, pos, has_gauss, cached = np.random.get_state()[1:]
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
        # This process's GPU only: each process of a run drives one device.
        "cuda": [torch.cuda.get_rng_state()] if torch.cuda.is_initialized() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"][0])


def save_checkpoint(folder: Path, payload: dict[str, Any]) -> Path:
    """Write `payload` as the latest checkpoint in `folder`, keeping the previous one."""
    latest, previous = folder / LATEST, folder / PREVIOUS
    tmp = write_synced_temp(latest, lambda f: torch.save({"format": FORMAT, **payload}, f))
    if latest.exists():
        os.replace(latest, previous)
    os.replace(tmp, latest)
    fsync_dir(folder)
    return latest


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at `path`, loaded with `weights_only=True`; `CheckpointError` if unusable."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise CheckpointError(_unusable(path, err)) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a cnnarch training checkpoint")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is incomplete (missing {', '.join(missing)})")
    return ckpt


def _unusable(path: Path, err: Exception) -> str:
    """Why `torch.load` refused `path`, without PyTorch's advice to retry with
    `weights_only=False`: that would run whatever code the file holds."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    refused = re.search(r"WeightsUnpickler error: (.*?)(?: was not an allowed global|\.\s|$)", text)
    if refused:
        return (
            f"{path} is not a safe checkpoint and was not loaded ({refused.group(1).strip()}; "
            "only tensors and plain data are read)"
        )
    first_line = text.strip().split("\n")[0]
    return f"{path} is truncated, corrupt or not a checkpoint ({first_line})"


def load_latest(
    folder: Path, rename_corrupt: bool = True
) -> tuple[dict[str, Any] | None, list[str]]:
    """The newest usable checkpoint in `folder` (None if there is none) and warnings.

    An unreadable latest checkpoint is renamed to `checkpoint.pt.corrupt` (so the next save does
    not push the good previous one out; only one process of a distributed run should rename)
    and the previous checkpoint is used instead.
    """
    latest, previous = folder / LATEST, folder / PREVIOUS
    warnings: list[str] = []
    if not latest.exists() and not previous.exists():
        return None, warnings
    errors = []
    for path in (latest, previous):
        if not path.exists():
            continue
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as err:
            errors.append(str(err))
            continue
        if errors:
            warnings.append(f"{errors[0]}; resuming from the previous checkpoint {path} instead")
            if rename_corrupt and latest.exists():
                os.replace(latest, folder / f"{LATEST}.corrupt")
        return ckpt, warnings
    raise CheckpointError("; ".join(errors) + "; no usable checkpoint left to resume from")
