"""Checkpoints: written atomically, read only with `weights_only=True`, with all RNG states, a
checksum, and every field checked on load.

A save writes a temporary file next to `checkpoint.pt`, flushes and fsyncs it, moves the
previous checkpoint to `checkpoint.prev.pt` and the new one into place with `os.replace`. A crash
at any moment leaves at least one complete checkpoint, and `load_latest` falls back to the
previous one when the latest is unusable.

A checkpoint holds the SHA-256 of everything else it holds (`payload_digest`): a bit flipped
inside a weight (which loads without complaint) is found on load. Its fields are then checked
one by one (`check_fields`), so that a checkpoint that loads but holds `epoch: "x"` or an empty
RNG list ends in one message naming the file and the field, not in a traceback mid-resume.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import pickletools
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnarch.errors import CnnarchError
from cnnarch.files import Fields, FormatError, fsync_dir, open_regular, printable, write_synced_temp
from cnnarch.train.config import TrainConfig, check_types

FORMAT = "cnnarch-checkpoint-2"
OLD_FORMATS = ("cnnarch-checkpoint-1",)  # without a checksum
LATEST = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"
CORRUPT = f"{LATEST}.corrupt"
REQUIRED_KEYS = (
    "format",
    "checksum",
    "model",
    "optimizer",
    "scheduler",
    "epoch",
    "step",
    "partial",
    "history",
    "rng",
    "config",
    "world_size",
    "threads",
    "compiled",
    "data",
)
# The per-epoch metrics (metrics.jsonl, and a checkpoint's history): each field's type.
METRIC_FIELDS: dict[str, str] = {
    "epoch": "int",
    "train_loss": "number",
    "train_error": "number",
    "test_loss": "number",
    "test_error": "number",
    "lr": "number",
    "images_per_s": "number",
    "seconds": "number",
    "global_step": "int",
    "threads": "int",
    "compiled": "bool",
}
OPTIONAL_METRICS = ("threads", "compiled")  # rows of earlier versions lack them


class CheckpointError(CnnarchError):
    """A checkpoint that cannot be used: unreadable, truncated, tampered with, or not ours."""


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


def payload_digest(payload: dict[str, Any]) -> str:
    """The SHA-256 of a checkpoint's contents but its checksum: of every tensor's dtype, shape
    and bytes and of every other value's type and repr, mappings in the order of their keys'
    repr (the order a save and a load agree on).

    Args:
        payload: the checkpoint's dict.
    """
    digest = hashlib.sha256()

    def add(value: object) -> None:
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"T{tensor.dtype}{tuple(value.shape)}".encode())
            digest.update(tensor.view(torch.uint8).numpy())
        elif isinstance(value, dict):
            digest.update(f"{{{len(value)}".encode())
            for key in sorted(value, key=repr):
                add(key)
                add(value[key])
        elif isinstance(value, (list, tuple)):
            digest.update(f"{type(value).__name__}{len(value)}".encode())
            for item in value:
                add(item)
        else:
            digest.update(f"{type(value).__name__}:{value!r};".encode())

    add({key: value for key, value in payload.items() if key != "checksum"})
    return digest.hexdigest()


def save_checkpoint(folder: Path, payload: dict[str, Any]) -> Path:
    """Write `payload` (with its format and checksum) as the latest checkpoint in `folder`,
    keeping the previous one."""
    latest, previous = folder / LATEST, folder / PREVIOUS
    document = {"format": FORMAT, **payload}
    document["checksum"] = payload_digest(document)
    tmp = write_synced_temp(latest, lambda f: torch.save(document, f))
    if latest.exists():
        os.replace(latest, previous)
    os.replace(tmp, latest)
    fsync_dir(folder)
    return latest


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at `path`, loaded with `weights_only=True`, its checksum and fields
    checked; `CheckpointError` if it is unusable."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with open_regular(path, "checkpoint") as handle:
            ckpt = torch.load(handle, map_location="cpu", weights_only=True)
    except CnnarchError as err:
        raise CheckpointError(str(err)) from None
    except pickle.UnpicklingError:
        raise CheckpointError(_refused(path)) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(_unreadable(path, err)) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") not in (FORMAT, *OLD_FORMATS):
        raise CheckpointError(f"{path} is not a cnnarch training checkpoint")
    if ckpt["format"] in OLD_FORMATS:
        raise CheckpointError(
            f"{path} was written by an earlier cnnarch ({ckpt['format']}, without a checksum) "
            "and cannot be resumed by this one; start a new run with another --out"
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is incomplete (no field {missing[0]!r})")
    if ckpt["checksum"] != payload_digest(ckpt):
        raise CheckpointError(
            f"{path} is corrupt: its contents do not match the checksum it was written with "
            "(a changed bit, a tampered field)"
        )
    try:
        check_fields(ckpt, Fields(path))
    except FormatError as err:
        raise CheckpointError(str(err)) from None
    return ckpt


def _pickle_bytes(path: Path) -> bytes:
    """The pickle of `path`: a torch zip file's data.pkl, or the file itself."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
            return archive.read(name)
    return path.read_bytes()


