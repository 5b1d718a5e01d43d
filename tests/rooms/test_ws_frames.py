"""rooms.ws_frames: the frames Daphne builds and reads itself, against autobahn's own."""

from __future__ import annotations

import os

import pytest
from autobahn.websocket.xormasker import create_xor_masker

from rooms import ws_frames


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 1280, 65535, 65536])
def test_unmask_matches_autobahn_s_masker(size: int) -> None:
    payload, mask = os.urandom(size), os.urandom(4)
    expected = create_xor_masker(mask, size).process(payload) if size else b""
    assert ws_frames.unmask(payload, mask) == expected
    assert ws_frames.unmask(expected, mask) == payload


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (65536, b"\x82\x7f" + (65536).to_bytes(8, "big")),
    ],
)
def test_frame_uses_the_shortest_length_encoding(size: int, header: bytes) -> None:
    payload = b"x" * size
    assert ws_frames.frame(payload, True) == header + payload
    assert ws_frames.frame(payload, False)[:1] == b"\x81"


def _masked(first: int, payload: bytes, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    size = len(payload)
    length = bytes([0x80 | size]) if size <= 125 else bytes([0x80 | 126]) + size.to_bytes(2, "big")
    return bytes([first]) + length + mask + ws_frames.unmask(payload, mask)


def test_binary_frame_reads_a_whole_masked_binary_frame_and_where_it_ends() -> None:
    data = _masked(0x82, b"a" * 300) + b"next"
    payload, end = ws_frames.binary_frame(data, 0)
    assert payload == b"a" * 300 and data[end:] == b"next"


@pytest.mark.parametrize(
    ("data", "limit"),
    [
        (_masked(0x81, b"text"), 0),  # text: autobahn validates UTF-8
        (_masked(0x02, b"part"), 0),  # no FIN: a fragment
        (_masked(0xC2, b"rsv"), 0),  # an RSV bit: an extension autobahn must refuse
        (_masked(0x89, b"ping"), 0),  # control frame
        (bytes([0x82, 0x04]) + b"open", 0),  # unmasked: a protocol error for autobahn
        (_masked(0x82, b"a" * 300)[:-1], 0),  # incomplete
        (_masked(0x82, b"a" * 300)[:3], 0),  # incomplete length
        (_masked(0x82, b"a" * 300), 299),  # over the limit: autobahn closes with 1009
        (bytes([0x82, 0xFF]) + (70000).to_bytes(8, "big") + b"\0" * 10, 0),  # 64-bit length
    ],
)
def test_binary_frame_leaves_everything_else_to_autobahn(data: bytes, limit: int) -> None:
    assert ws_frames.binary_frame(data, limit) is None
