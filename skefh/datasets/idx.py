"""Reader for the IDX file format used by MNIST and Fashion-MNIST."""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["load_idx"]

GZIP_MAGIC = b"\x1f\x8b"

# IDX type byte -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_maybe_gzipped(path: str | os.PathLike) -> bytes:
    """Return the content of ``path``, decompressed if it is gzip data.

    Compression is recognised from the gzip magic bytes rather than the file
    name, because mirrors of MNIST sometimes ship decompressed files that kept
    their ``.gz`` suffix (and vice versa).
    """
    path = Path(path)
    with open(path, "rb") as raw:
        head = raw.read(2)
        raw.seek(0)
        if head != GZIP_MAGIC:
            return raw.read()
        try:
            with gzip.GzipFile(fileobj=raw) as decompressed:
                return decompressed.read()
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: corrupt gzip data ({exc})") from exc


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode an in-memory IDX buffer; see :func:`load_idx`."""
    if len(data) < 4:
        raise ValueError(f"{name}: truncated: {len(data)} bytes, too short for the IDX magic")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{name}: not an IDX file: magic number must start with two zero bytes, "
            f"found {data[:4].hex(' ')}"
        )
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise ValueError(f"{name}: unknown IDX type code 0x{type_code:02X} (known: {known})")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(
            f"{name}: truncated header: {ndim} dimensions need {header_size} bytes, "
            f"found {len(data)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header_size
    if found < expected:
        raise ValueError(
            f"{name}: truncated: expected {expected} bytes of data for shape {shape} "
            f"and dtype {dtype.name}, found {found}"
        )
    if found > expected:
        raise ValueError(
            f"{name}: {found - expected} unexpected trailing bytes: expected {expected} "
            f"bytes of data for shape {shape} and dtype {dtype.name}, found {found}"
        )
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header_size)
    # astype copies, which also makes the result writable (frombuffer on
    # bytes is read-only) and converts to native byte order.
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), raw or gzip-compressed.

    Parameters
    ----------
    path : str or path-like
        File to read. Gzip compression is detected from the content (magic
        bytes ``1f 8b``), so the file name does not matter.

    Returns
    -------
    numpy.ndarray
        A writable, native-endian array with the shape stored in the header.
        The dtype follows the IDX type code: ``0x08`` uint8, ``0x09`` int8,
        ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the magic number is wrong, the type code is unknown, the gzip
        stream is corrupt, or the data length does not match the header. The
        message names the file.

    Notes
    -----
    Layout: a 4-byte magic ``00 00 <type> <ndim>``, then ``ndim`` big-endian
    uint32 dimension sizes, then the data in row-major (C) order, big-endian.
    The whole file is read into memory.

    Examples
    --------
    >>> import struct, tempfile, pathlib
    >>> payload = struct.pack(">BBBBI", 0, 0, 0x08, 1, 3) + bytes([7, 8, 9])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "labels-idx1-ubyte"
    ...     _ = path.write_bytes(payload)
    ...     load_idx(path)
    array([7, 8, 9], dtype=uint8)
    """
    path = Path(path)
    return parse_idx(read_maybe_gzipped(path), name=str(path))
