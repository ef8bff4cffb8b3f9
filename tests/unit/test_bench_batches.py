"""The blast server's batches end at frame boundaries (bench/blast_server.py)."""

from __future__ import annotations

import struct

from bench.blast_server import frame_batches
from bench.frames import build_frames, build_scale_frames, server_frame


def frame_starts(blob: bytes) -> set[int]:
    """Offsets where a server frame starts, read from the headers."""
    starts, offset = set(), 0
    while offset < len(blob):
        starts.add(offset)
        length = blob[offset + 1] & 0x7F
        if length == 126:
            length, header = struct.unpack_from("!H", blob, offset + 2)[0], 4
        elif length == 127:
            length, header = struct.unpack_from("!Q", blob, offset + 2)[0], 10
        else:
            header = 2
        offset += header + length
    assert offset == len(blob)
    return starts


def test_batches_hold_whole_frames_within_the_limit() -> None:
    blob, sizes = build_frames(3_000, seed=7).encode()
    starts = frame_starts(blob)
    for limit in (1_000, 4_096, 65_536, 1 << 20):
        ends = frame_batches(sizes, limit)
        assert ends[-1] == len(blob)
        begin = 0
        for end in ends:
            assert end in starts or end == len(blob)
            assert end - begin <= limit
            begin = end


def test_a_frame_larger_than_the_limit_is_a_batch_of_its_own() -> None:
    payloads = [b"x" * 10, b"y" * 70_000, b"z" * 200, b"w" * 100]
    blob = b"".join(server_frame(p) for p in payloads)
    ends = frame_batches([len(p) for p in payloads], 1_000)
    assert ends == [12, 12 + 70_010, len(blob)]  # 2-, 10- and 4-byte headers
    assert set(ends[:-1]) <= frame_starts(blob)


def test_scale_frames_are_one_snapshot_per_market_then_the_deltas() -> None:
    blob, sizes = build_scale_frames(30, 100)
    assert len(sizes) == 130 and len(frame_starts(blob)) == 130
    assert blob.count(b'"orderbook_snapshot"') == 30 and blob.count(b'"orderbook_delta"') == 100
    assert b'"seq":130,' in blob and b'"seq":131,' not in blob
