"""Atomic file writes: a reader sees the old file or the new one, never a half-written one."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from cnnarch.errors import CnnarchError


def ensure_dir(path: Path) -> Path:
    """Create `path` (and parents); a clear error when it exists as a file or cannot be made."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CnnarchError(f"{path} exists and is not a folder; choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CnnarchError(f"cannot create folder {path}: {err.strerror}") from None
    return path


def fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (a no-op on Windows, which cannot open folders)."""
    if sys.platform.startswith("win"):
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced_temp(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """A new temporary file next to `path`, filled by `write` and fsynced; the caller moves it
    into place with `os.replace`. On failure the temporary file is removed."""
    path = Path(path)
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a synced temporary file in the same folder."""
    path = Path(path)
    tmp = write_synced_temp(path, lambda handle: handle.write(data))
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))
