"""The fake server behaves like Kalshi where a client can tell, even to clients that
misbehave in ways kalshi_ws never does (raw websocket-client connections here)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import websocket
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import Closed, ConnectionLost, KalshiStreamClient
from kalshi_ws.auth import Signer
from kalshi_ws.testing import FakeKalshiServer
from kalshi_ws.testing.rules import ERROR_TEXT
from tests.conftest import Collector, Signal
from tests.timing import MS, WAIT


def raw_connect(server: FakeKalshiServer, headers: dict[str, str],
                **options: Any) -> websocket.WebSocket:
    return websocket.create_connection(server.url, header=headers, timeout=5_000 * MS,
                                       **options)


def signed(key: rsa.RSAPrivateKey, clock: Any = time.time) -> dict[str, str]:
    return Signer("raw-client", key, clock=clock).headers()


def status_of(server: FakeKalshiServer, headers: dict[str, str], **options: Any) -> int:
    try:
        raw_connect(server, headers, **options).close()
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
    return 101


def test_handshake_checks(server: FakeKalshiServer, private_key: rsa.RSAPrivateKey,
                          other_private_key: rsa.RSAPrivateKey) -> None:
    assert status_of(server, signed(private_key), suppress_origin=True) == 101
    assert status_of(server, {}, suppress_origin=True) == 401
    assert status_of(server, signed(other_private_key), suppress_origin=True) == 401
    stale = signed(private_key, clock=lambda: time.time() - 120)
    assert status_of(server, stale, suppress_origin=True) == 401
    # websocket-client sends an Origin header unless told not to: Kalshi's CDN says 403.
    assert status_of(server, signed(private_key)) == 403


def test_replies_to_bad_json_and_unknown_commands(server: FakeKalshiServer,
                                                  private_key: rsa.RSAPrivateKey) -> None:
    ws = raw_connect(server, signed(private_key), suppress_origin=True)
    try:
        ws.send("{not json")
        assert json.loads(ws.recv()) == {"type": "error", "msg": {
            "code": 1, "msg": "Unable to process message"}}
        ws.send(json.dumps({"id": 4, "cmd": "dance"}))
        assert json.loads(ws.recv())["msg"]["code"] == 5
        ws.send(json.dumps({"id": 5, "cmd": "subscribe"}))
        assert json.loads(ws.recv())["msg"]["code"] == 2
        ws.send(json.dumps({"id": 6, "cmd": "subscribe", "params": {"channels": []}}))
        assert json.loads(ws.recv())["msg"]["code"] == 3
        ws.send(json.dumps({"id": 7, "cmd": "unsubscribe", "params": {}}))
        assert json.loads(ws.recv())["msg"]["code"] == 4
        ws.send(json.dumps({"id": 8, "cmd": "update_subscription",
                            "params": {"sids": [1, 2], "action": "add_markets"}}))
        assert json.loads(ws.recv())["msg"]["code"] == 12
    finally:
        ws.close()


def test_a_client_that_never_pongs_is_dropped(private_key: rsa.RSAPrivateKey) -> None:
    with FakeKalshiServer(public_key=private_key.public_key(), ping_interval=0.1,
                          pong_timeout=0.3) as server:
        ws = raw_connect(server, signed(private_key), suppress_origin=True)
        try:
            server.wait_for_sessions(1)
            # websocket-client answers pings only while reading; this client never reads.
            server.wait_for_sessions(0, timeout=WAIT)
        finally:
            ws.shutdown()


def test_the_fake_servers_parts_log_under_its_name(private_key: rsa.RSAPrivateKey,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """The server's parts (split into modules) log as ``kalshi_ws.testing.server``, the
    name users and the CLI configure."""
    with caplog.at_level(logging.INFO, logger="kalshi_ws.testing.server"), \
            FakeKalshiServer(public_key=private_key.public_key(), ping_interval=0.1,
                             pong_timeout=0.3) as server:
        ws = raw_connect(server, signed(private_key), suppress_origin=True)
        try:
            server.wait_for_sessions(1)
            server.wait_for_sessions(0, timeout=WAIT)  # dropped: it never answers
        finally:
            ws.shutdown()
    dropped = [r for r in caplog.records if "never answered the heartbeat" in r.getMessage()]
    assert dropped and {r.name for r in dropped} == {"kalshi_ws.testing.server"}


def test_a_client_that_pongs_is_kept(private_key: rsa.RSAPrivateKey) -> None:
    with FakeKalshiServer(public_key=private_key.public_key(), ping_interval=0.1,
                          pong_timeout=0.3) as server:
        ws = raw_connect(server, signed(private_key), suppress_origin=True)
        ws.settimeout(50 * MS)  # how often the reader looks at ``stop``
        stop = threading.Event()
        pings: list[bytes] = []
        pinged = Signal()

        def read() -> None:
            while not stop.is_set():
                try:
                    opcode, data = ws.recv_data(control_frame=True)  # answers pings
                    if opcode == websocket.ABNF.OPCODE_PING:
                        pings.append(data)
                        pinged()
                except websocket.WebSocketTimeoutException:
                    continue
                except websocket.WebSocketException:
                    return

        reader = threading.Thread(target=read)
        reader.start()
        try:
            pinged.wait_until(lambda: len(pings) >= 5, what="five heartbeats")
            assert len(pings) >= 5 and set(pings) == {b"heartbeat"}
            assert len(server.sessions) == 1
        finally:
            stop.set()
            reader.join(5_000 * MS)
            ws.close()


def test_sequence_numbers_count_every_sid_scoped_reply(server: FakeKalshiServer,
                                                       private_key: rsa.RSAPrivateKey) -> None:
    ws = raw_connect(server, signed(private_key), suppress_origin=True)
    try:
        ws.send(json.dumps({"id": 1, "cmd": "subscribe",
                            "params": {"channels": ["orderbook_delta"],
                                       "market_tickers": ["SIM-ALPHA"]}}))
        replies = [json.loads(ws.recv()) for _ in range(2)]
        assert replies[0]["type"] == "subscribed" and replies[1]["seq"] == 1
        ws.send(json.dumps({"id": 2, "cmd": "update_subscription",
                            "params": {"sid": 1, "action": "add_markets",
                                       "market_tickers": ["SIM-BRAVO"]}}))
        ok, snapshot = json.loads(ws.recv()), json.loads(ws.recv())
        assert (ok["type"], ok["seq"], snapshot["seq"]) == ("ok", 2, 3)
        ws.send(json.dumps({"id": 3, "cmd": "update_subscription",
                            "params": {"sid": 1, "action": "subscribe_indices",
                                       "index_ids": ["BRTI"]}}))
        error = json.loads(ws.recv())
        assert (error["type"], error["sid"], error["seq"], error["msg"]["code"]) == (
            "error", 1, 4, 13)
        ws.send(json.dumps({"id": 4, "cmd": "unsubscribe", "params": {"sids": [1]}}))
        assert json.loads(ws.recv()) == {"id": 4, "sid": 1, "seq": 5, "type": "unsubscribed"}
    finally:
        ws.close()


@pytest.mark.parametrize("channel, action, key, code", [
    ("cfbenchmarks_value", "subscribe_indices", "index_ids", 24),
    ("pyth_value", "subscribe_underlyings", "underlying_tickers", 28),
])
def test_index_and_underlying_actions(server: FakeKalshiServer, private_key: rsa.RSAPrivateKey,
                                      channel: str, action: str, key: str, code: int) -> None:
    ws = raw_connect(server, signed(private_key), suppress_origin=True)
    try:
        ws.send(json.dumps({"id": 1, "cmd": "subscribe", "params": {"channels": [channel]}}))
        assert json.loads(ws.recv())["type"] == "subscribed"
        ws.send(json.dumps({"id": 2, "cmd": "update_subscription",
                            "params": {"sid": 1, "action": action}}))
        assert json.loads(ws.recv())["msg"]["code"] == code
        ws.send(json.dumps({"id": 3, "cmd": "update_subscription",
                            "params": {"sid": 1, "action": action, key: ["X"]}}))
        assert json.loads(ws.recv())["msg"] == {key: ["X"]}
    finally:
        ws.close()


@pytest.mark.parametrize(("sharding", "code"), [
    ({"shard_factor": 0}, 19), ({"shard_key": 1}, 20),
    ({"shard_factor": 2, "shard_key": 2}, 21), ({"shard_factor": 2, "shard_key": -1}, 21),
    ({"shard_factor": 101}, 22)])
def test_bad_communications_sharding_gets_kalshis_codes(
        server: FakeKalshiServer, private_key: rsa.RSAPrivateKey, sharding: dict[str, int],
        code: int) -> None:
    ws = raw_connect(server, signed(private_key), suppress_origin=True)
    try:
        ws.send(json.dumps({"id": 1, "cmd": "subscribe",
                            "params": {"channels": ["communications"], **sharding}}))
        assert json.loads(ws.recv()) == {"id": 1, "type": "error", "msg": {
            "code": code, "msg": ERROR_TEXT[code]}}
        ws.send(json.dumps({"id": 2, "cmd": "subscribe", "params": {
            "channels": ["communications"], "shard_factor": 2, "shard_key": 1}}))
        assert json.loads(ws.recv())["type"] == "subscribed"
    finally:
        ws.close()


@pytest.mark.parametrize(("channel", "wire_type"), [
    ("market_lifecycle_v2", "market_lifecycle_v2"), ("communications", "rfq_created")])
def test_channels_without_a_market_filter_ignore_the_tickers(
        server: FakeKalshiServer, private_key: rsa.RSAPrivateKey, channel: str,
        wire_type: str) -> None:
    ws = raw_connect(server, signed(private_key), suppress_origin=True)
    try:
        ws.send(json.dumps({"id": 1, "cmd": "subscribe", "params": {
            "channels": [channel], "market_tickers": ["SIM-ALPHA"]}}))
        assert json.loads(ws.recv())["type"] == "subscribed"
        assert server.publish(channel, wire_type, {"market_ticker": "SIM-OTHER"}) == 1
        frame = json.loads(ws.recv())
        assert frame["type"] == wire_type and frame["msg"]["market_ticker"] == "SIM-OTHER"
    finally:
        ws.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_stopping_in_a_forked_child_leaves_the_parents_server_alone(
        server: FakeKalshiServer, private_key: rsa.RSAPrivateKey) -> None:
    """A forked child (a pre-forking web server's worker) inherits the server object
    but not its thread: its stop() must not wait for that thread nor report a failed
    shutdown, and the parent's server must keep serving."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            failures: list[logging.LogRecord] = []
            handler = logging.Handler(logging.WARNING)
            handler.emit = failures.append  # type: ignore[method-assign]
            logging.getLogger("kalshi_ws.testing.server").addHandler(handler)
            server.stop()
            code = 3 if failures else 4 if "stopped" not in repr(server) else 0
        except BaseException:  # noqa: BLE001
            code = 5
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert status_of(server, signed(private_key), suppress_origin=True) == 101


def test_a_silent_server_stopped_sends_no_close_frame(
        server: FakeKalshiServer, connect: Callable[..., KalshiStreamClient],
        collector: Collector) -> None:
    """stop_answering() means "send nothing": stopping the server then ends its
    connections like a hung process that dies (no close frame), where a server that
    answers closes them with 1001 (going away)."""
    client = connect(reconnect=False)
    client.add_callback(collector)
    server.stop_answering()
    server.stop()
    final = collector.final()
    assert isinstance(final, ConnectionLost), final


def test_an_answering_server_stopped_closes_with_going_away(
        server: FakeKalshiServer, connect: Callable[..., KalshiStreamClient],
        collector: Collector) -> None:
    client = connect(reconnect=False)
    client.add_callback(collector)
    server.stop()
    final = collector.final()
    assert isinstance(final, Closed) and final.code == 1001, final
