"""The real client against a hostile WebSocket server of its own (tests/hostile_server.py).

Each scenario writes bytes no polite server would (garbage JSON, absurd lengths, trickles,
floods, endless fragments, resets, refused handshakes) and checks the client's promises:

* the reader never dies of an exception (no "internal error", no exception logged by the
  library: checked for every test by the ``reader_never_raises`` fixture below);
* memory stays bounded (checked structurally: the server stops writing just past a limit,
  and the client must end the connection without needing more bytes);
* every loss is reported (a MalformedMessage, a system message or a log record);
* every waiter wakes (a command in flight raises, well within its timeout);
* every thread ends after close() (the suite's autouse ``no_thread_left_behind``).

Waits are on conditions with timeouts, never sleeps; the only clocks read are lower
bounds the behaviour itself promises (Retry-After, backoff growth).
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from kalshi_ws import (
    Backoff,
    CommandTimeout,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectionLost,
    ConnectStrategy,
    HandshakeError,
    HealthConfig,
    KalshiConfig,
    KalshiStreamClient,
    Lagged,
    MalformedMessage,
    ProtocolError,
    ReconnectPolicy,
    SequenceGap,
    SlowConsumerError,
    StreamUpdate,
    Ticker,
    Trade,
    UnknownMessage,
)
from tests.conftest import Collector, poll_public_state
from tests.hostile_server import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    Conn,
    HostileServer,
    Refusal,
    frame,
    header,
    text_frame,
)
from tests.timing import MS, WAIT

pytestmark = pytest.mark.timeout(40)

MiB = 2 ** 20


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def reader_never_raises(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No library code may log an exception (reader, protocol, dispatcher, book set)."""
    caplog.set_level(logging.WARNING, logger="kalshi_ws")
    yield
    bad = [r for r in caplog.records if r.name.startswith("kalshi_ws")
           and (r.exc_info or "internal error" in r.getMessage())]
    assert not bad, "library code raised: " + "; ".join(
        f"{r.name}: {r.getMessage()}" for r in bad)


def _ticker_client(hostile: HostileServer, open_client: Callable[..., KalshiStreamClient],
                   ) -> tuple[KalshiStreamClient, Collector, int, Conn]:
    """A client subscribed to ``ticker`` on market M, its collector, the sid and the
    hostile server's side of the connection."""
    client = open_client()
    seen = Collector()
    client.add_callback(seen)
    sid = client.subscribe(["ticker"], ["M"]).successful[0].sid
    return client, seen, sid, hostile.connection()


