"""Acceptance audit (session 20, helper 05): README "Optional C speed-ups" and "Logging".

Each test pins one place where the code did not do what README.rst promises.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import sys
from pathlib import Path
from types import ModuleType

import pytest
import websocket

from kalshi_ws import MalformedMessage, StreamUpdate, UnknownMessage, _compiled
from kalshi_ws._transport import Transport
from kalshi_ws.protocol import KalshiProtocol

speedups = _compiled.speedups
needs_c = pytest.mark.skipif(speedups is None, reason="kalshi_ws._speedups is not built")
SOURCE = Path(_compiled.__file__).with_name("_speedups.c")


def test_a_c_module_built_from_other_c_code_of_the_same_interface_is_not_used(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # README: "A C module built from another release of kalshi_ws (an editable install
    # updated without reinstalling) is never used". A git pull that changes the C code
    # without changing its interface (a use-after-free fixed, say) left the old module in
    # place with the same API_VERSION, and it was used, bugs and all.
    stale = ModuleType("kalshi_ws._speedups")
    stale.API_VERSION = _compiled.API_VERSION  # type: ignore[attr-defined]
    stale.SOURCE_DIGEST = "0" * 64  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kalshi_ws._speedups", stale)
    with caplog.at_level(logging.WARNING, logger="kalshi_ws"):
        assert _compiled._import() is None
    assert "Python alone" in caplog.text and "reinstall" in caplog.text


@needs_c
def test_the_built_c_module_says_which_c_code_it_was_built_from() -> None:
    assert speedups.SOURCE_DIGEST == hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    assert _compiled._import() is speedups


def test_a_close_frame_that_cannot_be_sent_is_logged_as_the_client(
        caplog: pytest.LogCaptureFixture) -> None:
    # README "Logging": "Whichever module does the work, the client's connections,
    # commands and reconnects log as kalshi_ws.client". The transport logged a failed
    # close frame as kalshi_ws._transport, which a handler on kalshi_ws.client misses.
    ours, theirs = socket.socketpair()
    ws = websocket.WebSocket()
    ws.sock, ws.connected = ours, True
    transport = Transport(ws, tick=0.5)
    ours.close()
    theirs.close()
    with caplog.at_level(logging.DEBUG, logger="kalshi_ws"):
        transport.send_close()
    records = [r for r in caplog.records if "close frame" in r.getMessage()]
    assert records and all(r.name == "kalshi_ws.client" for r in records), \
        [(r.name, r.getMessage()) for r in caplog.records]
    assert transport.close_sent


@pytest.mark.parametrize("channel, frame, cls, named", [
    ("trade", {"type": "brand_new_type", "sid": 1, "seq": 1, "msg": {}},
     UnknownMessage, "brand_new_type"),
    ("trade", {"type": "trade", "sid": 1, "seq": 1, "msg": {"market_ticker": 5}},
     MalformedMessage, "market_ticker"),
    ("ticker", {"type": "ticker", "sid": 1, "msg": {"price_dollars": "0.41"}},
     MalformedMessage, "market_ticker"),
], ids=["unknown type", "malformed trade", "malformed ticker"])
def test_unknown_and_malformed_messages_of_a_subscription_log_a_warning(
        caplog: pytest.LogCaptureFixture, channel: str, frame: dict[str, object],
        cls: type, named: str) -> None:
    # README "Logging": "the protocol's sequence gaps, Kalshi's errors and malformed
    # messages [log] as kalshi_ws.protocol ... WARNING for gaps, unknown or malformed
    # messages". On a subscribed sid they were delivered without a word.
    protocol = KalshiProtocol()
    command_id, _ = protocol.subscribe([channel], None)
    protocol.receive({"id": command_id, "type": "subscribed",
                      "msg": {"channel": channel, "sid": 1}})
    protocol.take_completions()
    protocol.take_deliveries()
    with caplog.at_level(logging.DEBUG, logger="kalshi_ws"):
        protocol.receive(json.loads(json.dumps(frame)))
    updates = [i for i in protocol.take_deliveries() if isinstance(i, StreamUpdate)]
    assert len(updates) == 1 and isinstance(updates[0].msg, cls), updates
    warnings = [r for r in caplog.records
                if r.name == "kalshi_ws.protocol" and r.levelno == logging.WARNING]
    assert any(named in r.getMessage() for r in warnings), \
        [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
