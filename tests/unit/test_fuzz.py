"""Property-based fuzzing (hypothesis) of the frame reader, the JSON layer and the protocol.

* Valid frames (fragmented, with control frames between the fragments) written in pieces
  cut at random points decode exactly as when written at once, and as the model says.
* Random byte streams never make the frame reader raise anything but ProtocolError or
  ConnectionLost, and the reader always ends once the peer closes (nothing waits forever).
* Random JSON values (dicts with type/sid/seq/id/msg holding any JSON) never make
  ``KalshiProtocol.receive`` raise; bad frames become MalformedMessage/UnknownMessage.

Example counts are modest so the file runs in seconds; the frame reader is driven over
real socketpairs, as in test_transport_frames.py.
"""

from __future__ import annotations

import json
import os
import socket
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from kalshi_ws import (
    ConnectionLost,
    MalformedMessage,
    ProtocolError,
    StreamUpdate,
    UnknownMessage,
)
from kalshi_ws._transport import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT
from kalshi_ws._wire import MESSAGE_CLASSES, decode
from kalshi_ws.models import SystemMessage
from kalshi_ws.protocol import KalshiProtocol
from tests.unit.test_transport_frames import Pair, frame

#: Examples per property; raise it for a deeper run (KALSHI_WS_FUZZ_EXAMPLES=2000).
FUZZ = settings(max_examples=int(os.environ.get("KALSHI_WS_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------------- the frame reader


def _pair() -> Pair:
    pair = Pair(tick=0.001)
    for sock in (pair.ours, pair.theirs):  # room for a whole example in the kernel
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return pair


def _drain(pair: Pair) -> list[tuple[int, bytes]]:
    """Every frame the reader can produce from what was written so far."""
    out: list[tuple[int, bytes]] = []
    while True:
        frames = pair.transport.receive()
        if not frames:
            return out
        out.extend(frames)


_payload_sizes = st.one_of(st.integers(0, 40), st.sampled_from([125, 126, 127, 300, 65535,
                                                                 65536, 70_000]))
_control = st.tuples(st.sampled_from([OP_PING, OP_PONG]), st.binary(max_size=125))


@st.composite
def _messages(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, bytes]], list[bytes]]:
    """Wire bytes, the frames the reader must return, and the pings it must answer."""
    wire = b""
    expected: list[tuple[int, bytes]] = []
    pings: list[bytes] = []
    for _ in range(draw(st.integers(1, 5))):
        opcode = draw(st.sampled_from([OP_TEXT, OP_BINARY]))
        size = draw(_payload_sizes)
        payload = draw(st.binary(min_size=min(size, 40), max_size=min(size, 40)))
        payload = (payload * (size // max(len(payload), 1) + 1))[:size] if payload else b"\0" * size
        cuts = sorted(set(draw(st.lists(st.integers(0, size), max_size=3))))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, size])]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            wire += frame(piece, opcode if index == 0 else 0, fin=last)
            if not last:
                for control_op, control_payload in draw(st.lists(_control, max_size=2)):
                    wire += frame(control_payload, control_op)
                    expected.append((control_op, control_payload))
                    if control_op == OP_PING:
                        pings.append(control_payload)
        expected.append((opcode, payload))
    return wire, expected, pings


@FUZZ
@given(_messages(), st.data())
def test_valid_frames_split_anywhere_decode_as_unsplit(
        message: tuple[bytes, list[tuple[int, bytes]], list[bytes]], data: st.DataObject) -> None:
    wire, expected, pings = message
    assume(len(wire) < 400_000)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(wire) - 1)), max_size=12))))
    whole, split = _pair(), _pair()
    try:
        whole.theirs.sendall(wire)
        at_once = _drain(whole)
        received: list[tuple[int, bytes]] = []
        for start, end in zip([0, *cuts], [*cuts, len(wire)]):
            split.theirs.sendall(wire[start:end])
            received.extend(_drain(split))
        assert at_once == expected
        assert received == expected
        assert whole.pongs == split.pongs == pings
    finally:
        whole.close()
        split.close()


@FUZZ
@given(st.binary(max_size=3000), st.data())
def test_random_bytes_raise_only_protocol_errors_and_never_hang(
        noise: bytes, data: st.DataObject) -> None:
    prefix = data.draw(st.sampled_from([b"", frame(b'{"type":"ticker"}'),
                                        frame(b"frag", fin=False)]))
    wire = prefix + noise
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(wire))), max_size=8))))
    pair = _pair()
    try:
        try:
            for start, end in zip([0, *cuts], [*cuts, len(wire)]):
                pair.theirs.sendall(wire[start:end])
                for opcode, _payload in _drain(pair):
                    assert opcode in (OP_TEXT, OP_BINARY, OP_PING, OP_PONG, OP_CLOSE)
            pair.theirs.shutdown(socket.SHUT_WR)
            for _ in range(len(wire) + 2):  # at most one frame per byte, then EOF
                pair.transport.receive()
            pytest.fail("the reader did not end after the peer closed")
        except (ProtocolError, ConnectionLost):
            pass
    finally:
        pair.close()


@settings(max_examples=20, deadline=None, phases=[Phase.generate])  # no shrinking
@given(st.lists(st.binary(max_size=60), min_size=1, max_size=5),
       st.sampled_from([frame(b"x", rsv=0x40), frame(b"x", opcode=0x3),
                        frame(b"p" * 126, OP_PING), frame(b"x", opcode=0)]))
