"""Acceptance audit (session 20, helper 05): README "Channels and messages" against the
real client, through a hostile server's real socket.

Each test pins one promise of README.rst that a tester could check and the code broke.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from kalshi_ws import (
    KalshiStreamClient,
    MalformedMessage,
    Reconnected,
    StreamUpdate,
    Ticker,
    _compiled,
)
from kalshi_ws.testing import FakeKalshiServer
from tests.conftest import Collector
from tests.hostile_server import OP_BINARY, OP_CONT, HostileServer, frame
from tests.timing import MS


@pytest.mark.parametrize("pure_python", [False, True], ids=["c", "python"])
def test_binary_frames_are_read_as_utf8_json_messages_or_malformed(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient],
        monkeypatch: pytest.MonkeyPatch, pure_python: bool) -> None:
    # README: "a binary frame is read the same way (UTF-8 JSON), so it is either a
    # message or a MalformedMessage".
    if pure_python:
        monkeypatch.setenv("KALSHI_WS_PURE_PYTHON", "1")
    client = open_client()
    seen = Collector()
    client.add_callback(seen)
    sid = client.subscribe(["ticker"], ["M"]).successful[0].sid
    conn = hostile.connection()
    ticker = json.dumps({"type": "ticker", "sid": sid,
                         "msg": {"market_ticker": "M", "price_dollars": "0.4100"}}).encode()
    conn.send_raw(frame(b"\xff\xfe not utf-8", OP_BINARY)
                  + frame(ticker, OP_BINARY)
                  + frame(ticker[:10], OP_BINARY, fin=False) + frame(ticker[10:], OP_CONT)
                  + frame(b"[1, 2]", OP_BINARY))
    seen.wait_for(lambda items: len([i for i in items if isinstance(i, StreamUpdate)]) >= 4,
                  timeout=5_000 * MS)
    updates = [i for i in seen.items if isinstance(i, StreamUpdate)]
    kinds = [type(u.msg).__name__ for u in updates]
    assert kinds == ["MalformedMessage", "Ticker", "Ticker", "MalformedMessage"], updates
    assert all(isinstance(u.msg, Ticker) and str(u.msg.price_dollars) == "0.4100"
               for u in updates[1:3])
    assert isinstance(updates[0].msg, MalformedMessage) and updates[0].msg.error
    assert client.state == "OPEN"


@pytest.mark.parametrize("pure_at_creation", [True, False], ids=["python", "c"])
def test_a_client_keeps_the_choice_of_c_code_made_when_it_was_created(
        server: FakeKalshiServer, connect: Callable[..., KalshiStreamClient],
        monkeypatch: pytest.MonkeyPatch, pure_at_creation: bool) -> None:
    # README: "KALSHI_WS_PURE_PYTHON=1 in the environment when a client is created: that
    # client's reader (its shapes, framing and updates) runs in Python alone". The
    # framing was chosen again at each connection, so after a reconnect a client created
    # in Python alone cut frames in C once the variable was gone (and the other way).
    if _compiled.speedups is None:
        pytest.skip("kalshi_ws._speedups is not built")
    monkeypatch.setenv(_compiled.PURE_PYTHON_VARIABLE, "1" if pure_at_creation else "0")
    client = connect(reconnect=True)
    seen = Collector()
    client.add_callback(seen)
    client.subscribe(["ticker"])
    monkeypatch.setenv(_compiled.PURE_PYTHON_VARIABLE, "0" if pure_at_creation else "1")
    server.drop_connections()
    seen.wait_for(lambda items: any(isinstance(i, Reconnected) for i in items))
    transport = client._session.transport
    assert transport is not None
    assert (transport._split_data is None) == pure_at_creation
