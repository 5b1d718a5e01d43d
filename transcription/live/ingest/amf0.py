"""AMF0, the encoding of RTMP commands: a decoder for what publishers send, an encoder for replies.

The decoder reads hostile input: it raises :class:`ValueError` on anything malformed, including
containers nested deeper than :data:`MAX_DEPTH` (a ``connect`` nesting objects thousands deep
would otherwise exhaust Python's recursion limit). Commands nest one or two levels.
"""

from __future__ import annotations

import struct
from typing import Any

MAX_DEPTH = 16
"""Objects, ECMA arrays and strict arrays nested deeper than this are refused."""


class _Undefined:
    pass


UNDEFINED = _Undefined()


def _text(data: bytes, pos: int, length: int) -> tuple[str, int]:
    end = pos + length
    if end > len(data):
        raise IndexError("string past the end")
    return data[pos:end].decode("utf-8", "replace"), end


def _value(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    marker = data[pos]
    pos += 1
    if marker == 0x00:
        return struct.unpack_from(">d", data, pos)[0], pos + 8
    if marker == 0x01:
        return data[pos] != 0, pos + 1
    if marker == 0x02:
        return _text(data, pos + 2, struct.unpack_from(">H", data, pos)[0])
    if marker == 0x0C:
        return _text(data, pos + 4, struct.unpack_from(">I", data, pos)[0])
    if marker in (0x03, 0x08, 0x0A) and depth >= MAX_DEPTH:
        raise ValueError(f"AMF0 nested deeper than {MAX_DEPTH} levels")
    if marker in (0x03, 0x08):  # object, ECMA array (with a count we do not need)
        if marker == 0x08:
            pos += 4
        obj: dict[str, Any] = {}
        while True:
            (length,) = struct.unpack_from(">H", data, pos)
            if length == 0 and data[pos + 2] == 0x09:
                return obj, pos + 3
            name, pos = _text(data, pos + 2, length)
            obj[name], pos = _value(data, pos, depth + 1)
    if marker == 0x0A:
        (count,) = struct.unpack_from(">I", data, pos)
        pos += 4
        items = []
        for _ in range(min(count, len(data))):
            item, pos = _value(data, pos, depth + 1)
            items.append(item)
        return items, pos
    if marker == 0x05:
        return None, pos
    if marker == 0x06:
        return UNDEFINED, pos
    if marker == 0x0B:
        return struct.unpack_from(">d", data, pos)[0], pos + 10
    raise ValueError(f"unsupported AMF0 marker {marker:#x}")


def amf0_decode(data: bytes) -> list[Any]:
    """Decode a sequence of AMF0 values (the body of a command message).

    Raises :class:`ValueError` on truncated data, unknown markers and nesting past
    :data:`MAX_DEPTH`.
    """
    values, pos = [], 0
    try:
        while pos < len(data):
            value, pos = _value(data, pos, 0)
            values.append(value)
    except (IndexError, struct.error) as exc:
        raise ValueError("truncated AMF0 data") from exc
    return values


def amf0_string(text: str) -> bytes:
    """A string without its type marker: 16-bit length, UTF-8 (object keys, string values)."""
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def amf0_encode(*values: Any) -> bytes:
    """Encode numbers, strings, booleans, ``None`` (null) and ``dict`` (object) as AMF0."""
    out = bytearray()
    for value in values:
        if value is None:
            out += b"\x05"
        elif isinstance(value, bool):
            out += b"\x01" + (b"\x01" if value else b"\x00")
        elif isinstance(value, int | float):
            out += b"\x00" + struct.pack(">d", float(value))
        elif isinstance(value, str):
            out += b"\x02" + amf0_string(value)
        elif isinstance(value, dict):
            out += b"\x03"
            for name, item in value.items():
                out += amf0_string(name) + amf0_encode(item)
            out += b"\x00\x00\x09"
        else:
            raise TypeError(f"cannot encode {type(value).__name__} as AMF0")
    return bytes(out)
