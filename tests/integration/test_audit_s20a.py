"""Acceptance audit (session 20): README promises of Commands and Threads that failed.

Each test runs the real client against a real server on 127.0.0.1 (the hostile one,
which can end a connection every way a server can, or the fake Kalshi server).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_ws import (
    Channel,
    Closed,
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    InvalidCommand,
    KalshiConfig,
    KalshiStreamClient,
    Unsubscribed,
)
from kalshi_ws.testing import FakeKalshiServer
from tests.conftest import Collector
from tests.hostile_server import Conn, HostileServer
from tests.timing import MS, WAIT


def _wait_in_thread(client: KalshiStreamClient) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            client.list_subscriptions(timeout=WAIT)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            errors.append(exc)

    waiting = threading.Thread(target=run)
    waiting.start()
    return waiting, errors


def _hang_up(conn: Conn, client: KalshiStreamClient) -> None:
    conn.sock.shutdown(socket.SHUT_WR)  # end of file: no close frame, no reset, no OS error


@pytest.mark.parametrize("end, expected", [
    (lambda conn, client: conn.finish(1011, "internal error"), ConnectionClosedError),
    (_hang_up, ConnectionClosedError),
    (lambda conn, client: conn.finish(1000, "bye"), ConnectionClosedOK),
    (lambda conn, client: conn.finish(1001, "going away"), ConnectionClosedOK),
    (lambda conn, client: conn.finish(4000, "end of stream"), ConnectionClosedOK),
    (lambda conn, client: client.close(), ConnectionClosedOK),
], ids=["server-1011", "server-eof", "server-1000", "server-1001", "end-of-replay",
        "user-close"])
def test_a_waiting_command_wakes_chained_to_the_cause(
        private_key: rsa.RSAPrivateKey, end: Callable[[Conn, KalshiStreamClient], Any],
        expected: type[ConnectionClosed]) -> None:
    """README, Commands: "When the connection dies, every waiting command wakes at once
    with a ConnectionClosed chained to the cause: ConnectionClosedOK when the server
    closed cleanly (1000 or 1001, or 4000 end of stream at the end of a replay) or you
    called close(), ConnectionClosedError (ConnectionLost) otherwise". The cause was
    missing whenever no OS error lay behind the end (a close frame, an end of file,
    close()); the README did not mention 4000."""
    with HostileServer(hold={"list_subscriptions"}) as hostile:
        config = KalshiConfig("test-key-id", private_key, ws_url=hostile.url)
        with KalshiStreamClient.connect(config) as client:
            conn = hostile.connection()
            waiting, errors = _wait_in_thread(client)
            conn.wait_cmd("list_subscriptions")
            end(conn, client)
            waiting.join(WAIT)
    assert len(errors) == 1 and type(errors[0]) is not ConnectionClosed
    assert isinstance(errors[0], expected)
    assert isinstance(errors[0].__cause__, BaseException)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.parametrize("use", [
    lambda client, handle: client.subscribe(["ticker"], timeout=1),
    lambda client, handle: client.remove_callback(handle),
    lambda client, handle: client.book_state("SIM-ALPHA"),
    lambda client, handle: client.resync_books(["SIM-ALPHA"]),
    lambda client, handle: client.subscription_options(1),
    lambda client, handle: client.stop_recording(),
], ids=["subscribe", "remove_callback", "book_state", "resync_books", "subscription_options",
        "stop_recording"])
def test_every_method_of_a_client_used_after_fork_raises(
        client: KalshiStreamClient, use: Callable[[KalshiStreamClient, Any], Any]) -> None:
    """README, Threads: "A client used in a process other than the one that created it
    (after fork()) raises ConcurrencyError" (the ones that take the session's lock would
    otherwise hang on a lock copied while held)."""
    handle = client.add_callback(lambda item: None)
    pid = os.fork()
    if pid == 0:  # child: the client's threads did not survive the fork
        try:
            use(client, handle)
        except ConcurrencyError:
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(2)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("channel, option", [
    ("ticker", "market_ids"),
    ("cfbenchmarks_value", "index_ids"),
    ("pyth_value", "underlying_tickers"),
])
def test_subscribe_refuses_an_empty_list_option_before_sending(
        client: KalshiStreamClient, server: FakeKalshiServer, channel: str,
        option: str) -> None:
    """README, Commands: subscribe's options are "checked before sending (InvalidCommand)".
    An empty market_tickers is refused; an empty market_ids (or index_ids,
    underlying_tickers) was sent as is, a filter that filters nothing."""
    with pytest.raises(InvalidCommand, match=f"{option} is empty"):
        client.subscribe([channel], **{option: []})
    assert client.list_subscriptions() == []
    assert [c["cmd"] for c in server.commands] == ["list_subscriptions"]  # nothing else sent


class _TricklingUpgrade:
    """A server that answers the upgrade request with a 101 status line, then one more
    header line every 20 ms, never ending the headers: every read finds a byte quickly,
    so only a deadline on the whole attempt can end it."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="trickling-upgrade")
        self._thread.start()

    def _serve(self) -> None:
        sock, _ = self._listener.accept()
        with sock:
            request = b""
            while b"\r\n\r\n" not in request:
                request += sock.recv(4096)
            try:
                sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\n")
                while not self._stop.wait(20 * MS):
                    sock.sendall(b"X-Slow: header\r\n")
            except OSError:
                return  # the client gave up and closed the socket

    def close(self) -> None:
        self._stop.set()
        self._thread.join(WAIT)
        self._listener.close()


@pytest.mark.timeout(30)
def test_the_connect_timeout_bounds_a_handshake_that_never_ends(
        private_key: rsa.RSAPrivateKey) -> None:
    """README, Configuration: ``timeout`` is "seconds for each connection attempt (10)".
    A server trickling endless upgrade headers kept connect() waiting forever."""
    server = _TricklingUpgrade()
    errors: list[BaseException] = []

    def connect() -> None:
        try:
            KalshiStreamClient.connect(
                KalshiConfig("test-key-id", private_key, ws_url=server.url), timeout=0.3)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            errors.append(exc)

    connecting = threading.Thread(target=connect)
    connecting.start()
    connecting.join(WAIT)
    hung = connecting.is_alive()
    server.close()  # ends a hung attempt too (then the test fails on ``hung``)
    connecting.join(WAIT)
    assert not hung, "connect() ignored its timeout"
    assert len(errors) == 1 and isinstance(errors[0], HandshakeError)
    assert "timed out" in str(errors[0])


def test_a_callback_for_one_channel_gets_no_system_message_of_another(
        client: KalshiStreamClient) -> None:
    """README, Receiving updates (corrected): a callback for some channels gets their
    system messages and the connection's, not another channel's. The README said
    "one channel (and system messages)", which reads as every system message."""
    trade_only = Collector()
    everything = Collector()
    client.add_callback(trade_only, channels=[Channel.TRADE])
    client.add_callback(everything)
    client.unsubscribe(client.subscribe([Channel.TICKER]).sids)
    client.close()
    assert [type(i) for i in everything.items] == [Unsubscribed, Closed]
    assert [type(i) for i in trade_only.items] == [Closed]
