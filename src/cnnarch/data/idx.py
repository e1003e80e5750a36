"""Reader for the IDX format of (Fashion-)MNIST, written from its description.

An IDX file is: two zero bytes, a type code, the number of dimensions, then one big-endian
uint32 per dimension, then the data in big-endian order, row-major
(http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"). Files may be gzipped.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch

from cnnarch.errors import CnnarchError

# Type code -> big-endian numpy dtype.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise CnnarchError(f"cannot read {path}: {err.strerror or err}") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise CnnarchError(f"{path}: broken gzip file ({err}); download it again") from None


def parse_idx(data: bytes, source: str = "IDX data") -> np.ndarray:
    """The array held by the IDX bytes `data`, in native byte order; `source` names it in errors."""
    if len(data) < 4:
        raise CnnarchError(f"{source}: not an IDX file (only {len(data)} bytes)")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise CnnarchError(
            f"{source}: not an IDX file (magic number 0x{data[:4].hex()}; expected 0x0000 "
            f"followed by a type code in {', '.join(f'0x{t:02x}' for t in IDX_TYPES)})"
        )
    dtype, ndim = IDX_TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CnnarchError(f"{source}: truncated IDX header ({len(data)} of {header} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise CnnarchError(
            f"{source}: truncated: shape {shape} needs {expected} bytes of data, found {found}"
        )
    if found > expected:
        raise CnnarchError(
            f"{source}: {found - expected} unexpected bytes after the data of shape {shape}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a copy: native order, writable


def read_idx(path: str | Path, ndim: int | None = None) -> torch.Tensor:
    """The tensor stored in the IDX file `path` (gzipped or not); checks `ndim` when given."""
    path = Path(path)
    array = parse_idx(_read_bytes(path), source=str(path))
    if ndim is not None and array.ndim != ndim:
        raise CnnarchError(
            f"{path}: expected an IDX file with {ndim} dimensions, found {array.ndim} "
            f"(shape {array.shape})"
        )
    return torch.from_numpy(array)  # `parse_idx` returns a fresh, writable array