def test_frames_complete_before_a_violation_are_returned_first(
        payloads: list[bytes], violation: bytes) -> None:
    pair = _pair()
    try:
        pair.theirs.sendall(b"".join(frame(p) for p in payloads) + violation)
        received: list[tuple[int, bytes]] = []
        with pytest.raises(ProtocolError):
            for _ in range(len(payloads) + 2):
                received.extend(pair.transport.receive())
        assert received == [(OP_TEXT, p) for p in payloads]
    finally:
        pair.close()


# ---------------------------------------------------------------------- JSON and protocol


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(2 ** 63, 2 ** 80), st.just(-(2 ** 70)),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["0.45", "abc", "7", "", "yes", "no", "M1", "1e400"]),
)
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=15,
)

_WIRE_TYPES = [*MESSAGE_CLASSES, "subscribed", "unsubscribed", "ok", "error", "nonsense"]
_msgs = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={
        "market_ticker": st.one_of(st.sampled_from(["M1", "M2", "X"]), json_values),
        "market_id": json_values,
        "price_dollars": st.one_of(st.sampled_from(["0.40", "0.5000"]), json_values),
        "delta_fp": st.one_of(st.sampled_from(["1.00", "-10.00"]), json_values),
        "side": st.one_of(st.sampled_from(["yes", "no"]), json_values),
        "yes_dollars_fp": st.one_of(st.just([["0.40", "10.00"]]), json_values),
        "channel": st.one_of(st.sampled_from(["ticker", "trade"]), json_values),
        "sid": st.one_of(st.integers(1, 5), json_values),
        "code": st.one_of(st.integers(1, 30), json_values),
    }),
)
frames = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={
        "type": st.one_of(st.sampled_from(_WIRE_TYPES), json_values),
        "sid": st.one_of(st.integers(1, 5), json_values),
        "seq": st.one_of(st.integers(0, 12), st.just(2 ** 70), st.sampled_from(["7", "abc"]),
                         st.just(3.5), json_values),
        "id": st.one_of(st.integers(1, 6), json_values),
        "msg": _msgs,
    }),
)


def _subscribed_protocol() -> KalshiProtocol:
    """A protocol with an order-book sid (1, two synced books), ticker (2), trade (3), and
    a list_subscriptions, a subscribe and a get_snapshot in flight (ids 4, 5, 6)."""
    protocol = KalshiProtocol()
    for sid, (channels, markets) in enumerate(
            ((["orderbook_delta"], ["M1", "M2"]), (["ticker"], ["M1"]), (["trade"], None)), 1):
        command_id, _ = protocol.subscribe(channels, markets, {})
        protocol.receive({"id": command_id, "type": "subscribed",
                          "msg": {"channel": channels[0], "sid": sid}})
    for seq, market in enumerate(["M1", "M2"], 1):
        protocol.receive({"type": "orderbook_snapshot", "sid": 1, "seq": seq,
                          "msg": {"market_ticker": market, "market_id": market,
                                  "yes_dollars_fp": [["0.40", "10.00"]]}})
    protocol.list_subscriptions()  # id 4, in flight
    protocol.subscribe(["fill", "user_orders"], None, {})  # id 5, in flight
    protocol.update_subscription(1, "get_snapshot", ["M1"], {})  # id 6, in flight
    protocol.take_deliveries()
    protocol.take_completions()
    protocol.take_outgoing()
    return protocol


@FUZZ
@given(json_values)
def test_decode_reads_any_json_text_like_json_does(value: Any) -> None:
    text = json.dumps(value)
    assert decode(text) == json.loads(text, parse_float=Decimal)
    assert decode(text.encode()) == decode(text)


@FUZZ
@given(st.binary(max_size=200))
def test_decode_raises_only_value_errors_on_random_bytes(data: bytes) -> None:
    try:
        decode(data)
    except (ValueError, RecursionError):
        pass


@FUZZ
@given(st.lists(frames, min_size=1, max_size=8))
def test_protocol_receive_never_raises_and_reports_bad_frames(batch: list[Any]) -> None:
    protocol = _subscribed_protocol()
    for value in batch:
        parsed = decode(json.dumps(value))
        protocol.take_deliveries()
        protocol.receive(parsed)  # must never raise
        delivered = protocol.take_deliveries()
        for item in delivered:
            assert isinstance(item, (StreamUpdate, SystemMessage)), item
        wire_type = parsed.get("type") if isinstance(parsed, dict) else None
        if not isinstance(wire_type, str):
            # Not a message at all: reported, with the real reason.
            bad = [i.msg for i in delivered if isinstance(i, StreamUpdate)
                   and isinstance(i.msg, MalformedMessage)]
            assert len(bad) == 1, (parsed, delivered)
            assert "invalid JSON" not in bad[0].error, bad[0].error
        for item in delivered:
            if not isinstance(item, StreamUpdate):
                continue
            if item.type in MESSAGE_CLASSES and not isinstance(
                    item.msg, (MalformedMessage, UnknownMessage)):
                assert isinstance(item.msg, MESSAGE_CLASSES[item.type]), item
                # A message that passed as well-formed carries an integer seq, or none.
                assert item.seq is None or type(item.seq) is int, item
