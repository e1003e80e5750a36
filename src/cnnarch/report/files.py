"""Atomic file writes: a reader never sees a half-written report file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cnnarch.errors import CnnarchError


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder, then `os.replace`."""
    path = Path(path)
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


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