class InFlight:
    """Run one command on another thread and keep its outcome."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

        def run() -> None:
            try:
                self.result = call()
            except BaseException as exc:  # noqa: BLE001 - the test inspects it
                self.error = exc
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, name="test-command", daemon=True)
        self.thread.start()

    def outcome(self, timeout: float = WAIT) -> BaseException | None:
        assert self.done.wait(timeout), "the command never returned (a waiter did not wake)"
        self.thread.join(1_000 * MS)
        return self.error


def ticker_msg(market: str = "M", **extra: Any) -> dict[str, Any]:
    return {"market_ticker": market, "market_id": "id-M", "price_dollars": "0.4800",
            "yes_bid_dollars": "0.4500", "yes_ask_dollars": "0.5300", "volume_fp": "10.00",
            "ts_ms": 1669149841000, **extra}


def trade_msg(market: str = "M") -> dict[str, Any]:
    return {"trade_id": "t", "market_ticker": market, "yes_price_dollars": "0.3600",
            "no_price_dollars": "0.6400", "count_fp": "1.00", "taker_side": "no",
            "ts": 1669149841}


def bad_messages(items: list[Any]) -> list[Any]:
    return [i for i in items if isinstance(i, StreamUpdate)
            and isinstance(i.msg, (MalformedMessage, UnknownMessage))]


def names_size(text: str, limit: int) -> bool:
    """Whether an error text names a size: the limit (or more) in bytes, or in MiB."""
    numbers = [int(n.replace(",", "").replace("_", ""))
               for n in re.findall(r"\d[\d,_]*", text)]
    return any(n >= limit for n in numbers) or f"{limit // MiB} MiB" in text


def ended(client: KalshiStreamClient, timeout: float = 5_000 * MS) -> BaseException | None:
    # No event says the client has ended but its final item, which a stuck callback or
    # an unread queue holds back: read the state.
    poll_public_state(lambda: client.closed, timeout, "the client's end")
    return client.close_reason


# ---------------------------------------------------------------------- garbage


def test_garbage_frames_are_each_reported_and_the_reader_survives(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    client, seen, sid, conn = _ticker_client(hostile, open_client)
    huge = "9" * 5000
    garbage: list[tuple[bytes, bool]] = [  # (payload, is valid JSON)
        (b"{not json", False),
        (b"\xff\xfe\xfd", False),
        (b"[" * 100_000 + b"]" * 100_000, False),  # too deep for any JSON parser
        (b"[1,2,3]", True),
        (b"null", True),
        (b'"a string"', True),
        (b"12", True),
        (f'{{"type":"ticker","sid":{sid},"msg":{{"price_dollars":{huge}}}}}'.encode(), False),
    ]
    for value in [
        {"type": ["ticker"], "sid": sid, "msg": ticker_msg()},  # unhashable type (D10)
        {"type": {"ticker": 1}, "sid": sid, "msg": ticker_msg()},
        {"type": 17, "sid": sid},
        {"type": "ticker", "sid": [sid], "msg": ticker_msg()},
        {"type": "ticker", "sid": {"sid": sid}, "msg": ticker_msg()},
        {"type": "ticker", "sid": sid, "msg": "not an object"},
        {"type": "ticker", "sid": sid, "msg": {"market_ticker": ["M"]}},
        {"type": "ticker", "sid": sid, "id": [1], "msg": 5},
        {"type": "no_such_type", "sid": sid, "msg": {}},
        {"type": "ticker", "sid": sid, "seq": [1], "msg": ticker_msg()},  # not a seq (D8)
        {"type": "ticker", "sid": sid, "seq": {"n": 1}, "msg": ticker_msg()},
    ]:
        garbage.append((json.dumps(value).encode(), True))
    conn.send_raw(b"".join(frame(payload) for payload, _ in garbage))
    conn.send({"type": "ticker", "sid": sid, "msg": ticker_msg()})
    assert client.list_subscriptions(timeout=5_000 * MS)  # the reader still answers commands
    seen.wait_for(lambda items: len(bad_messages(items)) >= len(garbage) and any(
        isinstance(u.msg, Ticker) for u in seen.updates("ticker")), timeout=5_000 * MS)
    reported = bad_messages(seen.items)
    assert len(reported) == len(garbage), reported
    for (payload, valid_json), update in zip(garbage, reported):
        if valid_json:  # the real reason, not "invalid JSON"
            assert "invalid JSON" not in getattr(update.msg, "error", ""), (payload[:80], update)
    assert client.state == "OPEN"


def test_binary_frames_are_reported_or_refused_never_fatal(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    client, seen, sid, conn = _ticker_client(hostile, open_client)
    conn.send_raw(frame(b"\x00\x01\x02binary", OP_BINARY)
                  + frame(json.dumps({"type": "ticker", "sid": sid,
                                      "msg": ticker_msg()}).encode(), OP_BINARY))
    if client.closed:  # a decision may be to refuse binary frames outright
        assert isinstance(client.close_reason, ProtocolError)
        return
    try:
        client.list_subscriptions(timeout=5_000 * MS)
    except ConnectionClosed:
        assert isinstance(client.close_reason, ProtocolError)
        return
    seen.wait_for(lambda items: bad_messages(items) or seen.updates("ticker"), timeout=5_000 * MS)


def test_frames_trickled_one_byte_per_write_arrive_whole(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    _, seen, sid, conn = _ticker_client(hostile, open_client)
    data = b"".join(text_frame({"type": "ticker", "sid": sid, "msg": ticker_msg(price_dollars=p)})
                    for p in ("0.0100", "0.0200", "0.0300"))
    data = frame(b"ping!", OP_PING)[:1] + frame(b"ping!", OP_PING)[1:] + data
    for index in range(len(data)):
        conn.send_raw(data[index:index + 1])
    seen.wait_for(lambda items: len(seen.updates("ticker")) == 3)
    assert [str(u.msg.price_dollars) for u in seen.updates("ticker")] == \
        ["0.0100", "0.0200", "0.0300"]
    hostile.wait_for(lambda: conn.pongs == [b"ping!"])  # the ping was answered
    assert not bad_messages(seen.items)


# ---------------------------------------------------------------------- message size (D3)


def test_an_absurd_frame_length_ends_the_connection_before_buffering(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    hostile.hold = {"list_subscriptions"}
    client = open_client(max_message_size=MiB)
    conn = hostile.connection()
    waiter = InFlight(lambda: client.list_subscriptions(timeout=WAIT))
    conn.wait_cmd("list_subscriptions")
    # A header claiming 2**40 bytes, then a little data; the client must not wait for more.
    conn.send_raw(header(2 ** 40) + b"x" * 4096)
    reason = ended(client)
    assert isinstance(reason, ProtocolError), repr(reason)
    assert names_size(str(reason), MiB), str(reason)
    error = waiter.outcome()
    assert isinstance(error, ConnectionClosed) and not isinstance(error, ConnectionClosedOK), \
        repr(error)


def test_the_default_limit_refuses_a_two_to_the_forty_byte_frame(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    client = open_client()
    hostile.connection().send_raw(header(2 ** 40))  # and nothing more
    reason = ended(client)
    assert isinstance(reason, ProtocolError), repr(reason)
    assert names_size(str(reason), 64 * MiB), str(reason)


def test_endless_continuation_fragments_end_at_the_limit(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    client = open_client(max_message_size=MiB)
    conn = hostile.connection()
    piece = b"a" * 1024
    # Just past the limit, then silence: the client must stop without needing more bytes.
    chunks = [frame(b'{"type":"ticker","msg":"' + piece, OP_TEXT, fin=False)]
    chunks += [frame(piece, OP_CONT, fin=False) for _ in range(MiB // 1024 + 8)]
    conn.send_raw(b"".join(chunks))
    reason = ended(client)
    assert isinstance(reason, ProtocolError), repr(reason)
    assert names_size(str(reason), MiB), str(reason)


def test_a_message_under_the_limit_is_delivered(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    client = open_client(max_message_size=MiB)
    seen = Collector()
    client.add_callback(seen)
    sid = client.subscribe(["ticker"], ["M"]).successful[0].sid
    conn = hostile.connection()
    text = json.dumps({"type": "ticker", "sid": sid, "msg": ticker_msg(time="t" * (MiB - 4096))})
    half = len(text) // 2  # also in two fragments
    conn.send_raw(frame(text[:half], OP_TEXT, fin=False) + frame(text[half:], OP_CONT))
    seen.wait_for(lambda items: seen.updates("ticker"))
    assert len(seen.updates("ticker")[0].msg.time) == MiB - 4096
    assert client.state == "OPEN"


def test_max_message_size_none_means_no_limit(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    client = open_client(max_message_size=None)
    seen = Collector()
    client.add_callback(seen)
    sid = client.subscribe(["ticker"], ["M"]).successful[0].sid
    conn = hostile.connection()
    conn.send({"type": "ticker", "sid": sid, "msg": ticker_msg(time="t" * (2 * MiB))})
    seen.wait_for(lambda items: seen.updates("ticker"))
    assert client.state == "OPEN"


def test_a_trickled_frame_does_not_count_as_life(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    client = open_client(health=HealthConfig(idle_timeout=1, ping_interval=None))
    conn = hostile.connection()
    # A frame of 10,000 bytes, one byte every 50 ms: 500 s to complete.
    conn.trickle(header(10_000) + b"x" * 10_000, interval=0.05)
    reason = ended(client, timeout=8_000 * MS)
    assert isinstance(reason, ConnectionLost), repr(reason)
    assert "idle" in str(reason), str(reason)


# ---------------------------------------------------------------------- resets and closes


def test_a_reset_mid_frame_wakes_the_waiting_command(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    hostile.hold = {"list_subscriptions"}
    client = open_client()
    conn = hostile.connection()
    waiter = InFlight(lambda: client.list_subscriptions(timeout=2 * WAIT))
    conn.wait_cmd("list_subscriptions")
    conn.send_raw(text_frame({"type": "ticker", "sid": 1, "msg": ticker_msg()})[:20])
    conn.reset()
    error = waiter.outcome()
    assert isinstance(error, ConnectionClosedError), repr(error)
    assert isinstance(ended(client), ConnectionLost)


def test_a_clean_close_fails_commands_with_connection_closed_ok(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    hostile.hold = {"list_subscriptions"}
    client = open_client()
    conn = hostile.connection()
    waiter = InFlight(lambda: client.list_subscriptions(timeout=2 * WAIT))
    conn.wait_cmd("list_subscriptions")
    conn.send_close(1000, "bye")
    error = waiter.outcome()
    assert isinstance(error, ConnectionClosedOK), repr(error)
    ended(client)
    with pytest.raises(ConnectionClosedOK):
        client.list_subscriptions(timeout=1)


@pytest.mark.parametrize("payload", [
    b"",  # no code
    b"\x03",  # one byte: not even a code
    b"\x03\xed",  # 1005, which must never be sent
    b"\x0f\xa0\xff\xfe\xfd",  # 4000 with a reason that is not UTF-8
])
def test_odd_close_frames_end_the_client_with_a_typed_error(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient],
        payload: bytes) -> None:
    hostile.hold = {"list_subscriptions"}
    client = open_client()
    conn = hostile.connection()
    waiter = InFlight(lambda: client.list_subscriptions(timeout=2 * WAIT))
    conn.wait_cmd("list_subscriptions")
    conn.send_raw(frame(payload, OP_CLOSE))
    assert isinstance(waiter.outcome(), ConnectionClosed)
    ended(client)
    with pytest.raises(ConnectionClosed):
        client.list_subscriptions(timeout=1)


def test_a_ping_flood_is_answered_in_order_and_data_still_flows(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    client, seen, sid, conn = _ticker_client(hostile, open_client)
    pings = [b"%05d" % n + b"p" * 120 for n in range(5_000)]
    conn.send_raw(b"".join(frame(p, OP_PING) for p in pings)
                  + text_frame({"type": "ticker", "sid": sid, "msg": ticker_msg()}))
    seen.wait_for(lambda items: seen.updates("ticker"))
    assert client.list_subscriptions(timeout=WAIT)
    hostile.wait_for(lambda: len(conn.pongs) == len(pings))
    assert conn.pongs == pings


@pytest.mark.parametrize("value", ["soon", "-5", "nan", "1e400", "1.5", "\u0661",
                                   "Wed, 21 Oct 2015 07:28:00 GMT",  # the past
                                   "Wed, 31 Dec 99999 23:59:59 GMT", ""])
def test_an_unreadable_retry_after_is_ignored(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient],
        value: str) -> None:
    hostile.refusals.append(Refusal(503, {"Retry-After": value}))
    client = open_client(strategy=ConnectStrategy.retry(base=0.01, cap=0.05, max_attempts=3))
    assert client.state == "OPEN" and len(hostile.handshakes) == 2


def test_a_bad_upgrade_answer_is_a_handshake_error(
        hostile: HostileServer, hostile_config: KalshiConfig) -> None:
    hostile.refusals.append(Refusal(0, raw=b"HTTP/1.1 101 Switching Protocols\r\n"
                                          b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                          b"Sec-WebSocket-Accept: wrong\r\n\r\n"))
    hostile.refusals.append(Refusal(0, raw=b"\x00garbage\r\n\r\n"))
    for _ in range(2):
        with pytest.raises(HandshakeError):
            KalshiStreamClient.connect(hostile_config, timeout=5_000 * MS)


# ---------------------------------------------------------------------- retries (D6, D7, D11)


def test_first_connect_makes_exactly_max_attempts_handshakes(
        hostile: HostileServer, hostile_config: KalshiConfig) -> None:
    hostile.refusals.extend(Refusal(503) for _ in range(6))
    with pytest.raises(HandshakeError, match="503"):
        KalshiStreamClient.connect(hostile_config, timeout=5_000 * MS,
                                   strategy=ConnectStrategy.retry(base=0.01, cap=0.02,
                                                                  max_attempts=3))
    assert len(hostile.handshakes) == 3


def test_reconnect_makes_exactly_max_attempts_attempts(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    client = open_client(reconnect=ReconnectPolicy(
        backoff=Backoff(base=0.01, cap=0.02, max_attempts=3)))
    hostile.refusals.extend(Refusal(503) for _ in range(6))
    hostile.connection().reset()
    reason = ended(client)
    assert isinstance(reason, ConnectionLost), repr(reason)
    assert len(hostile.handshakes) == 1 + 3


@pytest.mark.parametrize("status, retry_after", [
    (429, lambda: "1"),
    (503, lambda: email.utils.formatdate(time.time() + 2, usegmt=True)),  # >= 1 s away
])
def test_retry_after_is_honoured_on_first_connect(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient],
        status: int, retry_after: Callable[[], str]) -> None:
    hostile.refusals.append(Refusal(status, {"Retry-After": retry_after()}))
    open_client(strategy=ConnectStrategy.retry(base=0.01, cap=5, max_attempts=5))
    assert len(hostile.handshakes) == 2
    waited = hostile.handshakes[1] - hostile.refused_at[0]
    assert waited >= 0.95, f"next handshake {waited:.3f} s after a Retry-After of >= 1 s"


def test_retry_after_is_capped_by_the_backoff_cap(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    hostile.refusals.append(Refusal(429, {"Retry-After": "3600"}))
    open_client(strategy=ConnectStrategy.retry(base=0.01, cap=0.5, max_attempts=5))
    assert len(hostile.handshakes) == 2
    assert hostile.handshakes[1] - hostile.refused_at[0] < 30  # the cap, not an hour


def test_retry_after_is_honoured_on_reconnect(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    client = open_client(reconnect=ReconnectPolicy(backoff=Backoff(base=0.01, cap=5)))
    hostile.refusals.append(Refusal(503, {"Retry-After": "1"}))
    hostile.connection().reset()
    hostile.connection(1)
    waited = hostile.handshakes[2] - hostile.refused_at[0]
    assert waited >= 0.95, f"next handshake {waited:.3f} s after Retry-After: 1"
    client.list_subscriptions(timeout=WAIT)  # a command waits for the client to be open
    assert client.state == "OPEN"


def test_a_flapping_server_sees_exponentially_spaced_attempts(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    """Each new connection restores the subscription, then the server closes it at once.

    With the backoff reset after every restore, every wait would be at most
    ``base`` = 10 ms and 20 reconnections would take well under a second. With the
    backoff kept (the connections never stay up for ``healthy_after``), the ceilings grow
    to the 0.4 s cap: 20 reconnections wait ~2.9 s on average, below 1 s with a
    probability under 1e-5.
    """
    def flap(conn: Conn) -> None:
        if conn.index > 0:
            conn.after_answer = lambda c, command: c.finish(1011, "flap") \
                if command.get("cmd") == "subscribe" else None

    hostile.on_connect = flap
    client = open_client(reconnect=ReconnectPolicy(
        backoff=Backoff(base=0.01, cap=0.4), healthy_after=30))
    client.subscribe(["ticker"], ["M"])
    hostile.connection().finish(1011, "flap")
    hostile.connection(21, timeout=3 * WAIT)
    # Restores were acknowledged: the flaps come after successful restores.
    assert all(c.wait_cmd("subscribe", timeout=5_000 * MS) for c in hostile.connections[1:21])
    elapsed = hostile.handshakes[21] - hostile.handshakes[1]
    assert elapsed >= 1.0, f"20 reconnections to a flapping server in {elapsed:.2f} s"


# ---------------------------------------------------------------------- order books (D1)


def _books(hostile: HostileServer, open_client: Callable[..., KalshiStreamClient],
           markets: list[str]) -> tuple[KalshiStreamClient, Any, Conn, int]:
    client = open_client()
    books = client.orderbooks(markets)
    assert books.wait_synced(5)
    conn = hostile.connection()
    sid = next(s.sid for s in client.subscriptions() if s.channel == "orderbook_delta")
    return client, books, conn, sid


def _snapshot_requests(conn: Conn, start: int) -> set[str]:
    return {m for c in conn.commands[start:] if isinstance(c, dict)
            and c.get("cmd") == "update_subscription"
            and (c.get("params") or {}).get("action") == "get_snapshot"
            for m in c["params"].get("market_tickers", [])}


def test_a_malformed_delta_unsyncs_its_book_and_resyncs_it(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    _client, books, conn, sid = _books(hostile, open_client, ["M1", "M2"])
    start = len(conn.commands)
    conn.book["M1"] = [["0.4500", "5.00"]]  # what the fresh snapshot will say
    conn.send(conn.data(sid, "orderbook_delta", {
        "market_ticker": "M1", "market_id": "id-M1", "price_dollars": "abc",
        "delta_fp": "-10.00", "side": "yes"}))
    hostile.wait_for(lambda: "M1" in _snapshot_requests(conn, start), timeout=5_000 * MS)
    assert books.wait_synced(5)
    # The fresh snapshot, nothing of the bad delta or of the book before it.
    assert books.get("M1").yes_bids == ((Decimal("0.45"), Decimal(5)),)


def test_a_malformed_delta_is_never_applied_while_the_book_says_synced(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    hostile.hold = {"update_subscription"}  # no fresh snapshot: the book must stay unsynced
    client, books, conn, sid = _books(hostile, open_client, ["M1", "M2"])
    start = len(conn.commands)
    conn.send(conn.data(sid, "orderbook_delta", {
        "market_ticker": "M1", "market_id": "id-M1", "price_dollars": "abc",
        "delta_fp": "-10.00", "side": "yes"}))
    hostile.wait_for(lambda: "M1" in _snapshot_requests(conn, start), timeout=5_000 * MS)
    assert not books.is_synced("M1")
    assert client.list_subscriptions(timeout=5_000 * MS) is not None
    assert not books.is_synced("M1")  # still: nothing repaired it


def test_a_delta_whose_market_cannot_be_read_unsyncs_every_book_of_the_sid(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    hostile.hold = {"update_subscription"}
    _client, books, conn, sid = _books(hostile, open_client, ["M1", "M2"])
    start = len(conn.commands)
    conn.send(conn.data(sid, "orderbook_delta", "not an object"))
    hostile.wait_for(lambda: _snapshot_requests(conn, start) >= {"M1", "M2"}, timeout=5_000 * MS)
    assert not books.is_synced("M1") and not books.is_synced("M2")


def test_a_malformed_snapshot_unsyncs_the_book_and_asks_again(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    _client, books, conn, sid = _books(hostile, open_client, ["M1", "M2"])
    start = len(conn.commands)
    conn.send(conn.data(sid, "orderbook_snapshot", {
        "market_ticker": "M1", "market_id": "id-M1", "yes_dollars_fp": [["abc", "1.00"]]}))
    hostile.wait_for(lambda: "M1" in _snapshot_requests(conn, start), timeout=5_000 * MS)
    assert books.wait_synced(5)  # the answer to get_snapshot repaired it


# ---------------------------------------------------------------------- sequence numbers (D8)


def test_an_absurd_seq_is_reported_and_the_subscription_recovers(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    client = open_client()
    seen = Collector()
    client.add_callback(seen)
    sid = client.subscribe(["trade"], ["M"]).successful[0].sid
    conn = hostile.connection()
    conn.send(conn.data(sid, "trade", trade_msg()))
    conn.send(conn.data(sid, "trade", trade_msg()))
    conn.send(conn.data(sid, "trade", trade_msg(), seq=2 ** 70))
    seen.wait_for(lambda items: any(isinstance(i, SequenceGap) for i in items))
    client.list_subscriptions(timeout=5_000 * MS)  # lets a resubscription (if any) happen first
    for sub in client.subscriptions():
        if sub.channel == "trade":
            for _ in range(3):
                conn.send(conn.data(sub.sid, "trade", trade_msg()))
    client.list_subscriptions(timeout=5_000 * MS)

    def recovered(items: list[Any]) -> bool:
        gap = next(n for n, i in enumerate(items) if isinstance(i, SequenceGap))
        return any(isinstance(i, StreamUpdate) and isinstance(i.msg, Trade)
                   and i.seq != 2 ** 70 for i in items[gap + 1:])

    seen.wait_for(recovered, timeout=5_000 * MS)


def test_a_non_integer_seq_is_malformed_and_a_digit_string_is_a_number(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    client = open_client()
    seen = Collector()
    client.add_callback(seen)
    sid = client.subscribe(["trade"], ["M"]).successful[0].sid
    conn = hostile.connection()
    for seq in (1, 2):
        conn.send(conn.data(sid, "trade", trade_msg(), seq=seq))
    conn.send_raw(frame(f'{{"type":"trade","sid":{sid},"seq":3.5,'
                        f'"msg":{json.dumps(trade_msg())}}}'))
    conn.send(conn.data(sid, "trade", trade_msg(), seq="abc"))
    conn.send(conn.data(sid, "trade", trade_msg(), seq="3"))
    conn.send(conn.data(sid, "trade", trade_msg(), seq=4))
    client.list_subscriptions(timeout=5_000 * MS)
    seen.wait_for(lambda items: len([u for u in seen.updates() if u.seq == 4]) == 1)
    assert len(bad_messages(seen.items)) == 2
    good = [u.seq for u in seen.updates("trade") if not isinstance(u.msg, MalformedMessage)]
    assert good == [1, 2, 3, 4] and all(type(s) is int for s in good), good


# ---------------------------------------------------------------------- late acks (D4)


def test_a_late_acknowledged_subscribe_is_unsubscribed_and_not_kept(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient],
        caplog: pytest.LogCaptureFixture) -> None:
    hostile.hold = {"subscribe"}
    client = open_client()
    calls = [0]
    client.add_callback(lambda item: calls.__setitem__(0, calls[0] + 1))  # consume, keep none
    conn = hostile.connection()
    with pytest.raises(CommandTimeout):
        client.subscribe(["ticker"], ["M"], timeout=0.5)
    command = conn.wait_cmd("subscribe")
    late_sid = 7
    conn.subs[late_sid] = ("ticker", ["M"])
    flood = b"".join(text_frame(conn.data(late_sid, "ticker", ticker_msg()))
                     for _ in range(10_000))
    ack = text_frame({"id": command["id"], "type": "subscribed",
                      "msg": {"channel": "ticker", "sid": late_sid}})
    first_warning = len(caplog.records)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        conn.send_raw(ack + flood)
        conn.wait_cmd("unsubscribe", sids=[late_sid], timeout=5_000 * MS)
        client.list_subscriptions(timeout=WAIT)  # every frame above has been read
        # No event says the backlog is empty (a callback sees the last item before the
        # backlog counts it done): read the state.
        poll_public_state(lambda: client.stats().pending == 0, WAIT, "the callbacks caught up")
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 4 * MiB, f"{held} bytes still held after 10,000 frames of an abandoned sid"
    warnings = [r for r in caplog.records[first_warning:]
                if r.name.startswith("kalshi_ws") and r.levelno >= logging.WARNING]
    assert 1 <= len(warnings) <= 3, [r.getMessage() for r in warnings]
    assert any(str(late_sid) in r.getMessage() for r in warnings)
    assert all(s.sid != late_sid for s in client.subscriptions())


def test_a_subscribe_abandoned_in_the_first_moments_is_still_resolved(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    """A command given up before the reader's first housekeeping tick (no frame has
    arrived yet) must keep its grace period: the protocol clock must not start at 0."""
    hostile.hold = {"subscribe"}
    client = open_client(health=HealthConfig(ping_interval=0.01))
    conn = hostile.connection()
    with pytest.raises(CommandTimeout):
        client.subscribe(["ticker"], ["M"], timeout=0.05)  # well before the first tick
    command = conn.wait_cmd("subscribe")
    hostile.wait_for(lambda: len(conn.pings) >= 2)  # housekeeping has run since
    conn.subs[7] = ("ticker", ["M"])
    conn.send({"id": command["id"], "type": "subscribed",
               "msg": {"channel": "ticker", "sid": 7}})
    conn.wait_cmd("unsubscribe", sids=[7], timeout=5_000 * MS)
    client.list_subscriptions(timeout=5_000 * MS)
    assert client.subscriptions() == []


# ---------------------------------------------------------------------- slow consumers (D2, D5)


def _mixed_flood(conn: Conn, trade_sid: int, ticker_sid: int) -> bytes:
    """16,000 trades (never dropped) ahead of 30,000 tickers (drop_oldest), then a ping."""
    trades = b"".join(text_frame(conn.data(trade_sid, "trade", trade_msg()))
                      for _ in range(16_000))
    tickers = text_frame({"type": "ticker", "sid": ticker_sid, "msg": ticker_msg()}) * 30_000
    return trades + tickers + frame(b"are you there", OP_PING)


def test_commands_and_pings_flow_while_a_callback_is_stuck(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    """A stuck callback, a full buffer of trades ahead of a ticker flood: under
    drop_oldest every ticker must cost the reader constant work, so the ping after the
    flood is ponged and a command answered long before their timeouts."""
    client = open_client(queue=False, max_pending=16_384)
    release = threading.Event()
    seen = Collector()

    def stuck(item: Any) -> None:
        release.wait(3 * WAIT)
        seen(item)

    try:
        client.add_callback(stuck)
        trade_sid = client.subscribe(["trade"], ["M"]).successful[0].sid
        ticker_sid = client.subscribe(["ticker"], ["M"]).successful[0].sid
        conn = hostile.connection()
        conn.send_raw(_mixed_flood(conn, trade_sid, ticker_sid))
        hostile.wait_for(lambda: conn.pongs == [b"are you there"], timeout=15_000 * MS)
        assert client.list_subscriptions(timeout=15_000 * MS)
        assert client.state == "OPEN"
    finally:
        release.set()

    def all_drops_reported(items: list[Any]) -> bool:
        reported = sum(i.dropped for i in items if isinstance(i, Lagged))
        return reported == client.stats().channels["ticker"].dropped > 0

    seen.wait_for(all_drops_reported, timeout=15_000 * MS)


def test_commands_and_pings_flow_while_the_updates_queue_is_full(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    """The same flood into an ``updates`` queue nobody reads (drop_oldest for tickers)."""
    client = open_client(queue_maxsize=16_384)
    updates = client.updates
    trade_sid = client.subscribe(["trade"], ["M"]).successful[0].sid
    ticker_sid = client.subscribe(["ticker"], ["M"]).successful[0].sid
    conn = hostile.connection()
    conn.send_raw(_mixed_flood(conn, trade_sid, ticker_sid))
    hostile.wait_for(lambda: conn.pongs == [b"are you there"], timeout=15_000 * MS)
    assert client.list_subscriptions(timeout=15_000 * MS)
    assert client.state == "OPEN"
    # No event says the dispatcher has moved everything to the queue: read the state.
    poll_public_state(lambda: client.stats().pending == 0, 15_000 * MS,
                      "the dispatcher drained its buffer")
    lagged = 0
    while not updates.empty():
        item = updates.get_nowait()
        if isinstance(item, Lagged):
            lagged += item.dropped
    assert lagged == client.stats().channels["ticker"].dropped > 0  # every drop reported


def test_no_callback_starts_after_close_returns_on_a_dead_client(
        hostile: HostileServer, open_client: Callable[..., KalshiStreamClient]) -> None:
    client = open_client(queue=False, max_pending=50, overflow="error")
    release = threading.Event()
    lock = threading.Lock()
    calls = [0]

    def stuck(item: Any) -> None:
        with lock:
            calls[0] += 1
        release.wait(3 * WAIT)

    client.add_callback(stuck)
    sid = client.subscribe(["trade"], ["M"]).successful[0].sid
    conn = hostile.connection()
    conn.send_raw(b"".join(text_frame(conn.data(sid, "trade", trade_msg())) for _ in range(500)))
    assert isinstance(ended(client), SlowConsumerError)
    try:
        client.close(timeout=1_000 * MS)
        with lock:
            at_close = calls[0]
    finally:
        release.set()
    for thread in threading.enumerate():
        if thread.name.startswith("kalshi-ws-"):
            thread.join(5_000 * MS)
    assert calls[0] == at_close, f"{calls[0] - at_close} callbacks started after close()"
