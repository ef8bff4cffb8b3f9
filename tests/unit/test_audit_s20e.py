"""Acceptance audit (session 20, helper 05): README "Optional C speed-ups" and "Logging".

Each test pins one place where the code did not do what README.rst promises.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import sys
from pathlib import Path
from types import ModuleType

import pytest
import websocket

from kalshi_ws import _compiled
from kalshi_ws._transport import Transport

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
