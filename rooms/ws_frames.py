"""RFC 6455 framing for the common cases of the live path, for Daphne's protocol (``rooms.serve``).

autobahn, under Daphne, runs a general state machine per frame: fragmentation, extensions,
control frames, per-frame masker objects, traffic statistics and debug-line arguments built
whether or not they are logged. For an unfragmented binary frame from a browser (an audio
frame) and an unfragmented message to one (a transcript event), that was most of a Daphne's
per-message work (docs/benchmarks.md, issue 20). These two functions do just those cases;
anything else (fragments, control frames, text from a client, 64-bit lengths, a frame over a
size limit, an unmasked client frame) is left to autobahn.
"""

from __future__ import annotations

_FIN_BINARY = 0x82  # FIN, no RSV bits, opcode 2
_MASKED = 0x80


def frame(payload: bytes, binary: bool) -> bytes:
    """An unfragmented, unmasked (server-to-client) data frame carrying ``payload``."""
    size = len(payload)
    first = 0x82 if binary else 0x81
    if size <= 125:
        return bytes((first, size)) + payload
    if size <= 0xFFFF:
        return bytes((first, 126)) + size.to_bytes(2, "big") + payload
    return bytes((first, 127)) + size.to_bytes(8, "big") + payload


def unmask(payload: bytes, mask: bytes) -> bytes:
    """``payload`` XOR the repeated 4-byte ``mask`` (one big-integer XOR: no per-frame object)."""
    size = len(payload)
    if not size:
        return b""
    key = (mask * ((size + 3) // 4))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        size, "little"
    )


def binary_frame(data: bytes, max_payload: int) -> tuple[bytes, int] | None:
    """The payload of the complete, unfragmented, masked binary frame at the start of ``data``,
    and where it ends; None when ``data`` starts with anything else, with an incomplete frame, or
    with one over ``max_payload`` bytes (0: no limit) or over 65,535."""
    if len(data) < 6 or data[0] != _FIN_BINARY or not data[1] & _MASKED:
        return None
    size = data[1] & 0x7F
    start = 2
    if size == 126:
        if len(data) < 8:
            return None
        size = int.from_bytes(data[2:4], "big")
        start = 4
    elif size == 127:
        return None
    if 0 < max_payload < size:
        return None
    end = start + 4 + size
    if len(data) < end:
        return None
    return unmask(data[start + 4 : end], data[start : start + 4]), end
