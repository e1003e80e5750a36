"""Reader for the IDX format of (Fashion-)MNIST, written from its description.

An IDX file is: two zero bytes, a type code, the number of dimensions, then one big-endian
uint32 per dimension, then the data in big-endian order, row-major
(http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"). Files may be gzipped.

A file is read header first: sizes that declare more than `MAX_DATA_BYTES` are refused, and
no more than the declared data is read or decompressed, so neither a forged header nor a
gzip bomb makes the reader allocate more than the file is said to hold.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from cnnarch.errors import CnnarchError
from cnnarch.files import open_regular

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
# The data of the largest IDX file accepted (2 GB; Fashion-MNIST's largest holds 47 MB).
MAX_DATA_BYTES = 2 * 10**9


def _read_bytes(path: Path) -> bytes:
    """The header and at most the declared data (plus one byte, to detect extra data) of the
    IDX file `path`, decompressed if it is gzipped."""
    try:
        with open_regular(path, "IDX file") as raw:
            gzipped = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            stream: BinaryIO = gzip.GzipFile(fileobj=raw) if gzipped else raw
            head = stream.read(4)
            if len(head) == 4:
                head += stream.read(4 * head[3])
            try:
                size = _declared_bytes(head, str(path))
            except _Truncated:
                return head  # too short for its header: `parse_idx` says so
            return head + stream.read(size + 1)
    except (OSError, EOFError, zlib.error) as err:
        if isinstance(err, OSError) and not isinstance(err, gzip.BadGzipFile) and err.errno:
            raise CnnarchError(f"cannot read {path}: {err.strerror or err}") from None
        raise CnnarchError(f"{path}: broken gzip file ({err}); download it again") from None


class _Truncated(Exception):
    """Fewer bytes than the header needs."""


def _declared_bytes(data: bytes, source: str) -> int:
    """The number of data bytes that the IDX header at the start of `data` declares."""
    if len(data) < 4:
        raise _Truncated
    _check_magic(data, source)
    if len(data) < 4 + 4 * data[3]:
        raise _Truncated
    dtype, shape = _header(data, source)
    return math.prod(shape) * dtype.itemsize


def _check_magic(data: bytes, source: str) -> None:
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise CnnarchError(
            f"{source}: not an IDX file (magic number 0x{data[:4].hex()}; expected 0x0000 "
            f"followed by a type code in {', '.join(f'0x{t:02x}' for t in IDX_TYPES)})"
        )


def _header(data: bytes, source: str) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape of the complete IDX header at the start of `data`, within limits."""
    dtype, ndim = IDX_TYPES[data[2]], data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_DATA_BYTES:
        raise CnnarchError(
            f"{source}: the header declares shape {shape}, {size / 1e9:.1f} GB of data, more "
            f"than the {MAX_DATA_BYTES / 1e9:.0f} GB an IDX file may hold here; the file is "
            "corrupt or not a data set"
        )
    return dtype, shape


def parse_idx(data: bytes, source: str = "IDX data") -> np.ndarray:
    """The array held by the IDX bytes `data`, in native byte order; `source` names it in errors."""
    if len(data) < 4:
        raise CnnarchError(f"{source}: not an IDX file (only {len(data)} bytes)")
    _check_magic(data, source)
    header = 4 + 4 * data[3]
    if len(data) < header:
        raise CnnarchError(f"{source}: truncated IDX header ({len(data)} of {header} bytes)")
    dtype, shape = _header(data, source)
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