def referenced_code(path: Path) -> list[str]:
    """The functions and classes (module.name) that the pickle in `path` refers to, other than
    torch's and `collections`': what loading it without `weights_only` would import and call.
    Found by reading the pickle's opcodes, without running any."""
    names: list[str] = []
    strings: list[str] = []
    try:
        for opcode, arg, _pos in pickletools.genops(_pickle_bytes(path)):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(str(arg))
            elif opcode.name == "GLOBAL":
                names.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
    except (ValueError, KeyError, StopIteration, OSError, zipfile.BadZipFile, EOFError):
        pass  # a malformed pickle: what it names up to there
    foreign = [n for n in names if not n.startswith(("torch.", "collections."))]
    return list(dict.fromkeys(foreign))


def _refused(path: Path) -> str:
    """Why `weights_only` loading refused `path`, in our words: PyTorch's message advises
    retrying with `weights_only=False`, which would run whatever code the file holds."""
    code = referenced_code(path)
    if code:
        shown = printable(
            ", ".join(code[:3]) + (f" and {len(code) - 3} more" if len(code) > 3 else "")
        )
        return (
            f"{path} is not a safe checkpoint: the file tried to run code when loaded ({shown}), "
            "and was not loaded; only tensors and plain data are read"
        )
    return (
        f"{path} is not a safe checkpoint: it uses pickle instructions that a safe load does "
        "not accept, and was not loaded; only tensors and plain data are read"
    )


def _unreadable(path: Path, err: Exception) -> str:
    """A truncated or foreign file, with PyTorch's first line when it holds no advice."""
    first_line = printable(str(err).strip().split("\n")[0])
    detail = "" if "weights_only" in first_line else f" ({first_line})"
    return f"{path} is truncated, corrupt or not a checkpoint{detail}"


def _tensor(fields: Fields, value: object, field: str, dtype: torch.dtype | None = None) -> None:
    if not isinstance(value, torch.Tensor) or (dtype is not None and value.dtype != dtype):
        fields.fail(field, f"a {dtype or 'torch'} tensor", value)


def check_metrics_row(row: object, fields: Fields, field: str) -> dict[str, Any]:
    """One row of the per-epoch metrics (`METRIC_FIELDS`), a mapping of finite numbers."""
    row = fields.mapping(row, field, [k for k in METRIC_FIELDS if k not in OPTIONAL_METRICS])
    for key, kind in METRIC_FIELDS.items():
        if key not in row:
            continue
        if kind == "bool":
            fields.boolean(row[key], f"{field}.{key}")
        elif kind == "int":
            fields.integer(row[key], f"{field}.{key}", minimum=0)
        else:
            fields.number(row[key], f"{field}.{key}", minimum=0)
    return row


def _check_rng(state: object, fields: Fields, field: str) -> None:
    state = fields.mapping(state, field, ("torch", "numpy", "python", "cuda"))
    size = torch.get_rng_state().numel()
    tensor = state["torch"]
    if (
        not isinstance(tensor, torch.Tensor)
        or tensor.dtype != torch.uint8
        or tensor.numel() != size
    ):
        fields.fail(f"{field}.torch", f"a uint8 tensor of {size} bytes", tensor)
    numpy_state = fields.mapping(
        state["numpy"], f"{field}.numpy", ("keys", "pos", "has_gauss", "cached_gaussian")
    )
    keys = numpy_state["keys"]
    if not isinstance(keys, torch.Tensor) or keys.dtype != torch.int64 or keys.numel() != 624:
        fields.fail(f"{field}.numpy.keys", "an int64 tensor of 624 values", keys)
    fields.integer(numpy_state["pos"], f"{field}.numpy.pos", minimum=0, maximum=624)
    fields.integer(numpy_state["has_gauss"], f"{field}.numpy.has_gauss", minimum=0, maximum=1)
    fields.number(numpy_state["cached_gaussian"], f"{field}.numpy.cached_gaussian")
    python = fields.sequence(state["python"], f"{field}.python")
    if len(python) != 3:
        fields.fail(f"{field}.python", "(version, state, gauss)", python)
    fields.integer(python[0], f"{field}.python[0]")
    internal = fields.sequence(python[1], f"{field}.python[1]")
    if len(internal) != 625 or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in internal
    ):
        fields.fail(f"{field}.python[1]", "625 integers in [0, 2**32)", internal)
    if python[2] is not None:
        fields.number(python[2], f"{field}.python[2]")
    for i, tensor in enumerate(fields.sequence(state["cuda"], f"{field}.cuda")):
        _tensor(fields, tensor, f"{field}.cuda[{i}]", torch.uint8)


