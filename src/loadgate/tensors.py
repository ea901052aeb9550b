"""KServe v2 raw tensor contents (`raw_input_contents` / `raw_output_contents`): pure encoding.

Fixed-size types are little-endian arrays; a BYTES element is a 4-byte little-endian length and
its bytes (Triton's encoding). Used by both sides, the client profiles and the model server.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

# KServe v2 datatype -> struct format of one element
_FORMAT = {
    "BOOL": "?",
    "UINT8": "B",
    "INT32": "i",
    "UINT32": "I",
    "INT64": "q",
    "UINT64": "Q",
    "FP16": "e",
    "FP32": "f",
    "FP64": "d",
}
SIZE = {dtype: struct.calcsize("<" + f) for dtype, f in _FORMAT.items()}


def shape_fits(shape: Sequence[int], declared: Sequence[int]) -> bool:
    """A request's shape against a declared one, where -1 is any size (Triton's rule)."""
    return len(shape) == len(declared) and all(
        d in (-1, s) for s, d in zip(shape, declared, strict=True)
    )


def encode(datatype: str, values: Sequence) -> bytes:
    """Raw contents of a tensor holding `values` (bytes for BYTES, numbers or bools else)."""
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v)) + v for v in values)
    return struct.pack(f"<{len(values)}{_FORMAT[datatype]}", *values)


def decode(datatype: str, raw: bytes) -> list:
    """The elements of raw contents; ValueError when they do not fit the datatype."""
    if datatype != "BYTES":
        size = SIZE[datatype]
        if len(raw) % size:
            raise ValueError(f"{len(raw)} bytes is not a whole number of {datatype} elements")
        return list(struct.unpack(f"<{len(raw) // size}{_FORMAT[datatype]}", raw))
    out, i = [], 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise ValueError("truncated BYTES element length")
        (n,) = struct.unpack_from("<I", raw, i)
        if i + 4 + n > len(raw):
            raise ValueError("BYTES element longer than the tensor")
        out.append(raw[i + 4 : i + 4 + n])
        i += 4 + n
    return out