def check_fields(ckpt: dict[str, Any], fields: Fields) -> None:
    """Every field of a checkpoint, with the type and range it must have; `FormatError` names
    the first that does not.

    Args:
        ckpt: a loaded checkpoint.
        fields: the checker of its file.
    """
    for key, tensor in fields.mapping(ckpt["model"], "model").items():
        _tensor(fields, tensor, f"model.{key}")
    optimizer = fields.mapping(ckpt["optimizer"], "optimizer", ("state", "param_groups"))
    fields.mapping(optimizer["state"], "optimizer.state")
    for i, group in enumerate(
        fields.sequence(optimizer["param_groups"], "optimizer.param_groups", 1)
    ):
        group = fields.mapping(group, f"optimizer.param_groups[{i}]", ("params",))
        for j, index in enumerate(
            fields.sequence(group["params"], f"optimizer.param_groups[{i}].params")
        ):
            fields.integer(index, f"optimizer.param_groups[{i}].params[{j}]", minimum=0)
    scheduler = fields.mapping(
        ckpt["scheduler"], "scheduler", ("last_epoch", "base_lrs", "lr_lambdas", "_last_lr")
    )
    fields.integer(scheduler["last_epoch"], "scheduler.last_epoch", minimum=0)
    for name in ("base_lrs", "_last_lr"):
        for i, lr in enumerate(fields.sequence(scheduler[name], f"scheduler.{name}", 1)):
            fields.number(lr, f"scheduler.{name}[{i}]", minimum=0)
    fields.sequence(scheduler["lr_lambdas"], "scheduler.lr_lambdas")
    epoch = fields.integer(ckpt["epoch"], "epoch", minimum=0)
    fields.integer(ckpt["step"], "step", minimum=0)
    partial = fields.mapping(
        ckpt["partial"], "partial", ("loss_sum", "correct", "count", "train_s", "wall_s")
    )
    for name in ("loss_sum", "train_s", "wall_s"):
        fields.number(partial[name], f"partial.{name}", minimum=0)
    for name in ("correct", "count"):
        fields.integer(partial[name], f"partial.{name}", minimum=0)
    history = fields.sequence(ckpt["history"], "history")
    if len(history) != epoch:
        fields.fail("history", f"one row for each of the {epoch} epochs done", history)
    for i, row in enumerate(history):
        row = check_metrics_row(row, fields, f"history[{i}]")
        if row["epoch"] != i + 1:
            fields.fail(f"history[{i}].epoch", str(i + 1), row["epoch"])
    world_size = fields.integer(ckpt["world_size"], "world_size", minimum=1)
    states = fields.sequence(ckpt["rng"], "rng", 1)
    if len(states) != world_size:
        fields.fail("rng", f"one state for each of the {world_size} processes", states)
    for i, state in enumerate(states):
        _check_rng(state, fields, f"rng[{i}]")
    if ckpt["threads"] is not None:
        fields.integer(ckpt["threads"], "threads", minimum=1)
    fields.boolean(ckpt["compiled"], "compiled")
    config = fields.mapping(ckpt["config"], "config")
    check_types(config, fields, "config.")
    try:
        TrainConfig.from_dict(config)
    except CnnarchError as err:
        raise fields.error("config", f"is not a valid run config: {err}") from None
    check_data_record(ckpt["data"], fields, "data")


def check_data_record(record: object, fields: Fields, field: str) -> dict[str, Any]:
    """The data a run was trained on (`RunData.record`): classes, and each split's source,
    number of images and checksum."""
    record = fields.mapping(record, field, ("classes", "num_classes", "train", "test"))
    if record["classes"] is not None:
        for i, name in enumerate(fields.sequence(record["classes"], f"{field}.classes")):
            fields.text(name, f"{field}.classes[{i}]")
    if record["num_classes"] is not None:
        fields.integer(record["num_classes"], f"{field}.num_classes", minimum=1)
    for split in ("train", "test"):
        part = fields.mapping(record[split], f"{field}.{split}", ("source", "images", "sha256"))
        fields.text(part["source"], f"{field}.{split}.source")
        fields.integer(part["images"], f"{field}.{split}.images", minimum=1)
        if part["sha256"] is not None:
            fields.text(part["sha256"], f"{field}.{split}.sha256")
    return record


def load_latest(
    folder: Path, rename_corrupt: bool = True
) -> tuple[dict[str, Any] | None, list[str]]:
    """The newest usable checkpoint in `folder` (None if there is none) and warnings.

    An unusable latest checkpoint is renamed to `checkpoint.pt.corrupt` (so the next save does
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
                os.replace(latest, folder / CORRUPT)
        return ckpt, warnings
    raise CheckpointError("; ".join(errors) + "; no usable checkpoint left to resume from")
